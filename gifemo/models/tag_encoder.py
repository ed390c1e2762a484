"""Bag-of-tags encoder as a module (GIFGIF+ paper §3.4).

:class:`TagEncoder` wraps a saved :class:`~gifemo.data.tags.TagVocabulary` behind the
interface a learned text encoder would also have: ``forward(tag_lists) -> [B, output_dim]``,
``output_dim``, ``to_dict``/``from_dict`` and a ``state_dict`` that carries the vocabulary
(as extra state, primitives only, so a checkpoint holding it loads with
``torch.load(weights_only=True)``). It has no parameters: the paper's tag feature is a fixed
L2-normalised count vector over the tags present in at least 0.5 % of the training GIFs.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from gifemo.data.tags import TagVocabulary


class TagEncoder(nn.Module):
    """Tag lists -> L2-normalised bag-of-tags rows ``[B, V]`` (float32).

    Parameters
    ----------
    vocabulary : TagVocabulary
        The saved vocabulary (built on the training GIFs); its order is the column order.
    """

    def __init__(self, vocabulary: TagVocabulary):
        super().__init__()
        if not isinstance(vocabulary, TagVocabulary):
            raise TypeError(f"vocabulary must be a TagVocabulary, got {type(vocabulary).__name__}")
        self.vocabulary = vocabulary
        # Empty buffer: follows .to(device) so outputs land where the module lives.
        self.register_buffer("_device_anchor", torch.empty(0), persistent=False)

    @property
    def output_dim(self) -> int:
        """Feature size V (vocabulary size)."""
        return len(self.vocabulary)

    def forward(self, tag_lists: Iterable[Iterable[str]]) -> Tensor:
        """Encode each GIF's raw tags; a GIF with no vocabulary tag gets a zero row."""
        rows = self.vocabulary.encode(tag_lists)
        return torch.from_numpy(rows).to(self._device_anchor.device)

    def to_dict(self) -> dict:
        """Primitive-only description (the vocabulary), for checkpoints."""
        return {"kind": "bag_of_tags", "vocabulary": self.vocabulary.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> TagEncoder:
        """Inverse of :meth:`to_dict`."""
        if not isinstance(d, dict) or d.get("kind") != "bag_of_tags" or "vocabulary" not in d:
            raise ValueError(f"not a bag-of-tags encoder description: {str(d)[:200]}")
        return cls(TagVocabulary.from_dict(d["vocabulary"]))

    def get_extra_state(self) -> dict:
        return self.to_dict()

    def set_extra_state(self, state: dict) -> None:
        self.vocabulary = TagEncoder.from_dict(state).vocabulary

    def extra_repr(self) -> str:
        return f"output_dim={self.output_dim}"
