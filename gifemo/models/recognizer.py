"""The input side every emotion recognizer shares, as a LightningModule (paper §3.5).

A recognizer maps a GIF to one score per emotion. Its input is the feature vector
x = [visual | tags | text] of a :class:`~gifemo.models.layout.FeatureLayout`. Training runs on
cached features, so the backbone is optional: :meth:`RecognizerBase.attach_backbone` adds a
:class:`~gifemo.models.backbone.Backbone` when raw GIFs are to be scored
(:meth:`RecognizerBase.score_gifs`); it is never part of a checkpoint.

Subclasses (:mod:`gifemo.models.linear_recognizer`, :mod:`gifemo.models.gp_recognizer`) add
the head, ``fit_exact(X, Y, mask)``, ``head_state()`` / ``load_head_state()`` and
``hyperparameters()`` (their constructor's keyword arguments as primitives). Each registers
itself under its ``kind`` in :data:`RECOGNIZERS`, which checkpoints use to rebuild it by
keyword. Validation and test steps return ``{"scores", "y", "mask"}`` for
:class:`gifemo.eval.callbacks.PRMetricsCallback` and log the masked mean squared error.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor

from gifemo.data.emotions import EMOTIONS
from gifemo.data.tags import TagVocabulary
from gifemo.models.backbone import describe_backbone, same_backbone
from gifemo.models.layout import FeatureLayout
from gifemo.models.pooling import mean_l2
from gifemo.models.tag_encoder import TagEncoder
from gifemo.models.text_encoder import SentenceTagEncoder

RECOGNIZERS: dict[str, type["RecognizerBase"]] = {}
"""Model kind (``"linear"``, ``"gp"``) -> class; filled when a subclass is defined."""


def _masked_mse(scores: Tensor, y: Tensor, mask: Tensor) -> Tensor:
    m = mask.to(scores.dtype)
    return ((scores - y) ** 2 * m).sum() / m.sum().clamp(min=1.0)


class RecognizerBase(pl.LightningModule):
    """Input side shared by every recognizer: layout, tag encoder, optional frozen backbone.

    Parameters
    ----------
    layout : FeatureLayout or mapping
        Feature blocks and sizes (known once the data are loaded; passed at runtime).
    vocabulary : TagVocabulary, optional
        Needed when the layout uses tags.
    emotions : sequence of str
        Column order of the scores (default: the 17 GIFGIF emotions).

    Attributes
    ----------
    backbone_info : dict or None
        Identity of the backbone the visual features came from (``Backbone.identity()``);
        set by training, stored in checkpoints, checked when ranking.
    text_encoder : SentenceTagEncoder or None
        The sentence-embedding tag encoder of a layout with a text block
        (:meth:`attach_text_encoder`); its identity is stored in checkpoints.
    """

    kind = "base"
    fit_mode = "exact"

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if "kind" in cls.__dict__:
            RECOGNIZERS[cls.kind] = cls

    def __init__(self, *, layout: FeatureLayout | Mapping | None = None,
                 vocabulary: TagVocabulary | None = None,
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
        self.backbone_info: dict | None = None
        self.text_encoder: SentenceTagEncoder | None = None
        self.backbone = None
        self.fit_result = None

    # ------------------------------------------------------------------ inputs
    @property
    def n_tasks(self) -> int:
        return len(self.emotions)

    @property
    def vocabulary(self) -> TagVocabulary | None:
        return None if self.tag_encoder is None else self.tag_encoder.vocabulary

    def attach_backbone(self, backbone: Any) -> None:
        """Attach the frozen backbone (a :class:`~gifemo.models.backbone.Backbone`) used by
        :meth:`score_gifs`; its output size must match the visual block, and a recognizer that
        knows its features' backbone (``backbone_info``: trained, or loaded from a checkpoint)
        refuses another one (name, weights, settings or clip spec differ), naming both."""
        if self.layout.uses_visual and backbone.output_dim != self.layout.visual_dim:
            raise ValueError(f"backbone outputs {backbone.output_dim} features, the recognizer "
                             f"was trained on {self.layout.visual_dim}")
        found = backbone.identity()
        if self.backbone_info and not same_backbone(found, self.backbone_info):
            raise ValueError(f"backbone {describe_backbone(found)} differs from the one the "
                             f"recognizer was trained on, {describe_backbone(self.backbone_info)}")
        self.backbone = backbone
        self.backbone_info = dict(found)

    def attach_text_encoder(self, encoder: SentenceTagEncoder) -> None:
        """Attach the sentence-embedding tag encoder of the text block (size checked)."""
        if not self.layout.uses_text:
            raise ValueError(f"feature group {self.layout.group!r} has no text block")
        if encoder.output_dim != self.layout.text_dim:
            raise ValueError(f"text encoder outputs {encoder.output_dim} features, the recognizer "
                             f"was trained on {self.layout.text_dim}")
        self.text_encoder = encoder

    @torch.no_grad()
    def embed_clips(self, clips_list: Sequence[Tensor]) -> np.ndarray:
        """Visual features [B, visual_dim]: backbone features per clip, mean over clips, L2.

        ``clips_list[i]`` holds GIF i's clips, RGB 0..255 ``[n_i, 3, L, H, W]`` as
        :func:`gifemo.data.clips.make_clips` cuts them for the backbone's clip spec.
        """
        if self.backbone is None:
            raise RuntimeError("no backbone attached: call attach_backbone(backbone) before "
                               "scoring raw GIFs (training uses cached features)")
        rows = []
        for i, clips in enumerate(clips_list):
            if clips.ndim != 5 or clips.shape[0] == 0:
                raise ValueError(f"GIF {i}: clips must be [n >= 1, 3, L, H, W], got "
                                 f"{tuple(clips.shape)}")
            rows.append(mean_l2(self.backbone.embed(clips).double().cpu().numpy()))
        return np.stack(rows).astype(np.float32)

    def encode_tags(self, tag_lists: Sequence[Sequence[str]]) -> np.ndarray:
        """Bag-of-tags block [B, tag_dim] with the saved vocabulary."""
        if self.tag_encoder is None:
            raise RuntimeError(f"feature group {self.layout.group!r} has no tag block")
        return self.tag_encoder.vocabulary.encode(tag_lists)

    def features(self, visual: np.ndarray | None = None,
                 tag_lists: Sequence[Sequence[str]] | None = None) -> Tensor:
        """x = [visual | tags | text] [B, d] from visual features and raw tag lists (ignored,
        and may be None, when no block is computed from tags)."""
        if self.layout.reads_tags and tag_lists is None:
            raise ValueError("this recognizer uses tags: pass tag_lists (empty lists allowed)")
        tags = self.encode_tags(tag_lists) if self.layout.uses_tags else None
        text = None
        if self.layout.uses_text:
            if self.text_encoder is None:
                raise RuntimeError("this recognizer uses text tag features but has no text encoder: "
                                   "call attach_text_encoder (load_recognizer does it)")
            text = self.text_encoder.encode_numpy(tag_lists)
        return torch.from_numpy(self.layout.concat(visual if self.layout.uses_visual else None,
                                                   tags, text))

    @torch.no_grad()
    def score_gifs(self, clips_list: Sequence[Tensor] | None,
                   tag_lists: Sequence[Sequence[str]] | None = None) -> Tensor:
        """Scores [B, T] of raw GIFs: backbone -> mean -> L2 -> concat tags -> head."""
        visual = self.embed_clips(clips_list) if self.layout.uses_visual else None
        x = self.features(visual, tag_lists)
        return self(x.to(self.device))

    # ------------------------------------------------------------------ evaluation steps
    def _eval_step(self, batch, stage: str) -> dict:
        x, y, mask = batch
        scores = self(x)
        self.log(f"{stage}/mse", _masked_mse(self.predicted_targets(x).float(), y, mask),
                 on_step=False, on_epoch=True, batch_size=x.shape[0])
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

    # ------------------------------------------------------------------ fitting + checkpoints
    def fit_exact(self, X: Any, Y: Any, mask: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def on_fit_start(self) -> None:
        if self.fit_mode == "exact":
            raise RuntimeError(
                f"{type(self).__name__} with fit='exact' is fitted by fit_exact(X, Y, mask) on "
                "the full training batch (gifemo.training does this), not by trainer.fit; use "
                "fit='minibatch' to train through the Lightning loop")

    def head_state(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def load_head_state(self, state: Mapping) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def hyperparameters(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError
