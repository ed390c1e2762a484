"""Per-GIF visual feature from clip features: mean of fc6 over clips, then L2 (paper §3.3).

"The fc6 activations of all the clips were finally averaged and L2-normalized to form a
4096-dim vector for each GIF." The clips of one GIF may arrive in several batches, so the
mean is accumulated (:class:`ClipMeanAccumulator`, float64 sums) and finished once all of a
GIF's clips are in.
"""
from __future__ import annotations

import numpy as np


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows (or a vector) divided by their L2 norm; an all-zero row stays zero."""
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > eps)


def mean_l2(clip_features: np.ndarray) -> np.ndarray:
    """GIF feature from its clips' fc6 rows ``[n_clips, d]``: L2-normalised mean, float32 ``[d]``."""
    clip_features = np.asarray(clip_features, dtype=np.float64)
    if clip_features.ndim != 2 or clip_features.shape[0] == 0:
        raise ValueError(f"clip_features must be [n_clips >= 1, d], got {clip_features.shape}")
    return l2_normalize(clip_features.mean(axis=0)).astype(np.float32)


class ClipMeanAccumulator:
    """Running per-GIF sums of clip features; yields each GIF's :func:`mean_l2` when complete."""

    def __init__(self):
        self._sum: dict[int, np.ndarray] = {}
        self._seen: dict[int, int] = {}

    def __len__(self) -> int:
        """GIFs started but not complete."""
        return len(self._sum)

    def add(self, gif_index: np.ndarray, n_clips: np.ndarray, feats: np.ndarray) -> list[tuple[int, np.ndarray, int]]:
        """Add clip rows; return ``(gif_index, feature float32 [d], n_clips)`` of GIFs now complete."""
        feats = np.asarray(feats, dtype=np.float64)
        done = []
        order = dict.fromkeys(int(g) for g in gif_index)  # first-appearance order
        for g in order:
            rows = np.asarray(gif_index) == g
            expected = int(np.asarray(n_clips)[rows][0])
            s = feats[rows].sum(axis=0)
            self._sum[g] = self._sum[g] + s if g in self._sum else s
            self._seen[g] = self._seen.get(g, 0) + int(rows.sum())
            if self._seen[g] > expected:
                raise ValueError(f"GIF {g}: got {self._seen[g]} clips, expected {expected}")
            if self._seen[g] == expected:
                mean = self._sum.pop(g) / expected
                del self._seen[g]
                done.append((g, l2_normalize(mean).astype(np.float32), expected))
        return done
