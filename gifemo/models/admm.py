"""Masked multi-task least squares by ADMM, with the trace norm (paper §3.5.3, eq. 7), the
lasso (eq. 1) or the clustered multi-task penalty (eq. 8).

Problem (as in :mod:`gifemo.models.solvers`, unhalved loss, per-task masks, intercept
eliminated exactly)::

    min_W  f(W) + Ω(W),   f(W) = Σ_t ‖C_t (X_t w_t − y_t)‖²,   Ω = ρ‖·‖_*, ρ‖·‖₁ or eq. 8

X_t: task t's labelled rows, C_t: centring over them (the optimal intercept), w_t: column t.

Method: the alternating direction method of multipliers (ADMM; Boyd, Parikh, Chu, Peleato &
Eckstein 2011, "Distributed optimization and statistical learning via the alternating
direction method of multipliers", §3, with over-relaxation §3.4.3) on the split W = Z,
scaled dual U::

    W ← argmin f(W) + (μ/2)‖W − Z + U‖²      exact, one linear solve per task
    Ŵ ← α W + (1 − α) Z                       over-relaxation, α = 1.6
    Z ← prox_{Ω/μ}(Ŵ + U)                     singular-value (trace norm) or entrywise
                                              (lasso) soft threshold; for clustered MTL
                                              W's singular values shrunk in closed form
                                              (``ClusteredMTLPenalty.prox``)
    U ← U + Ŵ − Z

The W-step decouples over tasks: (2 H_t + μ I) w_t = 2 X_tᵀ C_t y_t + μ (z_t − u_t) with
H_t = X_tᵀ C_t X_t. Each task's matrix is factored once per μ and the factor is cached
(Cholesky of 2H_t + μI when the task has at least as many rows as features, else of
K_t + μ/2·I with K_t = C_t X_t X_tᵀ C_t and the Woodbury identity). The tasks' rows are
subsets of one X, so their Grams come from one XᵀX minus each task's excluded rows
(:func:`_shared_grams`); each task keeps its Gram and its current factor in ONE array (upper
and lower triangle), so a new μ costs T Cholesky factorisations and no new memory, and one
:class:`MultitaskADMM` solves a whole ρ path (largest ρ first, warm-started) of any of
them; :meth:`MultitaskADMM.release` frees it.

On GIFGIF-shaped masks (GIFs rated on every emotion plus GIFs collected for one) the tasks'
matrices differ from one shared Gram by a few hundred rank-one terms each, and the W-step
goes through ONE eigenbasis of that Gram instead (:mod:`gifemo.models.shared_basis`: a new μ
costs 17 small capacitance matrices, ~1.6 s, instead of 17 Cholesky factorisations; the
trace-norm path of ``benchmarks/solvers.py --trace-path --masks gifgif``, n = 12,600,
d = 4,235: 61.5 s against 132.0 s; on the random 72 % masks of ``--trace-path`` 75.5 s
against 103.1 s); ``w_step`` chooses, per task, by a cost model of the path.

Why ADMM for the lasso too: at paper scale (n_t ≈ 5,000 GIFs, d = 4,096 correlated,
non-negative C3D-like features) the lasso solution is dense at small ρ and scikit-learn's
coordinate descent needs minutes per task and ρ (one task's 7-ρ path: 715 s, 281 s at
ρ = 0.1 alone; ``benchmarks/solvers.py --lasso-path``), while ADMM's cost is the same
factorisations as the trace norm's plus a cheap prox.

Choice of μ: μ = ρ/s(W), s the scale of W's components (:func:`_scale`: σ₁(W) for the trace
norm, the mean nonzero |Wᵢⱼ| for the lasso; the threshold ρ/μ then sits at that scale), from
the warm start (or from one proximal gradient step at W = 0), kept fixed during the solve;
along a path the factored μ is kept while it stays within ``mu_keep`` of the ideal one (10×
for the trace norm, 3× for the lasso: :data:`MU_KEEP`). For the trace norm, along the grid
100 … 0.1 the best μ falls
~30× per step, and a μ kept further off costs more iterations than the Cholesky set saves
(``benchmarks/solvers.py --mu-keep-sweep``, n = 1,500, d = 1,033: mu_keep 10 → 4 sets, 140
iterations; 100 → 3 sets, 230; 1000 → 2 sets, 750; one set did not finish in 15 min). Boyd et al.'s residual balancing (§3.4.1) was
tried and measured worse here: it drove μ towards 10–500× the best value at small ρ
(n = 800, d = 639, T = 17, 72 % labelled: 710 iterations at ρ = 0.1 with balancing, 20
without, both warm-started; a sweep over μ showed the best μ ∝ ρ, within ~3× of ρ/σ₁).

Clustered MTL is smooth and was solved by L-BFGS; ADMM takes it at paper scale because its
prox has a closed form (the same singular-value machinery as the trace norm's) and μ needs
no scale estimate: near the solution Ω's curvature along W's singular directions lies
between 2c/(1 + η) and 2c/η (c = ρ1 η(1 + η), η = ρ2/ρ1), and μ at its geometric mean
(:func:`_curvature_mu`) gave 5–15 iterations per grid point, warm-started, 3 factor sets for
the 5-point grid (``mu_keep`` 3; 1 set with μ kept throughout cost 185 iterations instead of
35; n = 1,500, d = 516). On one paper-scale CV fit (``benchmarks/solvers.py --cv-fit
data/paper_synthetic --features visual_tags --penalty clustered_mtl``, 15,494 × 4,235,
under load) the grid took 164 s with ADMM, 503 s with L-BFGS.

Stopping rule: the duality gap of :mod:`gifemo.models.solvers` (checked every
``check_every`` iterations at both the W-step point and the low-rank or sparse Z), the same
certificate as FISTA and coordinate descent; the returned W is the certified one of the two.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch
from torch import Tensor

from gifemo.models.duality_gap import GapReport
from gifemo.models.penalties import ClusteredMTLPenalty, L1Penalty, TraceNormPenalty
from gifemo.models.shared_basis import SharedBasisSystems, task_update_rank, worth_it

__all__ = ["MultitaskADMM", "ADMMResult", "PENALTIES", "tasks_on_basis"]

PENALTIES = (TraceNormPenalty, L1Penalty, ClusteredMTLPenalty)  # penalties with a prox
MU_KEEP = {TraceNormPenalty: 10.0, L1Penalty: 3.0, ClusteredMTLPenalty: 3.0}  # ``mu_keep``

_DTYPE = torch.float64


@dataclass
class ADMMResult:
    """W [d, T], iterations, certified relative gap and the μ used at the end."""

    W: Tensor
    n_iter: int
    rel_gap: float
    mu: float
    n_factorizations: int


class _TaskSystem:
    """The Cholesky factor behind (2 H_t + μ I) w = r for one task, in ONE d × d (or
    n_t × n_t) array: the strict upper triangle keeps the Gram matrix, the lower triangle
    holds the factor of the current μ (LAPACK potrf/potrs touch only the lower triangle),
    the Gram's diagonal is kept aside. ``primal``: the factor is of 2H_t + μI itself
    (H_t = X_cᵀX_c, d × d); otherwise (fewer rows than features) of K_t + μ/2·I
    (K_t = X_c X_cᵀ, n_t × n_t), used through the Woodbury identity
    (2X_cᵀX_c + μI)⁻¹ r = (r − X_cᵀ (K_t + μ/2·I)⁻¹ X_c r)/μ. A new μ costs one copy of the
    upper triangle into the lower one and one Cholesky, no new memory."""

    _BLOCK = 512

    def __init__(self, gram: np.ndarray, primal: bool) -> None:
        self.primal = primal
        self.A = np.asfortranarray(gram)
        self.diag = np.diag(self.A).copy()
        self.mu: float | None = None

    def factor(self, mu: float) -> None:
        if self.mu == mu:
            return
        A, s = self.A, (2.0 if self.primal else 1.0)
        shift = mu if self.primal else 0.5 * mu
        m = A.shape[0]
        if m == 0:  # a task without labels: nothing to factor
            self.mu = mu
            return
        for j0 in range(0, m, self._BLOCK):  # lower := s·(upper)ᵀ + shift on the diagonal
            j1 = min(m, j0 + self._BLOCK)
            up = np.triu(A[j0:j1, j0:j1], 1)
            A[j0:j1, j0:j1] = up + s * up.T + np.diag(s * self.diag[j0:j1] + shift)
            A[j1:, j0:j1] = s * A[j0:j1, j1:].T
        self.mu = None  # the lower triangle is no longer a valid factor until potrf returns
        c, info = scipy.linalg.lapack.dpotrf(A, lower=1, clean=0, overwrite_a=1)
        if info != 0:
            raise np.linalg.LinAlgError(f"ADMM: the W-step matrix of μ = {mu:g} is not "
                                        f"positive definite (LAPACK dpotrf info {info})")
        if not np.shares_memory(c, A):  # LAPACK copied (unexpected layout): keep its result
            self.A = c
        self.mu = mu

    def solve(self, r: np.ndarray) -> np.ndarray:
        x, info = scipy.linalg.lapack.dpotrs(self.A, r, lower=1)
        if info != 0:
            raise ValueError(f"ADMM: dpotrs failed (info {info})")
        return x


def _base_rows(n: int, rows_of_task: list[np.ndarray]) -> np.ndarray:
    """The rows worth one shared Gram: those labelled for more than half of the tasks plus
    one. A row in the base costs one rank-1 term in the base plus one in every task that
    excludes it; a row outside costs one in every task that includes it, so it belongs in the
    base when 1 + (T − c) < c, c being its task count."""
    count = np.zeros(n, np.int64)
    for rows in rows_of_task:
        count[rows] += 1
    return np.flatnonzero(2 * count > len(rows_of_task) + 1)


def _gram(X: np.ndarray, rows: np.ndarray) -> np.ndarray:
    Xr = X[rows]
    return Xr.T @ Xr


def _shared_grams(X: np.ndarray, rows_of_task: list[np.ndarray], centre: bool,
                  share: bool = True, tasks: list[int] | None = None):
    """Per-task Gram matrices of the labelled rows, centred over them when fitting an
    intercept: H_t = X_tᵀX_t − n_t x̄_t x̄_tᵀ. The tasks' rows are subsets of ONE X, so the
    Gram of a base set B of rows (:func:`_base_rows`) is formed once and a task whose rows
    differ from B in fewer rows than it has gets H_t = X_BᵀX_B − X_{B∖t}ᵀX_{B∖t} +
    X_{t∖B}ᵀX_{t∖B}. At the benchmark's random 72 % masks B is nearly every row (as
    XᵀX − X_oᵀX_o, 2.6× fewer flops than each X_tᵀX_t); on GIFGIF-shaped data (GIFs rated
    on every emotion plus GIFs collected for one) B is the shared GIFs and each task adds
    only its own (≈2× fewer). Tasks with fewer rows than features get the dual n_t × n_t
    Gram of their centred rows. Yields (t, gram, primal) one task at a time, for the tasks
    ``tasks`` (default all)."""
    n, d = X.shape
    tasks = range(len(rows_of_task)) if tasks is None else tasks
    primal = [t for t in tasks if rows_of_task[t].size >= d]
    base = _base_rows(n, [rows_of_task[t] for t in primal]) if share and primal else None
    full = None
    for t in tasks:
        rows = rows_of_task[t]
        n_t = rows.size
        if n_t >= d:  # primal: d × d
            if base is not None:
                drop = np.setdiff1d(base, rows, assume_unique=True)
                add = np.setdiff1d(rows, base, assume_unique=True)
            if base is not None and drop.size + add.size < n_t:
                if full is None:
                    full = _gram(X, base)
                G = full - _gram(X, drop) if drop.size else full.copy()
                if add.size:
                    G += _gram(X, add)
            else:
                G = _gram(X, rows)
            if centre and n_t:
                xbar = X[rows].mean(0)
                G -= n_t * np.outer(xbar, xbar)
            yield t, G, True
        else:  # dual: n_t × n_t Gram of the centred rows
            Xt = X[rows]
            if centre and n_t:
                Xt = Xt - Xt.mean(0)
            yield t, Xt @ Xt.T, False


def tasks_on_basis(shape: tuple[int, int], rows_of_task: list[np.ndarray], centre: bool,
                   w_step: str = "auto") -> list[int]:
    """The tasks whose W-step goes through the shared eigenbasis (``w_step`` of
    :class:`MultitaskADMM`; ``auto``: by a cost model of the ρ path,
    :func:`~gifemo.models.shared_basis.worth_it`). ``shape``: X's (rows, features)."""
    if w_step == "cholesky" or not rows_of_task:
        return []
    if w_step == "basis":
        return list(range(len(rows_of_task)))
    n, d = shape
    base = _base_rows(n, rows_of_task)
    ranks = [task_update_rank(r, base, centre) for r in rows_of_task]
    sizes = [min(d, r.size) for r in rows_of_task]
    return [t for t, use in enumerate(worth_it(d, ranks, sizes, n)) if use]


def _scale(penalty, W: Tensor) -> float:
    """The size of W's components that sets μ: σ₁(W) for the trace norm (its solutions are
    low-rank, led by one direction); the mean |Wᵢⱼ| over the nonzero entries for the lasso
    (its solutions at small ρ are dense, and σ₁ or max |Wᵢⱼ| put μ 10–30× below the best
    value: 170–710 iterations per ρ against 30–120 at the best, n = 1,200, d = 939)."""
    if isinstance(penalty, L1Penalty):
        nz = W[W != 0]
        return float(nz.abs().mean()) if nz.numel() else 0.0
    return penalty.dual_norm(W)  # σ₁ (0 for an empty W)


def _curvature_mu(penalty: ClusteredMTLPenalty) -> float:
    """μ for clustered MTL: the geometric mean of the penalty's curvatures. Near a W its
    Hessian along W's singular directions is 2c/(η + γᵢ), between 2c/(1 + η) and 2c/η; for
    a quadratic penalty of curvature h, ADMM with μ = h contracts by the same factor in
    every direction of the loss (the Douglas-Rachford operator's penalty reflection is 0),
    so μ sits between the two ends (within √((1 + η)/η) of both)."""
    c, eta = penalty.scale, penalty.eta
    return 2.0 * c / math.sqrt(eta * (1.0 + eta))


class MultitaskADMM:
    """ADMM for min f(W) + Ω(W) on one masked problem, reusable along a ρ path (or CV grid)
    and across the penalties of :data:`PENALTIES`.

    Parameters
    ----------
    prob : gifemo.models.solvers._Problem
        The prepared data (float64, rows without labels dropped).
    alpha : float
        Over-relaxation (Boyd et al. §3.4.3; 1.5–1.8 is usual).
    mu_snap : float
        μ is rounded to a power of ``mu_snap`` (1 = no rounding).
    mu_keep : float or None
        The factored μ is kept for a new ρ while the ideal μ is within this factor of it (a
        new μ costs T Cholesky factorisations; a μ off by a few × costs iterations).
        Default :data:`MU_KEEP` for the penalty: 10 for the trace norm, 3 for the lasso,
        whose iteration count rises faster with a μ off (n = 1,200, d = 939, 7-ρ path: 3
        factor sets and 670 iterations at 10, 5 sets and 460 iterations at 3; at paper
        scale a set costs ≈ 22 iterations).
    shared_gram : bool
        Form the per-task Grams from one XᵀX (:func:`_shared_grams`); False forms each
        X_tᵀX_t directly (the benchmark's reference).
    w_step : {"auto", "cholesky", "basis"}
        How the W-step systems are solved: a Cholesky factor per task (:class:`_TaskSystem`)
        or, for tasks whose rows differ little from the rows most tasks share, one
        eigenbasis of the shared rows' Gram and a small capacitance matrix per task
        (:class:`~gifemo.models.shared_basis.SharedBasisSystems`, where a new μ is cheap).
        ``auto`` decides per task by a cost model of the ρ path (:func:`~gifemo.models.
        shared_basis.worth_it`); ``basis`` puts every task on the basis.
    """

    def __init__(self, prob, alpha: float = 1.6, mu_snap: float = 1.0,
                 mu_keep: float | None = None, shared_gram: bool = True,
                 w_step: str = "auto") -> None:
        if w_step not in ("auto", "cholesky", "basis"):
            raise ValueError(f"w_step must be auto, cholesky or basis, got {w_step!r}")
        self.prob = prob
        self.alpha = alpha
        self.mu_snap = mu_snap
        self.mu_keep = mu_keep
        self._X = prob.X.numpy()
        X = self._X
        self._rows = [np.flatnonzero(prob.M[:, t].numpy() > 0) for t in range(prob.T)]
        rhs0 = np.zeros((prob.d, prob.T))
        for t, rows in enumerate(self._rows):
            yt = prob.Y[rows, t].numpy()
            if prob.fit_intercept and rows.size:
                yt = yt - yt.mean()
            rhs0[:, t] = 2.0 * (X[rows].T @ yt)  # Xᵀ C y = X_cᵀ y_c (C idempotent)
        self._rhs0 = torch.from_numpy(rhs0)
        self.basis: SharedBasisSystems | None = None
        on_basis = tasks_on_basis(X.shape, self._rows, prob.fit_intercept, w_step)
        if on_basis:
            self.basis = SharedBasisSystems(X, self._rows, on_basis,
                                            _base_rows(X.shape[0], self._rows),
                                            prob.fit_intercept)
        own = [t for t in range(prob.T) if t not in set(on_basis)]
        self._systems: dict[int, _TaskSystem] = {}
        for t, G, primal in _shared_grams(X, self._rows, prob.fit_intercept, shared_gram, own):
            self._systems[t] = _TaskSystem(G, primal)
        self._primal = [t for t, s in self._systems.items() if s.primal]
        self._dual = [t for t, s in self._systems.items() if not s.primal]
        self.n_factorizations = 0
        self.factor_seconds = 0.0  # time spent in factorisations (benchmarks)
        self._held_mu: float | None = None  # the μ the systems are factored for
        self.mu: float | None = None
        self._L: float | None = None
        self.released = False

    @property
    def nbytes(self) -> int:
        """Bytes held by the W-step systems (one d × d or n_t × n_t array per task on its
        own factor; the basis and r_t × d rows for the tasks on the shared basis)."""
        own = sum(s.A.nbytes for s in self._systems.values())
        return own + (self.basis.nbytes if self.basis is not None else 0)

    def release(self) -> None:
        """Free the W-step systems (T × d² floats at paper scale); the solver is unusable
        afterwards."""
        self._systems = {}
        self._primal, self._dual = [], []
        self.basis = None
        self.released = True

    # ---- pieces --------------------------------------------------------------------------
    def _factor(self, mu: float) -> None:
        if self._held_mu != mu:
            t0 = time.perf_counter()
            self._held_mu = None
            if self.basis is not None:
                self.basis.factor(mu)
            for s in self._systems.values():  # one after another: OpenBLAS's 2 threads
                s.factor(mu)  # inside each potrf beat 2 single-threaded ones side by side
                              # (8.0 vs 11.2 s per set at d = 4,235, idle 2 cores)
            self._held_mu = mu
            self.n_factorizations += 1
            self.factor_seconds += time.perf_counter() - t0

    def _w_step(self, mu: float, V: Tensor) -> Tensor:
        """Solve (2H_t + μI) w_t = 2X_cᵀy_t + μ v_t for every task. Tasks factored through
        K_t share one product with X and one with Xᵀ (all their columns at once); tasks on
        the shared basis are solved together."""
        rhs = (self._rhs0 + mu * V).numpy()
        out = np.empty_like(rhs)
        if self.basis is not None:
            out[:, self.basis.tasks] = self.basis.solve(rhs[:, self.basis.tasks])
        for t in self._primal:
            out[:, t] = self._systems[t].solve(rhs[:, t])
        if self._dual:
            X = self._X
            P = X @ rhs[:, self._dual]
            S = np.zeros_like(P)
            for j, t in enumerate(self._dual):
                rows = self._rows[t]
                if rows.size == 0:  # no labels: H_t = 0, w_t = v_t
                    continue
                p = P[rows, j]
                if self.prob.fit_intercept:
                    p = p - p.mean()
                q = self._systems[t].solve(p)
                if self.prob.fit_intercept:
                    q = q - q.mean()
                S[rows, j] = q
            out[:, self._dual] = (rhs[:, self._dual] - X.T @ S) / mu
        return torch.from_numpy(out)

    def _residuals(self, *Ws: Tensor) -> list[tuple[Tensor, Tensor]]:
        """(R_c, XᵀR_c) at each W, the products in numpy (float64 products with a thin W
        measured ~3× faster there than in torch on this machine's OpenBLAS) and for all the
        Ws in one pass over X each way (the products are memory-bound: two candidates at
        paper scale, n = 12,600, d = 4,235, cost 0.26 s each apart)."""
        T = self.prob.T
        XW = self._X @ np.concatenate([W.numpy() for W in Ws], axis=1)
        Rs = [self.prob.centred(torch.from_numpy(XW[:, k * T:(k + 1) * T]))[0]
              for k in range(len(Ws))]
        XtR = self._X.T @ np.concatenate([R.numpy() for R in Rs], axis=1)
        return [(R, torch.from_numpy(XtR[:, k * T:(k + 1) * T])) for k, R in enumerate(Rs)]

    def initial_mu(self, penalty, W0: Tensor, G0: Tensor) -> float:
        """μ = ρ / s(W), s the scale of W's components (:func:`_scale`): the threshold ρ/μ
        then sits at that scale, which measured best on synthetic problems (see the module
        docstring). s is taken from the warm start, or, from W = 0, from one proximal
        gradient step, prox(−∇f(0)/L). μ is then kept fixed. Clustered MTL: μ from the
        penalty's curvature (:func:`_curvature_mu`), whatever W."""
        if isinstance(penalty, ClusteredMTLPenalty):
            return self._kept(penalty, _curvature_mu(penalty))
        rho = penalty.rho
        s1 = _scale(penalty, W0)
        if s1 <= 0.0:
            if self._L is None:  # a rough 2 λ_max(H_t) is enough for a guess
                self._L = 2.0 * float(self.prob.task_eigmax(max_steps=15, rtol=1e-2).max())
            s1 = _scale(penalty, penalty.prox(-G0 / self._L, 1.0 / self._L))
            if s1 <= 0.0:  # the step is still 0 (ρ near its zero-solution bound)
                s1 = 1e-3 * penalty.dual_norm(G0) / self._L
        mu = rho / s1 if s1 > 0 else max(rho, 1e-8)
        return self._kept(penalty, mu)

    def _kept(self, penalty, mu: float) -> float:
        """``mu`` snapped (``mu_snap``), or the factored μ when within ``mu_keep`` of it."""
        if self.mu_snap > 1.0:  # a few μ values along a ρ path share one set of factors
            mu = self.mu_snap ** round(math.log(mu) / math.log(self.mu_snap))
        held = self._held_mu
        keep = self.mu_keep if self.mu_keep is not None else MU_KEEP[type(penalty)]
        if held is not None and max(mu / held, held / mu) <= keep:
            mu = held  # close enough: keep the factors (see ``mu_keep``)
        return mu

    READAPT_FIRST = 20  # μ is re-estimated at iterations 20, 40, 80, 160, … of a solve
    READAPT_OFF = 3.0   # … and replaced when off by more than this (or ``mu_keep``)

    def _readapted_mu(self, penalty, Z: Tensor, mu: float) -> float:
        """μ re-estimated from the current iterate's scale, ρ / s(Z), when it is further than
        ``mu_keep`` (at least :data:`READAPT_OFF`) from the μ in use; else ``mu``. A cold start takes s from one gradient
        step, which can be far off: the lasso at ρ = 100 on a paper-scale CV fit (15,494 ×
        4,096, ``data/paper_synthetic``) needed 820 iterations (332 s) with that μ kept, and
        25–65 per ρ once warm-started."""
        if isinstance(penalty, ClusteredMTLPenalty):  # μ comes from the penalty alone
            return mu
        s = _scale(penalty, Z)
        if s <= 0.0:
            return mu
        ideal = penalty.rho / s
        keep = self.mu_keep if self.mu_keep is not None else MU_KEEP[type(penalty)]
        off = max(keep, self.READAPT_OFF)
        return ideal if max(ideal / mu, mu / ideal) > off else mu

    # ---- solve ----------------------------------------------------------------------------
    def solve(self, penalty, W0: Tensor | None = None, tol: float = 1e-4,
              max_iter: int = 5000, check_every: int = 5, mu: float | None = None):
        """Minimise f(W) + Ω(W) (``penalty``: one of :data:`PENALTIES`) to a certified
        relative gap ≤ ``tol``.

        Warm start: Z = W0 and U = −∇f(W0)/μ (the scaled dual that is optimal if W0 is).
        ``mu``: the ADMM penalty, fixed for the solve (default :meth:`initial_mu`, then
        re-estimated at iterations 20, 40, 80, … by :meth:`_readapted_mu`).
        Returns (W, n_iter, GapReport, μ).
        """
        if self.released:
            raise RuntimeError("this MultitaskADMM was released (release()); build a new one")
        if not isinstance(penalty, PENALTIES):
            raise TypeError(f"ADMM solves {', '.join(p.__name__ for p in PENALTIES)}, "
                            f"got {penalty!r}")
        prob, pen = self.prob, penalty
        Z = torch.zeros(prob.d, prob.T, dtype=_DTYPE) if W0 is None else W0.clone()
        [(R, XtR)] = self._residuals(Z)
        G = 2.0 * XtR
        report = prob.gap(Z, pen, R=R, XtR=XtR)
        best_W, primal, dual = Z, report.primal, report.dual
        if report.rel_gap <= tol:
            return best_W, 0, report, mu if mu is not None else float("nan")
        adapt = mu is None
        if mu is None:
            mu = self.initial_mu(pen, Z, G)
        U = -G / mu
        self._factor(mu)
        it = 0
        for it in range(1, max_iter + 1):
            W = self._w_step(mu, Z - U)
            What = self.alpha * W + (1.0 - self.alpha) * Z
            Z = pen.prox(What + U, 1.0 / mu)
            U = U + What - Z
            q, r = divmod(it, self.READAPT_FIRST)
            if adapt and r == 0 and q & (q - 1) == 0:  # q a power of two
                new = self._readapted_mu(pen, Z, mu)
                if new != mu:  # the scaled dual follows μ: U = Λ/μ
                    U = U * (mu / new)
                    mu = new
                    self._factor(mu)
            if it % check_every == 0 or it == max_iter:
                for cand, (R, XtR) in zip((Z, W), self._residuals(Z, W)):
                    rep = prob.gap(cand, pen, R=R, XtR=XtR)
                    if not math.isfinite(rep.primal):
                        raise FloatingPointError(f"ADMM: objective became {rep.primal} at "
                                                 f"iteration {it}")
                    if rep.primal < primal:
                        primal, best_W = rep.primal, cand
                    dual = max(dual, rep.dual)
                report = GapReport(primal, dual, max(primal - dual, 0.0) / max(primal, 1e-300))
                if report.rel_gap <= tol:
                    break
        self.mu = mu
        return best_W, it, report, mu
