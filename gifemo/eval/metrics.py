"""Precision–recall evaluation of per-emotion rankings (paper §3.6, Fig. 7, Table 2, eq. 9).

Definitions (all per emotion t, restricted to the entries where ``mask[:, t]`` is True —
the emotion's test pool; unlabelled entries never enter):

- **Operating points**: sorting by score, each distinct threshold gives (recall, precision),
  computed by ``sklearn.metrics.precision_recall_curve`` (maintained, handles tied scores by
  grouping them into one threshold, and is the reference implementation the field uses).
  sklearn's artificial end point (recall 0, precision 1) is dropped: it is not an
  operating point and would force every interpolated curve to 1 at recall 0.
- **Interpolated precision** P̃(r) = max{precision of an operating point with recall ≥ r}
  (the standard PASCAL/TREC interpolation; monotone non-increasing). It answers the
  paper's question "what precision does a labeller get if they want recall r".
- **Common recall grid**: r = 0, 0.001, …, 1 (1001 points, ``RECALL_GRID``). The curve
  averaged over emotions (Fig. 7) is the mean of the P̃ₜ at each grid point.
- **PR-AUC** of a curve on the grid: trapezoidal area (``sklearn.metrics.auc``). Because
  the average is linear, the AUC of the averaged curve equals the mean per-emotion AUC.
  For rankings whose precision at successive positives never rises, the area of P̃ equals
  scikit-learn's average precision; otherwise it is larger (interpolation never lowers a
  point). The grid's trapezoid differs from P̃'s exact step integral by at most 0.0005.
- **Ñ** (eq. 9): Ñ = Np / P̃(Np / Nall), Np = 3000, Nall = 50000 by default (recall 0.06),
  read off a curve by linear interpolation between grid points.
- **Unsorted** baseline: a constant score (no ranking). Its only operating point is recall
  1 at the positive rate, so P̃ ≡ positive rate, AUC = positive rate, Ñ = Np / rate.

An emotion with no positive among its masked entries has no recall; it is left out of the
average with a warning (``NoPositivesWarning``) and gets NaN per-emotion values. If no
emotion has a positive, a ValueError is raised.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import sklearn.metrics

__all__ = [
    "RECALL_GRID",
    "PR_AUC_NOTE",
    "NoPositivesWarning",
    "PRSummary",
    "pr_curve",
    "interpolated_precision",
    "averaged_pr_curve",
    "pr_auc",
    "n_tilde",
    "unsorted_curve",
    "evaluate_rankings",
]

RECALL_GRID: np.ndarray = np.linspace(0.0, 1.0, 1001)

#: The sentence every PR-AUC table carries: our numbers, like the paper's, are areas under the
#: interpolated curve, which a reader comparing with ``average_precision_score`` must know.
PR_AUC_NOTE = ("PR-AUC is the area under the interpolated PR curve (precision at recall r = the "
               "best precision at any recall ≥ r), as the paper's own curves; it is usually higher "
               "than scikit-learn's step-wise average precision of the same ranking (never lower "
               "by more than the recall grid's 0.0005).")


class NoPositivesWarning(UserWarning):
    """An emotion has no positive in its evaluation set and is left out of the average."""


def _as_array(a: Any, name: str) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def _check_grid(grid: Any) -> np.ndarray:
    g = np.asarray(RECALL_GRID if grid is None else grid, dtype=np.float64)
    if g.ndim != 1 or g.size < 2 or not np.all(np.isfinite(g)) or g[0] < 0 or g[-1] > 1 \
            or np.any(np.diff(g) <= 0):
        raise ValueError(f"recall_grid must be strictly increasing values in [0, 1], got {g!r}")
    return g


def pr_curve(y_true: Any, score: Any) -> tuple[np.ndarray, np.ndarray]:
    """Operating points (recall, precision) of one ranking, in increasing recall.

    Parameters
    ----------
    y_true : [n] bool (or 0/1) — positives.
    score : [n] float — higher ranks first; must be finite.

    Raises ValueError on mismatched lengths, non-finite scores or no positive.
    """
    y = _as_array(y_true, "y_true")
    s = _as_array(score, "score").astype(np.float64)
    if y.ndim != 1 or s.ndim != 1 or y.shape != s.shape:
        raise ValueError(f"y_true and score must be 1-D of equal length, got {y.shape}, {s.shape}")
    if y.dtype != bool:
        if not np.isin(y, (0, 1)).all():
            raise ValueError("y_true must be boolean or 0/1")
        y = y.astype(bool)
    if not np.all(np.isfinite(s)):
        i = int(np.flatnonzero(~np.isfinite(s))[0])
        raise ValueError(f"score[{i}] = {s[i]} is not finite")
    if not y.any():
        raise ValueError("y_true has no positive; recall is undefined")
    precision, recall, _ = sklearn.metrics.precision_recall_curve(y, s)
    # sklearn: decreasing recall, last point the artificial (recall 0, precision 1).
    return recall[:-1][::-1].copy(), precision[:-1][::-1].copy()


def interpolated_precision(recall: np.ndarray, precision: np.ndarray,
                           recall_grid: Any = None) -> np.ndarray:
    """P̃(r) = max precision over operating points with recall ≥ r, at each grid r."""
    g = _check_grid(recall_grid)
    recall = np.asarray(recall, dtype=np.float64)
    precision = np.asarray(precision, dtype=np.float64)
    order = np.argsort(recall, kind="stable")
    r, p = recall[order], precision[order]
    suffix_max = np.maximum.accumulate(p[::-1])[::-1]  # max precision at recall ≥ r[i]
    idx = np.searchsorted(r, g - 1e-12, side="left")  # first point with recall ≥ grid r
    out = np.zeros_like(g)
    ok = idx < r.size
    out[ok] = suffix_max[idx[ok]]
    return out


def _per_emotion(positive: np.ndarray, scores: np.ndarray, mask: np.ndarray,
                 grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Interpolated precision [T, R] (NaN rows for emotions without positives), included [T]."""
    T = positive.shape[1]
    curves = np.full((T, grid.size), np.nan)
    included = np.zeros(T, dtype=bool)
    for t in range(T):
        m = mask[:, t]
        y = positive[m, t]
        if not y.any():
            warnings.warn(f"emotion column {t} has no positive among its {int(m.sum())} "
                          f"evaluated entries; left out of the average", NoPositivesWarning,
                          stacklevel=3)
            continue
        r, p = pr_curve(y, scores[m, t])
        curves[t] = interpolated_precision(r, p, grid)
        included[t] = True
    return curves, included


def _check_matrices(positive: Any, scores: Any, mask: Any) -> tuple[np.ndarray, ...]:
    P = _as_array(positive, "positive")
    S = _as_array(scores, "scores").astype(np.float64)
    M = _as_array(mask, "mask")
    if P.ndim != 2 or P.shape != S.shape or P.shape != M.shape:
        raise ValueError(f"positive, scores and mask must share one [N, T] shape, got "
                         f"{P.shape}, {S.shape}, {M.shape}")
    M = M.astype(bool)
    P = np.where(M, P, False).astype(bool)
    bad = M & ~np.isfinite(S)
    if bad.any():
        i, t = np.argwhere(bad)[0]
        raise ValueError(f"scores[{i}, {t}] = {S[i, t]} is not finite inside the mask")
    return P, S, M


def averaged_pr_curve(positive: Any, scores: Any, mask: Any,
                      recall_grid: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """The PR curve averaged over emotions (Fig. 7): (recall grid [R], mean P̃ [R])."""
    g = _check_grid(recall_grid)
    P, S, M = _check_matrices(positive, scores, mask)
    curves, included = _per_emotion(P, S, M, g)
    if not included.any():
        raise ValueError("no emotion has a positive inside the mask; nothing to average")
    return g, curves[included].mean(0)


def pr_auc(recall: Any, precision: Any) -> float:
    """Trapezoidal area under a precision–recall curve given at increasing recall."""
    r = np.asarray(recall, dtype=np.float64)
    p = np.asarray(precision, dtype=np.float64)
    if r.ndim != 1 or r.shape != p.shape or r.size < 2:
        raise ValueError(f"recall and precision must be 1-D of equal length >= 2, got "
                         f"{r.shape}, {p.shape}")
    return float(sklearn.metrics.auc(r, p))


def n_tilde(recall: Any, precision: Any, n_pos: float = 3000, n_all: float = 50000) -> float:
    """Eq. 9: Ñ = Np / Precision(Recall = Np / Nall) (GIFs to check to find Np positives)."""
    if not (math.isfinite(n_pos) and math.isfinite(n_all) and 0 < n_pos <= n_all):
        raise ValueError(f"need 0 < n_pos <= n_all, got n_pos={n_pos!r}, n_all={n_all!r}")
    r = np.asarray(recall, dtype=np.float64)
    p = np.asarray(precision, dtype=np.float64)
    target = n_pos / n_all
    if target < r[0] or target > r[-1]:
        raise ValueError(f"recall {target} is outside the curve's range [{r[0]}, {r[-1]}]")
    prec = float(np.interp(target, r, p))
    return math.inf if prec <= 0 else n_pos / prec


def unsorted_curve(positive: Any, mask: Any,
                   recall_grid: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """The "Unsorted" baseline: :func:`averaged_pr_curve` of a constant score."""
    P = _as_array(positive, "positive")
    return averaged_pr_curve(P, np.zeros(P.shape), mask, recall_grid)


@dataclass
class PRSummary:
    """Everything Table 2 and Fig. 7 report, for one model on one evaluation set.

    recall, precision : [R] the averaged interpolated curve; pr_auc, n_tilde of it.
    per_emotion_precision : [T, R] (NaN rows where excluded); per_emotion_auc,
    per_emotion_n_tilde : [T] (NaN where excluded); included : [T] bool;
    positive_rate : [T]; unsorted_pr_auc, unsorted_n_tilde: the constant-score baseline
    on the same entries.
    """

    recall: np.ndarray
    precision: np.ndarray
    pr_auc: float
    n_tilde: float
    per_emotion_precision: np.ndarray
    per_emotion_auc: np.ndarray
    per_emotion_n_tilde: np.ndarray
    included: np.ndarray
    positive_rate: np.ndarray
    unsorted_pr_auc: float
    unsorted_n_tilde: float


def evaluate_rankings(positive: Any, scores: Any, mask: Any, recall_grid: Any = None,
                      n_pos: float = 3000, n_all: float = 50000) -> PRSummary:
    """Averaged PR curve, PR-AUC and Ñ, per emotion and overall, plus the Unsorted baseline."""
    g = _check_grid(recall_grid)
    P, S, M = _check_matrices(positive, scores, mask)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        curves, included = _per_emotion(P, S, M, g)
    for w in caught:  # re-emit once, from here
        warnings.warn(w.message, w.category, stacklevel=2)
    if not included.any():
        raise ValueError("no emotion has a positive inside the mask; nothing to evaluate")
    T = P.shape[1]
    per_auc = np.full(T, np.nan)
    per_nt = np.full(T, np.nan)
    for t in np.flatnonzero(included):
        per_auc[t] = pr_auc(g, curves[t])
        per_nt[t] = n_tilde(g, curves[t], n_pos, n_all)
    mean_curve = curves[included].mean(0)
    counts = M.sum(0)
    rate = np.where(counts > 0, P.sum(0) / np.maximum(counts, 1), np.nan)
    base = np.full(g.size, rate[included].mean())
    return PRSummary(
        recall=g, precision=mean_curve, pr_auc=pr_auc(g, mean_curve),
        n_tilde=n_tilde(g, mean_curve, n_pos, n_all), per_emotion_precision=curves,
        per_emotion_auc=per_auc, per_emotion_n_tilde=per_nt, included=included,
        positive_rate=rate, unsorted_pr_auc=pr_auc(g, base),
        unsorted_n_tilde=n_tilde(g, base, n_pos, n_all))
