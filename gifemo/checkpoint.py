"""Checkpoints of trained recognizers: everything needed to rank new GIFs, nothing executable.

A checkpoint is one ``torch.save``-d dict of tensors and primitives (str, int, float, bool,
None, lists, dicts), so it loads with ``torch.load(path, weights_only=True)``:

``format``            ``"gifemo.checkpoint/1"``
``model_kind``        a key of :data:`gifemo.models.recognizer.RECOGNIZERS` (``"linear"``, ``"gp"``)
``hyperparameters``   the recognizer's constructor keyword arguments as primitives (a linear
                      model's penalty as ``Penalty.config()``); the model is rebuilt as
                      ``RECOGNIZERS[model_kind](**hyperparameters, layout=..., ...)``
``head``              linear: ``{"W": [d, T], "b": [T]}``; GP: per-emotion training inputs,
                      dual weights and kernel hyperparameters
``emotions``          score column order
``features``          layout (group, visual_dim, tag_dim, order) and the normalisation of each
                      block (visual: fc6 mean over clips, L2; tags: counts, L2)
``vocabulary``        ``TagVocabulary.to_dict()`` (None without tags)
``text_encoder``      ``SentenceTagEncoder.to_dict()``: the sentence model's name and identity
                      (size, weights digest, pooling rule), not its weights; None without a
                      text block
``clips``, ``decode`` clips per GIF (the geometry is the backbone's clip spec) and decoder settings
``feature_precision`` Lightning precision the visual features were computed under (its dtype
                      is part of the feature-cache key; ranking uses it unless told otherwise)
``backbone``          ``{"identity": Backbone.identity(), "config": conf/backbone node}`` —
                      NOT the frozen backbone's weights (61 M parameters for C3D that the
                      user already has); None without visual features
``metrics``, ``extra`` free-form primitives (test PR-AUC, config ...)

:func:`load_recognizer` rebuilds the recognizer (without a backbone; see
:mod:`gifemo.rank` for attaching one whose hash is checked).
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gifemo.atomic_file import atomic_write
from gifemo.data.tags import TagVocabulary
from gifemo.models import gp_recognizer, linear_recognizer  # noqa: F401  (register the kinds)
from gifemo.models.layout import FeatureLayout
from gifemo.models.recognizer import RECOGNIZERS, RecognizerBase
from gifemo.models.text_encoder import POOLING, SentenceTagEncoder
from gifemo.plain_config import to_plain

FORMAT = "gifemo.checkpoint/2"
VISUAL_NORMALISATION = "C3D fc6 (after ReLU), mean over clips, L2-normalised"
TAGS_NORMALISATION = "tag counts over the vocabulary, L2-normalised (zero row if none)"
TEXT_NORMALISATION = POOLING


class CheckpointError(ValueError):
    """A file is not a loadable gifemo checkpoint; names the file and the problem."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


def to_primitive(obj: Any) -> Any:
    """Tensors stay; numpy arrays become tensors; numpy scalars, tuples, OmegaConf nodes and
    Paths become Python primitives; anything else raises TypeError naming it."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, Mapping):
        return {str(k): to_primitive(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_primitive(v) for v in obj]
    plain = to_plain(obj)  # OmegaConf nodes
    if plain is not obj:
        return to_primitive(plain)
    raise TypeError(f"cannot store {type(obj).__name__} in a weights-only checkpoint: {obj!r:.80}")


def checkpoint_dict(model: RecognizerBase, *, backbone_config: Mapping | None = None,
                    clips: Mapping | None = None, decode: Mapping | None = None,
                    precision: str | None = None,
                    metrics: Mapping | None = None, extra: Mapping | None = None) -> dict:
    """The checkpoint of ``model`` as a weights-only-loadable dict; ``backbone_config`` is the
    ``conf/backbone`` node (with ``_target_``) that rebuilds the backbone for ranking;
    ``precision`` the Lightning precision the visual features were computed under."""
    if not isinstance(model, RecognizerBase):
        raise TypeError(f"expected a gifemo recognizer, got {type(model).__name__}")
    layout = model.layout
    backbone = None
    if layout.uses_visual:
        if not model.backbone_info:
            raise ValueError("the model uses visual features but has no backbone_info (the "
                             "identity of the backbone its features came from)")
        if backbone_config is None:
            raise ValueError("the model uses visual features: pass backbone_config (the "
                             "conf/backbone node that built its backbone)")
        backbone = {"identity": dict(model.backbone_info), "config": dict(backbone_config)}
    ckpt = {
        "format": FORMAT,
        "model_kind": model.kind,
        "hyperparameters": model.hyperparameters(),
        "head": model.head_state(),
        "emotions": list(model.emotions),
        "features": {**layout.to_dict(),
                     "visual_normalisation": VISUAL_NORMALISATION if layout.uses_visual else None,
                     "tags_normalisation": TAGS_NORMALISATION if layout.uses_tags else None,
                     "text_normalisation": TEXT_NORMALISATION if layout.uses_text else None},
        "vocabulary": None if model.vocabulary is None else model.vocabulary.to_dict(),
        "text_encoder": _text_encoder_record(model),
        "clips": dict(clips) if clips is not None else {"max_clips_per_gif": None},
        "decode": dict(decode) if decode is not None else {"backend": "pyav"},
        "feature_precision": precision,
        "backbone": backbone,
        "metrics": {k: (float(v) if isinstance(v, (int, float)) else v)
                    for k, v in (metrics or {}).items()},
        "extra": dict(extra or {}),
        "fit": _fit_record(model),
    }
    return to_primitive(ckpt)


def _text_encoder_record(model: RecognizerBase) -> dict | None:
    if not model.layout.uses_text:
        return None
    if model.text_encoder is None:
        raise ValueError("the model uses text tag features but has no text encoder (whose "
                         "identity the checkpoint must carry)")
    return model.text_encoder.to_dict()


def _fit_record(model: RecognizerBase) -> dict | None:
    res = getattr(model, "fit_result", None)
    if res is not None and hasattr(res, "rel_gap"):
        return {"objective": float(res.objective), "rel_gap": float(res.rel_gap),
                "n_iter": int(res.n_iter), "converged": bool(res.converged)}
    gap = getattr(model, "rel_gap_to_optimum", None)
    return None if gap is None else {"minibatch_rel_gap_to_optimum": float(gap)}


def save_checkpoint(model: RecognizerBase, path: str | os.PathLike, **kw: Any) -> Path:
    """Write :func:`checkpoint_dict` to ``path`` atomically (temp file, then rename)."""
    path = Path(path)
    ckpt = checkpoint_dict(model, **kw)
    with atomic_write(path) as f:
        torch.save(ckpt, f)
    return path


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint with ``torch.load(weights_only=True)`` and check its format."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "checkpoint file not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle/zip errors, or non-primitive content
        raise CheckpointError(path, f"cannot be loaded with weights_only=True "
                                    f"({type(e).__name__}: {str(e)[:300]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(path, f"not a gifemo checkpoint (format {found!r}, expected {FORMAT!r})")
    missing = [k for k in ("model_kind", "head", "emotions", "features", "hyperparameters")
               if k not in ckpt]
    if missing:
        raise CheckpointError(path, f"missing key(s) {missing}")
    return ckpt


def recognizer_from_checkpoint(ckpt: Mapping, path: str | os.PathLike = "<checkpoint>",
                               text_model: str | None = None) -> RecognizerBase:
    """Rebuild the recognizer of a loaded checkpoint dict (no backbone attached). A text block's
    encoder is attached from the stored description (``text_model`` replaces the stored model
    name); the sentence model is loaded, and its weights checked, on first use."""
    layout = FeatureLayout.from_dict(ckpt["features"])
    vocab = None if ckpt.get("vocabulary") is None else TagVocabulary.from_dict(ckpt["vocabulary"])
    kind = ckpt["model_kind"]
    if kind not in RECOGNIZERS:
        raise CheckpointError(path, f"unknown model kind {kind!r}; known: {sorted(RECOGNIZERS)}")
    try:
        model = RECOGNIZERS[kind](**dict(ckpt["hyperparameters"]), layout=layout,
                                  vocabulary=vocab, emotions=ckpt["emotions"])
        model.load_head_state(ckpt["head"])
        if layout.uses_text:
            if not ckpt.get("text_encoder"):
                raise CheckpointError(path, "the model uses text tag features but the checkpoint "
                                            "records no text encoder")
            model.attach_text_encoder(SentenceTagEncoder.from_dict(dict(ckpt["text_encoder"]),
                                                                   model=text_model))
    except CheckpointError:
        raise
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(path, f"inconsistent checkpoint ({type(e).__name__}: {e})") from None
    model.backbone_info = (ckpt.get("backbone") or {}).get("identity")
    model.eval()
    return model


def load_recognizer(path: str | os.PathLike,
                    text_model: str | None = None) -> tuple[RecognizerBase, dict]:
    """(recognizer, checkpoint dict) from a checkpoint file."""
    ckpt = load_checkpoint(path)
    return recognizer_from_checkpoint(ckpt, path, text_model), ckpt


def finite_metrics(metrics: Mapping) -> dict:
    """Float metrics only (NaN/inf dropped): what goes into a checkpoint's ``metrics``."""
    out = {}
    for k, v in metrics.items():
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            out[str(k)] = f
    return out
