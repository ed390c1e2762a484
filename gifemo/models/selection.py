"""Model selection (paper §3.6): ρ by 5-fold cross-validation, k by k-means silhouette.

:func:`select_regularisation` and :func:`select_k` apply them to a linear recognizer.

- :func:`select_rho_cv` fits the head on each fold's training part for every grid value
  and scores it on the held-out fold. Folds come from a ``Split`` (``gifemo.data.splits``):
  ``train`` [N, T] bool and ``fold`` [N, T] int (−1 outside train); fold k validates on
  ``train & fold == k`` and fits on ``train & fold != k``. Metric ``"pr_auc"`` (default) is
  the PR-AUC of the validation fold's averaged interpolated PR curve (= mean per-emotion
  PR-AUC; :mod:`gifemo.eval.metrics`) — the quantity the paper reports, so ρ is chosen for
  ranking quality; ``"mse"`` is the mean squared error over the fold's labelled entries.
  The grid value with the best mean over folds wins; ties go to the earliest grid entry
  (list the grid from strongest to weakest regularisation to prefer the simpler model).
  Within a fold, each fit is warm-started from the previous grid value's solution, and a
  fold's first fit from the previous fold's (the folds share most rows; a cold lasso start at
  ρ = 100 took 130 ADMM iterations on a paper-scale CV fit). The folds' mean solution at the
  chosen value is where the final fit starts (``LinearRecognizer.warm_start``). The
  result is kept (:data:`CV_MEMO`, keyed by the inputs' content): clustered MTL's k needs
  the trace-norm cross-validation that the trace-norm row has just run on the same split.
- :func:`choose_k_silhouette` runs k-means (scikit-learn ``KMeans``) on the columns of a
  weight matrix (one point per emotion, as in Fig. 6 for the trace-norm W) and returns the
  k with the highest mean silhouette (``silhouette_score``); ties go to the smaller k.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

from gifemo.eval.metrics import NoPositivesWarning, evaluate_rankings
from gifemo.models.fit_memo import FitMemo, content_key
from gifemo.models.penalties import Penalty
from gifemo.models.solvers import fit_multitask_linear, release_factor_cache

__all__ = ["RhoSelection", "select_rho_cv", "choose_k_silhouette", "cv_trace_rho", "select_k",
           "select_regularisation", "METRICS"]

_log = logging.getLogger(__name__)

METRICS = ("pr_auc", "mse")

CV_MEMO = FitMemo(size=8)  # select_rho_cv results of this process (5 seeds × a few rows)


@dataclass
class RhoSelection:
    """Cross-validation result.

    grid : the grid values as given; fold_scores [P, F]; scores [P] (mean over folds);
    best_index, best (= grid[best_index]); metric; higher_is_better;
    n_excluded : emotion-fold pairs left out of ``pr_auc`` for lack of validation positives.
    mean_W : [P, d, T] each grid value's solution averaged over the folds (a warm start for
        the final fit at the chosen value).
    """

    grid: list[Any]
    fold_scores: np.ndarray
    scores: np.ndarray
    best_index: int
    best: Any
    metric: str
    higher_is_better: bool
    n_excluded: int
    mean_W: np.ndarray | None = None


def _np(a: Any) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def select_rho_cv(X: Any, Y: Any, positive: Any, train: Any, fold: Any,
                  penalty_factory: Callable[[Any], Penalty], grid: Sequence[Any], *,
                  metric: str = "pr_auc", fit_intercept: bool = True, tol: float = 1e-4,
                  max_iter: int = 5000) -> RhoSelection:
    """Choose a regularisation value by K-fold cross-validation on the training part.

    Parameters
    ----------
    X : [N, d] features; Y : [N, T] targets (y = µ − 3σ); positive : [N, T] bool (y > 25).
    train : [N, T] bool; fold : [N, T] int, −1 outside train, 0..K−1 inside.
    penalty_factory : grid value -> Penalty, e.g. ``lambda r: L1Penalty(r)`` or
        ``lambda p: ClusteredMTLPenalty(*p, k=2)`` for (ρ1, ρ2) pairs.
    grid : the values to try.
    metric : "pr_auc" (higher is better) or "mse" (lower is better).
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    grid = list(grid)
    if not grid:
        raise ValueError("grid is empty")
    Xn = _np(X).astype(np.float64)
    Yn = _np(Y).astype(np.float64)
    Pn = _np(positive).astype(bool)
    train = _np(train).astype(bool)
    fold = _np(fold)
    shapes = {Yn.shape, Pn.shape, train.shape, fold.shape}
    if len(shapes) != 1 or Xn.ndim != 2 or Xn.shape[0] != Yn.shape[0]:
        raise ValueError(f"shapes disagree: X {Xn.shape}, Y {Yn.shape}, positive {Pn.shape}, "
                         f"train {train.shape}, fold {fold.shape}")
    if np.any(fold[train] < 0):
        i, t = np.argwhere(train & (fold < 0))[0]
        raise ValueError(f"fold[{i}, {t}] = {fold[i, t]} is negative inside the train mask")
    folds = np.unique(fold[train])
    if folds.size < 2:
        raise ValueError(f"need at least 2 folds inside the train mask, got {folds.tolist()}")
    penalties = [penalty_factory(v) for v in grid]
    key = content_key(Xn, Yn, Pn, train, fold, repr(grid), [repr(p) for p in penalties], metric,
                      fit_intercept, tol, max_iter)
    hits = CV_MEMO.hits
    sel = CV_MEMO.get_or_compute(key, lambda: _cross_validate(
        Xn, Yn, Pn, train, fold, folds, grid, penalties, metric, fit_intercept, tol, max_iter))
    if CV_MEMO.hits > hits:
        _log.info("cross-validation over %s reused: same data, split and settings as an "
                  "earlier run in this process", grid)
    if sel.n_excluded:
        warnings.warn(f"{sel.n_excluded} emotion-fold pairs had no validation positive and "
                      f"were left out of the PR-AUC", NoPositivesWarning, stacklevel=2)
    return sel


def _cross_validate(Xn, Yn, Pn, train, fold, folds, grid, penalties, metric, fit_intercept,
                    tol, max_iter) -> RhoSelection:
    scores = np.full((len(grid), folds.size), np.nan)
    sum_W = np.zeros((len(grid), Xn.shape[1], Yn.shape[1]))
    n_excluded = 0
    first_W = None  # the previous fold's solution at the first grid value
    for j, k in enumerate(folds):
        fit_mask = train & (fold != k)
        val_mask = train & (fold == k)
        W0 = first_W  # folds share 3/4 of their rows: a warm start, not a cold one at W = 0
        for i, penalty in enumerate(penalties):
            res = fit_multitask_linear(Xn, Yn, fit_mask, penalty,
                                       fit_intercept=fit_intercept, tol=tol,
                                       max_iter=max_iter, W0=W0)
            W0 = res.W
            first_W = res.W if i == 0 else first_W
            sum_W[i] += res.W.numpy()
            pred = Xn @ res.W.numpy() + res.b.numpy()
            if metric == "mse":
                err = np.where(val_mask, pred - np.where(val_mask, Yn, 0.0), 0.0)
                scores[i, j] = float((err ** 2).sum() / max(val_mask.sum(), 1))
            else:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", NoPositivesWarning)
                    scores[i, j] = evaluate_rankings(Pn, pred, val_mask).pr_auc
                if i == 0:
                    n_excluded += sum(issubclass(w.category, NoPositivesWarning) for w in caught)
        release_factor_cache()  # this fold's path is done (the next fold is a new problem)
    mean = scores.mean(1)
    higher = metric == "pr_auc"
    best = int(np.argmax(mean) if higher else np.argmin(mean))  # first of equal values
    return RhoSelection(grid=grid, fold_scores=scores, scores=mean, best_index=best,
                        best=grid[best], metric=metric, higher_is_better=higher,
                        n_excluded=n_excluded, mean_W=sum_W / folds.size)


def choose_k_silhouette(W: Any, ks: Iterable[int] = range(2, 11), seed: int = 0,
                        n_init: int = 10) -> tuple[int, dict[int, float]]:
    """k for clustered MTL: k-means on the columns of W [d, T], best mean silhouette.

    Returns (k, {k: silhouette}). Each k must satisfy 2 ≤ k ≤ T − 1 (silhouette is
    undefined otherwise).
    """
    Wn = _np(W).astype(np.float64)
    if Wn.ndim != 2:
        raise ValueError(f"W must be 2-D [d, T], got shape {Wn.shape}")
    if not np.all(np.isfinite(Wn)):
        raise ValueError("W has non-finite entries")
    points = Wn.T  # one point per task
    T = points.shape[0]
    ks = list(ks)
    if not ks:
        raise ValueError("ks is empty")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 2 <= k <= T - 1:
            raise ValueError(f"each k must be an integer in [2, T - 1 = {T - 1}], got {k!r}")
    sil: dict[int, float] = {}
    for k in sorted(set(int(k) for k in ks)):
        labels = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit_predict(points)
        if np.unique(labels).size < 2:  # identical columns: k-means found one cluster
            sil[k] = -1.0
            continue
        sil[k] = float(silhouette_score(points, labels))
    best = max(sil, key=lambda k: (sil[k], -k))
    return best, sil


def select_k(model: Any, X: Any, Y: Any, mask: Any, trace_rho: float,
             ks: Iterable[int] = range(2, 11), W0: Any = None) -> dict:
    """Clustered MTL's k as in the paper (§3.6, Fig. 6): k-means on the columns of the
    trace-norm W fitted on (X, Y, mask), the k with the best mean silhouette; sets the
    model's penalty to that k and returns ``{"cv/k", "cv/silhouette"}`` ({} for other
    penalties). ``W0``: where the trace-norm fit starts (e.g. :func:`cv_trace_rho`'s)."""
    from gifemo.models.penalties import ClusteredMTLPenalty, TraceNormPenalty

    penalty = getattr(model, "penalty", None)
    if not isinstance(penalty, ClusteredMTLPenalty):
        _log.info("select_k: only clustered_mtl has a k; skipped for %s", type(model).__name__)
        return {}
    res = fit_multitask_linear(X, Y, mask, TraceNormPenalty(trace_rho), tol=model.tol,
                               max_iter=model.max_iter, W0=W0)
    release_factor_cache()
    ks = [k for k in ks if 2 <= k <= model.n_tasks - 1]
    k, sil = choose_k_silhouette(res.W, ks)
    model.set_penalty(penalty.with_settings({"k": k}))
    _log.info("k by silhouette of the trace-norm (rho=%g) W's columns: %s -> k=%d", trace_rho,
              {kk: round(v, 3) for kk, v in sil.items()}, k)
    return {"cv/k": float(k), "cv/silhouette": float(sil[k])}


def cv_trace_rho(X: Any, Y: Any, positive: Any, train: Any, fold: Any, grid: Sequence,
                 metric: str = "pr_auc", tol: float = 1e-4,
                 max_iter: int = 5000) -> tuple[float, torch.Tensor | None]:
    """The trace-norm ρ that :func:`select_rho_cv` picks over ``grid`` (settings such as
    ``{"rho": 10.0}``) on this split: what a cross-validated trace-norm run fits, so
    :func:`select_k` can take k from the same W (paper Fig. 6); with the folds' mean
    solution at that ρ, a warm start for :func:`select_k`'s fit."""
    from gifemo.models.penalties import TraceNormPenalty

    base = TraceNormPenalty(1.0)
    sel = select_rho_cv(X, Y, positive, train, fold, base.with_settings, list(grid), metric=metric,
                        tol=tol, max_iter=max_iter)
    rho = float(base.with_settings(sel.best).rho)
    _log.info("trace-norm rho for select_k by cross-validation over %s: %g", list(grid), rho)
    W0 = None if sel.mean_W is None else torch.from_numpy(sel.mean_W[sel.best_index])
    return rho, W0


def select_regularisation(model: Any, X: Any, Y: Any, positive: Any, train: Any, fold: Any,
                          metric: str = "pr_auc") -> dict:
    """The penalty setting of ``model.cv_grid`` with the best K-fold score on the training
    part (:func:`select_rho_cv`); sets it on the model and returns ``cv/*`` metrics."""
    grid = getattr(model, "cv_grid", None)
    if not grid:
        _log.info("select_rho: %s has no cv_grid; keeping its configured strength",
                  type(model).__name__)
        return {}
    t0 = time.perf_counter()
    sel = select_rho_cv(X, Y, positive, train, fold, model.penalty_for, grid, metric=metric,
                        tol=model.tol, max_iter=model.max_iter)
    model.set_penalty(model.penalty_for(sel.best))
    if sel.mean_W is not None and hasattr(model, "warm_start"):
        model.warm_start = torch.from_numpy(sel.mean_W[sel.best_index])
    _log.info("cross-validation (%s, %d folds) over %s: scores %s -> %r (%.1f s)", metric,
              sel.fold_scores.shape[1], grid, np.round(sel.scores, 4).tolist(), model.penalty,
              time.perf_counter() - t0)
    return {"cv/best_score": float(sel.scores[sel.best_index]),
            "cv/best_index": float(sel.best_index)}
