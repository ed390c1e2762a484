"""Exact solvers against independent references (scikit-learn, scipy, closed forms)."""

import warnings

import numpy as np
import pytest
import scipy.optimize
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso, LinearRegression

from gifemo.models.penalties import (
    ClusteredMTLPenalty,
    L1Penalty,
    NoPenalty,
    RidgePenalty,
    TraceNormPenalty,
)
from gifemo.models.solvers import (
    FitResult,
    duality_gap,
    fit_multitask_linear,
    objective,
    relative_gap,
)




pytestmark = pytest.mark.usefixtures("one_torch_thread")

def _problem(n=60, d=12, T=4, seed=0, p_mask=0.75, offset=3.0):
    g = np.random.default_rng(seed)
    X = g.standard_normal((n, d))
    Wt = g.standard_normal((d, 2)) @ g.standard_normal((2, T))
    Y = X @ Wt + g.standard_normal((n, T)) + offset
    mask = g.random((n, T)) < p_mask
    return X, Y, mask


def _rel(a, b):
    return abs(a - b) / abs(b)


# ---------------------------------------------------------------- lasso vs sklearn -------
@pytest.mark.parametrize("method", ["fista", "cd"])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("rho", [2.0, 20.0])
def test_lasso_matches_sklearn(fit_intercept, rho, method):
    # Unhalved loss ‖Xw + b − y‖² + ρ‖w‖₁ = 2n · sklearn's (1/2n)‖·‖² + α‖w‖₁ with α = ρ/(2n).
    X, Y, _ = _problem(n=80, d=30, T=1, seed=1)
    n = X.shape[0]
    mask = np.ones_like(Y, dtype=bool)
    pen = L1Penalty(rho)
    ours = fit_multitask_linear(X, Y, mask, pen, fit_intercept=fit_intercept, method=method)
    assert ours.converged and ours.rel_gap <= 1e-4
    sk = Lasso(alpha=rho / (2 * n), fit_intercept=fit_intercept, tol=1e-12,
               max_iter=100_000).fit(X, Y[:, 0])
    ref = objective(X, Y, mask, pen, sk.coef_[:, None], np.array([sk.intercept_]))
    assert _rel(ours.objective, ref) <= 1e-4
    assert ours.objective >= ref * (1 - 1e-9)  # sklearn at 1e-12 is the tighter optimum


@pytest.mark.parametrize("method", ["fista", "cd"])
def test_masked_multitask_lasso_is_per_task_sklearn_on_labelled_rows(method):
    X, Y, mask = _problem(n=70, d=15, T=3, seed=2)
    rho = 5.0
    ours = fit_multitask_linear(X, Y, mask, L1Penalty(rho), tol=1e-7, method=method)
    total = 0.0
    for t in range(3):
        rows = mask[:, t]
        n_t = rows.sum()
        sk = Lasso(alpha=rho / (2 * n_t), tol=1e-12, max_iter=100_000).fit(X[rows], Y[rows, t])
        r = X[rows] @ sk.coef_ + sk.intercept_ - Y[rows, t]
        total += (r ** 2).sum() + rho * np.abs(sk.coef_).sum()
        np.testing.assert_allclose(ours.W[:, t].numpy(), sk.coef_, atol=1e-3)
    assert _rel(ours.objective, total) <= 1e-6


def test_lasso_tasks_in_threads_equal_one_after_another(monkeypatch):
    """The tasks' coordinate descents run in one thread per CPU; they are independent, so the
    result is bit-identical to a single thread's (and no ConvergenceWarning escapes)."""
    import os
    import gifemo.models.solvers as solvers
    X, Y, mask = _problem(n=200, d=40, T=6, seed=4)
    pen = L1Penalty(0.5)
    monkeypatch.setattr(solvers, "_LASSO_THREADS_MIN_ENTRIES", 0)   # threads even this small
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        threaded = fit_multitask_linear(X, Y, mask, pen, method="cd", tol=1e-8)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    single = fit_multitask_linear(X, Y, mask, pen, method="cd", tol=1e-8)
    assert threaded.converged and np.array_equal(threaded.W.numpy(), single.W.numpy())


# ---------------------------------------------------------------- trace norm vs scipy ----
def _trace_norm_reference(X, Y, mask, rho, seeds=(0, 1, 2)):
    """min loss(UVᵀ, b) + ρ(‖U‖² + ‖V‖²)/2 by scipy L-BFGS-B: ‖W‖_* = min_{UVᵀ=W} of the
    latter (Srebro et al. 2005); with full-width factors this smooth problem has no spurious
    local minima, and several starts are kept for safety."""
    n, d = X.shape
    T = Y.shape[1]
    Yz = np.where(mask, Y, 0.0)

    def f(z):
        U, V, b = z[:d * T].reshape(d, T), z[d * T:d * T + T * T].reshape(T, T), z[-T:]
        R = mask * (X @ U @ V.T + b - Yz)
        F = (R ** 2).sum() + 0.5 * rho * ((U ** 2).sum() + (V ** 2).sum())
        G = 2 * X.T @ R
        gU = G @ V + rho * U
        gV = G.T @ U + rho * V
        return F, np.concatenate([gU.ravel(), gV.ravel(), 2 * R.sum(0)])

    best = np.inf
    for s in seeds:
        z0 = np.random.default_rng(s).standard_normal(d * T + T * T + T) * 0.1
        r = scipy.optimize.minimize(f, z0, jac=True, method="L-BFGS-B",
                                    options={"maxiter": 50_000, "ftol": 1e-15, "gtol": 1e-10})
        best = min(best, r.fun)
    return best


@pytest.mark.parametrize("rho", [1.0, 30.0])
def test_trace_norm_matches_scipy_factorised_reference(rho):
    X, Y, mask = _problem(n=50, d=8, T=4, seed=3)
    ours = fit_multitask_linear(X, Y, mask, TraceNormPenalty(rho))
    assert ours.converged
    ref = _trace_norm_reference(X, Y, mask, rho)
    assert _rel(ours.objective, ref) <= 1e-4
    # the reference is an achievable value, so it must respect our certified dual bound
    gap = duality_gap(X, Y, mask, TraceNormPenalty(rho), ours.W)
    assert ref >= gap.dual - 1e-9 * abs(ref)


# ---------------------------------------------------------------- clustered MTL vs scipy -
def _clustered_reference(X, Y, mask, rho1, rho2, k):
    """Eq. 8 solved jointly over (W, b, M) by scipy SLSQP, M = BBᵀ (so M ⪰ 0), with
    tr M = k and λ_max(M) ≤ 1 as constraints (analytic gradients) — no closed form for M."""
    n, d = X.shape
    T = Y.shape[1]
    eta = rho2 / rho1
    c = rho1 * eta * (1 + eta)
    Yz = np.where(mask, Y, 0.0)
    nW = d * T

    def unpack(z):
        return z[:nW].reshape(d, T), z[nW:nW + T], z[nW + T:].reshape(T, T)

    def f(z):
        W, b, B = unpack(z)
        A = np.linalg.inv(eta * np.eye(T) + B @ B.T)
        R = mask * (X @ W + b - Yz)
        gM = -c * A @ W.T @ W @ A
        return ((R ** 2).sum() + c * np.trace(W @ A @ W.T),
                np.concatenate([(2 * X.T @ R + 2 * c * W @ A).ravel(), 2 * R.sum(0),
                                (2 * gM @ B).ravel()]))

    def upper(z):
        B = unpack(z)[2]
        return 1 - np.linalg.eigvalsh(B @ B.T)

    def upper_jac(z):
        B = unpack(z)[2]
        _, Q = np.linalg.eigh(B @ B.T)
        J = np.zeros((T, z.size))
        for i in range(T):
            J[i, nW + T:] = -(2 * np.outer(Q[:, i], Q[:, i]) @ B).ravel()
        return J

    def trace_jac(z):
        J = np.zeros(z.size)
        J[nW + T:] = 2 * unpack(z)[2].ravel()
        return J

    cons = [{"type": "eq", "fun": lambda z: (unpack(z)[2] ** 2).sum() - k, "jac": trace_jac},
            {"type": "ineq", "fun": upper, "jac": upper_jac}]
    z0 = np.concatenate([np.zeros(nW + T), (np.eye(T) * np.sqrt(k / T)).ravel()])
    r = scipy.optimize.minimize(f, z0, jac=True, method="SLSQP", constraints=cons,
                                options={"ftol": 1e-15, "maxiter": 3000})
    assert r.success, r.message
    return r.fun


@pytest.mark.parametrize("rho1,rho2,k", [(1.0, 1.0, 2), (10.0, 0.1, 2), (10.0, 0.1, 1)])
def test_clustered_mtl_matches_scipy_joint_reference(rho1, rho2, k):
    X, Y, mask = _problem(n=30, d=6, T=4, seed=0, p_mask=0.8, offset=2.0)
    ours = fit_multitask_linear(X, Y, mask, ClusteredMTLPenalty(rho1, rho2, k))
    assert ours.converged and ours.rel_gap <= 1e-4
    ref = _clustered_reference(X, Y, mask, rho1, rho2, k)
    assert _rel(ours.objective, ref) <= 1e-4


def test_ridge_matches_closed_form():
    X, Y, mask = _problem(n=40, d=10, T=3, seed=4)
    rho = 2.5
    ours = fit_multitask_linear(X, Y, mask, RidgePenalty(rho), tol=1e-10)
    ref = 0.0
    for t in range(3):
        rows = mask[:, t]
        Xc = X[rows] - X[rows].mean(0)
        yc = Y[rows, t] - Y[rows, t].mean()
        w = np.linalg.solve(Xc.T @ Xc + rho * np.eye(10), Xc.T @ yc)
        # a 1e-10 objective gap leaves ~1e-5 error in W (the gap is quadratic in ΔW)
        np.testing.assert_allclose(ours.W[:, t].numpy(), w, atol=1e-4)
        b = Y[rows, t].mean() - X[rows].mean(0) @ w
        assert float(ours.b[t]) == pytest.approx(b, abs=1e-4)
        ref += ((Xc @ w - yc) ** 2).sum() + rho * (w ** 2).sum()
    assert _rel(ours.objective, ref) <= 1e-10


# ---------------------------------------------------------------- exact special cases ----
def _orthonormal_problem(seed=5, n=40, d=6, T=4):
    g = np.random.default_rng(seed)
    X, _ = np.linalg.qr(g.standard_normal((n, d)))  # XᵀX = I
    Y = g.standard_normal((n, T)) * 3
    return X, Y, np.ones((n, T), dtype=bool)


def test_orthonormal_X_lasso_is_soft_threshold():
    # ‖XW − Y‖² = ‖W − XᵀY‖² + const, so W* = soft(XᵀY, ρ/2).
    X, Y, mask = _orthonormal_problem()
    rho = 1.5
    Z = X.T @ Y
    expected = np.sign(Z) * np.maximum(np.abs(Z) - rho / 2, 0)
    for method in ("fista", "cd"):
        ours = fit_multitask_linear(X, Y, mask, L1Penalty(rho), fit_intercept=False,
                                    tol=1e-8, method=method)
        np.testing.assert_allclose(ours.W.numpy(), expected, atol=1e-5)


def test_orthonormal_X_trace_norm_is_singular_value_threshold():
    X, Y, mask = _orthonormal_problem(seed=6)
    rho = 8.0
    P, s, Qt = np.linalg.svd(X.T @ Y, full_matrices=False)
    expected = (P * np.maximum(s - rho / 2, 0)) @ Qt
    assert (s > rho / 2).sum() not in (0, len(s))  # a real threshold, not all or nothing
    ours = fit_multitask_linear(X, Y, mask, TraceNormPenalty(rho), fit_intercept=False,
                                tol=1e-10)
    np.testing.assert_allclose(ours.W.numpy(), expected, atol=1e-6)


def test_rho_zero_is_least_squares():
    X, Y, mask = _problem(n=50, d=8, T=3, seed=7)
    for pen in (L1Penalty(0.0), TraceNormPenalty(0.0), RidgePenalty(0.0), NoPenalty()):
        ours = fit_multitask_linear(X, Y, mask, pen)
        for t in range(3):
            rows = mask[:, t]
            lr = LinearRegression().fit(X[rows], Y[rows, t])
            np.testing.assert_allclose(ours.W[:, t].numpy(), lr.coef_, atol=1e-9)
            assert float(ours.b[t]) == pytest.approx(lr.intercept_, abs=1e-9)
    # the iterative path agrees with the direct one at a vanishing ridge
    r = fit_multitask_linear(X, Y, mask, RidgePenalty(1e-9), tol=1e-8)
    d = fit_multitask_linear(X, Y, mask, NoPenalty())
    assert _rel(r.objective, d.objective) <= 1e-7


def test_huge_rho_gives_zero_weights_and_mean_intercept():
    X, Y, mask = _problem(seed=8)
    means = np.array([Y[mask[:, t], t].mean() for t in range(Y.shape[1])])
    for pen in (L1Penalty(1e6), TraceNormPenalty(1e6)):
        r = fit_multitask_linear(X, Y, mask, pen)
        assert torch.count_nonzero(r.W) == 0
        np.testing.assert_allclose(r.b.numpy(), means, rtol=1e-12)
    r = fit_multitask_linear(X, Y, mask, ClusteredMTLPenalty(1e8, 1e8, 2))
    assert float(r.W.abs().max()) < 1e-6
    np.testing.assert_allclose(r.b.numpy(), means, rtol=1e-6)


# ---------------------------------------------------------------- masks ------------------
@pytest.mark.parametrize("pen", [L1Penalty(3.0), TraceNormPenalty(5.0),
                                 ClusteredMTLPenalty(1.0, 0.5, 2), NoPenalty()])
def test_masked_out_entries_change_nothing(pen):
    X, Y, mask = _problem(seed=9)
    a = fit_multitask_linear(X, Y, mask, pen)
    Y2 = Y.copy()
    Y2[~mask] = np.where(np.random.default_rng(0).random((~mask).sum()) < 0.5, np.nan, 1e6)
    b = fit_multitask_linear(X, Y2, mask, pen)
    assert a.objective == b.objective
    assert torch.equal(a.W, b.W) and torch.equal(a.b, b.b)
    # rows with no label at all do not matter either, even non-finite features
    X3 = np.vstack([X, np.full((2, X.shape[1]), np.nan)])
    Y3 = np.vstack([Y, np.zeros((2, Y.shape[1]))])
    m3 = np.vstack([mask, np.zeros((2, Y.shape[1]), dtype=bool)])
    c = fit_multitask_linear(X3, Y3, m3, pen)
    assert c.objective == pytest.approx(a.objective, rel=1e-12)


def test_objective_counts_only_masked_entries():
    X = np.array([[1.0], [2.0]])
    Y = np.array([[1.0, 5.0], [0.0, np.nan]])
    mask = np.array([[True, True], [True, False]])
    W = np.array([[1.0, 2.0]])
    b = np.array([0.5, 1.0])
    # residuals: (1+0.5−1)=0.5, (2+0.5−0)=2.5, (2+1−5)=−2 ; masked-out (1,1) ignored
    # 0.25 + 6.25 + 4 = 10.5, plus ρ‖W‖₁ = 0.5·3 = 1.5 → 12
    assert objective(X, Y, mask, L1Penalty(0.5), W, b) == pytest.approx(12.0)


# ---------------------------------------------------------------- certificate, warm start -
@pytest.mark.parametrize("pen", [L1Penalty(3.0), TraceNormPenalty(8.0),
                                 ClusteredMTLPenalty(2.0, 0.2, 2), RidgePenalty(1.0)])
def test_reported_gap_bounds_the_true_gap(pen):
    X, Y, mask = _problem(n=60, d=15, T=4, seed=10)
    loose = fit_multitask_linear(X, Y, mask, pen, tol=1e-2)
    tight = fit_multitask_linear(X, Y, mask, pen, tol=1e-7, max_iter=50_000)
    true_gap = (loose.objective - tight.objective) / loose.objective
    assert loose.converged and loose.rel_gap <= 1e-2
    assert true_gap <= loose.rel_gap + 1e-9
    # warm start at the optimum: certified immediately
    again = fit_multitask_linear(X, Y, mask, pen, tol=1e-6, W0=tight.W)
    assert again.n_iter <= 1 and again.converged


def test_max_iter_warns_and_non_finite_raises():
    X, Y, mask = _problem(n=80, d=40, T=4, seed=11)
    with pytest.warns(ConvergenceWarning, match="relative gap"):
        r = fit_multitask_linear(X, Y, mask, L1Penalty(0.01), max_iter=2, tol=1e-12)
    assert not r.converged
    Yb = Y.copy()
    i, t = np.argwhere(mask)[5]
    Yb[i, t] = np.inf
    with pytest.raises(ValueError, match=rf"Y\[{i}, {t}\]"):
        fit_multitask_linear(X, Yb, mask, L1Penalty(1.0))
    Xb = X.copy()
    Xb[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"X\[3, 2\]"):
        fit_multitask_linear(Xb, Y, mask | True, L1Penalty(1.0))
    with pytest.raises(ValueError, match="shapes"):
        fit_multitask_linear(X, Y[:-1], mask[:-1], L1Penalty(1.0))
    with pytest.raises(ValueError, match="-1"):
        fit_multitask_linear(X, Y, mask, L1Penalty(1.0), tol=-1)
    with pytest.raises(FloatingPointError):
        fit_multitask_linear(X * 1e200, Y, mask, L1Penalty(1.0), method="fista")
    with pytest.raises(ValueError, match="method='cd' is for L1Penalty"):
        fit_multitask_linear(X, Y, mask, TraceNormPenalty(1.0), method="cd")


def test_relative_gap_of_minibatch_adam_weights():
    # Weights trained by minibatch Adam (as a Lightning loop would) are near, not at, the optimum.
    X, Y, mask = _problem(n=200, d=10, T=3, seed=12)
    pen = ClusteredMTLPenalty(1.0, 1.0, 2)
    opt = fit_multitask_linear(X, Y, mask, pen, tol=1e-8)
    Xt, Yt, Mt = (torch.from_numpy(a) for a in (X, np.where(mask, Y, 0.0), mask))
    W = torch.zeros(10, 3, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    adam = torch.optim.Adam([W, b], lr=0.1)
    g = torch.Generator().manual_seed(0)
    n_batches = 2
    for _ in range(100):
        for idx in torch.randperm(200, generator=g).chunk(n_batches):
            adam.zero_grad()
            R = Mt[idx] * (Xt[idx] @ W + b - Yt[idx])
            ((R ** 2).sum() + pen.value(W) / n_batches).backward()
            adam.step()
    gap = relative_gap(X, Y, mask, pen, W.detach(), b.detach(), optimum=opt)
    assert 0 < gap < 0.05
    assert relative_gap(X, Y, mask, pen, opt.W, opt.b, optimum=opt) == pytest.approx(0, abs=1e-12)
    # without a given optimum it solves the full-batch problem itself
    assert relative_gap(X, Y, mask, pen, W.detach(), b.detach()) == pytest.approx(gap, rel=1e-4)


def test_fit_result_fields_and_dtypes():
    X, Y, mask = _problem(seed=13)
    r = fit_multitask_linear(torch.from_numpy(X).float(), torch.from_numpy(Y).float(),
                             torch.from_numpy(mask), L1Penalty(1.0))
    assert isinstance(r, FitResult)
    assert r.W.shape == (12, 4) and r.b.shape == (4,) and r.W.dtype == torch.float64
    assert isinstance(r.objective, float) and isinstance(r.n_iter, int)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit_multitask_linear(X, Y, mask, L1Penalty(1.0))


def test_head_from_fit_predicts_xw_plus_b():
    from gifemo.models.heads import LinearMultiTaskHead

    X, Y, mask = _problem(seed=14)
    fit = fit_multitask_linear(X, Y, mask, TraceNormPenalty(5.0))
    head = LinearMultiTaskHead.from_fit(fit)
    assert head.W.shape == (12, 4) and head.b.shape == (4,) and head.W.dtype == torch.float32
    x = torch.from_numpy(X[:7]).float()
    expected = X[:7] @ fit.W.numpy() + fit.b.numpy()
    np.testing.assert_allclose(head(x).detach().numpy(), expected, rtol=1e-5, atol=1e-5)
    assert torch.count_nonzero(LinearMultiTaskHead(12, 4)(x)) == 0
    with pytest.raises(ValueError, match=r"\[B, 12\]"):
        head(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="d must"):
        LinearMultiTaskHead(0, 4)


def test_unpenalised_fit_after_an_unlabelled_task_still_fits_the_later_tasks():
    """No penalty (least squares per task): a task with no labelled row gets W = 0 and the
    tasks after it are still solved; compared with scikit-learn's LinearRegression."""
    g = np.random.default_rng(7)
    X = g.standard_normal((30, 4))
    Y = X @ g.standard_normal((4, 3)) + 5 + 0.1 * g.standard_normal((30, 3))
    mask = np.ones((30, 3), bool)
    mask[:, 0] = False
    mask[:10, 2] = False
    res = fit_multitask_linear(X, Y, mask, NoPenalty())
    W, b = res.W.numpy(), res.b.numpy()
    np.testing.assert_array_equal(W[:, 0], 0.0)
    for t in (1, 2):
        rows = mask[:, t]
        sk = LinearRegression().fit(X[rows], Y[rows, t])
        np.testing.assert_allclose(W[:, t], sk.coef_, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(b[t], sk.intercept_, rtol=1e-8)


@pytest.mark.parametrize("penalty,below", [(L1Penalty(2.0), "_lasso_cd"),
                                           (ClusteredMTLPenalty(1.0, 0.3, k=2), "_lbfgs")],
                         ids=["lasso", "clustered MTL"])
def test_auto_is_admm_at_paper_scale_only(monkeypatch, penalty, below):
    """auto: coordinate descent (lasso) or L-BFGS (clustered MTL) for small problems, ADMM
    from ADMM_MIN_ROWS × ADMM_MIN_FEATURES (thresholds lowered here so the test stays
    small); both certify."""
    import gifemo.models.solvers as solvers
    X, Y, mask = _problem(n=80, d=12, T=3, seed=12)
    used = []
    for name in (below, "_admm_for"):
        real = getattr(solvers, name)
        monkeypatch.setattr(solvers, name, lambda *a, _r=real, _n=name, **k: (used.append(_n), _r(*a, **k))[1])
    small = fit_multitask_linear(X, Y, mask, penalty)
    monkeypatch.setattr(solvers, "ADMM_MIN_ROWS", 80)
    monkeypatch.setattr(solvers, "ADMM_MIN_FEATURES", 12)
    large = fit_multitask_linear(X, Y, mask, penalty)
    assert used == [below, "_admm_for"]
    assert small.converged and large.converged
    assert abs(small.objective - large.objective) <= 2e-4 * small.objective
