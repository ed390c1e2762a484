"""The emotion recognizer as a LightningModule: frozen C3D + bag-of-tags + multi-task head.

A recognizer maps a GIF to 17 scores (one per emotion, paper §3.5). Its input is the
feature vector x = [visual | tags] of :class:`FeatureLayout` (visual = frozen C3D fc6
averaged over the GIF's clips and L2-normalised, §3.3; tags = L2-normalised bag of the
training vocabulary, §3.4; always in that order). Training runs on cached features, so the
backbone is optional here: :meth:`RecognizerBase.attach_backbone` adds it when raw GIFs are to
be scored (:meth:`RecognizerBase.score_gifs`), and it is never part of a checkpoint.

Two heads share that input side:

- :class:`EmotionRecognizer`: linear recognizers W ∈ R^{d×17}, b (``LinearMultiTaskHead``)
  with a penalty (lasso, trace norm, clustered MTL, ridge, none). Fitting modes:

  * ``fit="exact"`` (default): :meth:`EmotionRecognizer.fit_exact` solves the convex
    objective Σ_mask (XW + b − Y)² + Ω(W) to a certified relative duality gap ≤ ``tol``
    (:func:`gifemo.models.solvers.fit_multitask_linear`) and loads W, b into the head;
    Lightning then only validates/tests. Called automatically in ``on_fit_start`` when a
    Trainer fits it (the training batches are then skipped).
  * ``fit="minibatch"``: gradient steps through the Lightning loop on ``(x, y, mask)``
    batches, for data that does not fit in memory. The loss is the full objective divided
    by the number N of training GIFs, estimated on a batch of B GIFs:
    (1/B) Σ_batch Σ_labelled (xW + b − y)² + Ω(W)/N (per-GIF scaling keeps each emotion's
    curvature O(1), so one learning rate suits every task). Smooth penalties enter the loss
    (autograd); nonsmooth ones (lasso, trace norm) are applied by a proximal step
    W ← prox_{lr·Ω/N}(W) after every optimizer step: proximal SGD with ``torch.optim.SGD``
    (the configs' choice for every linear model); with Adam the same step is a heuristic
    that stalls (measured on a synthetic lasso, 160 steps: relative gap 0.15 with Adam,
    4e-4 with proximal SGD). The bias starts at each emotion's mean label (the optimum for
    W = 0). At the end of training the relative objective gap to the exact optimum,
    (F(W, b) − F*)/F*, is computed (exact solve at tol 1e-6) and logged as
    ``train/rel_gap_to_optimum``.

- :class:`GPRecognizer`: the paper's GP baseline (§3.5.2), one exact GP per emotion
  (:class:`gifemo.models.gp.GPScorer`), always fitted on the full training batch. Its score
  is eq. 5, exp(−(50 − µ)²/(2V)); the module outputs its logarithm, which orders GIFs
  identically and does not underflow to ties.

Validation and test steps return ``{"scores", "y", "mask"}`` for
:class:`gifemo.eval.callbacks.PRMetricsCallback` and log the masked mean squared error.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor

from gifemo.data.emotions import EMOTIONS
from gifemo.data.tags import TagVocabulary
from gifemo.models.gp import ExactGP, GPScorer
from gifemo.models.heads import LinearMultiTaskHead
from gifemo.models.penalties import Penalty, make_penalty
from gifemo.models.solvers import FitResult, fit_multitask_linear, relative_gap
from gifemo.models.tag_encoder import TagEncoder

_log = logging.getLogger(__name__)

FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "visual": ("visual",),
    "tags": ("tags",),
    "visual_tags": ("visual", "tags"),
}
"""Feature group name -> the blocks it concatenates, in order."""

FIT_MODES = ("exact", "minibatch")


@dataclass(frozen=True)
class FeatureLayout:
    """Which feature blocks a recognizer reads, their sizes and their order.

    Attributes
    ----------
    group : str
        ``"visual"``, ``"tags"`` or ``"visual_tags"`` (:data:`FEATURE_GROUPS`).
    visual_dim : int
        Size of the C3D block (4096 for the paper's network; 0 when unused).
    tag_dim : int
        Size of the bag-of-tags block (the vocabulary size; 0 when unused).
    """

    group: str
    visual_dim: int = 0
    tag_dim: int = 0

    def __post_init__(self) -> None:
        if self.group not in FEATURE_GROUPS:
            raise ValueError(f"unknown feature group {self.group!r}; choose one of "
                             f"{sorted(FEATURE_GROUPS)}")
        for name in ("visual", "tags"):
            dim = self.visual_dim if name == "visual" else self.tag_dim
            if isinstance(dim, bool) or not isinstance(dim, int) or dim < 0:
                raise ValueError(f"{name} dimension must be an integer >= 0, got {dim!r}")
            if name in self.blocks and dim == 0:
                raise ValueError(f"feature group {self.group!r} uses {name} features but their "
                                 f"dimension is 0 (empty tag vocabulary?)")
            if name not in self.blocks and dim != 0:
                raise ValueError(f"feature group {self.group!r} has no {name} block, got "
                                 f"dimension {dim}")

    @property
    def blocks(self) -> tuple[str, ...]:
        return FEATURE_GROUPS[self.group]

    @property
    def uses_visual(self) -> bool:
        return "visual" in self.blocks

    @property
    def uses_tags(self) -> bool:
        return "tags" in self.blocks

    @property
    def dim(self) -> int:
        return self.visual_dim + self.tag_dim

    def to_dict(self) -> dict:
        return {**asdict(self), "order": list(self.blocks)}

    @classmethod
    def from_dict(cls, d: Mapping) -> FeatureLayout:
        return cls(str(d["group"]), int(d.get("visual_dim", 0)), int(d.get("tag_dim", 0)))

    def concat(self, visual: np.ndarray | None, tags: np.ndarray | None) -> np.ndarray:
        """x = [visual | tags] float32 [N, dim] from the blocks this layout uses."""
        parts = []
        for name, block, dim in (("visual", visual, self.visual_dim), ("tags", tags, self.tag_dim)):
            if name not in self.blocks:
                continue
            if block is None:
                raise ValueError(f"feature group {self.group!r} needs {name} features")
            block = np.asarray(block, dtype=np.float32)
            if block.ndim != 2 or block.shape[1] != dim:
                raise ValueError(f"{name} features must be [N, {dim}], got {block.shape}")
            parts.append(block)
        if len(parts) == 2 and parts[0].shape[0] != parts[1].shape[0]:
            raise ValueError(f"visual and tag blocks have {parts[0].shape[0]} and "
                             f"{parts[1].shape[0]} rows")
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)


def _masked_mse(scores: Tensor, y: Tensor, mask: Tensor) -> Tensor:
    m = mask.to(scores.dtype)
    return ((scores - y) ** 2 * m).sum() / m.sum().clamp(min=1.0)


def _backbone_record(backbone: Any) -> dict | None:
    """Primitive dict of a backbone config (BackboneConfig, mapping or None)."""
    if backbone is None:
        return None
    if hasattr(backbone, "__dataclass_fields__"):
        return asdict(backbone)
    if isinstance(backbone, Mapping):
        return {k: v for k, v in dict(backbone).items() if k != "_target_"}
    try:  # omegaconf DictConfig
        from omegaconf import OmegaConf
        return {k: v for k, v in OmegaConf.to_container(backbone, resolve=True).items()
                if k != "_target_"}
    except Exception:
        raise TypeError(f"backbone must be a BackboneConfig or a mapping, got "
                        f"{type(backbone).__name__}") from None


class RecognizerBase(pl.LightningModule):
    """Input side shared by every recognizer: layout, tag encoder, optional frozen backbone.

    Parameters
    ----------
    layout : FeatureLayout
        Feature blocks and sizes (known once the data are loaded; passed at runtime).
    vocabulary : TagVocabulary, optional
        Needed when the layout uses tags.
    backbone : BackboneConfig or mapping, optional
        How the visual features were (and must be) computed: weights, width, seed, convention.
    emotions : sequence of str
        Column order of the scores (default: the 17 GIFGIF emotions).
    """

    kind = "base"

    def __init__(self, *, layout: FeatureLayout | None = None,
                 vocabulary: TagVocabulary | None = None, backbone: Any = None,
                 emotions: Sequence[str] = EMOTIONS) -> None:
        super().__init__()
        if layout is None:
            raise ValueError(f"{type(self).__name__} needs a FeatureLayout (layout=...): the "
                             "feature sizes are known once the data are loaded")
        if not isinstance(layout, FeatureLayout):
            layout = FeatureLayout.from_dict(layout)
        self.layout = layout
        self.emotions = [str(e) for e in emotions]
        if layout.uses_tags:
            if vocabulary is None:
                raise ValueError(f"feature group {layout.group!r} needs the tag vocabulary")
            if len(vocabulary) != layout.tag_dim:
                raise ValueError(f"vocabulary has {len(vocabulary)} tags, layout says "
                                 f"tag_dim={layout.tag_dim}")
            self.tag_encoder: TagEncoder | None = TagEncoder(vocabulary)
        else:
            self.tag_encoder = None
        self.backbone_config = _backbone_record(backbone)
        self.backbone_info: dict | None = None  # WeightsInfo.to_dict() of the features' weights
        self.backbone = None
        self.val_outputs: list = []

    # ------------------------------------------------------------------ inputs
    @property
    def n_tasks(self) -> int:
        return len(self.emotions)

    @property
    def vocabulary(self) -> TagVocabulary | None:
        return None if self.tag_encoder is None else self.tag_encoder.vocabulary

    def attach_backbone(self, backbone: torch.nn.Module, info: Any = None) -> None:
        """Attach the frozen C3D (for :meth:`score_gifs`); ``info``: its WeightsInfo."""
        out_dim = getattr(backbone, "output_dim", None)
        if self.layout.uses_visual and out_dim is not None and out_dim != self.layout.visual_dim:
            raise ValueError(f"backbone outputs {out_dim} features, the recognizer was trained "
                             f"on {self.layout.visual_dim}")
        self.backbone = backbone
        if info is not None:
            self.backbone_info = info.to_dict() if hasattr(info, "to_dict") else dict(info)

    @torch.no_grad()
    def embed_clips(self, clips_list: Sequence[Tensor]) -> np.ndarray:
        """Visual features [B, visual_dim]: backbone fc6 per clip, mean over clips, L2.

        ``clips_list[i]`` holds GIF i's clips, float (or uint8) RGB 0..255
        ``[n_i, 3, 16, 112, 112]`` as :func:`gifemo.data.clips.make_clips` returns them.
        """
        if self.backbone is None:
            raise RuntimeError("no backbone attached: call attach_backbone(C3D) before scoring "
                               "raw GIFs (training uses cached features)")
        from gifemo.features.pooling import mean_l2  # the cache's own definition of the feature

        device = next(self.backbone.parameters()).device
        rows = []
        for i, clips in enumerate(clips_list):
            if clips.ndim != 5 or clips.shape[0] == 0:
                raise ValueError(f"GIF {i}: clips must be [n >= 1, 3, 16, 112, 112], got "
                                 f"{tuple(clips.shape)}")
            rows.append(mean_l2(self.backbone.embed(clips.to(device).float()).double().cpu().numpy()))
        return np.stack(rows).astype(np.float32)

    def encode_tags(self, tag_lists: Sequence[Sequence[str]]) -> np.ndarray:
        """Bag-of-tags block [B, tag_dim] with the saved vocabulary."""
        if self.tag_encoder is None:
            raise RuntimeError(f"feature group {self.layout.group!r} has no tag block")
        return self.tag_encoder.vocabulary.encode(tag_lists)

    def features(self, visual: np.ndarray | None = None,
                 tag_lists: Sequence[Sequence[str]] | None = None) -> Tensor:
        """x = [visual | tags] [B, d] from visual features and raw tag lists."""
        tags = self.encode_tags(tag_lists) if self.layout.uses_tags else None
        if tags is not None and tag_lists is None:
            raise ValueError("this recognizer uses tags: pass tag_lists")
        return torch.from_numpy(self.layout.concat(visual if self.layout.uses_visual else None, tags))

    @torch.no_grad()
    def score_gifs(self, clips_list: Sequence[Tensor] | None,
                   tag_lists: Sequence[Sequence[str]] | None = None) -> Tensor:
        """Scores [B, T] of raw GIFs: backbone -> mean fc6 -> L2 -> concat tags -> head."""
        visual = self.embed_clips(clips_list) if self.layout.uses_visual else None
        if tag_lists is None and self.layout.uses_tags:
            raise ValueError("this recognizer uses tags: pass tag_lists (empty lists allowed)")
        x = self.features(visual, tag_lists)
        return self(x.to(self.device))

    # ------------------------------------------------------------------ evaluation steps
    def _eval_step(self, batch, stage: str) -> dict:
        x, y, mask = batch
        scores = self(x)
        self.log(f"{stage}/mse", _masked_mse(self.predicted_targets(x).float(), y, mask), on_step=False,
                 on_epoch=True, batch_size=x.shape[0])
        return {"scores": scores.detach(), "y": y.detach(), "mask": mask.detach()}

    def predicted_targets(self, x: Tensor) -> Tensor:
        """Predicted label scores y = µ − 3σ [B, T] (for the logged MSE)."""
        return self(x)

    def validation_step(self, batch, batch_idx: int) -> dict:
        return self._eval_step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> dict:
        return self._eval_step(batch, "test")

    def predict_step(self, batch, batch_idx: int) -> Tensor:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self(x)

    # ------------------------------------------------------------------ checkpoint hooks
    def head_state(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def load_head_state(self, state: Mapping) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def hyperparameters(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def _full_train_batch(self) -> tuple[Tensor, Tensor, Tensor]:
        dm = getattr(self.trainer, "datamodule", None)
        if dm is None or not hasattr(dm, "full_batch"):
            raise RuntimeError("fitting needs a datamodule with full_batch('train') "
                               "(GifDataModule after set_features)")
        return dm.full_batch("train")


class EmotionRecognizer(RecognizerBase):
    """Linear multi-task emotion recognizers with a penalty (paper §3.5, eqs. 1, 7, 8).

    Parameters
    ----------
    penalty : str, default="lasso"
        ``lasso``, ``trace_norm``, ``clustered_mtl``, ``ridge`` or ``none``
        (:func:`gifemo.models.penalties.make_penalty`).
    rho : float, optional
        Strength of lasso / trace norm / ridge.
    rho1, rho2 : float, optional
        Clustered MTL strengths (η = ρ2/ρ1).
    k : int, optional
        Clustered MTL: number of clusters.
    fit : {"exact", "minibatch"}, default="exact"
        See the module docstring.
    tol : float, default=1e-4
        Relative duality gap the exact solver certifies.
    max_iter : int, default=5000
        Exact solver iterations.
    optimizer : callable, optional
        ``params -> torch.optim.Optimizer`` (a Hydra ``_partial_``); minibatch mode only;
        default SGD(lr=0.05) (proximal SGD for nonsmooth penalties).
    cv_grid : list, optional
        Values tried by cross-validation (floats for ``rho``; ``[rho1, rho2]`` pairs for
        clustered MTL); see :meth:`penalty_for`.
    layout, vocabulary, backbone, emotions
        See :class:`RecognizerBase` (runtime objects).

    Attributes
    ----------
    head : LinearMultiTaskHead
    penalty : Penalty
    fit_result : FitResult or None
        Of the last exact fit.
    rel_gap_to_optimum : float or None
        Of the last minibatch fit.
    """

    kind = "linear"

    def __init__(self, penalty: str = "lasso", rho: float | None = None,
                 rho1: float | None = None, rho2: float | None = None, k: int | None = None, *,
                 fit: str = "exact", tol: float = 1e-4, max_iter: int = 5000,
                 optimizer: Callable | None = None, cv_grid: Sequence | None = None,
                 layout: FeatureLayout | None = None, vocabulary: TagVocabulary | None = None,
                 backbone: Any = None, emotions: Sequence[str] = EMOTIONS) -> None:
        super().__init__(layout=layout, vocabulary=vocabulary, backbone=backbone,
                         emotions=emotions)
        if fit not in FIT_MODES:
            raise ValueError(f"fit must be one of {FIT_MODES}, got {fit!r}")
        self.penalty_name = str(penalty)
        self.penalty: Penalty = make_penalty(self.penalty_name, **self._penalty_kwargs(
            rho=rho, rho1=rho1, rho2=rho2, k=k))
        self.fit_mode = fit
        self.tol = float(tol)
        self.max_iter = int(max_iter)
        self.optimizer_factory = optimizer
        self.cv_grid = None if cv_grid is None else [self._plain(v) for v in cv_grid]
        self.head = LinearMultiTaskHead(self.layout.dim, self.n_tasks)
        self.fit_result: FitResult | None = None
        self.rel_gap_to_optimum: float | None = None
        self._n_rows = 1.0

    # ------------------------------------------------------------------ penalty
    @staticmethod
    def _plain(v: Any) -> Any:
        if isinstance(v, (list, tuple)) or (hasattr(v, "__iter__") and not isinstance(v, str)):
            return [float(x) for x in v]
        return float(v)

    @staticmethod
    def _penalty_kwargs(**kw: Any) -> dict:
        out = {k: v for k, v in kw.items() if v is not None}
        if "k" in out:
            out["k"] = int(out["k"])
        return out

    def penalty_for(self, value: Any) -> Penalty:
        """The penalty at grid value ``value`` (``rho``, or ``[rho1, rho2]`` for clustered MTL)."""
        if self.penalty_name == "clustered_mtl":
            if not (isinstance(value, (list, tuple)) and len(value) == 2):
                raise ValueError(f"clustered_mtl grid values are [rho1, rho2] pairs, got {value!r}")
            return make_penalty("clustered_mtl", rho1=float(value[0]), rho2=float(value[1]),
                                k=self.penalty.k)
        if self.penalty_name == "none":
            raise ValueError("penalty 'none' has no strength to choose")
        return make_penalty(self.penalty_name, rho=float(value))

    def set_penalty(self, penalty: Penalty) -> None:
        """Replace the penalty (e.g. by the cross-validated one); the head keeps its weights."""
        if not isinstance(penalty, Penalty):
            raise TypeError(f"expected a Penalty, got {type(penalty).__name__}")
        self.penalty = penalty
        self.penalty_name = penalty.name

    # ------------------------------------------------------------------ scoring
    def forward(self, x: Tensor) -> Tensor:
        """Scores [B, T] of cached features x [B, d] (predicted y = µ − 3σ per emotion)."""
        return self.head(x)

    # ------------------------------------------------------------------ exact fitting
    def fit_exact(self, X: Any, Y: Any, mask: Any) -> FitResult:
        """Solve the full-batch objective to the certified gap and load W, b into the head."""
        X = torch.as_tensor(np.asarray(X) if not isinstance(X, Tensor) else X)
        if X.ndim != 2 or X.shape[1] != self.layout.dim:
            raise ValueError(f"X must be [n, {self.layout.dim}] for layout {self.layout}, got "
                             f"{tuple(X.shape)}")
        res = fit_multitask_linear(X, Y, mask, self.penalty, tol=self.tol, max_iter=self.max_iter)
        with torch.no_grad():
            self.head.W.copy_(res.W.to(self.head.W.dtype))
            self.head.b.copy_(res.b.to(self.head.b.dtype))
        self.fit_result = res
        _log.info("exact fit (%r): objective %.6g, relative gap %.2e after %d iterations%s",
                  self.penalty, res.objective, res.rel_gap, res.n_iter,
                  "" if res.converged else " (NOT converged)")
        return res

    # ------------------------------------------------------------------ Lightning fitting
    def on_fit_start(self) -> None:
        X, Y, M = self._full_train_batch()
        if self.fit_mode == "exact":
            self.fit_exact(X, Y, M)
        elif self.fit_result is None and not bool(self.head.W.detach().any()):
            # start from W = 0 and the best bias for it (each task's mean label): the
            # unpenalised intercept would otherwise take most of the gradient steps
            m = M.to(Y.dtype)
            with torch.no_grad():
                self.head.b.copy_((Y * m).sum(0) / m.sum(0).clamp(min=1.0))
        self._n_rows = float(max(int(M.any(1).sum()), 1))

    def training_step(self, batch, batch_idx: int):
        if self.fit_mode == "exact":
            return None  # already at the optimum (on_fit_start); nothing to step
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
        if self.fit_mode == "minibatch" and not self.penalty.smooth:
            lr = float(optimizer.param_groups[0]["lr"])
            with torch.no_grad():
                W = self.head.W
                W.copy_(self.penalty.prox(W.detach().double(), lr / self._n_rows).to(W.dtype))

    def configure_optimizers(self):
        if self.fit_mode == "exact":
            return None
        factory = self.optimizer_factory or (lambda params: torch.optim.SGD(params, lr=0.05))
        return factory(self.head.parameters())

    def on_train_end(self) -> None:
        if self.fit_mode != "minibatch":
            return
        X, Y, M = self._full_train_batch()
        gap = relative_gap(X, Y, M, self.penalty, self.head.W.detach(), self.head.b.detach())
        self.rel_gap_to_optimum = float(gap)
        _log.info("minibatch fit (%r): relative objective gap to the exact optimum %.3e",
                  self.penalty, gap)
        for logger in self.loggers:
            logger.log_metrics({"train/rel_gap_to_optimum": float(gap)},
                               step=self.global_step)

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
        """Constructor arguments as primitives (penalty from its current config)."""
        p = self.penalty.config()
        hp = {"penalty": p["name"], "rho": p.get("rho"), "rho1": p.get("rho1"),
              "rho2": p.get("rho2"), "k": p.get("k"), "fit": self.fit_mode, "tol": self.tol,
              "max_iter": self.max_iter, "cv_grid": self.cv_grid}
        return hp

    def extra_repr(self) -> str:
        return f"layout={self.layout.group}:{self.layout.dim}, penalty={self.penalty!r}, fit={self.fit_mode}"


class GPRecognizer(RecognizerBase):
    """GP baseline (paper §3.5.2) behind the recognizer interface; outputs log eq. 5.

    Parameters
    ----------
    max_train, seed, n_restarts, target_max, include_noise, score_form
        :class:`gifemo.models.gp.GPScorer` arguments.
    layout, vocabulary, backbone, emotions
        See :class:`RecognizerBase`.
    """

    kind = "gp"
    fit_mode = "exact"

    def __init__(self, max_train: int = 3000, seed: int = 0, n_restarts: int = 0,
                 target_max: float = 50.0, include_noise: bool = False,
                 score_form: str = "printed", *,
                 layout: FeatureLayout | None = None, vocabulary: TagVocabulary | None = None,
                 backbone: Any = None, emotions: Sequence[str] = EMOTIONS) -> None:
        super().__init__(layout=layout, vocabulary=vocabulary, backbone=backbone,
                         emotions=emotions)
        self.gp = GPScorer(max_train=int(max_train), seed=int(seed), n_restarts=int(n_restarts),
                           target_max=float(target_max), include_noise=bool(include_noise),
                           score_form=str(score_form))
        self.fit_result = None
        self.rel_gap_to_optimum = None

    @property
    def is_fitted(self) -> bool:
        return hasattr(self.gp, "models_")

    def forward(self, x: Tensor) -> Tensor:
        """log eq. 5 (GPScorer.log_score), [B, T] (same order as eq. 5, no underflow)."""
        if not self.is_fitted:
            raise RuntimeError("GPRecognizer used before fit_exact")
        out = self.gp.log_score(x.detach().cpu().double().numpy())
        return torch.from_numpy(out).to(device=x.device, dtype=torch.float32)

    def predicted_targets(self, x: Tensor) -> Tensor:
        """The GPs' predictive means [B, T]."""
        mean, _ = self.gp.predict(x.detach().cpu().double().numpy())
        return torch.from_numpy(mean).to(device=x.device, dtype=torch.float32)

    def fit_exact(self, X: Any, Y: Any, mask: Any) -> GPScorer:
        """Fit one exact GP per emotion on the labelled rows (hyperparameters by eq. 4)."""
        self.gp.fit(X, Y, mask)
        _log.info("GP fit: %s labelled GIFs per emotion", self.gp.n_train_.tolist())
        return self.gp

    def on_fit_start(self) -> None:
        self.fit_exact(*self._full_train_batch())

    def training_step(self, batch, batch_idx: int):
        return None

    def configure_optimizers(self):
        return None

    def head_state(self) -> dict:
        if not self.is_fitted:
            raise RuntimeError("GPRecognizer has no fitted GPs to save")
        tasks = []
        for m in self.gp.models_:
            tasks.append({"X": torch.from_numpy(np.ascontiguousarray(m.X_)),
                          "alpha": torch.from_numpy(np.ascontiguousarray(m.alpha_)),
                          "amplitude": m.amplitude_, "length_scale": m.length_scale_,
                          "noise": m.noise_, "y_mean": m.y_mean_, "y_std": m.y_std_,
                          "log_marginal_likelihood": m.log_marginal_likelihood_})
        return {"tasks": tasks, "n_train": [int(n) for n in self.gp.n_train_]}

    def load_head_state(self, state: Mapping) -> None:
        import scipy.linalg
        from gifemo.models.gp import _sq_dists

        models = []
        for t, task in enumerate(state["tasks"]):
            m = ExactGP(seed=self.gp.seed + t)
            m.X_ = task["X"].double().numpy()
            m.y_mean_, m.y_std_ = float(task["y_mean"]), float(task["y_std"])
            m.amplitude_, m.length_scale_ = float(task["amplitude"]), float(task["length_scale"])
            m.noise_ = float(task["noise"])
            m.log_marginal_likelihood_ = float(task["log_marginal_likelihood"])
            # the Cholesky factor is recomputed exactly as GPScorer.fit computed it
            K = m.amplitude_ * np.exp(-_sq_dists(m.X_, m.X_) / (2.0 * m.length_scale_ ** 2))
            K[np.diag_indices_from(K)] += m.noise_
            m.chol_ = scipy.linalg.cho_factor(K, lower=True, check_finite=False)
            m.alpha_ = task["alpha"].double().numpy()
            models.append(m)
        if len(models) != self.n_tasks:
            raise ValueError(f"checkpoint has {len(models)} GPs for {self.n_tasks} emotions")
        self.gp.models_ = models
        self.gp.n_train_ = np.asarray(state.get("n_train", [len(m.X_) for m in models]))

    def hyperparameters(self) -> dict:
        return {"max_train": self.gp.max_train, "seed": self.gp.seed,
                "n_restarts": self.gp.n_restarts, "target_max": self.gp.target_max,
                "include_noise": self.gp.include_noise, "score_form": self.gp.score_form}


def recognizer_classes() -> dict[str, type[RecognizerBase]]:
    """Model kind -> class (for checkpoints)."""
    return {EmotionRecognizer.kind: EmotionRecognizer, GPRecognizer.kind: GPRecognizer}

