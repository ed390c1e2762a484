"""Exact full-batch solvers for the masked multi-task linear objective (paper §3.5, eqs. 1, 7, 8).

The objective, for X ∈ R^{n×d}, Y ∈ R^{n×T}, a boolean mask of labelled entries and a
penalty Ω from :mod:`gifemo.models.penalties`, is the paper's *unhalved* squared loss::

    F(W, b) = Σ_{(i,t) ∈ mask} (xᵢᵀ W[:, t] + b[t] − Y[i, t])² + Ω(W)

Entries outside the mask contribute nothing (Y may hold NaN there). The intercept b is not
penalised and is eliminated exactly: for a given W the best b[t] is the mean residual over
task t's labelled rows, so every solver works on W alone with the per-task-centred residual
(variable projection; the gradient 2 Xᵀ R_c is exact by the envelope theorem).

Solvers (``method="auto"`` picks one):

- **The lasso: ADMM at paper scale, coordinate descent below.** scikit-learn's coordinate
  descent (``method="cd"``: one task at a time on its labelled rows, tasks in threads) was the
  lasso's solver until paper-scale runs showed it needs minutes per task and ρ where the
  solution turns dense (small ρ, n_t ≈ d correlated features). On the
  ``benchmarks/solvers.py --lasso-path`` problem (n = 6,113, d = 4,235, T = 17; idle 2
  cores) ADMM solves the 7-ρ path for all tasks in 358 s (25–74 s per ρ); coordinate
  descent took 95 s for ONE task (0.3–2.4 s per ρ down to ρ = 1, then 15 s and 74 s), i.e.
  ≈ 800 s for 17 tasks on 2 cores — faster than ADMM at large ρ, ≈ 14× slower at ρ = 0.1.
  On the more correlated paper-scale synthetic features one task's path took 715 s (281 s
  at ρ = 0.1). ADMM's cost is bounded by its factorisations, so it is the default at that
  scale (:data:`ADMM_MIN_ROWS` × :data:`ADMM_MIN_FEATURES`); below it, many
  small fits (the demo, the tests) pay ADMM's set-up (Grams, a λ_max estimate) for little,
  and coordinate descent stays (``make test`` measured 195 s against 133 s with ADMM for
  every lasso). A density-based switch was not adopted: the warm start's density did not
  predict coordinate descent's time. Our certificate is checked on both.
- **ADMM** (Boyd et al. 2011; :mod:`gifemo.models.admm`) for the trace norm and the lasso:
  exact per-task W-steps from cached Cholesky factors, the penalty's prox (singular-value or
  entrywise soft threshold), warm starts. Measured on a warm-started path over the CV grid (synthetic n = 800, d = 639,
  T = 17, 72 % labelled, one thread): 20–25 iterations per ρ against FISTA's 160–1,780 with
  the exact step. Each new μ costs T Cholesky factorisations (d × d, or n_t × n_t when a
  task has fewer rows than features) — or, when the tasks share most of their rows (GIFGIF),
  T small capacitance matrices on one shared eigenbasis (:mod:`gifemo.models.shared_basis`)
  — so μ is kept while within 10× (trace norm) or 3× (lasso) of its ideal value; the
  factors of the last problem are cached for the next ρ (:func:`release_factor_cache`
  frees them; ``benchmarks/solvers.py --trace-path`` has the paper-scale timings).
- **FISTA** with backtracking and function-value restart (Beck & Teboulle 2009; O'Donoghue
  & Candès 2015) for the other prox penalties (``method="fista"`` for the trace norm or
  the lasso).
  Each iteration costs two products with X (the forward product at the extrapolated point
  is a linear combination of stored ones). The first step is 1/L with L = 2 max_t λ_max(H_t),
  the exact constant of the centred, masked loss (Lanczos on all tasks at once).
- **L-BFGS** (``scipy.optimize`` L-BFGS-B, float64) for smooth penalties (ridge, clustered
  MTL below paper scale). At paper scale (``ADMM_MIN_ROWS`` × ``ADMM_MIN_FEATURES``) clustered
  MTL goes to ADMM, whose prox for it is closed-form: on one paper-scale CV fit its 5-point
  grid took 164 s against L-BFGS's 503 s (``benchmarks/solvers.py --cv-fit ... --penalty
  clustered_mtl``, under load; 13–110 L-BFGS iterations per point against ADMM's 5–10).
  scipy's L-BFGS-B is chosen over ``torch.optim.LBFGS``: it does the same Wolfe line search
  in compiled code, supports a per-iteration callback that can stop it (our certificate
  below), and measured no slower (see ``benchmarks/solvers.py``).
- **direct** least squares (per task, ``torch.linalg.lstsq``) when Ω ≡ 0.

Stopping rule and the reported gap. Iterates are checked (FISTA: every 10th; L-BFGS:
each; CD: after each pass over the tasks) with a *duality gap*, which bounds F(W) − F*
from above without knowing F*: with R the masked, centred residual and
U = 2 s R a dual point (s ≤ 1 rescales it into the dual-norm ball for norm penalties),
D(U) = −‖U‖²/4 − ⟨U, Y⟩ − Ω*(−XᵀU) ≤ F* ≤ F(W). ``rel_gap`` = (F(W) − max D) / F(W),
max over the dual points seen so far; the solver stops once ``rel_gap ≤ tol`` (default
1e-4), which implies a relative objective gap ≤ 1e-4 to the true optimum. This is
stricter than the relative change of the objective between iterations (which FISTA can
satisfy far from the optimum), so the latter is not used to stop. ``max_iter`` without reaching the tolerance raises a
``sklearn.exceptions.ConvergenceWarning``; a non-finite objective raises FloatingPointError.

Everything runs in float64 on the CPU (inputs on other devices/dtypes are copied): the
certificate needs ~1e-8 relative accuracy in the objective, which float32 cannot give, and
at the paper's sizes (n ≈ 2·10⁴, d = 4235, T = 17) a CPU solve takes seconds.

For weights trained by minibatch SGD/Adam (e.g. through the Lightning loop),
:func:`relative_gap` reports how far they are from the full-batch optimum, and
:func:`duality_gap` certifies any W without solving.
"""

from __future__ import annotations

import math
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.optimize
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso
from torch import Tensor

from gifemo.models.duality_gap import GapReport
from gifemo.models.fit_memo import content_key
from gifemo.models.admm import PENALTIES as ADMM_PENALTIES
from gifemo.models.penalties import ClusteredMTLPenalty, L1Penalty, Penalty, TraceNormPenalty

__all__ = [
    "FitResult",
    "GapReport",
    "fit_multitask_linear",
    "objective",
    "duality_gap",
    "relative_gap",
    "release_factor_cache",
]

_DTYPE = torch.float64


@dataclass
class FitResult:
    """Result of :func:`fit_multitask_linear`.

    Attributes
    ----------
    W : Tensor [d, T] float64
    b : Tensor [T] float64 (zeros when ``fit_intercept=False``)
    objective : float
        F(W, b), the unhalved masked squared loss plus Ω(W).
    n_iter : int
        Solver iterations (1 for the direct solver; for coordinate descent the largest
        number of epochs over the tasks).
    converged : bool
        ``rel_gap <= tol``.
    rel_gap : float
        Certified relative duality gap (F − D)/F, an upper bound on (F − F*)/F
        (0.0 for the direct least-squares solve).
    """

    W: Tensor
    b: Tensor
    objective: float
    n_iter: int
    converged: bool
    rel_gap: float


def _as_tensor(a: Any, name: str) -> Tensor:
    if isinstance(a, Tensor):
        return a.detach().to(device="cpu")
    try:
        return torch.as_tensor(np.asarray(a))
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} cannot be converted to a tensor: {e}") from None


class _Problem:
    """X, Y, mask prepared for the solvers (float64, rows without any label dropped)."""

    def __init__(self, X: Any, Y: Any, mask: Any, fit_intercept: bool) -> None:
        X = _as_tensor(X, "X")
        Y = _as_tensor(Y, "Y")
        mask = _as_tensor(mask, "mask")
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D [n, d], got shape {tuple(X.shape)}")
        if Y.ndim != 2 or mask.ndim != 2:
            raise ValueError(f"Y and mask must be 2-D [n, T], got {tuple(Y.shape)} and "
                             f"{tuple(mask.shape)}")
        if Y.shape != mask.shape or Y.shape[0] != X.shape[0]:
            raise ValueError(f"shapes disagree: X {tuple(X.shape)}, Y {tuple(Y.shape)}, "
                             f"mask {tuple(mask.shape)}")
        if mask.dtype != torch.bool:
            if not bool(((mask == 0) | (mask == 1)).all()):
                raise ValueError("mask must be boolean (or 0/1)")
            mask = mask.bool()
        self.n_all, self.d = X.shape
        self.T = Y.shape[1]
        used = mask.any(1)
        X = X[used].to(_DTYPE)
        Y = Y[used].to(_DTYPE)
        mask = mask[used]
        rows = torch.nonzero(used).flatten()
        bad = ~torch.isfinite(Y) & mask
        if bool(bad.any()):
            i, t = (int(v) for v in torch.nonzero(bad)[0])
            raise ValueError(f"Y[{int(rows[i])}, {t}] = {float(Y[i, t])} is not finite inside "
                             f"the mask ({int(bad.sum())} such entries)")
        badx = ~torch.isfinite(X)
        if bool(badx.any()):
            i, j = (int(v) for v in torch.nonzero(badx)[0])
            raise ValueError(f"X[{int(rows[i])}, {j}] = {float(X[i, j])} is not finite "
                             f"({int(badx.any(1).sum())} labelled rows affected)")
        self.X = X.contiguous()
        self.M = mask.to(_DTYPE)
        self.Y = torch.where(mask, Y, torch.zeros((), dtype=_DTYPE))
        self.counts = self.M.sum(0)
        self.fit_intercept = fit_intercept

    # --- loss pieces -------------------------------------------------------------------
    def centred(self, XW: Tensor) -> tuple[Tensor, Tensor]:
        """(R_c, b): masked residual of XW + b − Y with the per-task optimal b."""
        R = self.M * (XW - self.Y)
        if self.fit_intercept:
            rbar = R.sum(0) / self.counts.clamp(min=1.0)
            return R - self.M * rbar, -rbar
        return R, torch.zeros(self.T, dtype=_DTYPE)

    def loss_from_product(self, XW: Tensor) -> float:
        R, _ = self.centred(XW)
        return float((R * R).sum())

    def intercept(self, W: Tensor) -> Tensor:
        return self.centred(self.X @ W)[1]

    def task_gram_product(self, V: Tensor) -> Tensor:
        """Column t of the result is H_t V[:, t], H_t = X_tᵀ C_t X_t the Gram of task t's
        labelled rows, centred over them when fitting an intercept (so that the loss of
        column t is w_tᵀ H_t w_t − … and its Hessian is 2 H_t). One pass over X each way."""
        R = self.M * (self.X @ V)
        if self.fit_intercept:
            R = R - self.M * (R.sum(0) / self.counts.clamp(min=1.0))
        return self.X.T @ R

    def task_eigmax(self, max_steps: int = 200, rtol: float = 1e-10) -> Tensor:
        """Largest eigenvalue of every task's centred, masked Gram H_t, shape [T].

        Lanczos with full reorthogonalisation, run for all tasks at once (one product with
        X and one with Xᵀ per step, shared by the T tasks). It stops when every task's
        largest Ritz value has settled to ``rtol`` relative, or after min(d, max_steps)
        steps; with ``max_steps`` ≥ d it is exact up to rounding (the Krylov space is all
        of R^d), so small problems get the true eigenvalue."""
        d, T = self.d, self.T
        if self.X.shape[0] == 0 or d == 0:
            return torch.zeros(T, dtype=_DTYPE)
        g = torch.Generator().manual_seed(0)
        q = torch.randn(d, T, generator=g, dtype=_DTYPE)
        q = q / q.norm(dim=0)
        Q = [q]
        alpha: list[Tensor] = []
        beta: list[Tensor] = []
        theta = torch.zeros(T, dtype=_DTYPE)
        done = torch.zeros(T, dtype=torch.bool)
        for k in range(min(d, max_steps)):
            z = self.task_gram_product(Q[-1])
            a = (Q[-1] * z).sum(0)
            alpha.append(a)
            Qs = torch.stack(Q)  # [k+1, d, T]
            for _ in range(2):  # full reorthogonalisation, twice for stability
                z = z - (Qs * (Qs * z).sum(1, keepdim=True)).sum(0)
            b = z.norm(dim=0)
            if not bool(torch.isfinite(a).all() and torch.isfinite(b).all()):
                raise FloatingPointError("the Gram matrices X_tᵀX_t overflow (check the "
                                         "scale of X)")
            # Ritz values: largest eigenvalue of each task's tridiagonal matrix
            Tk = torch.diag_embed(torch.stack(alpha, 1))
            if beta:
                off = torch.stack(beta, 1)
                Tk = Tk + torch.diag_embed(off, 1) + torch.diag_embed(off, -1)
            new = torch.linalg.eigvalsh(Tk)[:, -1]
            settled = (new - theta).abs() <= rtol * new.abs().clamp(min=1e-300)
            invariant = b <= 1e-12 * new.abs().clamp(min=1e-300)
            theta = new
            done = done | invariant | (settled & (k > 0))
            if bool(done.all()):
                break
            beta.append(b)
            Q.append(z / b.clamp(min=1e-300))
        return theta.clamp(min=0.0)

    def lipschitz(self) -> float:
        """Lipschitz constant of the loss's gradient, 2 max_t λ_max(H_t) (the Hessian is
        block-diagonal over tasks), from the centred, masked Grams — not σ_max(X)², which
        on non-negative features is dominated by the mean direction the intercept absorbs
        and overestimates it several-fold (slow steps)."""
        lam = float(self.task_eigmax(max_steps=100, rtol=1e-8).max()) if self.T else 0.0
        return max(2.0 * lam, 1e-12)

    def gap(self, W: Tensor, penalty: Penalty, R: Tensor | None = None,
            XtR: Tensor | None = None, pen_value: float | None = None) -> GapReport:
        """Duality gap at W (with the optimal intercept for W); see the module docstring."""
        if R is None:
            R, _ = self.centred(self.X @ W)
        if XtR is None:
            XtR = self.X.T @ R
        if pen_value is None:
            pen_value = float(penalty.value(W))
        primal = float((R * R).sum()) + pen_value
        V = -2.0 * XtR
        s = penalty.dual_scale(V)
        conj = penalty.conjugate(s * V) if s > 0 else 0.0
        dual = -s * s * float((R * R).sum()) - 2.0 * s * float((R * self.Y).sum()) - conj
        if not math.isfinite(dual):
            dual = -math.inf
        denom = max(abs(primal), 1e-300)
        return GapReport(primal, dual, max(primal - dual, 0.0) / denom)


def _check_finite(F: float, it: int, where: str) -> None:
    if not math.isfinite(F):
        raise FloatingPointError(f"{where}: objective became {F} at iteration {it} "
                                 f"(diverged; check the scale of X, Y and the penalty)")


def _best(old: GapReport | None, new: GapReport) -> GapReport:
    """Gap of the new primal point against the best dual bound seen so far (any dual
    point's value bounds F* from below, so the largest one is kept)."""
    if old is None or old.dual <= new.dual:
        return new
    return GapReport(new.primal, old.dual,
                     max(new.primal - old.dual, 0.0) / max(abs(new.primal), 1e-300))


def _direct(prob: _Problem) -> Tensor:
    """Least squares per task on its labelled rows (Ω ≡ 0), minimum-norm solution."""
    W = torch.zeros(prob.d, prob.T, dtype=_DTYPE)
    for t in range(prob.T):
        rows = prob.M[:, t] > 0
        if not bool(rows.any()):
            continue
        Xt, yt = prob.X[rows], prob.Y[rows, t]
        if prob.fit_intercept:
            Xt = Xt - Xt.mean(0)
            yt = yt - yt.mean()
        W[:, t] = torch.linalg.lstsq(Xt, yt[:, None], driver="gelsd").solution[:, 0]
    return W


_LASSO_THREADS_MIN_ENTRIES = 1_000_000  # X's size from which the tasks' CD runs in threads


def _lasso_cd(prob: _Problem, penalty: L1Penalty, W0: Tensor, tol: float,
              max_iter: int) -> tuple[Tensor, int, GapReport]:
    """Lasso by scikit-learn's coordinate descent, one task at a time on its labelled rows
    (the l1 penalty decouples the tasks; α_t = ρ / (2 n_t) makes sklearn's objective
    (1/2n_t)‖·‖² + α_t‖w‖₁ equal to ours divided by 2 n_t). sklearn's own stopping test is
    relative to ‖y‖², so our certificate is checked after it and the fit is tightened
    (warm-started, sklearn tol ÷ 100) until the certified gap is ≤ tol. sklearn's descent
    is single-threaded and releases the GIL, so on problems of at least
    ``_LASSO_THREADS_MIN_ENTRIES`` entries of X the tasks run in one thread per CPU
    (independent fits: the same result as one after another); below, thread overhead wins
    (n = 200, d = 40, T = 17: 20 fits in 1.55 s with 2 threads, 0.90 s in one)."""
    W = W0.clone()
    X = prob.X.numpy()
    Y = prob.Y.numpy()
    sk_tol = tol
    n_iter = 0
    report = prob.gap(W, penalty)

    def fit_task(t: int) -> tuple[np.ndarray, int]:
        rows = prob.M[:, t].numpy() > 0
        n_t = int(rows.sum())
        if n_t == 0:
            return np.zeros(prob.d), 0
        model = Lasso(alpha=penalty.rho / (2.0 * n_t), fit_intercept=prob.fit_intercept,
                      tol=sk_tol, max_iter=max_iter, warm_start=True)
        model.coef_ = W[:, t].numpy().copy()
        model.fit(X[rows], Y[rows, t])
        return model.coef_, int(model.n_iter_)

    workers = max(1, min(prob.T, len(os.sched_getaffinity(0))))
    if prob.X.numel() < _LASSO_THREADS_MIN_ENTRIES:
        workers = 1
    # warning filters are process-wide: set once here, not inside the threads
    with warnings.catch_warnings(), ThreadPoolExecutor(workers) as pool:
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(4):
            if report.rel_gap <= tol:
                break
            for t, (coef, it) in enumerate(pool.map(fit_task, range(prob.T))):
                W[:, t] = torch.from_numpy(coef)
                n_iter = max(n_iter, it)
            report = _best(report, prob.gap(W, penalty))
            sk_tol /= 100.0
    return W, max(n_iter, 1), report


def _fista(prob: _Problem, penalty: Penalty, W0: Tensor, tol: float, max_iter: int,
           check_every: int = 10, L: float | None = None) -> tuple[Tensor, int, GapReport]:
    """FISTA from W0; ``L`` overrides the initial Lipschitz estimate (benchmarks)."""
    if L is None:
        L = prob.lipschitz()
    x = W0.clone()
    Xx = prob.X @ x
    x_prev, Xx_prev = x, Xx
    F_x = prob.loss_from_product(Xx) + float(penalty.value(x))
    _check_finite(F_x, 0, "FISTA")
    t = 1.0
    beta = 0.0
    report = prob.gap(x, penalty)
    if report.rel_gap <= tol:
        return x, 0, report
    it = 0
    for it in range(1, max_iter + 1):
        y = x + beta * (x - x_prev) if beta > 0 else x
        Xy = Xx + beta * (Xx - Xx_prev) if beta > 0 else Xx
        Ry, _ = prob.centred(Xy)
        f_y = float((Ry * Ry).sum())
        g_y = 2.0 * (prob.X.T @ Ry)
        while True:
            z = penalty.prox(y - g_y / L, 1.0 / L)
            dz = z - y
            Xz = prob.X @ z
            f_z = prob.loss_from_product(Xz)
            bound = f_y + float((g_y * dz).sum()) + 0.5 * L * float((dz * dz).sum())
            if f_z <= bound + 1e-12 * abs(f_y):
                break
            L *= 2.0
            _check_finite(L, it, "FISTA backtracking")
        F_z = f_z + float(penalty.value(z))
        _check_finite(F_z, it, "FISTA")
        if F_z <= F_x:
            t_next = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
            beta = (t - 1.0) / t_next
            t = t_next
            x_prev, Xx_prev = x, Xx
            x, Xx, F_x = z, Xz, F_z
        else:  # function-value restart: drop the momentum, keep the better point
            t, beta = 1.0, 0.0
            x_prev, Xx_prev = x, Xx
        if it % check_every == 0 or it == max_iter:
            R, _ = prob.centred(Xx)
            report = _best(report, prob.gap(x, penalty, R=R,
                                            pen_value=F_x - float((R * R).sum())))
            if report.rel_gap <= tol:
                break
    return x, it, report


def _lbfgs(prob: _Problem, penalty: Penalty, W0: Tensor, tol: float,
           max_iter: int) -> tuple[Tensor, int, GapReport]:
    shape = (prob.d, prob.T)
    cache: dict[str, Any] = {}

    def fun(w: np.ndarray) -> tuple[float, np.ndarray]:
        W = torch.from_numpy(w).view(shape)
        R, _ = prob.centred(prob.X @ W)
        XtR = prob.X.T @ R
        if hasattr(penalty, "value_and_grad"):
            pv, pg = penalty.value_and_grad(W)
        else:
            pv, pg = float(penalty.value(W)), penalty.grad(W)
        F = float((R * R).sum()) + pv
        _check_finite(F, cache.get("it", 0), "L-BFGS")
        cache.update(w=w.copy(), R=R, XtR=XtR, pv=pv)
        return F, (2.0 * XtR + pg).numpy().ravel()

    state = {"it": 0, "report": None}

    def callback(intermediate_result: scipy.optimize.OptimizeResult) -> None:
        state["it"] += 1
        cache["it"] = state["it"]
        w = intermediate_result.x
        W = torch.from_numpy(np.ascontiguousarray(w)).view(shape)
        if "w" in cache and np.array_equal(cache["w"], w):
            rep = prob.gap(W, penalty, R=cache["R"], XtR=cache["XtR"], pen_value=cache["pv"])
        else:
            rep = prob.gap(W, penalty)
        rep = _best(state["report"], rep)
        state["report"] = rep
        if rep.rel_gap <= tol:
            raise StopIteration

    w0 = W0.numpy().ravel().copy()
    report = prob.gap(W0, penalty)
    if report.rel_gap <= tol:
        return W0, 0, report
    state["report"] = report
    # Restart a few times if L-BFGS-B stops on its own (line-search stalls near rounding
    # level) before the certificate is met.
    for _ in range(3):
        res = scipy.optimize.minimize(
            fun, w0, jac=True, method="L-BFGS-B", callback=callback,
            options={"maxiter": max(max_iter - state["it"], 1), "maxcor": 20,
                     "ftol": 0.0, "gtol": 0.0, "maxls": 50})
        W = torch.from_numpy(np.ascontiguousarray(res.x)).view(shape).clone()
        report = _best(state["report"], prob.gap(W, penalty))
        _check_finite(report.primal, state["it"], "L-BFGS")
        if report.rel_gap <= tol or state["it"] >= max_iter:
            break
        w0 = res.x
    return W, max(state["it"], 1), report


ADMM_MIN_ROWS, ADMM_MIN_FEATURES = 2000, 1000  # paper scale: ADMM for lasso and clustered MTL
_ADMM_CACHE: list[tuple[bytes, Any]] = []  # one entry: the last problem's factored systems


def _admm_for(prob: _Problem):
    """The :class:`~gifemo.models.admm.MultitaskADMM` of this problem, reused
    when the same X, Y, mask come again (a ρ path or CV grid through the public entry
    point keeps its Gram matrices; only the per-μ Cholesky factors are new)."""
    from gifemo.models.admm import MultitaskADMM

    key = content_key(prob.X, prob.Y, prob.M, prob.fit_intercept)
    if _ADMM_CACHE and _ADMM_CACHE[0][0] == key:
        return _ADMM_CACHE[0][1]
    release_factor_cache()  # free the previous problem's matrices before building new ones
    solver = MultitaskADMM(prob)
    _ADMM_CACHE.append((key, solver))
    return solver


def release_factor_cache() -> None:
    """Free the cached ADMM factors (T × d² floats: ~2.4 GB at the paper's
    d = 4,235, T = 17). Call it when a ρ path is done; the next trace-norm fit rebuilds."""
    for _, solver in _ADMM_CACHE:
        solver.release()
    _ADMM_CACHE.clear()


def fit_multitask_linear(X: Any, Y: Any, mask: Any, penalty: Penalty, *,
                         fit_intercept: bool = True, tol: float = 1e-4, max_iter: int = 5000,
                         W0: Any = None, method: str = "auto") -> FitResult:
    """Minimise Σ_mask (XW + b − Y)² + Ω(W) to a certified relative gap ≤ ``tol``.

    Parameters
    ----------
    X : [n, d] tensor or array
    Y : [n, T] targets; entries outside ``mask`` are ignored (may be NaN).
    mask : [n, T] bool, True where Y is a label (paper: GIF compared for that emotion).
    penalty : Penalty
    fit_intercept : bool, default True
        Unpenalised per-task bias b.
    tol : float, default 1e-4
        Target relative duality gap (F − D)/F.
    max_iter : int, default 5000
    W0 : [d, T], optional
        Warm start (b is re-derived from it).
    method : {"auto", "cd", "admm", "fista", "lbfgs", "direct"}
        ``auto``: direct if Ω ≡ 0, ADMM (:mod:`gifemo.models.admm`) for the trace norm, and
        for the lasso and clustered MTL on problems of at least ``ADMM_MIN_ROWS`` rows and
        ``ADMM_MIN_FEATURES`` features (below: coordinate descent for the lasso, L-BFGS
        for clustered MTL), L-BFGS for other smooth penalties, else FISTA.

    Returns
    -------
    FitResult
    """
    if not isinstance(penalty, Penalty):
        raise TypeError(f"penalty must be a gifemo Penalty, got {type(penalty).__name__}")
    if not (isinstance(tol, (int, float)) and tol > 0 and math.isfinite(tol)):
        raise ValueError(f"tol must be a positive number, got {tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be an integer >= 1, got {max_iter!r}")
    prob = _Problem(X, Y, mask, fit_intercept)
    if method == "auto":
        if penalty.is_zero():
            method = "direct"
        elif isinstance(penalty, TraceNormPenalty):
            method = "admm"
        elif isinstance(penalty, (L1Penalty, ClusteredMTLPenalty)):
            large = prob.X.shape[0] >= ADMM_MIN_ROWS and prob.d >= ADMM_MIN_FEATURES
            method = "admm" if large else "cd" if isinstance(penalty, L1Penalty) else "lbfgs"
        else:
            method = "lbfgs" if penalty.smooth else "fista"
    if method not in ("fista", "lbfgs", "direct", "cd", "admm"):
        raise ValueError(f"method must be auto, fista, lbfgs, cd, admm or direct, "
                         f"got {method!r}")
    if method == "admm" and not isinstance(penalty, ADMM_PENALTIES):
        raise ValueError(f"method='admm' is for the trace norm, the lasso or clustered MTL "
                         f"({', '.join(p.__name__ for p in ADMM_PENALTIES)}), got {penalty!r}")
    if method == "cd" and not isinstance(penalty, L1Penalty):
        raise ValueError(f"method='cd' is for L1Penalty, got {penalty!r}")
    if method == "fista" and penalty.smooth:
        raise ValueError(f"{type(penalty).__name__} is smooth and has no prox; "
                         f"use method='lbfgs'")
    if method == "lbfgs" and not penalty.smooth:
        raise ValueError(f"{type(penalty).__name__} is not smooth; use method='fista'")
    if W0 is None:
        Winit = torch.zeros(prob.d, prob.T, dtype=_DTYPE)
    else:
        Winit = _as_tensor(W0, "W0").to(_DTYPE).clone()
        if tuple(Winit.shape) != (prob.d, prob.T):
            raise ValueError(f"W0 must have shape {(prob.d, prob.T)}, got {tuple(Winit.shape)}")
        if not bool(torch.isfinite(Winit).all()):
            raise ValueError("W0 has non-finite entries")

    if method == "direct":
        if not penalty.is_zero():
            raise ValueError(f"method='direct' needs a zero penalty, got {penalty!r}")
        W = _direct(prob)
        n_iter, rel = 1, 0.0
    elif method == "fista":
        W, n_iter, rep = _fista(prob, penalty, Winit, tol, max_iter)
        rel = rep.rel_gap
    elif method == "cd":
        W, n_iter, rep = _lasso_cd(prob, penalty, Winit, tol, max_iter)
        rel = rep.rel_gap
    elif method == "admm":
        W, n_iter, rep, _ = _admm_for(prob).solve(penalty, W0=Winit, tol=tol,
                                                  max_iter=max_iter)
        rel = rep.rel_gap
    else:
        W, n_iter, rep = _lbfgs(prob, penalty, Winit, tol, max_iter)
        rel = rep.rel_gap
    XW = prob.X @ W
    R, b = prob.centred(XW)
    F = float((R * R).sum()) + float(penalty.value(W))
    _check_finite(F, n_iter, method)
    converged = rel <= tol
    if not converged:
        warnings.warn(f"{method} stopped after {n_iter} iterations with relative gap "
                      f"{rel:.3g} > tol {tol:g} ({penalty!r}); raise max_iter or tol",
                      ConvergenceWarning, stacklevel=2)
    return FitResult(W=W, b=b, objective=F, n_iter=n_iter, converged=converged, rel_gap=rel)


def objective(X: Any, Y: Any, mask: Any, penalty: Penalty, W: Any, b: Any = None) -> float:
    """F(W, b) = Σ_mask (XW + b − Y)² + Ω(W), evaluated in float64 (b = 0 if None)."""
    prob = _Problem(X, Y, mask, fit_intercept=False)
    W = _as_tensor(W, "W").to(_DTYPE)
    if tuple(W.shape) != (prob.d, prob.T):
        raise ValueError(f"W must have shape {(prob.d, prob.T)}, got {tuple(W.shape)}")
    bb = torch.zeros(prob.T, dtype=_DTYPE) if b is None else _as_tensor(b, "b").to(_DTYPE)
    if tuple(bb.shape) != (prob.T,):
        raise ValueError(f"b must have shape {(prob.T,)}, got {tuple(bb.shape)}")
    R = prob.M * (prob.X @ W + bb - prob.Y)
    return float((R * R).sum()) + float(penalty.value(W))


def duality_gap(X: Any, Y: Any, mask: Any, penalty: Penalty, W: Any, *,
                fit_intercept: bool = True) -> GapReport:
    """Certify any W without solving: primal F(W, b*(W)), a dual bound D ≤ F*, (F − D)/F."""
    prob = _Problem(X, Y, mask, fit_intercept)
    W = _as_tensor(W, "W").to(_DTYPE)
    if tuple(W.shape) != (prob.d, prob.T):
        raise ValueError(f"W must have shape {(prob.d, prob.T)}, got {tuple(W.shape)}")
    return prob.gap(W, penalty)


def relative_gap(X: Any, Y: Any, mask: Any, penalty: Penalty, W: Any, b: Any = None,
                 optimum: float | FitResult | None = None, *, fit_intercept: bool = True,
                 tol: float = 1e-6) -> float:
    """(F(W, b) − F*) / F* for weights trained elsewhere (e.g. minibatch SGD/Adam).

    ``optimum`` is F* (a float or the :class:`FitResult` of a full-batch fit); when None,
    it is computed by :func:`fit_multitask_linear` at ``tol`` (default 1e-6, so the
    reported gap is accurate to about that). With ``fit_intercept=False`` pass ``b=None``.
    """
    F = objective(X, Y, mask, penalty, W, b)
    if optimum is None:
        optimum = fit_multitask_linear(X, Y, mask, penalty, fit_intercept=fit_intercept,
                                       tol=tol, W0=W).objective
    elif isinstance(optimum, FitResult):
        optimum = optimum.objective
    opt = float(optimum)
    return (F - opt) / max(abs(opt), 1e-300)
