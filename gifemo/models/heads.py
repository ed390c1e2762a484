"""Linear multi-task head: one linear recognizer per emotion (paper §3.5), scores = xW + b."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gifemo.models.solvers import FitResult

__all__ = ["LinearMultiTaskHead"]


class LinearMultiTaskHead(nn.Module):
    """T linear recognizers sharing one input: ``forward(x) = x @ W + b``.

    Parameters
    ----------
    d : int
        Feature dimension (4235 = 4096 visual + 139 tag features in the paper).
    T : int
        Number of tasks (17 emotions).

    Attributes
    ----------
    W : nn.Parameter [d, T]
        Column t is emotion t's weight vector (the paper's Wᵢ), the layout the penalties of
        :mod:`gifemo.models.penalties` act on.
    b : nn.Parameter [T]
        Unpenalised per-emotion bias.

    Both start at zero (the minimiser of every penalty), so a fresh head predicts 0.
    """

    def __init__(self, d: int, T: int) -> None:
        super().__init__()
        for name, v in (("d", d), ("T", T)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        self.d, self.T = d, T
        self.W = nn.Parameter(torch.zeros(d, T))
        self.b = nn.Parameter(torch.zeros(T))

    def forward(self, x: Tensor) -> Tensor:
        """Scores [B, T] for features x [B, d]."""
        if x.ndim != 2 or x.shape[1] != self.d:
            raise ValueError(f"expected features of shape [B, {self.d}], got {tuple(x.shape)}")
        return x.to(self.W.dtype) @ self.W + self.b

    @classmethod
    def from_fit(cls, fit: FitResult, dtype: torch.dtype = torch.float32) -> "LinearMultiTaskHead":
        """A head holding the weights of a full-batch fit (copied, cast to ``dtype``)."""
        W = torch.as_tensor(fit.W)
        b = torch.as_tensor(fit.b)
        if W.ndim != 2 or b.shape != (W.shape[1],):
            raise ValueError(f"FitResult has W {tuple(W.shape)} and b {tuple(b.shape)}; "
                             f"expected [d, T] and [T]")
        head = cls(W.shape[0], W.shape[1]).to(dtype)
        with torch.no_grad():
            head.W.copy_(W)
            head.b.copy_(b)
        return head

    def extra_repr(self) -> str:
        return f"d={self.d}, T={self.T}"
