"""The paper's Table 4 baseline: C3D features + linear SVM, binary relevance (paper §5).

"Using C3D visual features and linear support vector machines (SVM) with 20 % hold-out
testing, we give a binary relevance baseline in Table 4 by averaging the results of 17
independently trained classifiers": one-vs-rest, one binary classifier per emotion on that
emotion's labelled GIFs (positive = y > 25), 20 % of them held out (stratified), precision,
recall and F1 of the positive class on the hold-out; the table gives the mean and standard
deviation over the 17 emotions (paper: 0.20 ± 0.11 / 0.55 ± 0.12 / 0.29 ± 0.13).

The paper does not give C or the class weighting; its recall far above its precision points
to balanced class weights (positives are rare), which is the default here (``C = 1``).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import precision_recall_fscore_support
from sklearn.model_selection import train_test_split
from sklearn.svm import LinearSVC

PAPER_TABLE4 = {"precision": (0.20, 0.11), "recall": (0.55, 0.12), "f1": (0.29, 0.13)}


@dataclass
class SVMBaseline:
    """Per-emotion hold-out scores [T] (NaN where an emotion could not be evaluated)."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    n_test: np.ndarray
    n_test_pos: np.ndarray

    def mean_std(self, name: str) -> tuple[float, float]:
        v = getattr(self, name)
        v = v[np.isfinite(v)]
        return (math.nan, math.nan) if v.size == 0 else (float(v.mean()), float(v.std()))


def svm_binary_relevance(X: np.ndarray, positive: np.ndarray, mask: np.ndarray, *,
                         test_fraction: float = 0.2, seed: int = 0, C: float = 1.0,
                         class_weight: str | None = "balanced",
                         max_iter: int = 5000) -> SVMBaseline:
    """One LinearSVC per emotion, scored on a stratified hold-out of its labelled GIFs.

    Parameters
    ----------
    X : [n, d] visual features; positive, mask : [n, T] bool.
    test_fraction : share of each emotion's labelled GIFs held out (paper: 0.2).
    seed : the hold-out draw (emotion t uses ``seed * 1000 + t``).

    An emotion with fewer than 2 positives or 2 negatives among its labelled GIFs, or whose
    training part has one class only, gets NaN (and is left out of the mean).
    """
    X = np.asarray(X, dtype=np.float64)
    P = np.asarray(positive, dtype=bool)
    M = np.asarray(mask, dtype=bool)
    if X.ndim != 2 or P.shape != M.shape or P.shape[0] != X.shape[0]:
        raise ValueError(f"shapes disagree: X {X.shape}, positive {P.shape}, mask {M.shape}")
    T = P.shape[1]
    out = {k: np.full(T, np.nan) for k in ("precision", "recall", "f1")}
    n_test = np.zeros(T, dtype=int)
    n_test_pos = np.zeros(T, dtype=int)
    for t in range(T):
        idx = np.flatnonzero(M[:, t])
        y = P[idx, t]
        if y.sum() < 2 or (~y).sum() < 2:
            continue
        tr, te = train_test_split(idx, test_size=test_fraction, stratify=y,
                                  random_state=seed * 1000 + t)
        if np.unique(P[tr, t]).size < 2:
            continue
        clf = LinearSVC(C=C, class_weight=class_weight, max_iter=max_iter)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X[tr], P[tr, t])
        pred = clf.predict(X[te])
        p, r, f, _ = precision_recall_fscore_support(P[te, t], pred, average="binary",
                                                     zero_division=0)
        out["precision"][t], out["recall"][t], out["f1"][t] = p, r, f
        n_test[t], n_test_pos[t] = te.size, int(P[te, t].sum())
    return SVMBaseline(**out, n_test=n_test, n_test_pos=n_test_pos)
