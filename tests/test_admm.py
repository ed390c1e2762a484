"""ADMM for the trace norm against an independent reference (scipy L-BFGS-B on the
factorised form) and against FISTA, on masked problems of both shapes (more rows than
features: Cholesky of 2H_t + μI; fewer: Woodbury through K_t)."""

import numpy as np
import pytest
import torch

from gifemo.models.penalties import (ClusteredMTLPenalty, L1Penalty, RidgePenalty,
                                     TraceNormPenalty)
from gifemo.models.solvers import _admm_for, _Problem, duality_gap, fit_multitask_linear
from gifemo.models.admm import MultitaskADMM, _shared_grams, _TaskSystem
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
    admm = MultitaskADMM(prob)
    W = None
    for rho in (100.0, 10.0, 1.0, 0.1):
        W, n_iter, rep, mu = admm.solve(TraceNormPenalty(rho), W0=W, tol=1e-7)
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
    # ρ halved: the ideal μ moves by less than mu_keep = 10×, so the factors are kept
    assert _admm_for(prob) is solver and solver.n_factorizations == n_before
    fista = fit_multitask_linear(X, Y, mask, TraceNormPenalty(1.0), method="fista")
    assert abs(b.objective - fista.objective) <= 2e-4 * fista.objective
    with pytest.raises(ValueError, match="method='admm' is for the trace norm, the lasso"):
        fit_multitask_linear(X, Y, mask, RidgePenalty(1.0), method="admm")


def test_admm_zero_at_huge_rho_and_empty_task():
    X, Y, mask = _problem(50, 10, 3, seed=4)
    mask[:, 2] = False  # a task with no labels: its column stays zero
    r = fit_multitask_linear(X, Y, mask, TraceNormPenalty(1.0), method="admm", tol=1e-8)
    assert r.converged and float(r.W[:, 2].abs().max()) < 1e-6
    z = fit_multitask_linear(X, Y, mask, TraceNormPenalty(1e6), method="admm")
    assert z.n_iter == 0 and torch.count_nonzero(z.W) == 0


@pytest.mark.parametrize("intercept", [True, False])
def test_shared_grams_equal_each_tasks_own_centred_gram(intercept):
    """H_t from one XᵀX minus the excluded rows (and the dual K_t for short tasks) against
    X_tᵀC_tX_t formed directly with numpy."""
    g = np.random.default_rng(5)
    X = g.random((40, 20))
    rows = [np.arange(40), np.flatnonzero(g.random(40) < 0.8), np.flatnonzero(g.random(40) < 0.4),
            np.arange(5), np.arange(0)]
    got = {t: (G, primal) for t, G, primal in _shared_grams(X, rows, intercept)}
    for t, r in enumerate(rows):
        Xt = X[r] - (X[r].mean(0) if intercept and r.size else 0.0)
        G, primal = got[t]
        assert primal == (r.size >= X.shape[1])
        want = Xt.T @ Xt if primal else Xt @ Xt.T
        np.testing.assert_allclose(G, want, rtol=1e-10, atol=1e-10)
    sizes = [r.size for r in rows]
    assert sizes[1] >= 20 and 40 - sizes[1] < sizes[1] and sizes[2] < 20  # all paths taken


def test_task_system_keeps_its_gram_across_new_mu(monkeypatch):
    """Factor in the lower triangle, Gram in the upper one: every μ solves its own system
    (blocks of 4 so that the blockwise copy crosses block boundaries)."""
    monkeypatch.setattr(_TaskSystem, "_BLOCK", 4)
    g = np.random.default_rng(6)
    B = g.random((30, 9))
    for primal in (True, False):
        G = B.T @ B if primal else B[:7] @ B[:7].T
        sys = _TaskSystem(G.copy(), primal)
        r = g.random(G.shape[0])
        for mu in (3.0, 0.01, 3.0):
            sys.factor(mu)
            A = 2 * G + mu * np.eye(len(G)) if primal else G + 0.5 * mu * np.eye(len(G))
            np.testing.assert_allclose(sys.solve(r), np.linalg.solve(A, r), rtol=1e-9)


def test_mu_keep_one_refactors_at_every_new_mu():
    X, Y, mask = _problem(80, 20, 5, seed=3)
    prob = _Problem(X, Y, mask, True)
    strict, loose = MultitaskADMM(prob, mu_keep=1.0), MultitaskADMM(prob, mu_keep=1e6)
    Ws, Wl = None, None
    for rho in (10.0, 3.0, 1.0):
        Ws, _, rs, _ = strict.solve(TraceNormPenalty(rho), W0=Ws, tol=1e-6)
        Wl, _, rl, _ = loose.solve(TraceNormPenalty(rho), W0=Wl, tol=1e-6)
        assert rs.rel_gap <= 1e-6 and rl.rel_gap <= 1e-6
        assert abs(rs.primal - rl.primal) <= 2e-6 * rs.primal
    assert strict.n_factorizations == 3 and loose.n_factorizations == 1


def test_release_factor_cache_frees_the_factors():
    from gifemo.models import solvers

    X, Y, mask = _problem(80, 20, 5, seed=3)
    fit_multitask_linear(X, Y, mask, TraceNormPenalty(2.0))
    solver = _admm_for(_Problem(X, Y, mask, True))
    assert solver.nbytes > 0 and len(solvers._ADMM_CACHE) == 1
    solvers.release_factor_cache()
    assert solver.nbytes == 0 and solvers._ADMM_CACHE == []
    with pytest.raises(RuntimeError, match="released"):
        solver.solve(1.0)


def test_base_rows_minimise_the_rank_one_terms():
    """Brute force: a row in the base costs 1 + (tasks without it) rank-1 terms, a row
    outside costs (tasks with it); every row must sit on its cheaper side."""
    from gifemo.models.admm import _base_rows
    g = np.random.default_rng(7)
    for T in (2, 3, 4, 17):
        rows = [np.flatnonzero(g.random(300) < p) for p in g.uniform(0.05, 0.95, T)]
        count = sum(np.isin(np.arange(300), r) for r in rows)
        in_base = np.isin(np.arange(300), _base_rows(300, rows))
        cost_in, cost_out = 1 + (T - count), count
        assert np.all(np.where(in_base, cost_in <= cost_out, cost_out <= cost_in))
        assert np.all(in_base[cost_in < cost_out]) and not np.any(in_base[cost_out < cost_in])


def test_gifgif_shaped_grams_come_from_the_shared_rows_once(monkeypatch):
    """GIFs rated for every emotion (each task drops its own few) plus GIFs collected for one
    emotion: the shared rows' Gram is formed once, each task adds its own rows and removes
    its dropped ones — fewer rows multiplied than forming each task's Gram, same matrices."""
    from gifemo.models import admm as tna
    g = np.random.default_rng(8)
    n_shared, n_own, T, d = 60, 12, 5, 30
    X = g.random((n_shared + T * n_own, d))
    rows = [np.sort(np.concatenate([np.flatnonzero(g.random(n_shared) < 0.9),
                                    n_shared + t * n_own + np.arange(n_own)])) for t in range(T)]
    multiplied = []
    real_gram = tna._gram
    monkeypatch.setattr(tna, "_gram", lambda X, r: (multiplied.append(r.size), real_gram(X, r))[1])
    got = {t: G for t, G, primal in tna._shared_grams(X, rows, True) if primal}
    assert sorted(got) == list(range(T))
    for t, r in enumerate(rows):
        Xt = X[r] - X[r].mean(0)
        np.testing.assert_allclose(got[t], Xt.T @ Xt, rtol=1e-10, atol=1e-10)
    assert multiplied[0] == tna._base_rows(X.shape[0], rows).size > 0.8 * n_shared
    assert sum(multiplied) < 0.6 * sum(r.size for r in rows)


@pytest.mark.parametrize("shape", [(120, 20, 4), (30, 50, 4)], ids=["rows>features",
                                                                   "rows<features"])
def test_admm_lasso_path_matches_per_task_sklearn(shape):
    """The same ADMM with the entrywise soft threshold solves the masked lasso: along a
    warm-started ρ path each task equals scikit-learn's Lasso on its labelled rows (tight
    tolerance), and the certified gap holds."""
    from sklearn.linear_model import Lasso
    X, Y, mask = _problem(*shape, seed=6)
    admm = MultitaskADMM(_Problem(X, Y, mask, True))
    W = None
    for rho in (10.0, 1.0, 0.1):
        W, n_iter, rep, mu = admm.solve(L1Penalty(rho), W0=W, tol=1e-9)
        assert rep.rel_gap <= 1e-9
        total = 0.0
        for t in range(shape[2]):
            rows = mask[:, t]
            sk = Lasso(alpha=rho / (2 * rows.sum()), tol=1e-14, max_iter=1_000_000).fit(X[rows], Y[rows, t])
            r = X[rows] @ sk.coef_ + sk.intercept_ - Y[rows, t]
            total += (r ** 2).sum() + rho * np.abs(sk.coef_).sum()
            np.testing.assert_allclose(W[:, t].numpy(), sk.coef_, atol=1e-4)
        assert abs(rep.primal - total) <= 1e-8 * total


def test_mu_scale_is_sigma1_for_the_trace_norm_and_mean_nonzero_for_the_lasso():
    """Hand-worked: W with entries 3, −1 and zeros. The trace norm's scale is σ₁ (W is rank 1
    here: σ₁ = √(3² + 1²)); the lasso's is the mean |Wᵢⱼ| over nonzeros, (3 + 1)/2 = 2."""
    from gifemo.models.admm import _scale
    W = torch.tensor([[3.0, 0.0], [-1.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    assert _scale(TraceNormPenalty(1.0), W) == pytest.approx(10 ** 0.5)
    assert _scale(L1Penalty(1.0), W) == pytest.approx(2.0)
    assert _scale(L1Penalty(1.0), torch.zeros(3, 2, dtype=torch.float64)) == 0.0
    with pytest.raises(TypeError, match="ADMM solves"):
        MultitaskADMM(_Problem(*_problem(20, 3, 2, seed=1), True)).solve(RidgePenalty(1.0))


def test_a_far_off_first_mu_is_re_estimated_from_the_iterate(monkeypatch):
    """A cold start guesses μ from one gradient step; when that guess is 1000× off, the solve
    replaces it by ρ / s(Z) at iteration 20 (one more factorisation) and is certified within
    300 iterations, where the same guess kept fixed is still far from it."""
    X, Y, mask = _problem(150, 40, 6, seed=9)
    prob = _Problem(X, Y, mask, True)
    good = MultitaskADMM(prob).solve(L1Penalty(3.0), tol=1e-6)[3]
    bad = 1000.0 * good
    fixed = MultitaskADMM(prob)
    _, it_fixed, rep_fixed, mu_fixed = fixed.solve(L1Penalty(3.0), tol=1e-6, mu=bad,
                                                   max_iter=300)
    adaptive = MultitaskADMM(prob)
    monkeypatch.setattr(adaptive, "initial_mu", lambda *a: bad)
    _, it_adapt, rep_adapt, mu_adapt = adaptive.solve(L1Penalty(3.0), tol=1e-6, max_iter=300)
    assert rep_adapt.rel_gap <= 1e-6 and it_adapt < 300
    assert rep_fixed.rel_gap > 1e-4 and it_fixed == 300
    assert mu_fixed == bad and fixed.n_factorizations == 1
    assert mu_adapt < bad / 3 and adaptive.n_factorizations >= 2


CMTL_GRID = [(10.0, 10.0), (10.0, 1.0), (1.0, 1.0), (1.0, 0.1), (0.1, 0.1)]


@pytest.mark.parametrize("shape,w_step", [((200, 30, 6), "cholesky"), ((200, 30, 6), "basis"),
                                          ((60, 90, 6), "cholesky")],
                         ids=["rows>features", "shared basis", "rows<features"])
def test_admm_clustered_mtl_path_matches_lbfgs(shape, w_step):
    """Clustered MTL (eq. 8) by ADMM with the closed-form prox, warm-started along the CV
    grid, against L-BFGS on the smooth form (the other solver) at every grid point: the same
    objective to 1e-6 and the same predictions; μ from the penalty's curvature costs one
    factor set per μ kept (the grid's μ fall 2.4–4.2× per step: three sets)."""
    X, Y, mask = _problem(*shape, seed=12)
    prob = _Problem(X, Y, mask, True)
    admm = MultitaskADMM(prob, w_step=w_step)
    assert (admm.basis is not None) == (w_step == "basis")
    W = None
    for rho1, rho2 in CMTL_GRID:
        pen = ClusteredMTLPenalty(rho1, rho2, k=2)
        W, n_iter, rep, mu = admm.solve(pen, W0=W, tol=1e-8)
        assert rep.rel_gap <= 1e-8 and n_iter < 500
        ref = fit_multitask_linear(X, Y, mask, pen, method="lbfgs", tol=1e-8)
        assert ref.converged
        assert abs(rep.primal - ref.objective) <= 1e-6 * ref.objective
        np.testing.assert_allclose(X @ W.numpy(), X @ ref.W.numpy(), atol=2e-2)
    assert admm.n_factorizations == 3
