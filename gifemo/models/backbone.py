"""The visual backbone interface: a frozen clip encoder that stage 1 runs once per GIF.

A backbone is configured by ``conf/backbone/<name>.yaml`` (``_target_`` = its class, the other
keys = its constructor arguments) and holds only settings until it is used, so a cache hit
or a tags-only run never builds the network:

- ``name``, ``clip_spec`` (:class:`~gifemo.data.clips.ClipSpec`: how GIFs are cut for it),
  ``output_dim`` (the feature size), ``max_clips`` (its own cap on clips per GIF, e.g. the
  frames of a frame encoder, whose clips are single frames; None = none: stage 1 keeps the
  smaller of it and the data's ``max_clips_per_gif``, evenly spaced);
- ``identity()``: primitives that name the features it computes (backbone name, weights
  SHA-256 or the random seed, settings, clip spec). Feature-cache keys and checkpoints store
  it; :func:`same_backbone` compares two of them;
- ``build()``: the frozen ``nn.Module`` (eval mode, no gradients) whose ``forward`` takes
  preprocessed clips ``[N, 3, L, H, W]`` and returns features ``[N, output_dim]``;
  ``network`` builds it on first use;
- ``preprocess(clips)``: RGB 0..255 clips (as :func:`~gifemo.data.clips.make_clips` cuts
  them) to the network's input convention; ``embed(clips)`` = network(preprocess(clips)).

Adding a backbone = one module with a :class:`Backbone` subclass + one yaml.
"""
from __future__ import annotations

import abc
import logging
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from gifemo.data.clips import ClipSpec

_log = logging.getLogger(__name__)


class Backbone(abc.ABC):
    """Frozen clip encoder (see the module docstring)."""

    name: str = ""
    clip_spec: ClipSpec = ClipSpec()
    max_clips: int | None = None

    def __init__(self) -> None:
        self._network: nn.Module | None = None

    @property
    @abc.abstractmethod
    def output_dim(self) -> int:
        """Size of one clip's (and one GIF's) feature vector."""

    @abc.abstractmethod
    def weights_id(self) -> str:
        """SHA-256 of the weights file, or ``random:...`` naming the seed of random weights."""

    @abc.abstractmethod
    def settings(self) -> dict:
        """Constructor settings that change the features (primitives)."""

    @abc.abstractmethod
    def build(self) -> nn.Module:
        """The frozen network (eval mode, ``requires_grad=False``)."""

    @abc.abstractmethod
    def preprocess(self, clips: Tensor) -> Tensor:
        """RGB 0..255 clips ``[N, 3, L, H, W]`` -> the network's input."""

    @property
    def is_random(self) -> bool:
        return self.weights_id().startswith("random")

    def identity(self) -> dict:
        """What the features depend on besides the GIF: stored with caches and checkpoints."""
        return {"name": self.name, "weights_id": self.weights_id(), "output_dim": self.output_dim,
                "clip_spec": self.clip_spec.to_dict(), "settings": self.settings()}

    @property
    def network(self) -> nn.Module:
        if self._network is None:
            if self.is_random:
                msg = (f"{self.name} backbone: RANDOM weights ({self.weights_id()}); visual "
                       "features are NOT those of trained weights")
                _log.warning(msg)
                print(f"*** {msg} ***", flush=True)
            self._network = self.build()
        return self._network

    @torch.no_grad()
    def embed(self, clips: Tensor) -> Tensor:
        """Features ``[N, output_dim]`` of RGB 0..255 clips, on the network's device."""
        net = self.network
        device = next(net.parameters()).device
        return net(self.preprocess(clips.to(device).float()))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.settings().items())
        return f"{type(self).__name__}({args})"


def same_backbone(a: Mapping | None, b: Mapping | None) -> bool:
    """True when two ``identity()`` records name the same features (name, weights, settings,
    clip spec, dim)."""
    if not a or not b:
        return False
    keys = ("name", "weights_id", "output_dim", "clip_spec", "settings")
    return all(a.get(k) == b.get(k) for k in keys)


def describe_backbone(identity: Mapping | None) -> str:
    """``c3d (weights sha256…, dim 4096)`` for error messages."""
    if not identity:
        return "<none>"
    return f"{identity.get('name')} (weights {identity.get('weights_id')}, dim {identity.get('output_dim')})"
