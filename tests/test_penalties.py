"""Penalties against independent references: numpy norms, scipy optimisation, brute force."""

import math

import numpy as np
import pytest
import scipy.optimize
import torch

from gifemo.models.penalties import (
    ClusteredMTLPenalty,
    L1Penalty,
    NoPenalty,
    RidgePenalty,
    TraceNormPenalty,
    cluster_eigenvalues,
    make_penalty,
    optimal_cluster_matrix,
)




pytestmark = pytest.mark.usefixtures("one_torch_thread")

def _rand(d, T, seed=0, rank=None):
    g = np.random.default_rng(seed)
    if rank is None:
        return torch.from_numpy(g.standard_normal((d, T)))
    return torch.from_numpy(g.standard_normal((d, rank)) @ g.standard_normal((rank, T)))


# ---------------------------------------------------------------- values -----------------
def test_values_match_numpy_norms():
    W = _rand(7, 4)
    Wn = W.numpy()
    assert float(L1Penalty(0.3).value(W)) == pytest.approx(0.3 * np.abs(Wn).sum(), rel=1e-12)
    assert float(TraceNormPenalty(0.7).value(W)) == pytest.approx(
        0.7 * np.linalg.norm(Wn, "nuc"), rel=1e-12)
    assert float(RidgePenalty(2.0).value(W)) == pytest.approx(2.0 * (Wn ** 2).sum(), rel=1e-12)
    assert float(NoPenalty().value(W)) == 0.0


# ---------------------------------------------------------------- proxes -----------------
def _prox_objective(pen, Z, W, step):
    return 0.5 * float(((Z - W) ** 2).sum()) + step * float(pen.value(Z))


@pytest.mark.parametrize("pen", [L1Penalty(0.8), TraceNormPenalty(1.5)])
def test_prox_is_the_minimiser_against_perturbations(pen):
    # A convex function's minimiser beats every point near it (brute-force check).
    W = _rand(6, 4, seed=1)
    step = 0.7
    Z = pen.prox(W, step)
    best = _prox_objective(pen, Z, W, step)
    g = np.random.default_rng(2)
    for _ in range(300):
        D = torch.from_numpy(g.standard_normal(W.shape)) * 10 ** g.uniform(-4, 0)
        assert _prox_objective(pen, Z + D, W, step) >= best - 1e-12


def test_l1_prox_is_soft_threshold_by_hand():
    W = torch.tensor([[3.0, -0.5], [-2.0, 1.0]], dtype=torch.float64)
    # threshold = step * rho = 0.5 * 2 = 1: 3→2, −0.5→0, −2→−1, 1→0
    Z = L1Penalty(2.0).prox(W, 0.5)
    assert torch.equal(Z, torch.tensor([[2.0, 0.0], [-1.0, 0.0]], dtype=torch.float64))


def test_trace_prox_thresholds_singular_values():
    g = np.random.default_rng(3)
    U, _ = np.linalg.qr(g.standard_normal((6, 3)))
    V, _ = np.linalg.qr(g.standard_normal((3, 3)))
    s = np.array([5.0, 2.0, 0.3])
    W = torch.from_numpy(U @ np.diag(s) @ V.T)
    Z = TraceNormPenalty(1.0).prox(W, 1.0).numpy()
    expected = U @ np.diag([4.0, 1.0, 0.0]) @ V.T
    np.testing.assert_allclose(Z, expected, atol=1e-12)


# ---------------------------------------------------------------- clustered MTL ----------
def _slsqp_gamma(sigma, eta, k):
    """Reference: min Σ σ²/(η+γ) s.t. 0 ≤ γ ≤ 1, Σγ = k by scipy SLSQP (no KKT formula)."""
    T = len(sigma)
    res = scipy.optimize.minimize(
        lambda g: np.sum(sigma ** 2 / (eta + g)), np.full(T, k / T),
        jac=lambda g: -sigma ** 2 / (eta + g) ** 2, method="SLSQP",
        bounds=[(0.0, 1.0)] * T,
        constraints=[{"type": "eq", "fun": lambda g: g.sum() - k, "jac": lambda g: np.ones(T)}],
        options={"ftol": 1e-15, "maxiter": 1000})
    return res.fun


@pytest.mark.parametrize("eta,k", [(1.0, 2), (0.01, 2), (0.3, 1), (5.0, 3), (0.1, 4)])
def test_cluster_eigenvalues_match_slsqp(eta, k):
    sigma = np.array([4.0, 2.5, 1.0, 0.4, 0.05])
    gamma = cluster_eigenvalues(torch.from_numpy(sigma), eta, k).numpy()
    assert gamma.sum() == pytest.approx(k, abs=1e-10)
    assert gamma.min() >= 0 and gamma.max() <= 1
    ours = np.sum(sigma ** 2 / (eta + gamma))
    assert ours == pytest.approx(_slsqp_gamma(sigma, eta, k), rel=1e-7)


def _project_spectrum(lam, k):
    """Euclidean projection of eigenvalues onto {0 ≤ γ ≤ 1, Σγ = k} by bisection on a shift."""
    lo, hi = lam.min() - 1.0, lam.max()
    for _ in range(64):
        mid = 0.5 * (lo + hi)
        if np.clip(lam - mid, 0, 1).sum() > k:
            lo = mid
        else:
            hi = mid
    return np.clip(lam - 0.5 * (lo + hi), 0, 1)


def _projected_gradient_M(W, eta, k, iters=3000):
    """Reference M*: accelerated projected gradient on M over {0 ⪯ M ⪯ I, tr M = k},
    projecting with an eigendecomposition (no use of the closed form)."""
    S = W.T @ W
    T = S.shape[0]
    M = Mprev = np.eye(T) * k / T
    step = eta ** 3 / (2 * np.linalg.norm(S, 2))
    for it in range(1, iters + 1):
        Z = M + (it - 2) / (it + 1) * (M - Mprev)
        A = np.linalg.inv(eta * np.eye(T) + Z)
        lam, Q = np.linalg.eigh(Z + step * A @ S @ A)
        Mprev, M = M, (Q * _project_spectrum(lam, k)) @ Q.T
    return M


@pytest.mark.parametrize("eta,k", [(1.0, 2), (0.5, 1), (2.0, 3)])
def test_closed_form_M_equals_projected_eigenvalue_solution(eta, k):
    W = _rand(8, 5, seed=4).numpy()
    M = optimal_cluster_matrix(torch.from_numpy(W), eta, k).numpy()
    M_ref = _projected_gradient_M(W, eta, k)
    T = W.shape[1]

    def f(M_):
        return np.trace(W @ np.linalg.inv(eta * np.eye(T) + M_) @ W.T)

    assert f(M) <= f(M_ref) + 1e-9 * f(M_ref)
    assert f(M) == pytest.approx(f(M_ref), rel=1e-7)
    np.testing.assert_allclose(M, M_ref, atol=1e-4)
    # feasibility
    lam = np.linalg.eigvalsh(M)
    assert np.trace(M) == pytest.approx(k, abs=1e-10)
    assert lam.min() >= -1e-12 and lam.max() <= 1 + 1e-12


def test_closed_form_M_beats_random_feasible_matrices():
    W = _rand(6, 4, seed=5).numpy()
    eta, k = 0.2, 2
    M = optimal_cluster_matrix(torch.from_numpy(W), eta, k).numpy()

    def f(M_):
        return np.trace(W @ np.linalg.inv(eta * np.eye(4) + M_) @ W.T)

    g = np.random.default_rng(6)
    for _ in range(500):
        Q, _ = np.linalg.qr(g.standard_normal((4, 4)))
        gam = _project_spectrum(g.uniform(-1, 2, 4), k)
        assert f(M) <= f((Q * gam) @ Q.T) + 1e-10


def test_value_is_eq8_at_M_star():
    W = _rand(9, 5, seed=7)
    pen = ClusteredMTLPenalty(rho1=2.0, rho2=0.5, k=2)
    eta = 0.25
    M = pen.cluster_matrix(W).numpy()
    Wn = W.numpy()
    expected = 2.0 * eta * (1 + eta) * np.trace(Wn @ np.linalg.inv(eta * np.eye(5) + M) @ Wn.T)
    assert float(pen.value(W)) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("rho1,rho2", [(1.0, 1.0), (10.0, 0.1)])
def test_gradient_matches_finite_differences(rho1, rho2):
    pen = ClusteredMTLPenalty(rho1, rho2, k=2)
    shape = (6, 4)
    w0 = _rand(*shape, seed=8).numpy().ravel()

    def f(w):
        return float(pen.value(torch.from_numpy(w.reshape(shape))))

    def g(w):
        return pen.grad(torch.from_numpy(w.reshape(shape))).numpy().ravel()

    fd = scipy.optimize.approx_fprime(w0, f, 1e-7)
    np.testing.assert_allclose(g(w0), fd, rtol=1e-5, atol=1e-5 * np.abs(fd).max())
    # autograd through value() gives the same (Danskin: M* held fixed)
    W = torch.from_numpy(w0.reshape(shape)).requires_grad_(True)
    pen.value(W).backward()
    np.testing.assert_allclose(W.grad.numpy().ravel(), g(w0), rtol=1e-10, atol=1e-12)
    val, grad = pen.value_and_grad(torch.from_numpy(w0.reshape(shape)))
    assert val == pytest.approx(f(w0), rel=1e-12)
    np.testing.assert_allclose(grad.numpy().ravel(), g(w0), rtol=1e-12)


def test_zero_W_and_k_at_least_rank():
    pen = ClusteredMTLPenalty(1.0, 1.0, k=2)
    Z = torch.zeros(5, 4, dtype=torch.float64)
    assert float(pen.value(Z)) == 0.0
    assert torch.count_nonzero(pen.grad(Z)) == 0
    np.testing.assert_allclose(pen.cluster_matrix(Z).numpy(), np.eye(4) * 0.5, atol=1e-12)
    # rank-1 W, k = 2 ≥ rank: γ = 1 on W's row direction, (k−1)/(T−1) elsewhere
    W = _rand(5, 4, seed=9, rank=1)
    M = pen.cluster_matrix(W).numpy()
    lam = np.sort(np.linalg.eigvalsh(M))
    np.testing.assert_allclose(lam, [1 / 3, 1 / 3, 1 / 3, 1.0], atol=1e-10)
    q = np.linalg.svd(W.numpy())[2][0]
    assert q @ M @ q == pytest.approx(1.0, abs=1e-10)
    # value = ρ1 η(1+η) σ²/(η+1) = ‖W‖²_F when η = 1
    assert float(pen.value(W)) == pytest.approx(float((W ** 2).sum()), rel=1e-10)


def test_k_equal_T_is_ridge():
    W = _rand(6, 3, seed=10)
    pen = ClusteredMTLPenalty(rho1=3.0, rho2=0.6, k=3)  # M = I: c/(η+1)‖W‖² = ρ2‖W‖²
    assert float(pen.value(W)) == pytest.approx(0.6 * float((W ** 2).sum()), rel=1e-12)


@pytest.mark.parametrize("pen", [ClusteredMTLPenalty(1.0, 0.3, 2), RidgePenalty(0.7)])
def test_conjugate_fenchel_young(pen):
    # Ω*(V) ≥ ⟨V, W⟩ − Ω(W) for all W, with equality at V = ∇Ω(W).
    g = np.random.default_rng(11)
    for s in range(20):
        W = _rand(6, 4, seed=100 + s)
        V = torch.from_numpy(g.standard_normal((6, 4))) * 3
        assert pen.conjugate(V) >= float((V * W).sum()) - float(pen.value(W)) - 1e-9
        G = pen.grad(W)
        assert pen.conjugate(G) == pytest.approx(
            float((G * W).sum()) - float(pen.value(W)), rel=1e-9)


def test_norm_conjugates_are_dual_ball_indicators():
    V = _rand(5, 3, seed=12)
    l1, tr = L1Penalty(1.0), TraceNormPenalty(1.0)
    assert l1.dual_norm(V) == pytest.approx(np.abs(V.numpy()).max())
    assert tr.dual_norm(V) == pytest.approx(np.linalg.norm(V.numpy(), 2))
    for pen in (l1, tr):
        s = pen.dual_scale(V)
        assert pen.conjugate(s * V) == 0.0
        assert math.isinf(pen.conjugate(V * 1.01 / s))


# ---------------------------------------------------------------- factory, validation ----
def test_make_penalty_round_trip():
    for p in [L1Penalty(0.5), TraceNormPenalty(2), RidgePenalty(1), NoPenalty(),
              ClusteredMTLPenalty(10, 0.1, 3)]:
        q = make_penalty(**p.config())
        assert type(q) is type(p) and q.config() == p.config()
    assert isinstance(make_penalty("l1", rho=1), L1Penalty)
    assert L1Penalty(1).smooth is False and TraceNormPenalty(1).smooth is False
    assert ClusteredMTLPenalty(1, 1).smooth is True and RidgePenalty(1).smooth is True


@pytest.mark.parametrize("build,match", [
    (lambda: L1Penalty(-1.0), "-1.0"),
    (lambda: TraceNormPenalty(float("nan")), "nan"),
    (lambda: RidgePenalty("abc"), "abc"),
    (lambda: ClusteredMTLPenalty(0.0, 1.0), "rho1 .*0.0"),
    (lambda: ClusteredMTLPenalty(1.0, -2.0), "-2.0"),
    (lambda: ClusteredMTLPenalty(1.0, 1.0, k=0), "k .*0"),
    (lambda: ClusteredMTLPenalty(1.0, 1.0, k=1.5), "1.5"),
    (lambda: make_penalty("elastic", rho=1), "elastic"),
    (lambda: make_penalty("lasso", rho1=1), "rho1"),
])
def test_bad_parameters_raise_value_error_quoting_value(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_k_larger_than_T_raises():
    with pytest.raises(ValueError, match="k = 5 .*T = 4"):
        ClusteredMTLPenalty(1, 1, k=5).value(_rand(6, 4))


def test_ridge_without_strength_is_least_squares_in_the_dual():
    """ρ = 0: Ω* is the indicator of {0} (0 there, +inf elsewhere) and only V = 0 is dual
    feasible, by hand; ρ > 0: Ω*(V) = ‖V‖² / (4ρ)."""
    zero, v = torch.zeros(2, 3, dtype=torch.float64), torch.tensor([[1.0, 0.0], [0.0, -2.0]])
    r0 = RidgePenalty(0.0)
    assert r0.conjugate(zero) == 0.0 and r0.conjugate(v) == math.inf
    assert r0.dual_scale(zero) == 1.0 and r0.dual_scale(v) == 0.0
    assert RidgePenalty(2.0).conjugate(v) == pytest.approx(5.0 / 8.0)
    assert RidgePenalty(2.0).dual_scale(v) == 1.0


@pytest.mark.parametrize("cls", [L1Penalty, TraceNormPenalty, RidgePenalty])
def test_strength_is_checked_and_named(cls):
    for bad in (-1.0, math.inf, math.nan, "x"):
        with pytest.raises(ValueError, match="^rho must"):
            cls(bad)
    assert repr(cls(0.5)) == f"{cls.__name__}(rho=0.5)"


@pytest.mark.parametrize("shape,k,rho1,rho2,step", [((8, 5), 2, 1.0, 0.3, 0.7),
                                                    ((6, 6), 3, 2.0, 0.1, 0.2),
                                                    ((10, 4), 1, 0.5, 2.0, 3.0),
                                                    ((3, 5), 2, 1.0, 1.0, 1.0)])
def test_clustered_mtl_prox_is_the_numerical_minimiser(shape, k, rho1, rho2, step):
    """The closed-form prox (singular vectors kept, η' = η + 2c·step) against L-BFGS on
    ½‖Z − V‖² + step·Ω(Z) with Ω's own gradient (a rank-deficient case: d < T)."""
    pen = ClusteredMTLPenalty(rho1, rho2, k)
    V = _rand(*shape, seed=31 + k)
    Z = pen.prox(V, step)
    v = V.numpy().ravel()

    def f(z):
        Zt = torch.from_numpy(z.reshape(shape))
        return (0.5 * float(((z - v) ** 2).sum()) + step * float(pen.value(Zt)),
                (z - v) + step * pen.grad(Zt).numpy().ravel())

    ref = scipy.optimize.minimize(f, v, jac=True, method="L-BFGS-B",
                                  options={"ftol": 0.0, "gtol": 1e-12, "maxiter": 10_000})
    np.testing.assert_allclose(Z.numpy().ravel(), ref.x, atol=1e-7)
    assert f(Z.numpy().ravel())[0] <= ref.fun + 1e-12
    torch.testing.assert_close(pen.prox(V, 0.0), V, rtol=0, atol=1e-12)  # no step: identity
