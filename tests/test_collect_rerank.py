"""Re-ranking refit (ridge around the checkpoint's head) against scikit-learn's Ridge, and that it
helps on a pool where the checkpoint is noisy."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from gifemo.collect.scoring import TARGET_NEGATIVE, TARGET_POSITIVE, refit_scores


def test_refit_equals_sklearn_ridge_on_the_residual():
    rng = np.random.default_rng(0)
    n, d, rho = 200, 15, 2.5
    X = rng.standard_normal((n, d))
    base = 20 + X @ rng.standard_normal(d)
    rows = rng.choice(n, size=40, replace=False)
    labels = rng.random(40) < 0.4
    out = refit_scores(X, base, rows, labels, rho=rho)
    target = np.where(labels, TARGET_POSITIVE, TARGET_NEGATIVE)
    ref = Ridge(alpha=rho, fit_intercept=True, tol=1e-12, solver="cholesky").fit(X[rows], target - base[rows])
    expected = base + ref.predict(X)
    assert out.n_train == 40 and out.n_train_positive == int(labels.sum()) and out.rel_gap <= 1e-4
    np.testing.assert_allclose(out.scores, expected, rtol=0, atol=2e-3 * np.abs(expected - base).max())


def test_refit_without_labels_keeps_the_checkpoint_scores():
    base = np.array([3.0, 1.0, 2.0])
    out = refit_scores(np.eye(3), base, np.array([], dtype=int), np.array([], dtype=bool))
    np.testing.assert_array_equal(out.scores, base)


def test_refit_rejects_mismatched_rows_and_labels():
    with pytest.raises(ValueError, match="rows"):
        refit_scores(np.eye(3), np.zeros(3), np.array([0, 1]), np.array([True]))


def test_refit_on_labels_ranks_the_rest_better_than_a_noisy_checkpoint():
    rng = np.random.default_rng(5)
    n, d = 2000, 20
    X = rng.standard_normal((n, d)) / np.sqrt(d)
    w = rng.standard_normal(d)
    truth = X @ w > np.quantile(X @ w, 0.8)
    w0 = w + 1.5 * rng.standard_normal(d)            # a weak checkpoint
    base = 25 + 8 * (X @ w0)
    first = np.argsort(-base)[:300]                  # labelled in the checkpoint's order
    out = refit_scores(X, base, first, truth[first], rho=0.5)
    rest = np.setdiff1d(np.arange(n), first)

    def precision_at(scores, k=200):
        top = rest[np.argsort(-scores[rest])[:k]]
        return truth[top].mean()

    assert precision_at(out.scores) > precision_at(base) + 0.05
