"""A cheap stand-in backbone for tests and scale benchmarks (NOT a feature for real ranking).

:class:`TinyBackbone` cuts 4-frame clips of 16x16 pixels (frames resized to 24x32 first, so
GIFs generated at 32x24 skip the resize) and maps each clip to ``dim`` features: a 4x4
average pool of every frame, then a fixed random projection (seeded) and a ReLU. It runs the
whole stage-1 path — decode, clip cutting, a network forward, mean over clips, L2 — at a few
microseconds of network time per clip, so the machinery around it (sharding, scoring,
resuming, merging, memory) can be measured at hundreds of thousands of candidates on a CPU.
Its weights are random by construction: every run says so, like random-weight C3D.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from gifemo.data.clips import ClipSpec
from gifemo.models.backbone import Backbone


class _PoolProject(nn.Module):
    def __init__(self, dim: int, seed: int):
        super().__init__()
        self.pool = nn.AvgPool3d((1, 4, 4))
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("projection", torch.randn(3 * 4 * 4 * 4, dim, generator=g) / 8.0)

    def forward(self, x: Tensor) -> Tensor:  # [N, 3, 4, 16, 16] -> [N, dim]
        return torch.relu(self.pool(x).flatten(1) @ self.projection)


class TinyBackbone(Backbone):
    """Pooled pixels through a fixed random projection (see the module docstring)."""

    name = "tiny"
    clip_spec = ClipSpec(length=4, stride=4, resize_hw=(24, 32), crop=16)

    def __init__(self, dim: int = 32, seed: int = 0):
        super().__init__()
        self.dim, self.seed = int(dim), int(seed)

    @property
    def output_dim(self) -> int:
        return self.dim

    def weights_id(self) -> str:
        return f"random:seed={self.seed}"

    def settings(self) -> dict:
        return {"dim": self.dim, "seed": self.seed}

    def build(self) -> nn.Module:
        return _PoolProject(self.dim, self.seed).eval().requires_grad_(False)

    def preprocess(self, clips: Tensor) -> Tensor:
        return clips.float() / 255.0


def tiny_gifs(folder: Path, n: int, seed: int = 0, prefix: str = "g") -> list[Path]:
    """``n`` random 32x24 GIFs of 3-6 frames, already at the stand-in's resize size, for the
    tests and benchmarks that run the ranking job at scale (``<prefix><i:03d>.gif``)."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        frames = [Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
                  for _ in range(int(rng.integers(3, 7)))]
        p = folder / f"{prefix}{i:03d}.gif"
        frames[0].save(p, save_all=True, append_images=frames[1:], duration=80, loop=0)
        out.append(p)
    return out
