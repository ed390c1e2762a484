"""TrueSkill labels (paper §3.1–3.2) against the closed-form 1-vs-1 update written with scipy."""

import math

import numpy as np
import pytest
from scipy.stats import norm

from gifemo.data.emotions import EMOTIONS, emotion_index
from gifemo.data.labels import (Vote, VoteError, is_positive, label_targets, trueskill_scores,
                                 vote_problems)

MU0, SIGMA0 = 25.0, 25.0 / 3.0
BETA, TAU, P_DRAW = SIGMA0 / 2, SIGMA0 / 100, 0.10


def reference_update(a, b, outcome):
    """Closed-form TrueSkill two-player update (Herbrich et al. 2007). a, b = (mu, sigma);
    outcome 'a' = a wins, 'draw'. Returns the new (mu, sigma) of a and b."""
    (mu_a, s_a), (mu_b, s_b) = a, b
    s2_a, s2_b = s_a**2 + TAU**2, s_b**2 + TAU**2              # dynamics factor
    c = math.sqrt(2 * BETA**2 + s2_a + s2_b)
    eps = norm.ppf((P_DRAW + 1) / 2) * math.sqrt(2) * BETA      # draw margin
    t, e = (mu_a - mu_b) / c, eps / c
    if outcome == "a":
        v = norm.pdf(t - e) / norm.cdf(t - e)
        w = v * (v + t - e)
    else:
        denom = norm.cdf(e - t) - norm.cdf(-e - t)
        v = (norm.pdf(-e - t) - norm.pdf(e - t)) / denom
        w = v**2 + ((e - t) * norm.pdf(e - t) + (e + t) * norm.pdf(e + t)) / denom
    new_a = (mu_a + s2_a / c * v, math.sqrt(s2_a * (1 - s2_a / c**2 * w)))
    new_b = (mu_b - s2_b / c * v, math.sqrt(s2_b * (1 - s2_b / c**2 * w)))
    return new_a, new_b


def test_single_win_matches_closed_form():
    mu, sigma = trueskill_scores([Vote("fear", "g1", "g2", "left")], ["g0", "g1", "g2"])
    (ma, sa), (mb, sb) = reference_update((MU0, SIGMA0), (MU0, SIGMA0), "a")
    j = emotion_index("fear")
    np.testing.assert_allclose([mu[1, j], sigma[1, j], mu[2, j], sigma[2, j]], [ma, sa, mb, sb], rtol=1e-6)
    assert mu[1, j] > MU0 > mu[2, j]
    # the textbook default-environment value after one win between fresh players
    assert abs(mu[1, j] - 29.396) < 1e-3 and abs(sigma[1, j] - 7.171) < 1e-3


def test_right_choice_is_a_win_for_the_right_gif():
    mu_r, sig_r = trueskill_scores([Vote("anger", "a", "b", "right")], ["a", "b"])
    mu_l, sig_l = trueskill_scores([Vote("anger", "b", "a", "left")], ["a", "b"])
    np.testing.assert_array_equal(mu_r, mu_l)
    np.testing.assert_array_equal(sig_r, sig_l)
    assert mu_r[1, emotion_index("anger")] > mu_r[0, emotion_index("anger")]


def test_draw_matches_closed_form_between_unequal_ratings():
    # a beats b twice, then they draw: the draw pulls them together
    votes = [Vote("happiness", "a", "b", "left")] * 2 + [Vote("happiness", "a", "b", "neither")]
    mu, sigma = trueskill_scores(votes, ["a", "b"])
    ra, rb = (MU0, SIGMA0), (MU0, SIGMA0)
    ra, rb = reference_update(ra, rb, "a")
    ra, rb = reference_update(ra, rb, "a")
    before = ra[0] - rb[0]
    ra, rb = reference_update(ra, rb, "draw")
    j = emotion_index("happiness")
    np.testing.assert_allclose([mu[0, j], sigma[0, j], mu[1, j], sigma[1, j]], [*ra, *rb], rtol=1e-6)
    assert 0 < mu[0, j] - mu[1, j] < before


def test_first_draw_leaves_equal_means_and_shrinks_sigma():
    mu, sigma = trueskill_scores([Vote("pride", "a", "b", "neither")], ["a", "b"])
    j = emotion_index("pride")
    ra, rb = reference_update((MU0, SIGMA0), (MU0, SIGMA0), "draw")
    np.testing.assert_allclose(mu[:, j], [MU0, MU0], atol=1e-9)
    np.testing.assert_allclose(sigma[:, j], [ra[1], rb[1]], rtol=1e-6)
    assert sigma[0, j] < SIGMA0


def test_sequence_in_file_order_and_emotions_are_independent():
    rng = np.random.default_rng(0)
    ids = [f"g{i}" for i in range(5)]
    emos = ["sadness", "surprise"]
    votes = []
    for _ in range(40):
        a, b = rng.choice(5, 2, replace=False)
        votes.append(Vote(str(rng.choice(emos)), ids[a], ids[b], str(rng.choice(["left", "right", "neither"]))))
    mu, sigma = trueskill_scores(votes, ids)
    ref = {e: {} for e in emos}
    for v in votes:
        tab = ref[v.emotion]
        ra, rb = tab.get(v.left, (MU0, SIGMA0)), tab.get(v.right, (MU0, SIGMA0))
        if v.choice == "left":
            ra, rb = reference_update(ra, rb, "a")
        elif v.choice == "right":
            rb, ra = reference_update(rb, ra, "a")
        else:
            ra, rb = reference_update(ra, rb, "draw")
        tab[v.left], tab[v.right] = ra, rb
    for e in emos:
        j = emotion_index(e)
        for i, gif in enumerate(ids):
            if gif in ref[e]:
                np.testing.assert_allclose([mu[i, j], sigma[i, j]], ref[e][gif], rtol=1e-5)
            else:
                assert np.isnan(mu[i, j]) and np.isnan(sigma[i, j])
    # every other emotion is untouched
    others = [emotion_index(e) for e in EMOTIONS if e not in emos]
    assert np.isnan(mu[:, others]).all() and np.isnan(sigma[:, others]).all()
    # order matters: reversing the votes changes the ratings
    mu_rev, _ = trueskill_scores(list(reversed(votes)), ids)
    assert not np.allclose(np.nan_to_num(mu), np.nan_to_num(mu_rev))


def test_never_compared_gifs_are_nan_and_masked():
    mu, sigma = trueskill_scores([Vote("guilt", "a", "b", "left")], ["a", "b", "c"])
    assert mu.shape == sigma.shape == (3, 17) and mu.dtype == np.float64
    y, positive, mask = label_targets(mu, sigma)
    j = emotion_index("guilt")
    assert mask.sum() == 2 and mask[0, j] and mask[1, j] and not mask[2].any()
    assert np.isnan(y[2]).all() and not positive[2].any()


def test_label_targets_hand_worked():
    nan = np.nan
    mu = np.array([[40.0, 30.0, nan], [25.0, 20.0, 50.0]])
    sigma = np.array([[4.0, 1.0, nan], [0.0, 1.0, 8.0]])
    y, positive, mask = label_targets(mu, sigma)
    np.testing.assert_array_equal(y, [[28.0, 27.0, nan], [25.0, 17.0, 26.0]])
    # y > 25 strictly: 28, 27, 26 positive; exactly 25 is not
    np.testing.assert_array_equal(positive, [[True, True, False], [False, False, True]])
    np.testing.assert_array_equal(mask, [[True, True, False], [True, True, True]])


def test_is_positive_is_strict_nan_safe_and_masked():
    y = np.array([25.0, np.nextafter(25.0, 30.0), 24.999, np.nan, 40.0])
    np.testing.assert_array_equal(is_positive(y), [False, True, False, False, True])
    mask = np.array([True, True, True, True, False])
    np.testing.assert_array_equal(is_positive(y, mask), [False, True, False, False, False])
    assert is_positive(np.float32(25.0)) == False  # noqa: E712 (a 0-d array, not a bool)
    assert is_positive([[26.0]]).shape == (1, 1)


def test_many_wins_make_a_positive():
    votes = [Vote("relief", "star", f"o{k}", "left") for k in range(30)]
    ids = ["star"] + [f"o{k}" for k in range(30)]
    y, positive, mask = label_targets(*trueskill_scores(votes, ids))
    j = emotion_index("relief")
    assert positive[0, j] and not positive[1:, j].any() and mask[:, j].all()


@pytest.mark.parametrize("vote, reason", [
    (Vote("joy", "a", "b", "left"), "unknown emotion 'joy'"),
    (Vote("fear", "a", "b", "up"), "unknown choice 'up'; expected one of left, right, both, neither"),
    (Vote("fear", "a", "a", "left"), "compared with itself"),
    (Vote("fear", "a", "zz", "left"), "'zz' is not in the dataset"),
])
def test_bad_votes_name_the_index(vote, reason):
    votes = [Vote("fear", "a", "b", "left"), vote]
    with pytest.raises(VoteError, match="vote 1: ") as info:
        trueskill_scores(votes, ["a", "b"])
    assert reason in str(info.value)
    assert isinstance(info.value, ValueError) and info.value.problems[0][0] == 1


def test_all_bad_votes_are_listed_at_once():
    votes = [Vote("x", "a", "b", "left"), Vote("fear", "a", "b", "left"), Vote("fear", "b", "b", "maybe")]
    with pytest.raises(VoteError) as info:
        trueskill_scores(votes, ["a", "b"])
    assert sorted({i for i, _ in info.value.problems}) == [0, 2]
    assert len(info.value.problems) == 3


def test_case_and_whitespace_in_emotion_and_choice_are_accepted():
    a = trueskill_scores([Vote(" Fear", "a", "b", "LEFT ")], ["a", "b"])
    b = trueskill_scores([Vote("fear", "a", "b", "left")], ["a", "b"])
    np.testing.assert_array_equal(a[0], b[0])


def test_duplicate_ids_rejected():
    with pytest.raises(ValueError, match="duplicated"):
        trueskill_scores([], ["a", "b", "a"])


def test_label_targets_rejects_inconsistent_inputs():
    with pytest.raises(ValueError, match="shape"):
        label_targets(np.zeros((2, 17)), np.zeros((3, 17)))
    with pytest.raises(ValueError, match="disagree"):
        label_targets(np.array([[1.0, 2.0]]), np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="sigma"):
        label_targets(np.array([[1.0]]), np.array([[-1.0]]))


def test_label_targets_names_the_first_inconsistent_entry_and_rejects_infinities():
    mu, sigma = np.ones((2, 3)), np.ones((2, 3))
    sigma[1, 2] = np.nan  # mu labelled, sigma not
    with pytest.raises(ValueError, match=r"first at \(1, 2\)"):
        label_targets(mu, sigma)
    for bad_mu, bad_sigma in ((np.inf, 1.0), (1.0, np.inf), (-np.inf, 1.0)):
        with pytest.raises(ValueError, match="finite"):
            label_targets(np.array([[bad_mu]]), np.array([[bad_sigma]]))


def test_malformed_votes_are_listed_not_crashed_on():
    votes = [("fear", "a", "b"), ["fear", "a", "b", "left"], Vote("fear", "a", "zz", "left"),
             Vote("fear", "yy", "b", "left")]
    problems = vote_problems(votes, ["a", "b"])
    assert problems == [(0, "not a (emotion, left, right, choice) vote: ('fear', 'a', 'b')"),
                        (1, "not a (emotion, left, right, choice) vote: ['fear', 'a', 'b', 'left']"),
                        (2, "right GIF id 'zz' is not in the dataset"),
                        (3, "left GIF id 'yy' is not in the dataset")]
    assert vote_problems(votes[2:]) == []  # without ids, unknown GIFs are not a problem


def test_vote_error_message_lists_twenty_then_counts_the_rest():
    problems = [(i, f"reason {i}") for i in range(23)]
    text = str(VoteError(problems))
    assert text.startswith("23 bad vote(s):\n  vote 0: reason 0\n  vote 1: reason 1\n")
    assert "  vote 19: reason 19\n  … and 3 more" in text and "vote 20" not in text
    assert str(VoteError(problems[:20])).endswith("  vote 19: reason 19")  # no "more" line


def test_duplicate_ids_are_named():
    with pytest.raises(ValueError, match=r"duplicated GIF ids: \['a', 'c'\]"):
        trueskill_scores([], ["a", "b", "a", "c", "c", "d"])
