"""The ADMM W-step through one shared eigenbasis (gifemo.models.shared_basis) against direct
solves of (2H_t + μI) w = r with numpy, and the whole ADMM path against the per-task
Cholesky one, on GIFGIF-shaped masks (shared rows + rows of one task each) and random ones."""

import numpy as np
import pytest
import torch

from gifemo.models.admm import MultitaskADMM, tasks_on_basis
from gifemo.models.penalties import L1Penalty, TraceNormPenalty
from gifemo.models.shared_basis import BASIS_MEMO, SharedBasisSystems, worth_it
from gifemo.models.solvers import _Problem, fit_multitask_linear

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _data(n_shared, n_own, d, T, seed, shape="gifgif"):
    g = np.random.default_rng(seed)
    n = n_shared + n_own
    X = np.maximum(g.standard_normal((n, d)) - 0.5, 0.0) + 0.01
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Y = 25 + X @ (g.standard_normal((d, T)) * 3) + g.standard_normal((n, T))
    if shape == "random":
        mask = g.random((n, T)) < 0.7
    else:
        mask = np.zeros((n, T), bool)
        mask[:n_shared] = g.random((n_shared, T)) < 0.95  # a few ratings missing
        mask[n_shared + np.arange(n_own), g.integers(0, T, n_own)] = True
    return X, Y, mask


def _rows(mask):
    return [np.flatnonzero(mask[:, t]) for t in range(mask.shape[1])]


@pytest.mark.parametrize("shape", ["gifgif", "random"])
@pytest.mark.parametrize("centre", [True, False])
def test_w_step_solves_equal_numpy_solves(shape, centre):
    X, _, mask = _data(50, 40, 25, 5, seed=1, shape=shape)
    rows = _rows(mask)
    rows[4] = np.zeros(0, np.int64)  # a task without labels: H_t = 0, w = r/μ
    base = np.flatnonzero(mask.sum(1) > 3)
    sys = SharedBasisSystems(X, rows, [0, 1, 2, 3, 4], base, centre)
    g = np.random.default_rng(2)
    for mu in (30.0, 0.3, 1e-3):
        sys.factor(mu)
        R = g.standard_normal((25, 5))
        got = sys.solve(R)
        for t, r in enumerate(rows):
            Xt = X[r] - (X[r].mean(0) if centre and r.size else 0.0)
            want = np.linalg.solve(2 * Xt.T @ Xt + mu * np.eye(25), R[:, t])
            np.testing.assert_allclose(got[:, t], want, rtol=1e-8, atol=1e-10 * np.abs(want).max())


def test_basis_is_memoised_by_the_base_rows_content():
    BASIS_MEMO.clear()
    X, _, mask = _data(40, 20, 15, 4, seed=3)
    rows, base = _rows(mask), np.arange(40)
    a = SharedBasisSystems(X, rows, [0, 1], base, True)
    hits = BASIS_MEMO.hits
    b = SharedBasisSystems(X.copy(), rows, [2, 3], base, True)  # same content: a hit
    assert BASIS_MEMO.hits == hits + 1 and b.Q is a.Q
    X2 = X.copy()
    X2[0, 0] += 1e-9  # one base entry changed: a new basis
    c = SharedBasisSystems(X2, rows, [0], base, True)
    assert BASIS_MEMO.hits == hits + 1 and c.Q is not a.Q


def test_auto_choice_follows_the_cost_model():
    """GIFGIF-shaped rows (few rows differ from the shared ones) go on the basis; tasks on
    disjoint rows (nothing shared) do not; one task alone cannot repay the eigendecomposition
    of d = 4,235 with r = 1,000 updates, 17 such tasks can (the paper-scale refit), and so
    can the paper's CV fits."""
    d = 400
    X, _, mask = _data(300, 150, d, 17, seed=4)
    assert tasks_on_basis(X.shape, _rows(mask), True) == list(range(17))
    disjoint = np.zeros((17 * 450, 17), bool)
    for t in range(17):
        disjoint[t * 450:(t + 1) * 450, t] = True
    assert tasks_on_basis((17 * 450, d), _rows(disjoint), True) == []
    assert worth_it(4235, [1000], [4235], 6000) == [False]
    assert worth_it(4235, [1000] * 17, [4235] * 17, 6000) == [True] * 17
    assert worth_it(d, [10] * 16 + [2 * d], [d] * 17, 1000) == [True] * 16 + [False]
    # the paper's CV fits (measured 181.7 s on the basis against 214.1 s, lasso path)
    assert worth_it(4096, [2087] * 17, [4096] * 17, 15494) == [True] * 17


@pytest.mark.parametrize("penalty", [TraceNormPenalty, L1Penalty])
@pytest.mark.parametrize("shape", ["gifgif", "random"])
def test_admm_path_on_the_basis_equals_the_cholesky_path(penalty, shape):
    X, Y, mask = _data(80, 60, 30, 6, seed=5, shape=shape)
    prob = _Problem(X, Y, mask, True)
    chol = MultitaskADMM(prob, w_step="cholesky")
    basis = MultitaskADMM(prob, w_step="basis")
    assert basis.basis is not None and chol.basis is None
    Wc = Wb = None
    for rho in (10.0, 1.0, 0.1):
        Wc, _, rc, _ = chol.solve(penalty(rho), W0=Wc, tol=1e-8)
        Wb, _, rb, _ = basis.solve(penalty(rho), W0=Wb, tol=1e-8)
        assert rc.rel_gap <= 1e-8 and rb.rel_gap <= 1e-8
        assert abs(rb.primal - rc.primal) <= 1e-7 * rc.primal
    if shape == "gifgif":  # a few rows per task instead of a d × d matrix per task
        assert basis.nbytes < chol.nbytes


def test_auto_fit_on_gifgif_shaped_data_uses_the_basis():
    from gifemo.models import solvers
    X, Y, mask = _data(300, 120, 120, 17, seed=6)
    r = fit_multitask_linear(X, Y, mask, TraceNormPenalty(1.0), tol=1e-6)
    assert r.converged and solvers._ADMM_CACHE[0][1].basis is not None
    ref = fit_multitask_linear(X, Y, mask, TraceNormPenalty(1.0), method="fista", tol=1e-7,
                               max_iter=100_000)
    assert abs(r.objective - ref.objective) <= 2e-6 * ref.objective


def test_unknown_w_step_is_refused():
    X, Y, mask = _data(20, 10, 5, 3, seed=7)
    with pytest.raises(ValueError, match="w_step must be auto, cholesky or basis"):
        MultitaskADMM(_Problem(X, Y, mask, True), w_step="eig")
