"""FISTA's step size: the exact largest eigenvalue of the centred, masked loss's Hessian."""

import numpy as np
import pytest
import scipy.linalg

from gifemo.models.solvers import _Problem

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _nonneg_problem(n=90, d=25, T=5, seed=0, p_mask=0.6):
    g = np.random.default_rng(seed)
    X = np.maximum(g.standard_normal((n, d)) - 0.3, 0.0)  # non-negative, like C3D / tags
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Y = g.standard_normal((n, T)) + 25
    mask = g.random((n, T)) < p_mask
    return X, Y, mask


def _reference_eigmax(X, mask, centred):
    out = []
    for t in range(mask.shape[1]):
        Xt = X[mask[:, t]]
        if centred:
            Xt = Xt - Xt.mean(0)
        out.append(scipy.linalg.eigvalsh(Xt.T @ Xt)[-1])
    return np.array(out)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_lipschitz_is_twice_the_largest_task_gram_eigenvalue(fit_intercept):
    X, Y, mask = _nonneg_problem()
    prob = _Problem(X, Y, mask, fit_intercept)
    ref = _reference_eigmax(X, mask, centred=fit_intercept)
    np.testing.assert_allclose(prob.task_eigmax().numpy(), ref, rtol=1e-9)
    assert prob.lipschitz() == pytest.approx(2 * ref.max(), rel=1e-9)


def test_centred_masked_constant_is_far_below_the_uncentred_unmasked_one():
    # On non-negative rows the mean direction dominates σ_max(X)²; the intercept removes it.
    X, Y, mask = _nonneg_problem(n=200, d=40, seed=1)
    prob = _Problem(X, Y, mask, True)
    uncentred = 2 * np.linalg.norm(X, 2) ** 2
    assert prob.lipschitz() < uncentred / 3


def test_lipschitz_with_more_features_than_rows_and_an_empty_task():
    X, Y, mask = _nonneg_problem(n=30, d=60, T=3, seed=2)
    mask[:, 1] = False
    mask[:5, 1] = True  # 5 rows: H_1 has rank 4 after centring
    mask[:, 2] = False
    mask[0, 2] = True  # one row: centred Gram is zero
    prob = _Problem(X, Y, mask, True)
    ref = _reference_eigmax(X, mask, centred=True)
    np.testing.assert_allclose(prob.task_eigmax().numpy(), ref, rtol=1e-9, atol=1e-12)
