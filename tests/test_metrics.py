"""PR curve, PR-AUC and Ñ against hand-worked values and scikit-learn."""

import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from gifemo.eval.metrics import (
    RECALL_GRID,
    NoPositivesWarning,
    averaged_pr_curve,
    evaluate_rankings,
    interpolated_precision,
    n_tilde,
    pr_auc,
    pr_curve,
    unsorted_curve,
)

# Grid trapezoid vs exact step integral: at most half a grid step per unit of jump.
GRID_TOL = 0.5 / (len(RECALL_GRID) - 1)


def test_hand_worked_curve():
    # ranking: + − + + − −  (3 positives)
    # after k items: k=1 P=1 R=1/3; k=2 P=1/2 R=1/3; k=3 P=2/3 R=2/3; k=4 P=3/4 R=1;
    # k=5 P=3/5 R=1; k=6 P=1/2 R=1.
    y = np.array([1, 0, 1, 1, 0, 0], bool)
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    r, p = pr_curve(y, s)
    np.testing.assert_allclose(r, [1 / 3, 1 / 3, 2 / 3, 1, 1, 1])
    np.testing.assert_allclose(p, [1, 1 / 2, 2 / 3, 3 / 4, 3 / 5, 1 / 2])
    # interpolated: max precision at recall ≥ r → 1 on [0, 1/3], 3/4 on (1/3, 1]
    grid = np.array([0.0, 0.2, 1 / 3, 0.5, 2 / 3, 0.9, 1.0])
    np.testing.assert_allclose(interpolated_precision(r, p, grid),
                               [1, 1, 1, 0.75, 0.75, 0.75, 0.75])
    # area: 1·(1/3) + 0.75·(2/3) = 5/6
    g, c = averaged_pr_curve(y[:, None], s[:, None], np.ones((6, 1), bool))
    assert pr_auc(g, c) == pytest.approx(5 / 6, abs=0.25 * GRID_TOL * 2)
    # Ñ at recall 0.06 reads P̃ = 1 → Np / 1
    assert n_tilde(g, c) == pytest.approx(3000.0)
    # Ñ at recall 0.5 (Np=1, Nall=2): P̃ = 0.75 → 4/3
    assert n_tilde(g, c, n_pos=1, n_all=2) == pytest.approx(4 / 3)


def test_monotone_precision_area_equals_sklearn_average_precision():
    # + + − + − − : precision at the positives 1, 1, 3/4 never rises → AP = 1/3+1/3+1/4.
    y = np.array([1, 1, 0, 1, 0, 0], bool)
    s = np.arange(6, 0, -1, dtype=float)
    g, c = averaged_pr_curve(y[:, None], s[:, None], np.ones((6, 1), bool))
    ap = average_precision_score(y, s)
    assert ap == pytest.approx(11 / 12)
    assert pr_auc(g, c) == pytest.approx(ap, abs=GRID_TOL * 0.25)


def test_interpolated_area_never_below_sklearn_ap_on_random_rankings():
    g = np.random.default_rng(0)
    for _ in range(20):
        y = g.random(200) < 0.3
        s = g.random(200) + 0.5 * y
        grid, c = averaged_pr_curve(y[:, None], s[:, None], np.ones((200, 1), bool))
        assert pr_auc(grid, c) >= average_precision_score(y, s) - GRID_TOL


def test_constant_score_gives_positive_rate_and_perfect_ranking_gives_one():
    g = np.random.default_rng(1)
    N, T = 400, 17
    positive = g.random((N, T)) < 0.25
    mask = g.random((N, T)) < 0.6
    rates = [(positive[:, t] & mask[:, t]).sum() / mask[:, t].sum() for t in range(T)]
    r, p = unsorted_curve(positive, mask)
    np.testing.assert_allclose(p, np.mean(rates))
    assert pr_auc(r, p) == pytest.approx(np.mean(rates))
    assert n_tilde(r, p) == pytest.approx(3000 / np.mean(rates))
    perfect = positive.astype(float) + g.random((N, T)) * 0.1
    summary = evaluate_rankings(positive, perfect, mask)
    assert summary.pr_auc == pytest.approx(1.0)
    assert summary.n_tilde == pytest.approx(3000.0)
    np.testing.assert_allclose(summary.per_emotion_auc, 1.0)
    assert summary.unsorted_pr_auc == pytest.approx(np.mean(rates))
    assert summary.unsorted_n_tilde == pytest.approx(3000 / np.mean(rates))
    # the paper's Unsorted row: precision 0.25 → Ñ = 3000 / 0.25 = 12,000 (paper: 11,996)
    assert n_tilde([0, 1], [0.25, 0.25]) == pytest.approx(12000)


def test_averaged_curve_is_mean_of_per_emotion_curves_and_auc_is_linear():
    g = np.random.default_rng(2)
    N, T = 300, 5
    positive = g.random((N, T)) < 0.3
    scores = g.random((N, T)) + positive * g.random(T)
    mask = g.random((N, T)) < 0.8
    s = evaluate_rankings(positive, scores, mask)
    per = [interpolated_precision(*pr_curve(positive[mask[:, t], t], scores[mask[:, t], t]),
                                  RECALL_GRID) for t in range(T)]
    np.testing.assert_allclose(s.precision, np.mean(per, 0))
    assert s.pr_auc == pytest.approx(np.mean(s.per_emotion_auc))
    for t in range(T):
        assert s.per_emotion_n_tilde[t] == pytest.approx(3000 / per[t][60])  # grid[60] = 0.06


def test_masks_keep_unlabelled_entries_out():
    g = np.random.default_rng(3)
    N, T = 200, 3
    positive = g.random((N, T)) < 0.3
    scores = g.random((N, T))
    mask = g.random((N, T)) < 0.5
    a = evaluate_rankings(positive, scores, mask)
    # outside the mask: make everything a top-scored positive (or NaN); nothing may change
    b = evaluate_rankings(np.where(mask, positive, True), np.where(mask, scores, 1e9), mask)
    c = evaluate_rankings(positive, np.where(mask, scores, np.nan), mask)
    for other in (b, c):
        np.testing.assert_array_equal(a.precision, other.precision)
        assert a.pr_auc == other.pr_auc and a.n_tilde == other.n_tilde


def test_emotion_without_positives_is_warned_and_excluded():
    g = np.random.default_rng(4)
    positive = g.random((100, 3)) < 0.3
    positive[:, 1] = False
    scores = g.random((100, 3))
    mask = np.ones((100, 3), bool)
    with pytest.warns(NoPositivesWarning, match="column 1"):
        s = evaluate_rankings(positive, scores, mask)
    assert list(s.included) == [True, False, True]
    assert np.isnan(s.per_emotion_auc[1]) and np.isnan(s.per_emotion_n_tilde[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoPositivesWarning)
        ref = evaluate_rankings(positive[:, [0, 2]], scores[:, [0, 2]], mask[:, [0, 2]])
    assert s.pr_auc == ref.pr_auc
    with pytest.raises(ValueError, match="no emotion"), pytest.warns(NoPositivesWarning):
        evaluate_rankings(np.zeros((5, 2), bool), np.zeros((5, 2)), np.ones((5, 2), bool))


def test_bad_inputs():
    with pytest.raises(ValueError, match="no positive"):
        pr_curve([0, 0], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"score\[1\]"):
        pr_curve([1, 0], [1.0, np.nan])
    with pytest.raises(ValueError, match=r"scores\[0, 1\]"):
        evaluate_rankings(np.ones((2, 2), bool), np.array([[1.0, np.inf], [0, 0]]),
                          np.ones((2, 2), bool))
    with pytest.raises(ValueError, match="n_pos"):
        n_tilde([0, 1], [1, 1], n_pos=10, n_all=5)
    with pytest.raises(ValueError, match="shape"):
        averaged_pr_curve(np.ones((3, 2)), np.ones((3, 1)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="recall_grid"):
        averaged_pr_curve(np.ones((3, 1)), np.ones((3, 1)), np.ones((3, 1)), [0.5, 0.2])


def test_n_tilde_defaults_are_the_papers_and_other_np_nall_are_used():
    # P̃(r) = 1 - r: Ñ = Np / (1 - Np / Nall), by hand
    r, p = np.array([0.0, 1.0]), np.array([1.0, 0.0])
    assert n_tilde(r, p) == pytest.approx(3000 / (1 - 3000 / 50000), rel=1e-12)
    assert n_tilde(r, p, 1000, 20000) == pytest.approx(1000 / 0.95, rel=1e-12)
    assert n_tilde(r, p, 5, 5) == math.inf  # Np = Nall is allowed: recall 1, precision 0
    assert n_tilde([0.06, 1.0], [0.5, 0.1]) == pytest.approx(6000)  # target at the first point
    assert n_tilde([0.0, 0.06], [0.3, 0.5]) == pytest.approx(6000)  # ... and at the last
    with pytest.raises(ValueError, match="outside"):
        n_tilde([0.07, 1.0], [0.5, 0.1])
    with pytest.raises(ValueError, match="outside"):
        n_tilde([0.0, 0.05], [0.5, 0.1])
    for n_pos, n_all in ((0, 10), (3, math.inf), (math.nan, 10)):
        with pytest.raises(ValueError, match="n_pos"):
            n_tilde(r, p, n_pos, n_all)


def test_evaluate_rankings_fields_by_hand():
    """Emotion 0 ranked perfectly (1 of 4 positive), emotion 1 with its one positive ranked
    last of 2 labelled, emotion 2 with a single labelled positive, emotion 3 unlabelled."""
    P = np.array([[1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], bool)
    S = np.array([[4.0, 9, 0, 0], [3, 1, 0, 0], [2, 0, 0, 0], [1, 0, 0, 0]])
    M = np.array([[1, 1, 1, 0], [1, 1, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]], bool)
    grid = np.array([0.0, 0.5, 1.0])
    with pytest.warns(NoPositivesWarning, match="column 3"):
        s = evaluate_rankings(P, S, M, grid, n_pos=1, n_all=2)
    np.testing.assert_array_equal(s.recall, grid)
    np.testing.assert_array_equal(s.included, [True, True, True, False])
    np.testing.assert_allclose(s.per_emotion_precision[:3], [[1, 1, 1], [0.5, 0.5, 0.5], [1, 1, 1]])
    assert np.isnan(s.per_emotion_precision[3]).all()
    np.testing.assert_allclose(s.precision, [2.5 / 3] * 3)
    np.testing.assert_allclose(s.per_emotion_auc[:3], [1.0, 0.5, 1.0])
    np.testing.assert_allclose(s.per_emotion_n_tilde[:3], [1.0, 2.0, 1.0])  # Np / P̃(1/2)
    np.testing.assert_allclose(s.positive_rate[:3], [0.25, 0.5, 1.0])
    assert np.isnan(s.positive_rate[3])
    assert s.pr_auc == pytest.approx(2.5 / 3)
    assert s.n_tilde == pytest.approx(1 / (2.5 / 3))
    assert s.unsorted_pr_auc == pytest.approx((0.25 + 0.5 + 1.0) / 3)
    assert s.unsorted_n_tilde == pytest.approx(1 / ((0.25 + 0.5 + 1.0) / 3))
    # the defaults are the paper's Np = 3000, Nall = 50000
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoPositivesWarning)
        d = evaluate_rankings(P, S, M)
        e = evaluate_rankings(P, S, M, n_pos=3000, n_all=50000)
    assert d.n_tilde == e.n_tilde and d.unsorted_n_tilde == e.unsorted_n_tilde


def test_interpolated_precision_beyond_the_curves_last_recall_is_zero():
    np.testing.assert_allclose(interpolated_precision([0.2, 0.5], [1.0, 0.5], [0.0, 0.5, 0.9, 1.0]),
                               [1.0, 0.5, 0.0, 0.0])


@pytest.mark.parametrize("grid", [[0.5], [0.0, np.nan, 1.0], [-0.1, 1.0], [0.0, 1.1],
                                  [0.0, 0.5, 0.5, 1.0], [[0.0, 1.0]], [1.0, 0.0]])
def test_bad_recall_grids_are_refused(grid):
    with pytest.raises(ValueError, match="recall_grid"):
        interpolated_precision([0.0, 1.0], [1.0, 0.5], grid)


def test_two_point_grid_and_curve_are_enough_and_lengths_are_checked():
    np.testing.assert_allclose(interpolated_precision([0.0, 1.0], [1.0, 0.5], [0.0, 1.0]), [1.0, 0.5])
    assert pr_auc([0.0, 1.0], [1.0, 0.5]) == pytest.approx(0.75)
    for r, p in (([0.0], [1.0]), ([0.0, 1.0], [1.0]), ([[0.0, 1.0]], [[1.0, 1.0]])):
        with pytest.raises(ValueError, match="equal length"):
            pr_auc(r, p)
    with pytest.raises(ValueError, match="equal length"):
        pr_curve([1, 0, 1], [0.3, 0.2])
    with pytest.raises(ValueError, match="0/1"):
        pr_curve([0, 2], [0.3, 0.2])
    r_int, p_int = pr_curve(np.array([1, 0, 1]), [0.3, 0.2, 0.1])
    r_bool, p_bool = pr_curve(np.array([True, False, True]), [0.3, 0.2, 0.1])
    np.testing.assert_array_equal(r_int, r_bool)
    np.testing.assert_array_equal(p_int, p_bool)


def test_n_tilde_uses_the_given_np_and_nall_on_a_curve_that_moves_at_the_target():
    """Random scores (seed chosen so the averaged curve is not flat around recall 0.06): the
    summary's Ñ is Ñ of its own curve at exactly the given (or default 3000, 50000) Np, Nall."""
    g = np.random.default_rng(14)
    P, S = g.random((300, 4)) < 0.4, g.random((300, 4))
    M = np.ones_like(P)
    s = evaluate_rankings(P, S, M)
    assert s.n_tilde == n_tilde(s.recall, s.precision, 3000, 50000)
    assert s.n_tilde != n_tilde(s.recall, s.precision, 3000, 50001)  # the data can tell
    t = evaluate_rankings(P, S, M, n_pos=1000, n_all=17000)
    assert t.n_tilde == n_tilde(t.recall, t.precision, 1000, 17000)
    for e in range(4):
        assert t.per_emotion_n_tilde[e] == n_tilde(t.recall, t.per_emotion_precision[e], 1000, 17000)
