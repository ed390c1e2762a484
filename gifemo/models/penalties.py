"""Penalties Ω(W) on a multi-task weight matrix W ∈ R^{d×T} (paper §3.5, eqs. 1, 7, 8).

Each penalty is a small :class:`torch.nn.Module` holding only its hyperparameters (plain
floats), with

- ``value(W)``: Ω(W) as a scalar tensor, autograd-differentiable where ``smooth``;
- ``prox(W, step)``: argmin_Z ½‖Z − W‖²_F + step·Ω(Z) for the nonsmooth ones (FISTA, ADMM)
  and clustered MTL (ADMM);
- ``grad(W)``: ∇Ω(W) in closed form for the smooth ones (L-BFGS);
- ``conjugate(V)`` / ``dual_scale(V)``: the Fenchel conjugate Ω*(V), used by
  :mod:`gifemo.models.solvers` to certify a duality gap (how far a W is from the optimum);
- ``config()``: ``{"name": ..., hyperparameters}``, so ``make_penalty(**p.config())``
  rebuilds ``p`` (checkpoints store only primitives).

Every subclass with a ``name`` registers itself in :data:`PENALTIES` when its class is
defined, so a new penalty is one class (here or in any imported module) plus one
``conf/model/<name>.yaml`` whose ``penalty._target_`` names it; its constructor arguments
are its hyperparameters, ``config()`` returns them, and cross-validation grids are lists of
partial settings merged over them (``{"rho": 10.0}``).

The penalties know nothing about data; the squared loss and the solvers live in
:mod:`gifemo.models.solvers`.

Clustered multi-task learning (eq. 8, Jacob et al. 2008 / Zhou et al. 2011 relaxation) is
written as a function of W alone: the inner minimum over the cluster matrix M has a closed
form (:func:`optimal_cluster_matrix`), which makes Ω smooth and lets L-BFGS solve the whole
problem over W, instead of the joint (W, M) projected-gradient scheme of MALSAR's
``Least_CMTL`` (which stalls when η = ρ2/ρ1 is small; see ``benchmarks/solvers.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "Penalty",
    "NoPenalty",
    "L1Penalty",
    "RidgePenalty",
    "TraceNormPenalty",
    "ClusteredMTLPenalty",
    "optimal_cluster_matrix",
    "cluster_eigenvalues",
    "make_penalty",
    "PENALTIES",
]


PENALTIES: dict[str, type["Penalty"]] = {}
"""Penalty name -> class; filled by ``Penalty.__init_subclass__`` (see the module docstring)."""

_ALIASES = {"l1": "lasso", "trace": "trace_norm"}


def _check_nonnegative(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return v


def _check_positive(name: str, value: Any) -> float:
    v = _check_nonnegative(name, value)
    if v == 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return v


def _check_matrix(W: Tensor) -> None:
    if not isinstance(W, Tensor) or W.ndim != 2:
        shape = tuple(W.shape) if isinstance(W, Tensor) else type(W).__name__
        raise ValueError(f"W must be a 2-D tensor [d, T], got {shape}")


class Penalty(nn.Module):
    """Base class of the penalties Ω(W), W ∈ R^{d×T} (d features, T tasks).

    Attributes
    ----------
    smooth : bool
        True when Ω is differentiable (solved by L-BFGS), False when it has a prox
        (solved by FISTA).
    name : str
        The key of :func:`make_penalty` that builds this class.
    """

    smooth: bool = True
    name: str = ""

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        name = cls.__dict__.get("name")
        if name:
            other = PENALTIES.get(name)
            if other is not None and other.__qualname__ != cls.__qualname__:
                raise TypeError(f"penalty name {name!r} is taken by {other.__module__}."
                                f"{other.__qualname__}")
            PENALTIES[name] = cls

    def value(self, W: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, W: Tensor) -> Tensor:
        return self.value(W)

    def prox(self, W: Tensor, step: float) -> Tensor:
        """argmin_Z ½‖Z − W‖²_F + step·Ω(Z)."""
        raise NotImplementedError(f"{type(self).__name__} is smooth and has no prox here")

    def grad(self, W: Tensor) -> Tensor:
        """∇Ω(W) (smooth penalties); the default differentiates ``value`` by autograd."""
        Wg = W.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            (g,) = torch.autograd.grad(self.value(Wg), Wg)
        return g

    def conjugate(self, V: Tensor) -> float:
        """Fenchel conjugate Ω*(V) = sup_W ⟨V, W⟩ − Ω(W) (may be +inf)."""
        raise NotImplementedError

    def dual_scale(self, V: Tensor) -> float:
        """Largest s ∈ [0, 1] with Ω*(s V) finite (1 for penalties with finite conjugate).

        The solvers scale the dual candidate 2·residual by it before evaluating the dual
        objective (the usual dual-point rescaling for norm penalties).
        """
        return 1.0

    def is_zero(self) -> bool:
        """True when Ω ≡ 0 (then the problem is plain least squares, solved directly)."""
        return False

    def config(self) -> dict[str, Any]:
        """``{"name": ..., **hyperparameters}``; ``make_penalty(**config())`` rebuilds it."""
        return {"name": self.name}

    def with_settings(self, settings: Any) -> "Penalty":
        """A new penalty of this kind with ``settings`` (a mapping of hyperparameters, e.g. one
        cross-validation grid point ``{"rho": 10.0}``) over this one's."""
        if not isinstance(settings, Mapping):
            raise ValueError(f"a penalty setting is a mapping of hyperparameters such as "
                             f"{{'rho': 10.0}}, got {settings!r}")
        unknown = sorted(set(settings) - (set(self.config()) - {"name"}))
        if unknown:
            raise ValueError(f"{type(self).__name__} has no hyperparameter(s) {unknown}; it has "
                             f"{sorted(set(self.config()) - {'name'})}")
        return make_penalty(**{**self.config(), **dict(settings)})

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config().items() if k != "name")


class NoPenalty(Penalty):
    """Ω(W) = 0: ordinary (masked) least squares."""

    smooth = True
    name = "none"

    def value(self, W: Tensor) -> Tensor:
        _check_matrix(W)
        return W.new_zeros(()) + 0.0 * W.sum()

    def grad(self, W: Tensor) -> Tensor:
        return torch.zeros_like(W)

    def conjugate(self, V: Tensor) -> float:
        return 0.0 if bool((V == 0).all()) else math.inf

    def dual_scale(self, V: Tensor) -> float:
        return 1.0 if bool((V == 0).all()) else 0.0

    def is_zero(self) -> bool:
        return True


class _ScaledNormPenalty(Penalty):
    """Ω(W) = ρ‖W‖ for a norm whose dual norm is ``dual_norm``: the conjugate is the indicator
    of the dual ball {‖V‖_* ≤ ρ}, shared by the lasso and the trace norm."""

    smooth = False

    def __init__(self, rho: float) -> None:
        super().__init__()
        self.rho = _check_nonnegative("rho", rho)

    def dual_norm(self, V: Tensor) -> float:
        raise NotImplementedError

    def conjugate(self, V: Tensor) -> float:
        return 0.0 if self.dual_norm(V) <= self.rho * (1 + 1e-12) else math.inf

    def dual_scale(self, V: Tensor) -> float:
        dn = self.dual_norm(V)
        return 1.0 if dn <= self.rho else self.rho / dn

    def is_zero(self) -> bool:
        return self.rho == 0.0

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "rho": self.rho}


class L1Penalty(_ScaledNormPenalty):
    """Lasso, Ω(W) = ρ‖W‖₁ = ρ Σᵢⱼ |Wᵢⱼ| (paper eq. 1; the tasks decouple).

    prox: soft threshold, Z = sign(W) · max(|W| − step·ρ, 0).
    """

    name = "lasso"

    def value(self, W: Tensor) -> Tensor:
        _check_matrix(W)
        return self.rho * W.abs().sum()

    def prox(self, W: Tensor, step: float) -> Tensor:
        t = step * self.rho
        return torch.sign(W) * torch.clamp(W.abs() - t, min=0.0)

    def dual_norm(self, V: Tensor) -> float:
        """‖V‖_∞ = max |Vᵢⱼ| (dual of the entrywise l1 norm)."""
        return float(V.abs().max()) if V.numel() else 0.0


class TraceNormPenalty(_ScaledNormPenalty):
    """Trace (nuclear) norm, Ω(W) = ρ‖W‖_* = ρ Σⱼ σⱼ(W) (paper eq. 7).

    prox: singular-value soft threshold, Z = P diag(max(σ − step·ρ, 0)) Qᵀ for W = P Σ Qᵀ.
    """

    name = "trace_norm"

    def value(self, W: Tensor) -> Tensor:
        _check_matrix(W)
        return self.rho * torch.linalg.svdvals(W).sum()

    def prox(self, W: Tensor, step: float) -> Tensor:
        P, s, Qh = torch.linalg.svd(W, full_matrices=False)
        s = torch.clamp(s - step * self.rho, min=0.0)
        return (P * s) @ Qh

    def dual_norm(self, V: Tensor) -> float:
        """Spectral norm ‖V‖₂ = σ_max(V) (dual of the trace norm)."""
        return float(torch.linalg.matrix_norm(V, ord=2)) if V.numel() else 0.0


class RidgePenalty(Penalty):
    """Ridge, Ω(W) = ρ‖W‖²_F (smooth; ∇Ω = 2ρW, Ω*(V) = ‖V‖²_F / (4ρ))."""

    smooth = True
    name = "ridge"

    def __init__(self, rho: float) -> None:
        super().__init__()
        self.rho = _check_nonnegative("rho", rho)

    def value(self, W: Tensor) -> Tensor:
        _check_matrix(W)
        return self.rho * (W * W).sum()

    def grad(self, W: Tensor) -> Tensor:
        return 2.0 * self.rho * W

    def conjugate(self, V: Tensor) -> float:
        if self.rho == 0.0:
            return 0.0 if bool((V == 0).all()) else math.inf
        return float((V * V).sum()) / (4.0 * self.rho)

    def dual_scale(self, V: Tensor) -> float:
        if self.rho == 0.0:
            return 1.0 if bool((V == 0).all()) else 0.0
        return 1.0

    def is_zero(self) -> bool:
        return self.rho == 0.0

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "rho": self.rho}


def cluster_eigenvalues(sigma: Tensor, eta: float, k: float) -> Tensor:
    """Eigenvalues γ of the optimal cluster matrix M* for singular values ``sigma``.

    Solves min_γ Σᵢ σᵢ² / (η + γᵢ) subject to 0 ≤ γᵢ ≤ 1, Σᵢ γᵢ = k (the inner problem of
    eq. 8 once M shares the eigenvectors of WᵀW; by von Neumann's trace inequality it does
    at the optimum).

    KKT: with multiplier λ for Σγ = k, a free coordinate satisfies σᵢ² / (η + γᵢ)² = λ,
    i.e. γᵢ = σᵢ/√λ − η; bounds clip it, so γᵢ = clip(ν σᵢ − η, 0, 1) with ν = 1/√λ > 0.
    Σᵢ clip(ν σᵢ − η, 0, 1) is continuous and non-decreasing in ν, from 0 (ν ≤ η/σ_max) to
    r = #{σᵢ > 0} (ν ≥ (1 + η)/σ_min>0), so when k < r a ν exists; it is bracketed by
    bisection and then solved exactly on the final active set. When k ≥ r every direction
    with σᵢ > 0 gets γᵢ = 1 (the objective falls as γᵢ grows) and the remaining k − r is
    spread evenly over the null directions (they do not enter the objective). W = 0 gives
    γ = k/T everywhere.

    Parameters
    ----------
    sigma : Tensor [T]
        Non-negative singular values (length T: pad with zeros when d < T).
    eta : float
        η = ρ2/ρ1 > 0.
    k : float
        Trace of M, 0 < k ≤ T (the number of clusters).
    """
    T = sigma.numel()
    if not 0 < k <= T:
        raise ValueError(f"k must satisfy 0 < k <= T = {T}, got {k!r}")
    s = torch.clamp(sigma.detach().to(torch.float64), min=0.0)
    smax = float(s.max()) if T else 0.0
    tiny = smax * 16 * T * torch.finfo(torch.float64).eps
    pos = s > tiny
    r = int(pos.sum())
    gamma = torch.zeros_like(s)
    if k >= r:
        gamma[pos] = 1.0
        if T > r:
            gamma[~pos] = (k - r) / (T - r)
        return gamma.to(sigma.dtype)

    def total(nu: float) -> float:
        return float(torch.clamp(nu * s - eta, 0.0, 1.0).sum())

    lo = eta / smax  # total(lo) = 0 < k
    hi = (1.0 + eta) / float(s[pos].min())  # total(hi) = r > k
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if total(mid) < k:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-15 * hi:
            break
    nu = 0.5 * (lo + hi)
    # Exact ν on the active set found by bisection: Σ_free (ν σᵢ − η) + #upper = k.
    g = nu * s - eta
    upper = g >= 1.0
    free = (g > 0.0) & ~upper
    if bool(free.any()):
        nu_exact = (k - float(upper.sum()) + eta * float(free.sum())) / float(s[free].sum())
        g_exact = nu_exact * s - eta
        # Keep the exact solution only if it respects the active set (it does up to rounding).
        ok = bool((g_exact[free] >= -1e-12).all() and (g_exact[free] <= 1 + 1e-12).all())
        if ok:
            g = torch.where(free, g_exact, g)
    gamma = torch.clamp(g, 0.0, 1.0)
    return gamma.to(sigma.dtype)


def _cluster_spectrum(W: Tensor, eta: float, k: float) -> tuple[Tensor, Tensor, Tensor]:
    """(Q, σ², γ): eigh of WᵀW = Q diag(σ²) Qᵀ and the optimal eigenvalues γ of M*."""
    Wd = W.detach()
    S = Wd.T @ Wd
    _, Q = torch.linalg.eigh(0.5 * (S + S.T))
    # σᵢ = ‖W qᵢ‖ is accurate to ~σ_max·eps, unlike sqrt(eigenvalue) (~σ_max·sqrt(eps)),
    # so null directions of W are recognised as such.
    lam = ((Wd @ Q) ** 2).sum(0)
    gamma = cluster_eigenvalues(torch.sqrt(lam), eta, k)
    return Q, lam, gamma


def optimal_cluster_matrix(W: Tensor, eta: float, k: float) -> Tensor:
    """M* = argmin_M tr(W (ηI + M)⁻¹ Wᵀ) over {0 ⪯ M ⪯ I, tr M = k} (paper eq. 8).

    Closed form: eigh of WᵀW = Q diag(σ²) Qᵀ, M* = Q diag(γ) Qᵀ with γ from
    :func:`cluster_eigenvalues`. Returns a symmetric [T, T] tensor (W's dtype).
    """
    _check_matrix(W)
    eta = _check_positive("eta", eta)
    Q, _, gamma = _cluster_spectrum(W, eta, float(k))
    return (Q * gamma) @ Q.T


class ClusteredMTLPenalty(Penalty):
    """Convex clustered multi-task penalty (paper eq. 8, Zhou, Chen & Ye 2011 relaxation).

    Ω(W) = ρ1 η(1 + η) min_M tr(W (ηI + M)⁻¹ Wᵀ)  over  {M ∈ S^T : 0 ⪯ M ⪯ I, tr M = k},
    η = ρ2/ρ1.

    With WᵀW = Q diag(σ²) Qᵀ the minimiser is M* = Q diag(γ) Qᵀ (see
    :func:`cluster_eigenvalues`), so Ω(W) = ρ1 η(1 + η) Σᵢ σᵢ² / (η + γᵢ). By Danskin's
    theorem Ω is differentiable with ∇Ω(W) = 2 ρ1 η(1 + η) W (ηI + M*)⁻¹ (the choice of M*
    in W's null space does not change it), so the problem is smooth in W alone.

    Conjugate (for the duality gap): with c = ρ1 η(1 + η),
    Ω*(V) = max_M tr(V (ηI + M) Vᵀ) / (4c) = (η‖V‖²_F + Σ_{top k} λ(VᵀV)) / (4c),
    the top-k eigenvalue sum by Ky Fan (a fractional k takes that fraction of the next one).

    Parameters
    ----------
    rho1, rho2 : float
        Both > 0 (η = ρ2/ρ1 must be positive for (ηI + M)⁻¹ to exist).
    k : int
        Number of clusters, 1 ≤ k ≤ T (checked against T when W is seen).
    """

    smooth = True
    name = "clustered_mtl"

    def __init__(self, rho1: float, rho2: float, k: int = 2) -> None:
        super().__init__()
        self.rho1 = _check_positive("rho1", rho1)
        self.rho2 = _check_positive("rho2", rho2)
        if isinstance(k, bool) or not isinstance(k, (int, float)) or not math.isfinite(k) \
                or k < 1 or float(k) != int(k):
            raise ValueError(f"k must be an integer >= 1, got {k!r}")
        self.k = int(k)

    @property
    def eta(self) -> float:
        return self.rho2 / self.rho1

    @property
    def scale(self) -> float:
        """c = ρ1 η (1 + η)."""
        return self.rho1 * self.eta * (1.0 + self.eta)

    def _check_k(self, W: Tensor) -> None:
        _check_matrix(W)
        if self.k > W.shape[1]:
            raise ValueError(f"k = {self.k} exceeds the number of tasks T = {W.shape[1]}")

    def cluster_matrix(self, W: Tensor) -> Tensor:
        """M*(W) for this penalty's η and k."""
        self._check_k(W)
        return optimal_cluster_matrix(W, self.eta, self.k)

    def value(self, W: Tensor) -> Tensor:
        self._check_k(W)
        Q, _, gamma = _cluster_spectrum(W, self.eta, self.k)
        WQ = W @ Q.to(W.dtype)  # columns have squared norms σᵢ²; autograd flows through W only
        return self.scale * ((WQ * WQ).sum(0) / (self.eta + gamma.to(W.dtype))).sum()

    def grad(self, W: Tensor) -> Tensor:
        self._check_k(W)
        Q, _, gamma = _cluster_spectrum(W, self.eta, self.k)
        Q = Q.to(W.dtype)
        return (2.0 * self.scale) * (((W @ Q) / (self.eta + gamma.to(W.dtype))) @ Q.T)

    def value_and_grad(self, W: Tensor) -> tuple[float, Tensor]:
        """(Ω(W), ∇Ω(W)) from one eigendecomposition (used by the L-BFGS solver)."""
        self._check_k(W)
        Q, lam, gamma = _cluster_spectrum(W, self.eta, self.k)
        Q = Q.to(W.dtype)
        inv = 1.0 / (self.eta + gamma.to(W.dtype))
        val = self.scale * float((lam.to(W.dtype) * inv).sum())
        return val, (2.0 * self.scale) * (((W @ Q) * inv) @ Q.T)

    def prox(self, W: Tensor, step: float) -> Tensor:
        """argmin_Z ½‖Z − W‖²_F + step·Ω(Z), in closed form (for ADMM, :mod:`gifemo.models.
        admm`).

        Ω is a function of Z's singular values alone, so the prox keeps W's singular vectors
        (Lewis 1995). With γ fixed, each singular value's problem c sᵢ²/(η + γᵢ) +
        (sᵢ − σᵢ)²/(2 step) is a scalar quadratic, minimised at sᵢ = σᵢ (η + γᵢ)/(η' + γᵢ)
        with η' = η + 2c·step, where it is worth c σᵢ²/(η' + γᵢ); minimising that over γ is
        the inner problem of Ω again with η' for η (:func:`cluster_eigenvalues`). So
        Z = W Q diag((η + γ)/(η' + γ)) Qᵀ with WᵀW = Q diag(σ²) Qᵀ and γ = γ(σ; η', k).
        """
        self._check_k(W)
        step = _check_nonnegative("step", step)
        eta_p = self.eta + 2.0 * self.scale * step
        Q, _, gamma = _cluster_spectrum(W, eta_p, self.k)
        Q, gamma = Q.to(W.dtype), gamma.to(W.dtype)
        return ((W @ Q) * ((self.eta + gamma) / (eta_p + gamma))) @ Q.T

    def conjugate(self, V: Tensor) -> float:
        self._check_k(V)
        S = V.T @ V
        lam = torch.linalg.eigvalsh(0.5 * (S + S.T)).clamp(min=0.0).flip(0)
        k_int = int(math.floor(self.k))
        top = float(lam[:k_int].sum())
        if k_int < lam.numel():
            top += (self.k - k_int) * float(lam[k_int])
        return (self.eta * float((V * V).sum()) + top) / (4.0 * self.scale)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "rho1": self.rho1, "rho2": self.rho2, "k": self.k}


def make_penalty(name: str, **kw: Any) -> Penalty:
    """Build a registered penalty by name (``none``, ``lasso``, ``ridge``, ``trace_norm``,
    ``clustered_mtl``, or any subclass defined elsewhere); keyword arguments are the class's
    hyperparameters, as ``Penalty.config()`` returns them."""
    try:
        cls = PENALTIES[_ALIASES.get(name, name)]
    except KeyError:
        raise ValueError(f"unknown penalty {name!r}; choose one of {sorted(PENALTIES)}") from None
    try:
        return cls(**kw)
    except TypeError as e:
        raise ValueError(f"bad arguments {kw!r} for penalty {name!r}: {e}") from None
