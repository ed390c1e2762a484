"""Linear multi-task emotion recognizers with a penalty (paper §3.5, eqs. 1, 7, 8).

Scores = x W + b with W ∈ R^{d×T}, b ∈ R^T (:class:`~gifemo.models.heads.LinearMultiTaskHead`)
and a penalty Ω(W) injected as an object (:mod:`gifemo.models.penalties`). Two ways to fit:

* ``fit="exact"`` (default): :meth:`LinearRecognizer.fit_exact` solves
  Σ_mask (XW + b − Y)² + Ω(W) to a certified relative duality gap ≤ ``tol``
  (:func:`gifemo.models.solvers.fit_multitask_linear`) and loads W, b into the head.
* ``fit="minibatch"``: proximal SGD through ``trainer.fit`` on ``(x, y, mask)`` batches, for
  data that do not fit in memory. The loss is the full objective divided by the number N
  of training GIFs, estimated on a batch of B GIFs:
  (1/B) Σ_batch Σ_labelled (xW + b − y)² + Ω(W)/N. Smooth penalties enter the loss;
  nonsmooth ones are applied by W ← prox_{lr·Ω/N}(W) after every optimizer step. The bias
  starts at each emotion's mean label (the optimum for W = 0). At the end the relative
  objective gap to the exact optimum is computed and logged as ``train/rel_gap_to_optimum``.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gifemo.data.emotions import EMOTIONS
from gifemo.data.tags import TagVocabulary
from gifemo.models.heads import LinearMultiTaskHead
from gifemo.models.layout import FeatureLayout
from gifemo.models.penalties import Penalty, make_penalty
from gifemo.models.recognizer import RecognizerBase
from gifemo.models.solvers import (
    FitResult,
    fit_multitask_linear,
    relative_gap,
    release_factor_cache,
)

_log = logging.getLogger(__name__)

FIT_MODES = ("exact", "minibatch")


def _as_penalty(penalty: Penalty | Mapping | None) -> Penalty:
    if penalty is None:
        return make_penalty("none")
    if isinstance(penalty, Penalty):
        return penalty
    if isinstance(penalty, Mapping) and "name" in penalty:  # Penalty.config() (checkpoints)
        return make_penalty(**dict(penalty))
    raise TypeError(f"penalty must be a Penalty (e.g. built by Hydra from model.penalty._target_) "
                    f"or a Penalty.config() mapping, got {penalty!r}")


class LinearRecognizer(RecognizerBase):
    """Linear multi-task recognizers W, b with a penalty Ω(W).

    Parameters
    ----------
    penalty : Penalty or mapping, default NoPenalty()
        The penalty object (``conf/model/<name>.yaml``: ``penalty._target_``), or its
        ``config()`` dict.
    cv_grid : list of mappings, optional
        Penalty settings tried by cross-validation, each merged over ``penalty``
        (``[{"rho": 10.0}, {"rho": 1.0}]``; ``[{"rho1": 1.0, "rho2": 0.1}, ...]``).
    fit : {"exact", "minibatch"}, default="exact"
    tol : float, default=1e-4
        Relative duality gap the exact solver certifies.
    max_iter : int, default=5000
    optimizer : callable, optional
        ``params -> torch.optim.Optimizer`` (a Hydra ``_partial_``), minibatch mode only;
        default SGD(lr=0.05), i.e. proximal SGD for nonsmooth penalties.
    layout, vocabulary, emotions
        See :class:`~gifemo.models.recognizer.RecognizerBase` (runtime objects).

    Attributes
    ----------
    head : LinearMultiTaskHead
    fit_result : FitResult or None (last exact fit)
    rel_gap_to_optimum : float or None (last minibatch fit)
    warm_start : [d, T] tensor or None
        Where the next exact fit starts (then cleared): cross-validation
        (:func:`~gifemo.models.selection.select_regularisation`) leaves the folds' mean
        solution at the chosen setting here, so the final fit on all the training rows
        starts near its optimum instead of at 0. Only the solver's path changes, not the
        certified result.
    """

    kind = "linear"

    def __init__(self, penalty: Penalty | Mapping | None = None, *,
                 cv_grid: Sequence[Mapping] | None = None, fit: str = "exact", tol: float = 1e-4,
                 max_iter: int = 5000, optimizer: Callable | None = None,
                 layout: FeatureLayout | Mapping | None = None,
                 vocabulary: TagVocabulary | None = None,
                 emotions: Sequence[str] = EMOTIONS) -> None:
        super().__init__(layout=layout, vocabulary=vocabulary, emotions=emotions)
        if fit not in FIT_MODES:
            raise ValueError(f"fit must be one of {FIT_MODES}, got {fit!r}")
        self.penalty: Penalty = _as_penalty(penalty)
        self.cv_grid = None if cv_grid is None else [dict(v) for v in cv_grid]
        for setting in self.cv_grid or []:
            self.penalty.with_settings(setting)  # fail now, not in the middle of CV
        self.fit_mode = fit
        self.tol = float(tol)
        self.max_iter = int(max_iter)
        self.optimizer_factory = optimizer
        self.head = LinearMultiTaskHead(self.layout.dim, self.n_tasks)
        self.rel_gap_to_optimum: float | None = None
        self.warm_start: Tensor | None = None
        self._n_rows = 1.0

    def penalty_for(self, setting: Mapping) -> Penalty:
        """The penalty at one cross-validation grid point (a mapping of hyperparameters)."""
        return self.penalty.with_settings(setting)

    def set_penalty(self, penalty: Penalty) -> None:
        """Replace the penalty (e.g. by the cross-validated one); the head keeps its weights."""
        if not isinstance(penalty, Penalty):
            raise TypeError(f"expected a Penalty, got {type(penalty).__name__}")
        self.penalty = penalty

    def forward(self, x: Tensor) -> Tensor:
        """Scores [B, T] of features x [B, d] (predicted y = µ − 3σ per emotion)."""
        return self.head(x)

    # ------------------------------------------------------------------ exact fitting
    def fit_exact(self, X: Any, Y: Any, mask: Any) -> FitResult:
        """Solve the full-batch objective to the certified gap and load W, b into the head."""
        X = torch.as_tensor(np.asarray(X) if not isinstance(X, Tensor) else X)
        if X.ndim != 2 or X.shape[1] != self.layout.dim:
            raise ValueError(f"X must be [n, {self.layout.dim}] for layout {self.layout}, got "
                             f"{tuple(X.shape)}")
        W0, self.warm_start = self.warm_start, None
        res = fit_multitask_linear(X, Y, mask, self.penalty, tol=self.tol, max_iter=self.max_iter,
                                   W0=W0)
        release_factor_cache()  # the final fit: no further ρ on this problem
        with torch.no_grad():
            self.head.W.copy_(res.W.to(self.head.W.dtype))
            self.head.b.copy_(res.b.to(self.head.b.dtype))
        self.fit_result = res
        _log.info("exact fit (%r): objective %.6g, relative gap %.2e after %d iterations%s",
                  self.penalty, res.objective, res.rel_gap, res.n_iter,
                  "" if res.converged else " (NOT converged)")
        return res

    # ------------------------------------------------------------------ minibatch fitting
    def _full_train_batch(self) -> tuple[Tensor, Tensor, Tensor]:
        dm = getattr(self.trainer, "datamodule", None)
        if dm is None or not hasattr(dm, "full_batch"):
            raise RuntimeError("minibatch fitting needs a datamodule with full_batch('train') "
                               "(gifemo.data.feature_datamodule.FeatureDataModule)")
        return dm.full_batch("train")

    def on_fit_start(self) -> None:
        super().on_fit_start()
        X, Y, M = self._full_train_batch()
        if self.fit_result is None and not bool(self.head.W.detach().any()):
            m = M.to(Y.dtype)  # W = 0 and the best bias for it: each task's mean label
            with torch.no_grad():
                self.head.b.copy_((Y * m).sum(0) / m.sum(0).clamp(min=1.0))
        self._n_rows = float(max(int(M.any(1).sum()), 1))

    def training_step(self, batch, batch_idx: int):
        x, y, mask = batch
        m = mask.to(y.dtype)
        loss = ((self(x) - y) ** 2 * m).sum() / x.shape[0]
        if self.penalty.smooth:
            loss = loss + self.penalty.value(self.head.W) / self._n_rows
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True,
                 batch_size=x.shape[0])
        return loss

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None) -> None:
        optimizer.step(closure=optimizer_closure)
        if not self.penalty.smooth:
            lr = float(optimizer.param_groups[0]["lr"])
            with torch.no_grad():
                W = self.head.W
                W.copy_(self.penalty.prox(W.detach().double(), lr / self._n_rows).to(W.dtype))

    def configure_optimizers(self):
        factory = self.optimizer_factory or (lambda params: torch.optim.SGD(params, lr=0.05))
        return factory(self.head.parameters())

    def on_train_end(self) -> None:
        X, Y, M = self._full_train_batch()
        gap = relative_gap(X, Y, M, self.penalty, self.head.W.detach(), self.head.b.detach())
        self.rel_gap_to_optimum = float(gap)
        _log.info("minibatch fit (%r): relative objective gap to the exact optimum %.3e",
                  self.penalty, gap)
        for logger in self.loggers:
            logger.log_metrics({"train/rel_gap_to_optimum": float(gap)}, step=self.global_step)

    # ------------------------------------------------------------------ checkpoint
    def head_state(self) -> dict:
        return {"W": self.head.W.detach().cpu().clone(), "b": self.head.b.detach().cpu().clone()}

    def load_head_state(self, state: Mapping) -> None:
        W, b = state["W"], state["b"]
        if tuple(W.shape) != tuple(self.head.W.shape) or tuple(b.shape) != tuple(self.head.b.shape):
            raise ValueError(f"checkpoint head has W {tuple(W.shape)}, b {tuple(b.shape)}; "
                             f"this recognizer needs {tuple(self.head.W.shape)}, "
                             f"{tuple(self.head.b.shape)}")
        with torch.no_grad():
            self.head.W.copy_(W)
            self.head.b.copy_(b)

    def hyperparameters(self) -> dict:
        """Constructor keyword arguments as primitives (the penalty as its ``config()``)."""
        return {"penalty": self.penalty.config(), "cv_grid": self.cv_grid, "fit": self.fit_mode,
                "tol": self.tol, "max_iter": self.max_iter}

    def extra_repr(self) -> str:
        return (f"layout={self.layout.group}:{self.layout.dim}, penalty={self.penalty!r}, "
                f"fit={self.fit_mode}")
