"""Which feature blocks a recognizer reads, their sizes and their order: x = [visual | tags | text].

Visual = the backbone's clip features averaged over a GIF's clips and L2-normalised
(paper §3.3); tags = the L2-normalised bag of the training vocabulary (§3.4); text = the
GIF's tags embedded by a sentence model, pooled and L2-normalised (beyond the paper;
:mod:`gifemo.models.text_encoder`). The concatenation order is always visual, tags, text.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "visual": ("visual",),
    "tags": ("tags",),
    "visual_tags": ("visual", "tags"),
    "text": ("text",),
    "visual_text": ("visual", "text"),
    "visual_tags_text": ("visual", "tags", "text"),
}
"""Feature group name -> the blocks it concatenates, in order."""

@dataclass(frozen=True)
class FeatureLayout:
    """Which feature blocks a recognizer reads, their sizes and their order.

    Attributes
    ----------
    group : str
        A key of :data:`FEATURE_GROUPS` (``"visual_tags"``, ``"visual_text"`` ...).
    visual_dim : int
        Size of the C3D block (4096 for the paper's network; 0 when unused).
    tag_dim : int
        Size of the bag-of-tags block (the vocabulary size; 0 when unused).
    text_dim : int
        Size of the sentence-embedding block (the text model's size; 0 when unused).
    """

    group: str
    visual_dim: int = 0
    tag_dim: int = 0
    text_dim: int = 0

    def __post_init__(self) -> None:
        if self.group not in FEATURE_GROUPS:
            raise ValueError(f"unknown feature group {self.group!r}; choose one of "
                             f"{sorted(FEATURE_GROUPS)}")
        for name, dim in self._dims():
            if isinstance(dim, bool) or not isinstance(dim, int) or dim < 0:
                raise ValueError(f"{name} dimension must be an integer >= 0, got {dim!r}")
            if name in self.blocks and dim == 0:
                raise ValueError(f"feature group {self.group!r} uses {name} features but their "
                                 f"dimension is 0 (empty tag vocabulary?)")
            if name not in self.blocks and dim != 0:
                raise ValueError(f"feature group {self.group!r} has no {name} block, got "
                                 f"dimension {dim}")

    def _dims(self) -> tuple[tuple[str, int], ...]:
        return (("visual", self.visual_dim), ("tags", self.tag_dim), ("text", self.text_dim))

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
    def uses_text(self) -> bool:
        return "text" in self.blocks

    @property
    def reads_tags(self) -> bool:
        """Whether a block is computed from the GIFs' tag lists (bag of tags or text)."""
        return self.uses_tags or self.uses_text

    @property
    def dim(self) -> int:
        return self.visual_dim + self.tag_dim + self.text_dim

    def to_dict(self) -> dict:
        return {**asdict(self), "order": list(self.blocks)}

    @classmethod
    def from_dict(cls, d: Mapping) -> FeatureLayout:
        return cls(str(d["group"]), int(d.get("visual_dim", 0)), int(d.get("tag_dim", 0)),
                   int(d.get("text_dim", 0)))

    def concat(self, visual: np.ndarray | None, tags: np.ndarray | None,
               text: np.ndarray | None = None) -> np.ndarray:
        """x = [visual | tags | text] float32 [N, dim] from the blocks this layout uses."""
        parts = []
        blocks = {"visual": visual, "tags": tags, "text": text}
        for name, dim in self._dims():
            block = blocks[name]
            if name not in self.blocks:
                continue
            if block is None:
                raise ValueError(f"feature group {self.group!r} needs {name} features")
            block = np.asarray(block, dtype=np.float32)
            if block.ndim != 2 or block.shape[1] != dim:
                raise ValueError(f"{name} features must be [N, {dim}], got {block.shape}")
            parts.append(block)
        if len({p.shape[0] for p in parts}) > 1:
            raise ValueError(f"the {' and '.join(self.blocks)} blocks have "
                             f"{[p.shape[0] for p in parts]} rows")
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
