"""The ADMM W-step systems (2 H_t + μ I) w_t = r_t of many tasks through ONE eigenbasis.

When the tasks' labelled rows are mostly the same rows (GIFGIF: 6,113 GIFs rated on every
emotion, paper §3.1, plus GIFs collected for one emotion each), every task's centred Gram is
the base Gram H_B = X_BᵀX_B of the shared rows plus a few signed rank-one terms::

    H_t = H_B − Σ_{i ∈ B∖t} xᵢxᵢᵀ + Σ_{i ∈ t∖B} xᵢxᵢᵀ − n_t x̄_t x̄_tᵀ  =  H_B + U_tᵀ S_t U_t

(S_t = ±1 on the diagonal, U_t the r_t rows that differ plus the centring row √n_t x̄_t).
With H_B = Q Λ Qᵀ (one symmetric eigendecomposition, μ-free) the Woodbury identity gives
every task's solve for ANY μ::

    (2H_t + μI)⁻¹ = Q [D − D Ũ_tᵀ C_t⁻¹ Ũ_t D] Qᵀ,   D = (2Λ + μI)⁻¹,   Ũ_t = U_t Q,
    C_t = ½ S_t + Ũ_t D Ũ_tᵀ   (r_t × r_t, symmetric, indefinite: LU-factored)

Cost, against one Cholesky per task and μ (d³/3 flops each): one eigendecomposition (~16
Cholesky's time at d = 4,235 on this machine's OpenBLAS: 7.7 s against 0.5 s), one product
of the differing rows with Q (each row once, kept: ``rows_rot``), then per μ only
r_t² d + ⅔ r_t³ per task, and per solve two products with Q and two with ``rows_rot`` for
all tasks at once (memory-bound: reading each task's r_t rows separately cost 0.61 s a solve
against 0.44 s shared, 1.05 against 0.33 GiB held, random 72 % masks at n = 6,113, under
load). On GIFGIF-shaped data (r_t ≈ 740 ≪ d) a new μ costs 1.5–2.3 s for 17 tasks instead of 5.5–6.4 s (measured by
``benchmarks/solvers.py --trace-path --masks gifgif --n 12600``), so μ can follow ρ along
the path. On random masks (each task lacks a different 28 % of the rows, r_t ≈ 1,700 at
n = 6,113) a new μ costs about what 17 Cholesky factorisations do, but each iteration reads the
differing rows instead of 17 d × d factors twice, and the path is still 1.4× faster (1.2× on
the paper's CV fits, r_t ≈ 2,087 of 4,096); :func:`worth_it` weighs both.

The eigendecomposition depends only on the base rows' contents, so it is memoised
(:data:`BASIS_MEMO`, keyed by content): the visual + tag lasso, trace-norm and clustered-MTL
rows of one test split cross-validate on the same folds and share their bases.

Numerics: the capacitance C_t is indefinite (dropped and centring rows enter with −), but
2H_t + μI is positive definite with eigenvalues ≥ μ, so C_t is nonsingular; the W-step's
accuracy is checked against direct solves in the tests, and ADMM's duality-gap certificate
does not rely on it.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from gifemo.models.fit_memo import FitMemo, content_key

__all__ = ["SharedBasisSystems", "BASIS_MEMO", "worth_it", "task_update_rank"]

# bases (Λ, Q) kept by content: 6 = the 5 CV folds + the refit of one test split (143 MB
# each at d = 4,235)
BASIS_MEMO = FitMemo(size=6, copy_out=False)
# The cost model of :func:`worth_it`, for one ρ path, in flops (this machine, 2 cores):
EIGH_IN_CHOLESKYS = 16.0  # one d × d eigh ≈ 16 d × d Cholesky factorisations (7.7 vs 0.5 s)
MU_SETS = 4               # factorisations a ρ path needs (ADMM's mu_keep; 4 measured)
PATH_ITERATIONS = 120     # ADMM iterations a 7-ρ path needs (115–140 measured)
READ_COST = 40.0          # flops worth one float64 read in a memory-bound solve (~50 GFLOP/s
                          # in dgemm against ~10 GB/s streamed)


def task_update_rank(rows: np.ndarray, base: np.ndarray, centre: bool) -> int:
    """r_t: rows of the task outside the base + base rows it lacks (+1 for centring)."""
    in_base = np.isin(rows, base, assume_unique=True).sum()
    return int(rows.size - in_base + base.size - in_base + (1 if centre and rows.size else 0))


def worth_it(d: int, ranks: list[int], sizes: list[int], n_rows: int) -> list[bool]:
    """Which tasks to solve through the shared basis, by the path cost of each W-step:

    - own factor (``sizes``: d for a primal task, n_t for a dual one, m): MU_SETS Cholesky
      factorisations (m³/3) + PATH_ITERATIONS solves reading the factor twice (2m²);
    - on the basis: MU_SETS capacitance matrices and LUs (r² d + ⅔ r³) + PATH_ITERATIONS
      solves reading its r_t rotated rows twice (2 r d; an upper bound since the solve reads
      the rows once for all tasks, :meth:`SharedBasisSystems.solve`);

    and only if the tasks that gain repay the basis itself: the eigendecomposition, two reads
    of Q per iteration, and rotating the differing rows once (each at most once: ≤ ``n_rows``
    rows, shared by the tasks). Measured (d = 4,235 / 4,096, idle): the random 72 % masks of
    ``benchmarks/solvers.py --trace-path`` (r_t ≈ 1,700) 75.5 s against 103.1 s for the
    path; GIFGIF-shaped masks (r_t ≈ 740, n = 12,600) 61.5 s against 132.0 s; the lasso's
    path on a CV fit of ``data/paper_synthetic`` (r_t ≈ 2,087, n = 15,494) 181.7 s against
    214.1 s."""
    chol = d ** 3 / 3.0
    own = [MU_SETS * m ** 3 / 3.0 + PATH_ITERATIONS * 2.0 * m * m * READ_COST for m in sizes]
    basis = [MU_SETS * (r * r * d + (2.0 / 3.0) * r ** 3)
             + PATH_ITERATIONS * 2.0 * r * d * READ_COST for r in ranks]
    use = [b < o for b, o in zip(basis, own)]
    gain = sum(o - b for b, o, u in zip(basis, own, use) if u)
    rotated = min(sum(r for r, u in zip(ranks, use) if u), n_rows)
    shared = (EIGH_IN_CHOLESKYS * chol + PATH_ITERATIONS * 2.0 * d * d * READ_COST
              + 2.0 * rotated * d * d)
    if gain <= shared:
        return [False] * len(ranks)
    return use


def _eigh_basis(Xb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Λ, Q) of X_BᵀX_B, eigenvalues clipped at 0 (the Gram is PSD; rounding can dip)."""
    H = Xb.T @ Xb
    lam, Q = scipy.linalg.eigh(H, overwrite_a=True, check_finite=False, driver="evr")
    return np.maximum(lam, 0.0), np.asfortranarray(Q)


def shared_basis(X: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The memoised eigendecomposition of the base rows' Gram."""
    Xb = X[base]
    return BASIS_MEMO.get_or_compute(content_key(Xb), lambda: _eigh_basis(Xb))


class SharedBasisSystems:
    """The W-step systems of the tasks ``tasks`` (indices into ``rows_of_task``) through the
    eigenbasis of the base rows' Gram; :meth:`factor` sets μ, :meth:`solve` solves all of
    them at once (see the module docstring)."""

    def __init__(self, X: np.ndarray, rows_of_task: list[np.ndarray], tasks: list[int],
                 base: np.ndarray, centre: bool) -> None:
        self.tasks = list(tasks)
        self.lam, self.Q = shared_basis(X, base)
        updates = []  # (rows to subtract, rows to add) per task
        for t in self.tasks:
            rows = rows_of_task[t]
            updates.append((np.setdiff1d(base, rows, assume_unique=True),
                            np.setdiff1d(rows, base, assume_unique=True)))
        needed = np.unique(np.concatenate([np.concatenate(u) for u in updates] + [
            np.zeros(0, np.int64)]).astype(np.int64))
        where = np.full(X.shape[0], -1, np.int64)
        where[needed] = np.arange(needed.size)
        # every differing row rotated once, shared by the tasks, then the centring rows
        centring = [np.sqrt(rows_of_task[t].size) * X[rows_of_task[t]].mean(0)
                    for t in self.tasks if centre and rows_of_task[t].size]
        self.rows_rot = np.concatenate([X[needed]] + [c[None, :] for c in centring]) @ self.Q
        self.index: list[np.ndarray] = []  # task's rows of U_t in rows_rot
        self.signs: list[np.ndarray] = []
        c = needed.size
        for t, (drop, add) in zip(self.tasks, updates):
            idx = [where[drop], where[add]]
            signs = [-np.ones(drop.size), np.ones(add.size)]
            if centre and rows_of_task[t].size:
                idx.append(np.array([c]))
                signs.append(-np.ones(1))
                c += 1
            self.index.append(np.concatenate(idx).astype(np.int64))
            self.signs.append(np.concatenate(signs))
        self.mu: float | None = None
        self._lu: list = []
        self._dinv: np.ndarray | None = None

    @property
    def nbytes(self) -> int:
        return self.Q.nbytes + self.rows_rot.nbytes

    def factor(self, mu: float) -> None:
        """Capacitance matrices C_t = ½S_t + Ũ_t D Ũ_tᵀ of μ, LU-factored."""
        if self.mu == mu:
            return
        self.mu = None
        dinv = 1.0 / (2.0 * self.lam + mu)
        sq = np.sqrt(dinv)
        lus = []
        for idx, s in zip(self.index, self.signs):
            if idx.size == 0:
                lus.append(None)
                continue
            M = self.rows_rot[idx] * sq
            C = M @ M.T
            C[np.diag_indices_from(C)] += 0.5 * s
            lus.append(scipy.linalg.lu_factor(C, overwrite_a=True, check_finite=False))
        self._lu, self._dinv, self.mu = lus, dinv, mu

    def solve(self, R: np.ndarray) -> np.ndarray:
        """Columns j: (2H_t + μI)⁻¹ R[:, j] for t = tasks[j]. The rotated rows are read
        twice for all tasks at once (two products with ``rows_rot``), not twice per task:
        the solve is memory-bound (at r_t ≈ 1,700, d = 4,235, T = 17 the tasks' rows are
        1.9 GB a read against 0.2 GB for the shared ones)."""
        dinv = self._dinv
        Rt = self.Q.T @ R
        Rt *= dinv[:, None]
        P = self.rows_rot @ Rt  # Ũ Rt for every differing row and task at once
        Z = np.zeros_like(P)
        for j, (idx, lu) in enumerate(zip(self.index, self._lu)):
            if lu is not None:
                Z[idx, j] = scipy.linalg.lu_solve(lu, P[idx, j], check_finite=False)
        Rt -= dinv[:, None] * (self.rows_rot.T @ Z)
        return self.Q @ Rt
