"""Inputs for ranking-job tests: tiny generated GIFs, a paths file listing them many times
under distinct ids, and a checkpoint over the stand-in :class:`TinyBackbone`."""
from __future__ import annotations

from pathlib import Path

import torch

from gifemo.checkpoint import save_checkpoint
from gifemo.models.layout import FeatureLayout
from gifemo.models.linear_recognizer import LinearRecognizer
from gifemo.models.penalties import RidgePenalty
from gifemo.models.tiny_backbone import TinyBackbone


def paths_file(path: Path, gifs: list[Path], n: int, bad: dict[int, Path] | None = None) -> Path:
    """``n`` lines ``c<i><TAB><gif>`` cycling over ``gifs``; line i of ``bad`` lists that file."""
    bad = bad or {}
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(f"c{i:07d}\t{Path(bad.get(i, gifs[i % len(gifs)])).resolve()}\n")
    return path


def tiny_checkpoint(path: Path, dim: int = 16, seed: int = 0) -> Path:
    """A linear recognizer with a random head over TinyBackbone(dim, seed) features."""
    config = {"_target_": "gifemo.models.tiny_backbone.TinyBackbone", "dim": dim, "seed": seed}
    bb = TinyBackbone(dim=dim, seed=seed)
    m = LinearRecognizer(RidgePenalty(1.0), layout=FeatureLayout("visual", dim, 0))
    g = torch.Generator().manual_seed(seed + 1)
    m.load_head_state({"W": torch.randn(dim, 17, generator=g), "b": torch.randn(17, generator=g)})
    m.backbone_info = bb.identity()
    return save_checkpoint(m, path, backbone_config=config, clips={"max_clips_per_gif": 2})
