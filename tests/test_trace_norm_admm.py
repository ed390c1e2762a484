"""ADMM for the trace norm against an independent reference (scipy L-BFGS-B on the
factorised form) and against FISTA, on masked problems of both shapes (more rows than
features: Cholesky of 2H_t + μI; fewer: Woodbury through K_t)."""

import numpy as np
import pytest
import torch

from gifemo.models.penalties import L1Penalty, TraceNormPenalty
from gifemo.models.solvers import _admm_for, _Problem, duality_gap, fit_multitask_linear
from gifemo.models.trace_norm_admm import TraceNormADMM
from test_solvers import _trace_norm_reference

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _problem(n, d, T, seed, p_mask=0.7):
    g = np.random.default_rng(seed)
    X = np.maximum(g.standard_normal((n, d)) - 0.3, 0.0) + 0.01  # no all-zero row
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Wt = g.standard_normal((d, 2)) @ g.standard_normal((2, T)) * 5
    Y = 25 + X @ Wt + g.standard_normal((n, T))
    mask = g.random((n, T)) < p_mask
    return X, Y, mask


@pytest.mark.parametrize("shape", [(60, 8, 4), (20, 30, 4)], ids=["rows>features",
                                                                  "rows<features"])
@pytest.mark.parametrize("rho", [0.3, 3.0])
def test_admm_matches_scipy_factorised_reference(shape, rho):
    n, d, T = shape
    X, Y, mask = _problem(n, d, T, seed=1)
    ours = fit_multitask_linear(X, Y, mask, TraceNormPenalty(rho), method="admm", tol=1e-6)
    assert ours.converged and ours.rel_gap <= 1e-6
    ref = _trace_norm_reference(X, Y, mask, rho)
    assert abs(ours.objective - ref) <= 1e-5 * ref
    gap = duality_gap(X, Y, mask, TraceNormPenalty(rho), ours.W)
    assert ref >= gap.dual - 1e-9 * abs(ref)  # an achievable value respects our dual bound


@pytest.mark.parametrize("shape", [(200, 30, 17), (60, 90, 17)], ids=["rows>features",
                                                                       "rows<features"])
def test_admm_path_agrees_with_fista_at_every_rho(shape):
    X, Y, mask = _problem(*shape, seed=2)
    prob = _Problem(X, Y, mask, True)
    admm = TraceNormADMM(prob)
    W = None
    for rho in (100.0, 10.0, 1.0, 0.1):
        W, n_iter, rep, mu = admm.solve(rho, W0=W, tol=1e-7)
        assert rep.rel_gap <= 1e-7
        fista = fit_multitask_linear(X, Y, mask, TraceNormPenalty(rho), method="fista",
                                     tol=1e-6, max_iter=50_000)
        assert fista.converged
        assert rep.primal <= fista.objective * (1 + 1e-7)
        assert fista.objective - rep.primal <= 1e-6 * fista.objective
        # same solution: the objective is strongly convex on the data's row space only,
        # so compare predictions on the labelled rows
        np.testing.assert_allclose(X @ W.numpy(), X @ fista.W.numpy(), atol=2e-2)
    assert admm.n_factorizations <= 4  # one per ρ at most (μ is fixed within a solve)


def test_auto_uses_admm_for_the_trace_norm_and_reuses_the_gram_matrices():
    X, Y, mask = _problem(80, 20, 5, seed=3)
    a = fit_multitask_linear(X, Y, mask, TraceNormPenalty(2.0))
    prob = _Problem(X, Y, mask, True)
    solver = _admm_for(prob)
    n_before = solver.n_factorizations
    assert n_before >= 1
    b = fit_multitask_linear(X, Y, mask, TraceNormPenalty(1.0), W0=a.W)
    assert _admm_for(prob) is solver and solver.n_factorizations == n_before + 1
    fista = fit_multitask_linear(X, Y, mask, TraceNormPenalty(1.0), method="fista")
    assert abs(b.objective - fista.objective) <= 2e-4 * fista.objective
    with pytest.raises(ValueError, match="method='admm' is for TraceNormPenalty"):
        fit_multitask_linear(X, Y, mask, L1Penalty(1.0), method="admm")


def test_admm_zero_at_huge_rho_and_empty_task():
    X, Y, mask = _problem(50, 10, 3, seed=4)
    mask[:, 2] = False  # a task with no labels: its column stays zero
    r = fit_multitask_linear(X, Y, mask, TraceNormPenalty(1.0), method="admm", tol=1e-8)
    assert r.converged and float(r.W[:, 2].abs().max()) < 1e-6
    z = fit_multitask_linear(X, Y, mask, TraceNormPenalty(1e6), method="admm")
    assert z.n_iter == 0 and torch.count_nonzero(z.W) == 0
