"""GIFGIF's TrueSkill variant (labels=gifgif) against hand-computed updates."""

import math
from statistics import NormalDist

import numpy as np
import pytest
import trueskill

from gifemo.data.labels import GIFGIF_PARAMS, Vote, VoteError, gifgif_update, trueskill_scores

S0 = 25.0 / 3.0


def test_parameters_as_published():
    assert GIFGIF_PARAMS["mu"] == 25.0 and GIFGIF_PARAMS["sigma"] == pytest.approx(S0)
    assert GIFGIF_PARAMS["beta2"] == pytest.approx(S0 ** 2 / 4)
    assert GIFGIF_PARAMS["tau2"] == pytest.approx(S0 ** 2 / 10000)
    assert GIFGIF_PARAMS["draw_probability"] == 0.13
    # ε = Φ⁻¹(0.565)·√(2β² + 2σ₀²) = 0.16365…·13.176… (by hand with the stdlib's NormalDist)
    eps = NormalDist().inv_cdf(0.565) * math.sqrt(2 * S0 ** 2 / 4 + 2 * S0 ** 2)
    assert GIFGIF_PARAMS["draw_margin"] == pytest.approx(eps, rel=1e-12)
    assert GIFGIF_PARAMS["draw_margin"] == pytest.approx(2.156389895466818, rel=1e-12)


def test_first_win_and_first_draw_between_new_gifs_by_hand():
    # var = σ₀² + τ² = 69.4514, c² = 2β² + 2 var = 173.625, t = 0, e = ε/c = 0.16365;
    # win: v = N(−e)/Φ(−e), w = v (v − e); µ_w = 25 + var·v/c …
    (mw, sw), (ml, sl) = gifgif_update((25.0, S0), (25.0, S0), drawn=False)
    assert mw == pytest.approx(29.769550088121495, abs=1e-9)
    assert ml == pytest.approx(20.230449911878505, abs=1e-9)
    assert sw == pytest.approx(7.128595020455533, abs=1e-9) and sl == pytest.approx(sw)
    # draw of equals: v = 0 (µ unchanged), σ shrinks more than after a win
    (mw, sw), (ml, sl) = gifgif_update((25.0, S0), (25.0, S0), drawn=True)
    assert mw == 25.0 and ml == 25.0
    assert sw == pytest.approx(6.474365151556962, abs=1e-9) and sl == pytest.approx(sw)


@pytest.mark.parametrize("drawn", [False, True])
def test_matches_the_trueskill_equations_for_unequal_ratings(drawn):
    # The trueskill package implements the same two-player equations with margin
    # Φ⁻¹((p + 1)/2)·√2·β; choosing p so that its margin equals GIFGIF's ε makes the two
    # updates identical — an independent implementation of the same maths (to ~1e-7: the
    # package's own erfc approximation has a fractional error below 1.2e-7).
    beta = math.sqrt(GIFGIF_PARAMS["beta2"])
    p = 2 * NormalDist().cdf(GIFGIF_PARAMS["draw_margin"] / (math.sqrt(2) * beta)) - 1
    env = trueskill.TrueSkill(mu=25.0, sigma=S0, beta=beta,
                              tau=math.sqrt(GIFGIF_PARAMS["tau2"]), draw_probability=p)
    g = np.random.default_rng(0)
    for _ in range(20):
        a = (float(g.uniform(10, 40)), float(g.uniform(1, 8)))
        b = (float(g.uniform(10, 40)), float(g.uniform(1, 8)))
        ours = gifgif_update(a, b, drawn)
        ra, rb = trueskill.rate_1vs1(trueskill.Rating(*a), trueskill.Rating(*b), drawn=drawn,
                                     env=env)
        np.testing.assert_allclose([*ours[0], *ours[1]], [ra.mu, ra.sigma, rb.mu, rb.sigma],
                                   rtol=2e-6)


def test_scores_apply_votes_one_at_a_time_in_order_and_both_is_a_draw():
    ids = ["a", "b", "c"]
    votes = [Vote("happiness", "a", "b", "left"), Vote("happiness", "c", "a", "right"),
             Vote("happiness", "b", "c", "both"), Vote("anger", "c", "b", "neither")]
    mu, sigma = trueskill_scores(votes, ids, rule="gifgif")
    r = {g: (25.0, S0) for g in ids}
    r["a"], r["b"] = gifgif_update(r["a"], r["b"], False)
    r["a"], r["c"] = gifgif_update(r["a"], r["c"], False)   # "right": a (right) wins over c
    r["b"], r["c"] = gifgif_update(r["b"], r["c"], True)
    h = 9  # happiness column
    for i, gid in enumerate(ids):
        assert (mu[i, h], sigma[i, h]) == pytest.approx(r[gid], abs=1e-12)
    angry = gifgif_update((25.0, S0), (25.0, S0), True)
    assert (mu[2, 1], sigma[2, 1]) == pytest.approx(angry[0]) and np.isnan(mu[0, 1])
    # "neither" and "both" are the same draw
    same = trueskill_scores([Vote("anger", "c", "b", "both")], ids, rule="gifgif")
    np.testing.assert_array_equal(same[0][:, 1], mu[:, 1])
    # order matters: the same votes reversed give other ratings
    rev = trueskill_scores(votes[::-1], ids, rule="gifgif")
    assert not np.allclose(rev[0][:, h], mu[:, h])
    # the package defaults remain the default rule, and they differ
    default = trueskill_scores(votes, ids)
    assert not np.allclose(default[0][:, h], mu[:, h])


def test_bad_rule_and_extreme_draws():
    with pytest.raises(ValueError, match="rule"):
        trueskill_scores([], ["a"], rule="elo")
    # a draw between a certain champion and a certain loser stays finite or is refused
    try:
        (mw, sw), (ml, sl) = gifgif_update((60.0, 0.5), (-10.0, 0.5), drawn=True)
        assert all(math.isfinite(x) for x in (mw, sw, ml, sl))
    except FloatingPointError:
        pass
    with pytest.raises(VoteError, match="unknown choice"):
        trueskill_scores([Vote("anger", "a", "b", "equal")], ["a", "b"], rule="gifgif")
