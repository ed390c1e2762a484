"""Solver benchmark: time to a 1e-4 relative objective gap, ours against baselines, one run.

Problem: synthetic GIFGIF-sized data (n = 2000 GIFs, d = 4235 = 4096 non-negative "visual"
+ 139 sparse "tag" features, each part L2-normalised per row, T = 17 emotions, 60 % of
entries labelled, targets ≈ 25 ± 5 from a two-cluster low-rank W), plus the demo features
when ``--demo-npz`` points to an .npz with X, Y, mask (skipped otherwise).

For each penalty the reference optimum F* is the lowest objective any run reached, and its
certified lower bound D (our duality gap) is printed too, so "relative gap" = (F − F*)/F*.

- lasso (ρ = 0.1·ρ_max): ours (FISTA, tol 1e-4; and ``auto``, which delegates to sklearn
  coordinate descent and certifies) vs scikit-learn ``Lasso`` per task on its
  labelled rows at α_t = ρ/(2 n_t) (the same objective), at sklearn tol 1e-4 (its default)
  and tighter until it reaches a 1e-4 gap.
- trace norm (ρ = 0.1·‖2XᵀR₀‖₂): ours (FISTA) alone (no maintained Python solver exists).
- clustered MTL (k = 2; ρ1 = ρ2 = 1 and ρ1 = 10, ρ2 = 0.1): ours (L-BFGS on W with M* in
  closed form; scipy L-BFGS-B, and torch.optim.LBFGS for the choice made in solvers.py) vs
  a MALSAR ``Least_CMTL``-style accelerated projected gradient over (W, M) jointly (its
  defaults: W0 = 0, M0 = kI/T, γ = 1 doubling line search, non-symmetric eig for the
  projection, stop on relative objective change ≤ 1e-4, at most 1000 iterations). Its W is
  scored with the exact objective (M optimal for that W), which only helps it.

Run:  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python benchmarks/solvers.py
(one thread: the box has 2 cores shared with others; every solver gets the same one).

``--trace-path``: the trace norm at paper scale instead. n = 6,113 GIFs (GIFGIF), d = 4,235,
T = 17, per-task masks shaped like one CV fit (each task's own random 10 % test GIFs and
one of 5 folds left out: ~72 % labelled), the trace-norm CV grid (``trace_norm_grid`` of
``conf/train.yaml``) solved largest ρ first with warm starts, in one run: the ADMM W-step
by a Cholesky factor per task, by one shared eigenbasis (``gifemo.models.shared_basis``),
and by that basis with μ re-chosen at every ρ (:data:`ADMM_VARIANTS`; which one ``auto``
picks is printed), then FISTA with the old step (power iteration on the uncentred, unmasked
X) and the exact one, capped at ``--fista-iters`` iterations per ρ (they would take hours
to 1e-4). Each row: iterations, seconds, seconds in factorisations, certified relative
duality gap, nonzeros; setup and memory per variant. ``--masks gifgif`` takes GIFGIF+-shaped
masks instead (26 % of the rows labelled for every task, each other row for one task; use
``--n 12600``, one CV fit's rows at the paper's 23,544 GIFs), where the shared basis pays.

  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/solvers.py --trace-path [--n 6113]
      [--fista-iters 20] [--masks random|gifgif]

One BLAS thread under load: on the shared 2-core box under load, two OpenBLAS threads made a
4,235² Cholesky 6–10× slower than one (spinning threads). On an idle box the default (2
threads) is faster: 8.0 s per set of 17 factorisations (the trace-path figures in the
README were taken that way, without OMP_NUM_THREADS).

``--cv-fit FOLDER``: the lasso's (or ``--penalty trace_norm|clustered_mtl``) CV grid on one
real CV fit of a dataset folder (seed 0, fold 0), e.g. ``data/paper_synthetic``, where every
emotion has its own test set and folds (so the tasks' rows differ by ~2,000 of ~5,000); for
clustered MTL ADMM against L-BFGS in one run. ``--next-fold``: instead, the grid's first
value on fold 1 from W = 0 and from fold 0's solution (the cross-validation's warm start).

  .venv/bin/python benchmarks/solvers.py --cv-fit data/paper_synthetic [--features visual]
      [--penalty lasso|trace_norm|clustered_mtl] [--cd-rhos 2] [--next-fold]
      [--mu-keeps 3,5,10] [--dtype-probe]

``--mu-keeps``: the path once per ADMM ``mu_keep`` (factor sets against iterations).
``--dtype-probe``: one iteration's W-step solve and products with X in float64 and float32
(a lever not taken: the float32 solve's relative error is printed beside the time ratio).

``--lasso-path``: the lasso's CV grid on the same problem, the ADMM variants for all tasks
against scikit-learn coordinate descent on the first ``--cd-tasks`` tasks (minutes per task
at small ρ; its all-task time is printed as an estimate, ×T/cd_tasks).

  .venv/bin/python benchmarks/solvers.py --lasso-path [--n 6113] [--cd-tasks 2] [--masks ...]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso

from gifemo.models.admm import MultitaskADMM, tasks_on_basis
from gifemo.models.penalties import ClusteredMTLPenalty, L1Penalty, TraceNormPenalty
from gifemo.models.solvers import (
    _fista,
    _lbfgs,
    _lasso_cd,
    _Problem,
    fit_multitask_linear,
    objective,
)


def synthetic(n: int = 2000, d_vis: int = 4096, d_tag: int = 139, T: int = 17,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g = np.random.default_rng(seed)
    vis = np.maximum(g.standard_normal((n, d_vis)) - 0.5, 0.0)  # ReLU-like fc6, sparse
    vis /= np.linalg.norm(vis, axis=1, keepdims=True)
    tags = (g.random((n, d_tag)) < 0.03) * g.integers(1, 3, (n, d_tag))
    tags = tags / np.maximum(np.linalg.norm(tags, axis=1, keepdims=True), 1e-12)
    X = np.hstack([vis, tags])
    d = X.shape[1]
    cluster = (np.arange(T) % 2 == 0)
    base = g.standard_normal((d, 2)) * (g.random((d, 2)) < 0.05) * 40
    W = base[:, cluster.astype(int)] + g.standard_normal((d, T)) * (g.random((d, T)) < 0.01) * 20
    Y = 25 + X @ W + g.standard_normal((n, T)) * 3
    mask = g.random((n, T)) < 0.6
    return X, Y, mask


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def sklearn_lasso(X, Y, mask, rho, tol):
    W = np.zeros((X.shape[1], Y.shape[1]))
    b = np.zeros(Y.shape[1])
    for t in range(Y.shape[1]):
        rows = mask[:, t]
        m = Lasso(alpha=rho / (2 * rows.sum()), tol=tol, max_iter=100_000)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            m.fit(X[rows], Y[rows, t])
        W[:, t], b[t] = m.coef_, m.intercept_
    return W, b


def malsar_cmtl(prob: _Problem, rho1: float, rho2: float, k: int, max_iter: int = 1000,
                tol: float = 1e-4) -> tuple[torch.Tensor, int]:
    """Accelerated projected gradient over (W, M), after MALSAR's Least_CMTL (unhalved loss,
    intercept eliminated exactly as in ours so both solve the same problem)."""
    T = prob.T
    eta = rho2 / rho1
    c = rho1 * eta * (1 + eta)
    I = np.eye(T)

    def project(Msp):
        lam, P = np.linalg.eig(Msp)  # MALSAR: non-symmetric eig, real parts
        P, lam = P.real, lam.real
        lo, hi = lam.min() - 1.0, lam.max()
        for _ in range(100):  # capped-simplex projection of the eigenvalues (bsa_ihb)
            mid = 0.5 * (lo + hi)
            if np.clip(lam - mid, 0, 1).sum() > k:
                lo = mid
            else:
                hi = mid
        s = np.clip(lam - 0.5 * (lo + hi), 0, 1)
        return (P * s) @ P.T, P, s

    def loss(W):
        R, _ = prob.centred(prob.X @ torch.from_numpy(W))
        return float((R * R).sum()), R

    W = Wold = np.zeros((prob.d, T))
    M = Mold = I * k / T
    t, t_old, gamma = 1.0, 0.0, 1.0
    fvals = []
    it = 0
    while it < max_iter:
        a = (t_old - 1) / t
        Ws, Ms = (1 + a) * W - a * Wold, (1 + a) * M - a * Mold
        IM = eta * I + Ms
        invIMWt = np.linalg.solve(IM, Ws.T)
        ls, R = loss(Ws)
        gW = 2 * (prob.X.T @ R).numpy() + 2 * c * invIMWt.T
        gM = -c * (Ws.T @ Ws) @ np.linalg.inv(IM) @ np.linalg.inv(IM)
        Fs = ls + c * np.trace(Ws @ invIMWt)
        stalled = False
        while True:
            Wz = Ws - gW / gamma
            Mz, P, s = project(Ms - gM / gamma)
            Fz = loss(Wz)[0] + c * np.trace(Wz @ (P * (1 / (eta + s))) @ P.T @ Wz.T)
            dW, dM = Wz - Ws, Mz - Ms
            if (np.sum(dW ** 2) + np.sum(dM ** 2)) / 2 <= np.finfo(float).eps:
                stalled = True
                break
            if Fz <= Fs + np.sum(dW * gW) + np.sum(dM * gM) + gamma / 2 * (
                    np.sum(dW ** 2) + np.sum(dM ** 2)):
                break
            gamma *= 2
        Wold, W, Mold, M = W, Wz, M, Mz
        fvals.append(Fz)
        if stalled:
            break
        if it >= 2 and abs(fvals[-1] - fvals[-2]) <= tol * fvals[-2]:
            break
        it += 1
        t_old, t = t, 0.5 * (1 + math.sqrt(1 + 4 * t * t))
    return torch.from_numpy(W), it + 1


def torch_lbfgs(prob: _Problem, pen, tol: float = 1e-4, max_outer: int = 200):
    """The alternative to scipy L-BFGS-B: torch.optim.LBFGS (strong Wolfe), certificate
    checked every 10 inner iterations."""
    W = torch.zeros(prob.d, prob.T, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([W], lr=1, max_iter=10, history_size=20,
                            line_search_fn="strong_wolfe", tolerance_grad=0,
                            tolerance_change=0)

    def closure():
        opt.zero_grad()
        R, _ = prob.centred(prob.X @ W)
        F = (R * R).sum() + pen.value(W)
        F.backward()
        return F

    for outer in range(max_outer):
        opt.step(closure)
        rep = prob.gap(W.detach(), pen)
        if rep.rel_gap <= tol:
            break
    return W.detach(), (outer + 1) * 10, rep.rel_gap


def row(name, secs, F, Fstar, extra=""):
    gap = (F - Fstar) / Fstar
    print(f"  {name:<44s} {secs:8.2f} s   F = {F:14.6f}   gap vs F* = {gap:9.2e}  {extra}")


def bench(X, Y, mask, label):
    print(f"\n=== {label}: n={X.shape[0]}, d={X.shape[1]}, T={Y.shape[1]}, "
          f"labelled={mask.mean():.2f} ===")
    prob = _Problem(X, Y, mask, True)
    R0, _ = prob.centred(torch.zeros(prob.X.shape[0], prob.T, dtype=torch.float64))
    G0 = 2 * prob.X.T @ R0

    # ---- lasso
    rho = 0.1 * float(G0.abs().max())
    pen = L1Penalty(rho)
    print(f"lasso  rho = {rho:.4g}")
    ours, t_ours = timed(lambda: fit_multitask_linear(X, Y, mask, pen))
    fista, t_fista = timed(lambda: fit_multitask_linear(X, Y, mask, pen, method="fista",
                                                        max_iter=3000))
    runs = []
    for tol in (1e-4, 1e-6, 1e-8):
        (W, b), secs = timed(lambda: sklearn_lasso(X, Y, mask, rho, tol))
        runs.append((tol, secs, objective(X, Y, mask, pen, W, b), W))
    Fstar = min([ours.objective, fista.objective] + [r[2] for r in runs])
    dual = prob.gap(torch.from_numpy(runs[-1][3]), pen).dual
    print(f"  F* = {Fstar:.6f} (certified lower bound {dual:.6f})")
    row("ours auto (= sklearn CD per task + certificate)", t_ours, ours.objective, Fstar,
        f"certified={ours.rel_gap:.1e}")
    row("ours FISTA tol=1e-4", t_fista, fista.objective, Fstar,
        f"iters={fista.n_iter} certified={fista.rel_gap:.1e}")
    first_ok = None
    for tol, secs, F, _ in runs:
        row(f"sklearn Lasso per task tol={tol:g}", secs, F, Fstar)
        if first_ok is None and (F - Fstar) / Fstar <= 1e-4:
            first_ok = secs
    if first_ok:
        print(f"  -> time to 1e-4: sklearn / ours FISTA = {first_ok / t_fista:.2f}, "
              f"sklearn / ours auto = {first_ok / t_ours:.2f}")
    else:
        print("  -> sklearn did not reach 1e-4 at any tested tol")

    # ---- trace norm
    rho = 0.1 * float(torch.linalg.matrix_norm(G0, ord=2))
    pen = TraceNormPenalty(rho)
    print(f"trace norm  rho = {rho:.4g}")
    ours, t_ours = timed(lambda: fit_multitask_linear(X, Y, mask, pen))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        tight, t_tight = timed(lambda: fit_multitask_linear(X, Y, mask, pen, tol=1e-6,
                                                            max_iter=1000, W0=ours.W))
    Fstar = min(ours.objective, tight.objective)
    print(f"  F* = {Fstar:.6f} (certified lower bound {prob.gap(tight.W, pen).dual:.6f})")
    row("ours FISTA tol=1e-4", t_ours, ours.objective, Fstar,
        f"iters={ours.n_iter} certified={ours.rel_gap:.1e} "
        f"rank={int((torch.linalg.svdvals(ours.W) > 1e-8).sum())}")

    # ---- clustered MTL
    for rho1, rho2 in ((1.0, 1.0), (10.0, 0.1)):
        pen = ClusteredMTLPenalty(rho1, rho2, k=2)
        print(f"clustered MTL  rho1 = {rho1:g}, rho2 = {rho2:g}, k = 2")
        ours, t_ours = timed(lambda: fit_multitask_linear(X, Y, mask, pen))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            tight, _ = timed(lambda: fit_multitask_linear(X, Y, mask, pen, tol=1e-7,
                                                          W0=ours.W))
        (Wt, it_t, gap_t), t_torch = timed(lambda: torch_lbfgs(prob, pen))
        (Wm, it_m), t_m = timed(lambda: malsar_cmtl(prob, rho1, rho2, 2))
        F_torch = float(prob.gap(Wt, pen).primal)
        F_m = float(prob.gap(Wm, pen).primal)
        Fstar = min(ours.objective, tight.objective, F_torch, F_m)
        print(f"  F* = {Fstar:.6f} (certified lower bound {prob.gap(tight.W, pen).dual:.6f})")
        row("ours L-BFGS-B (scipy) tol=1e-4", t_ours, ours.objective, Fstar,
            f"iters={ours.n_iter} certified={ours.rel_gap:.1e}")
        row("alt: torch.optim.LBFGS strong Wolfe", t_torch, F_torch, Fstar,
            f"iters~{it_t} certified={gap_t:.1e}")
        row("MALSAR-style APG over (W, M)", t_m, F_m, Fstar, f"iters={it_m}")
        print(f"  -> time ratio MALSAR / ours = {t_m / t_ours:.2f}; objective ratio "
              f"MALSAR / F* = {F_m / Fstar:.4f}")


def cv_fit_masks(n: int, T: int = 17, test_fraction: float = 0.10, n_folds: int = 5,
                 seed: int = 1) -> np.ndarray:
    """Labelled entries of one CV fit: each task drops its own random test GIFs and one fold."""
    g = np.random.default_rng(seed)
    test = g.random((n, T)) < test_fraction
    fold = g.integers(0, n_folds, (n, T))
    return ~test & (fold != 0)


def gifgif_fit_masks(n: int, T: int = 17, shared_fraction: float = 0.26,
                     seed: int = 1) -> np.ndarray:
    """Labelled entries of one CV fit on GIFGIF+-shaped data (paper §3.1): the first
    ``shared_fraction`` of the rows are GIFGIF GIFs rated on every emotion (3 % of those
    ratings missing), the others were collected for one emotion each. At the paper's
    23,544 GIFs one CV fit has ≈ 12,600 training rows, 26 % of them GIFGIF ones."""
    g = np.random.default_rng(seed)
    n_shared = int(round(shared_fraction * n))
    mask = np.zeros((n, T), bool)
    mask[:n_shared] = g.random((n_shared, T)) < 0.97
    mask[np.arange(n_shared, n), g.integers(0, T, n - n_shared)] = True
    return mask


def path_problem(n: int, masks: str) -> tuple[_Problem, str]:
    """The paper-scale problem of the path benchmarks and a line describing it."""
    X, Y, _ = synthetic(n=n)
    mask = cv_fit_masks(n, Y.shape[1]) if masks == "random" else gifgif_fit_masks(n, Y.shape[1])
    desc = (f"n={n}, d={X.shape[1]}, T={Y.shape[1]}, {masks} masks, labelled={mask.mean():.3f}"
            f" (per task {mask.sum(0).min()}-{mask.sum(0).max()} rows)")
    return _Problem(X, Y, mask, True), desc


def old_lipschitz(prob: _Problem, n_power: int = 30) -> float:
    """FISTA's former step: 2 σ_max(X)² by power iteration on the uncentred, unmasked X."""
    v = torch.randn(prob.d, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    v /= v.norm()
    s2 = 0.0
    for _ in range(n_power):
        u = prob.X.T @ (prob.X @ v)
        s2 = float(u.norm())
        v = u / s2
    return 2.0 * s2


ADMM_VARIANTS = {  # name: MultitaskADMM options, compared on one problem in one run
    "per-task Cholesky (w_step=cholesky, μ kept within 10×/3×)": dict(w_step="cholesky"),
    "shared eigenbasis (w_step=basis, same μ rule)": dict(w_step="basis"),
    "shared eigenbasis, μ re-chosen at every ρ (mu_keep=1)": dict(w_step="basis", mu_keep=1.0),
}


def admm_variants_bench(prob: _Problem, grid, make_penalty, tol: float) -> None:
    """Each ADMM variant along one warm-started path (largest ρ first): per ρ iterations,
    seconds, seconds in factorisations, certified gap, nonzeros; setup (Grams or the
    eigenbasis, timed with the basis memo emptied) and memory; which variant auto picks."""
    from gifemo.models.shared_basis import BASIS_MEMO

    rows = [np.flatnonzero(prob.M[:, t].numpy() > 0) for t in range(prob.T)]
    on_basis = tasks_on_basis(tuple(prob.X.shape), rows, prob.fit_intercept)
    print(f"auto puts {len(on_basis)} of {prob.T} tasks on the shared basis")
    totals = {}
    for name, options in ADMM_VARIANTS.items():
        BASIS_MEMO.clear()
        admm, setup = timed(lambda: MultitaskADMM(prob, **options))
        nbytes = admm.nbytes
        print(f"{name}: setup {setup:.1f} s, {nbytes / 2**30:.2f} GiB held; load "
              f"{os.getloadavg()[0]:.1f}", flush=True)
        print(f"  {'rho':>6s} {'iters':>6s} {'s':>7s} {'fact s':>7s} {'gap':>8s} {'nnz':>7s}")
        W, slowest, total = None, 0.0, setup
        for rho in grid:
            f0 = admm.factor_seconds
            (W, it, rep, _), secs = timed(lambda: admm.solve(make_penalty(rho), W0=W, tol=tol))
            slowest, total = max(slowest, secs), total + secs
            print(f"  {rho:6g} {it:6d} {secs:7.1f} {admm.factor_seconds - f0:7.1f} "
                  f"{rep.rel_gap:8.1e} {int((W != 0).sum()):7d}", flush=True)
        admm.release()
        totals[name] = total
        print(f"  slowest rho {slowest:.1f} s, path total {total:.1f} s (with setup)")
    base = next(iter(totals.values()))
    print("path time against the first variant: " + ", ".join(
        f"{name.split(' (')[0]}: {base / t:.2f}×" for name, t in totals.items()))


def cv_grid(penalty: str) -> list[dict]:
    """The CV grid of ``penalty`` as the runs use it: the settings of ``conf/model/
    <penalty>.yaml``'s ``cv_grid`` (lasso, clustered_mtl: {rho1, rho2} with the config's k),
    or ``trace_norm_grid`` of ``conf/train.yaml`` for the trace norm."""
    import yaml

    conf = Path(__file__).resolve().parents[1] / "conf"
    if penalty == "trace_norm":
        return list(yaml.safe_load(open(conf / "train.yaml"))["trace_norm_grid"])
    model = yaml.safe_load(open(conf / "model" / f"{penalty}.yaml"))
    fixed = {k: v for k, v in model["penalty"].items() if k not in ("_target_", "rho", "rho1",
                                                                   "rho2")}
    return [{**fixed, **g} for g in model["cv_grid"]]


def rhos(penalty: str) -> list[float]:
    return [g["rho"] for g in cv_grid(penalty)]


def trace_path_bench(n: int, fista_iters: int, masks: str, tol: float = 1e-4) -> None:
    grid = rhos("trace_norm")
    prob, desc = path_problem(n, masks)
    print(f"\n=== trace norm path: {desc}, grid {grid}, tol {tol:g} ===")
    print(f"load average at start: {os.getloadavg()}")
    admm_variants_bench(prob, grid, TraceNormPenalty, tol)
    if fista_iters > 0:
        L_old, t_old = timed(lambda: old_lipschitz(prob))
        L_new, t_new = timed(lambda: prob.lipschitz())
        print(f"Lipschitz: old 2σ_max(X)² = {L_old:.1f} ({t_old:.1f} s); exact centred, masked "
              f"= {L_new:.1f} ({t_new:.1f} s); ratio {L_old / L_new:.2f}")
        print(f"FISTA capped at {fista_iters} iterations per rho, warm-started:")
        print(f"  {'rho':>6s} | {'old-step it':>11s} {'s':>6s} {'gap':>8s} | "
              f"{'exact-step it':>13s} {'s':>6s} {'gap':>8s}")
        zero = torch.zeros(prob.d, prob.T, dtype=torch.float64)
        W_o = W_n = zero
        for rho in grid:
            pen = TraceNormPenalty(rho)
            (W_o, it_o, rep_o), t_o = timed(lambda: _fista(prob, pen, W_o, tol, fista_iters,
                                                           L=L_old))
            (W_n, it_n, rep_n), t_n = timed(lambda: _fista(prob, pen, W_n, tol, fista_iters,
                                                           L=L_new))
            print(f"  {rho:6g} | {it_o:11d} {t_o:6.1f} {rep_o.rel_gap:8.1e} | {it_n:13d} "
                  f"{t_n:6.1f} {rep_n.rel_gap:8.1e}", flush=True)
    print(f"load average at end: {os.getloadavg()}")


def lasso_path_bench(n: int, cd_tasks: int, masks: str, tol: float = 1e-4) -> None:
    """The lasso along the CV grid on the trace-path problem: ADMM (all tasks, factor sets
    shared with the trace norm's machinery) against scikit-learn coordinate descent (our
    certified wrapper, tasks in threads) on the first ``cd_tasks`` tasks only — CD takes
    minutes per task at small ρ, so its all-task time is printed as a labelled estimate."""
    grid = rhos("lasso")
    prob, desc = path_problem(n, masks)
    T = prob.T
    print(f"\n=== lasso path: {desc}, grid {grid}, tol {tol:g}; load average at start "
          f"{os.getloadavg()} ===")
    admm_variants_bench(prob, grid, L1Penalty, tol)
    if cd_tasks <= 0:
        return
    X, Y, mask = prob.X, prob.Y, prob.M.bool()
    sub = _Problem(X, Y[:, :cd_tasks], mask[:, :cd_tasks], True)
    print(f"coordinate descent (scikit-learn), first {cd_tasks} tasks:")
    print(f"  {'rho':>6s} {'s':>7s} {'gap':>8s} {'est. all tasks s':>17s}")
    W, total = None, 0.0
    for rho in grid:
        (W, it, rep), secs = timed(lambda: _lasso_cd(sub, L1Penalty(rho), W if W is not None else
                                                     torch.zeros(sub.d, cd_tasks, dtype=torch.float64),
                                                     tol, 100_000))
        total += secs
        print(f"  {rho:6g} {secs:7.1f} {rep.rel_gap:8.1e} {secs * T / cd_tasks:17.0f}", flush=True)
    print(f"  path total {total:.1f} s for {cd_tasks} tasks (estimate for {T}: "
          f"{total * T / cd_tasks:.0f} s); load average at end {os.getloadavg()}")


def cv_fit_problem(folder: str, group: str, seed: int = 0, fold: int = 0) -> _Problem:
    """One cross-validation fit of a dataset folder as ``select_rho_cv`` sees it: the split
    of ``seed`` (per-emotion test sets and folds, paper §3.6), fold ``fold`` held out, the
    features of ``group`` (visual ones from the folder's ``visual.npy``, no backbone)."""
    from gifemo.data.manifest import load_dataset
    from gifemo.data.splits import make_split
    from gifemo.features.assemble import assemble_features

    ds = load_dataset(folder)
    split = make_split(ds, seed=seed)
    visual = Path(folder) / "visual.npy"
    feats = assemble_features(ds, split.train, group=group, backbone=None,
                              visual_file=visual if visual.exists() else None)
    r = feats.rows
    mask = (split.train & (split.fold != fold))[r]
    return _Problem(np.asarray(feats.X, np.float64), ds.y[r], mask, True)


PENALTY_OF = {"lasso": L1Penalty, "trace_norm": TraceNormPenalty,
              "clustered_mtl": ClusteredMTLPenalty}


def cv_fit_bench(folder: str, group: str, penalty: str, cd_rhos: int, tol: float = 1e-4,
                 mu_keeps: tuple[float | None, ...] = (None,)) -> None:
    """The CV grid of ``penalty`` on one real CV fit (``cv_fit_problem``), warm-started as
    the CV runs it, with the solver ``auto`` picks (ADMM for the trace norm and the
    paper-scale lasso); for the lasso also scikit-learn coordinate descent (all tasks,
    threads) on the first ``cd_rhos`` ρ of the grid; for clustered MTL ADMM against L-BFGS
    (its solver until ADMM took it), the time ratio printed. Several ``mu_keeps`` run the
    ADMM path once each (None = the penalty's default, ``admm.MU_KEEP``), ratios against the
    first."""
    grid = cv_grid(penalty)
    make = PENALTY_OF[penalty]
    prob, t_load = timed(lambda: cv_fit_problem(folder, group))
    print(f"\n=== {penalty} on one CV fit of {folder} ({group}, seed 0, fold 0): "
          f"{prob.X.shape[0]} rows x {prob.d} features, {int(prob.M.sum(0).min())}-"
          f"{int(prob.M.sum(0).max())} per task; loaded in {t_load:.1f} s; load "
          f"{os.getloadavg()[0]:.1f} ===")
    zero = torch.zeros(prob.d, prob.T, dtype=torch.float64)
    if penalty == "lasso" and cd_rhos > 0:
        W = zero
        for g in grid[:cd_rhos]:
            (W, it, rep), secs = timed(lambda: _lasso_cd(prob, make(**g), W, tol, 100_000))
            print(f"  CD   {g} {secs:7.1f} s  gap {rep.rel_gap:.1e}  nonzero "
                  f"{float((W != 0).double().mean()):.3f}", flush=True)
    paths = []
    for keep in mu_keeps:
        total, n_its = _admm_cv_path(prob, grid, make, tol, keep)
        paths.append((keep, total, n_its))
    for keep, total, n_its in paths[1:]:
        print(f"  mu_keep {keep}: path {total:.1f} s, {n_its} iterations; "
              f"{paths[0][1] / total:.2f}x the time of mu_keep {paths[0][0]}")
    if penalty == "clustered_mtl":
        W, t_lbfgs = zero, 0.0
        for g in grid:
            (W, it, rep), secs = timed(lambda: _lbfgs(prob, make(**g), W, tol, 5000))
            t_lbfgs += secs
            print(f"  L-BFGS {g} {secs:7.1f} s  {it:4d} iterations  gap {rep.rel_gap:.1e}",
                  flush=True)
        print(f"  L-BFGS path {t_lbfgs:.1f} s; L-BFGS / ADMM {t_lbfgs / total:.2f}x; load "
              f"{os.getloadavg()[0]:.1f}")


def _admm_cv_path(prob, grid, make, tol, mu_keep) -> tuple[float, int]:
    """One warm-started ADMM path over ``grid`` (largest ρ first), printed per grid value;
    returns (seconds with setup, iterations). The eigenbasis memo is cleared first, so every
    path pays its own setup."""
    from gifemo.models.shared_basis import BASIS_MEMO

    BASIS_MEMO.clear()
    admm, setup = timed(lambda: MultitaskADMM(prob, mu_keep=mu_keep))
    total, W, n_its = setup, None, 0
    print(f"  ADMM setup {setup:.1f} s ({'shared basis' if admm.basis is not None else 'a Cholesky factor per task'}"
          f"; mu_keep {mu_keep if mu_keep is not None else 'default'})")
    for g in grid:
        f0 = admm.factor_seconds
        (W, it, rep, _), secs = timed(lambda: admm.solve(make(**g), W0=W, tol=tol))
        total, n_its = total + secs, n_its + it
        print(f"  ADMM {g} {secs:7.1f} s  {it:4d} iterations  factorisations "
              f"{admm.factor_seconds - f0:5.1f} s  gap {rep.rel_gap:.1e}  nonzero "
              f"{float((W != 0).double().mean()):.3f}", flush=True)
    admm.release()
    print(f"  ADMM path {total:.1f} s with setup, {n_its} iterations, "
          f"{admm.n_factorizations} factor sets; load {os.getloadavg()[0]:.1f}")
    return total, n_its


def dtype_probe(folder: str, group: str, mu: float = 1.0, repeats: int = 5) -> None:
    """What float32 would save per ADMM iteration on one CV fit (a lever not taken): the
    shared-basis W-step solve and the two products with X of the certificate/residuals,
    each in float64 (as the solver runs) and float32 in the same process, median seconds of
    ``repeats``, with the float32 solve's relative error against float64. Eigenbasis and
    capacitance factors are built in each dtype once (their time printed, not compared)."""
    from gifemo.models.admm import _base_rows
    from gifemo.models.shared_basis import BASIS_MEMO, SharedBasisSystems

    prob = cv_fit_problem(folder, group)
    rows = [np.flatnonzero(prob.M[:, t].numpy() > 0) for t in range(prob.T)]
    base = _base_rows(prob.X.shape[0], rows)
    g = np.random.default_rng(0)
    R64 = g.standard_normal((prob.d, prob.T))
    W64 = g.standard_normal((prob.d, prob.T)) * 1e-2
    print(f"\n=== one ADMM iteration's products in float64 and float32, {folder} ({group}, "
          f"seed 0, fold 0): {prob.X.shape[0]} x {prob.d}, T = {prob.T}; load {os.getloadavg()[0]:.1f} ===")
    med, sol = {}, {}
    for dt in (np.float64, np.float32):
        BASIS_MEMO.clear()
        X = prob.X.numpy().astype(dt)
        systems, setup = timed(lambda: SharedBasisSystems(X, rows, list(range(prob.T)), base, True))
        _, fac = timed(lambda: systems.factor(mu))
        R, W = R64.astype(dt), W64.astype(dt)
        t_solve, t_prod = [], []
        for _ in range(repeats):
            out, s = timed(lambda: systems.solve(R))
            t_solve.append(s)
            _, s = timed(lambda: X.T @ (X @ W))
            t_prod.append(s)
        sol[dt] = out
        med[dt] = (float(np.median(t_solve)), float(np.median(t_prod)))
        print(f"  {np.dtype(dt).name}: setup {setup:.1f} s, factor {fac:.1f} s; W-step solve "
              f"{med[dt][0]:.3f} s, Xᵀ(XW) {med[dt][1]:.3f} s (median of {repeats})", flush=True)
        del systems, X
    BASIS_MEMO.clear()
    err = np.linalg.norm(sol[np.float32] - sol[np.float64]) / np.linalg.norm(sol[np.float64])
    (s64, p64), (s32, p32) = med[np.float64], med[np.float32]
    print(f"  float32 / float64 time: solve {s32 / s64:.2f}, products {p32 / p64:.2f}, both "
          f"{(s32 + p32) / (s64 + p64):.2f}; float32 solve relative error {err:.1e}; "
          f"load {os.getloadavg()[0]:.1f}")


def next_fold_bench(folder: str, group: str, penalty: str, tol: float = 1e-4) -> None:
    """The first grid value of ``penalty`` on CV fold 1 of a dataset folder, from W = 0 and
    warm-started from fold 0's solution (what ``select_rho_cv`` does): iterations, seconds."""
    from gifemo.models.shared_basis import BASIS_MEMO

    g = cv_grid(penalty)[0]
    make = PENALTY_OF[penalty]
    prob0 = cv_fit_problem(folder, group, fold=0)
    admm0 = MultitaskADMM(prob0)
    (W0, it0, rep0, _), t0 = timed(lambda: admm0.solve(make(**g), tol=tol))
    admm0.release()
    print(f"\n=== {penalty} {g}, {folder} ({group}, seed 0): fold 0 from W = 0: {it0} "
          f"iterations, {t0:.1f} s, gap {rep0.rel_gap:.1e}; load {os.getloadavg()[0]:.1f} ===")
    prob1 = cv_fit_problem(folder, group, fold=1)
    times = {}
    for name, start in (("from W = 0", None), ("from fold 0's solution", W0)):
        BASIS_MEMO.clear()
        admm = MultitaskADMM(prob1)
        (_, it, rep, mu), secs = timed(lambda: admm.solve(make(**g), W0=start, tol=tol))
        admm.release()
        times[name] = secs
        print(f"  fold 1 {name}: {it} iterations, {secs:.1f} s (μ {mu:.3g}), gap "
              f"{rep.rel_gap:.1e}", flush=True)
    cold, warm = times.values()
    print(f"  cold / warm: {cold / warm:.2f}x; load {os.getloadavg()[0]:.1f}")


def mu_keep_sweep(n: int, d_vis: int, keeps=(10.0, 100.0, 1000.0)) -> None:
    """The ADMM path (largest ρ first, warm-started) for several ``mu_keep``: Cholesky sets
    against iterations (the choice of the default, 10)."""
    from gifemo.models.admm import MultitaskADMM, tasks_on_basis

    X, Y, _ = synthetic(n=n, d_vis=d_vis, d_tag=max(d_vis // 30, 5))
    prob = _Problem(X, Y, cv_fit_masks(n, Y.shape[1]), True)
    print(f"\n=== mu_keep sweep: n={n}, d={X.shape[1]}; load {os.getloadavg()[0]:.1f} ===")
    for keep in keeps:
        admm, W, its, mus = MultitaskADMM(prob, mu_keep=keep), None, [], []
        t0 = time.perf_counter()
        for rho in (100.0, 30.0, 10.0, 3.0, 1.0, 0.3, 0.1):
            W, it, _, mu = admm.solve(TraceNormPenalty(rho), W0=W)
            its.append(it)
            mus.append(f"{mu:.2g}")
        print(f"mu_keep {keep:g}: {admm.n_factorizations} Cholesky sets, iterations {its} "
              f"(sum {sum(its)}), mu {mus}, {time.perf_counter() - t0:.1f} s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--demo-npz", default="data/demo/features.npz",
                    help="npz with X [n,d], Y [n,T], mask [n,T] (skipped if absent)")
    ap.add_argument("--n", type=int, default=None,
                    help="GIFs (default 2000; 6113 with --trace-path)")
    ap.add_argument("--trace-path", action="store_true",
                    help="trace norm at every rho of the CV grid at paper scale (see above)")
    ap.add_argument("--fista-iters", type=int, default=20,
                    help="FISTA iterations per rho in --trace-path (cap; 0 = skip FISTA)")
    ap.add_argument("--lasso-path", action="store_true",
                    help="lasso at every rho of its CV grid at paper scale: ADMM vs coordinate descent")
    ap.add_argument("--cd-tasks", type=int, default=2,
                    help="tasks that coordinate descent solves in --lasso-path (0 = skip CD)")
    ap.add_argument("--masks", choices=("random", "gifgif"), default="random",
                    help="path benchmarks: each task's own random 72 %% of n rows (random), or "
                         "GIFGIF+-shaped (26 %% of rows on every task, the rest on one each)")
    ap.add_argument("--cv-fit", metavar="FOLDER", default=None,
                    help="the CV grid on one real CV fit of a dataset folder (e.g. "
                         "data/paper_synthetic; visual features from its visual.npy)")
    ap.add_argument("--features", default="visual", help="--cv-fit: feature group")
    ap.add_argument("--penalty", choices=tuple(PENALTY_OF), default="lasso",
                    help="--cv-fit: which model's grid")
    ap.add_argument("--next-fold", action="store_true",
                    help="--cv-fit: the first grid value on fold 1, cold and warm-started from "
                         "fold 0's solution, instead of the grid")
    ap.add_argument("--mu-keeps", default=None,
                    help="--cv-fit: comma-separated ADMM mu_keep values, one path each in this "
                         "run (default: the penalty's own, admm.MU_KEEP)")
    ap.add_argument("--dtype-probe", action="store_true",
                    help="--cv-fit: one ADMM iteration's products in float64 vs float32 instead "
                         "of the grid")
    ap.add_argument("--cd-rhos", type=int, default=0,
                    help="--cv-fit lasso: coordinate descent on the first K rho too")
    ap.add_argument("--mu-keep-sweep", action="store_true",
                    help="ADMM path for mu_keep 10, 100, 1000 (n default 1500, d = 1,033)")
    args = ap.parse_args()
    print(f"host: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch threads {torch.get_num_threads()}, torch {torch.__version__}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    if args.cv_fit and args.dtype_probe:
        dtype_probe(args.cv_fit, args.features)
        return
    if args.cv_fit and args.next_fold:
        next_fold_bench(args.cv_fit, args.features, args.penalty)
        return
    if args.cv_fit:
        keeps = (None,) if args.mu_keeps is None else tuple(float(k) for k in args.mu_keeps.split(","))
        cv_fit_bench(args.cv_fit, args.features, args.penalty, args.cd_rhos, mu_keeps=keeps)
        return
    if args.mu_keep_sweep:
        mu_keep_sweep(args.n or 1500, 1000)
        return
    if args.lasso_path:
        lasso_path_bench(args.n or 6113, args.cd_tasks, args.masks)
        return
    if args.trace_path:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            trace_path_bench(args.n or 6113, args.fista_iters, args.masks)
        return
    bench(*synthetic(n=args.n or 2000), "synthetic")
    p = Path(args.demo_npz)
    if p.exists():
        z = np.load(p)
        bench(z["X"], z["Y"], z["mask"].astype(bool), f"demo features {p}")
    else:
        print(f"\n(demo features {p} not found: skipped)")


if __name__ == "__main__":
    main()
