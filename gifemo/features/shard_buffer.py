"""Per-GIF features from clip rows, buffered into atomic cache shards (plain, no Lightning).

:class:`ShardBuffer` takes :class:`~gifemo.features.clip_batches.ClipBatch` es and their fc6
rows, accumulates each GIF's clips (:class:`~gifemo.models.pooling.ClipMeanAccumulator`),
buffers a GIF's L2-normalised mean once all its clips are in, and every ``shard_size`` GIFs
(or ``flush_every_s`` seconds) writes the buffer as one atomic shard of the
:class:`~gifemo.features.cache.FeatureCache`, so an interrupted run loses at most one buffer.

Exactly-once under DDP: it keeps only GIFs this rank *owns*,
``shard_for_rank(work, rank, world_size)`` -- the rule by which ``DistributedSampler(shuffle=
False)`` deals out the unpadded items -- and only the first time it sees them, so repeated
samples of a padding sampler are dropped. :class:`~gifemo.features.writer.ShardWriter` is the
thin Lightning callback around it.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
import torch

from gifemo.features.cache import FeatureCache
from gifemo.features.clip_batches import ClipBatch, shard_for_rank
from gifemo.models.pooling import ClipMeanAccumulator

_log = logging.getLogger(__name__)


class ShardBuffer:
    """Write per-GIF features of the owned GIFs into ``cache`` shards.

    Parameters
    ----------
    cache : FeatureCache
    work : sequence of int
        Dataset rows of this extraction, in order (identical on every rank).
    describe : dict of int -> dict
        Per dataset row: ``{"sha256", "id", "path"}`` (stored in the shard metadata).
    shard_size : int, default=256
        GIFs per shard.
    flush_every_s : float, default=60
        Also write a shard when the oldest buffered GIF is this old.
    provenance : dict, optional
        Stored with every shard (precision, device, versions...).
    bad_extra : dict, optional
        Stored with every bad entry (e.g. the decode limits).
    """

    def __init__(self, cache: FeatureCache, work: Sequence[int], describe: dict[int, dict],
                 shard_size: int = 256, flush_every_s: float = 60.0,
                 provenance: dict | None = None, bad_extra: dict | None = None):
        if shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {shard_size}")
        self.cache = cache
        self.work = [int(i) for i in work]
        self.describe = describe
        self.shard_size = int(shard_size)
        self.flush_every_s = float(flush_every_s)
        self.provenance = dict(provenance or {})
        self.bad_extra = dict(bad_extra or {})
        self.on_gif_done = None  # optional callable(gif_index) after each completed GIF
        self.bind(0, 1)

    def bind(self, rank: int, world_size: int) -> None:
        """Set this process' rank (and reset the state)."""
        self.rank, self.world_size = int(rank), int(world_size)
        self.owned = set(shard_for_rank(self.work, self.rank, self.world_size))
        self._acc = ClipMeanAccumulator()
        self._finished: set[int] = set()
        self._rows: list[np.ndarray] = []
        self._entries: list[dict] = []
        self._bad: list[dict] = []
        self._since = None
        self.n_gifs = 0  # GIFs whose features this writer completed
        self.n_bad = 0
        self.n_clips = 0
        self.n_dropped = 0  # clips/GIFs ignored as not owned or already written
        self.shards: list = []

    def consume(self, batch: ClipBatch, features) -> None:
        """Take one batch and its fc6 rows ``[b, d]`` (Tensor or array)."""
        if isinstance(features, torch.Tensor):
            features = features.detach().float().cpu().numpy()
        gif_index = np.asarray(batch.gif_index.cpu() if isinstance(batch.gif_index, torch.Tensor)
                               else batch.gif_index, dtype=np.int64)
        n_clips = np.asarray(batch.n_clips.cpu() if isinstance(batch.n_clips, torch.Tensor)
                             else batch.n_clips, dtype=np.int64)
        if features.shape[0] != gif_index.shape[0]:
            raise ValueError(f"{features.shape[0]} feature rows for {gif_index.shape[0]} clips")
        keep = np.array([g in self.owned and g not in self._finished for g in gif_index.tolist()],
                        dtype=bool)
        self.n_dropped += int((~keep).sum())
        if keep.any():
            self.n_clips += int(keep.sum())
            for g, feat, n in self._acc.add(gif_index[keep], n_clips[keep], features[keep]):
                self._finished.add(g)
                self._rows.append(feat)
                self._entries.append({**self.describe[g], "n_clips": n})
                self.n_gifs += 1
                if self.on_gif_done is not None:
                    self.on_gif_done(g)
        for g, reason in batch.bad:
            g = int(g)
            if g not in self.owned or g in self._finished:
                self.n_dropped += 1
                continue
            self._finished.add(g)
            self._bad.append({**self.describe[g], "reason": str(reason), **self.bad_extra})
            self.n_bad += 1
        if self._since is None and (self._rows or self._bad):
            self._since = time.monotonic()
        if len(self._entries) + len(self._bad) >= self.shard_size or (
                self._since is not None and time.monotonic() - self._since >= self.flush_every_s):
            self.flush()

    @property
    def pending(self) -> ClipMeanAccumulator:
        """GIFs with some but not all clips seen."""
        return self._acc

    def flush(self) -> None:
        """Write buffered GIFs (and bad files) as one shard; no-op when empty."""
        if not (self._entries or self._bad):
            return
        dim = self._rows[0].shape[0] if self._rows else 0
        feats = np.stack(self._rows) if self._rows else np.zeros((0, dim), np.float32)
        path = self.cache.write_shard(feats, self._entries, self._bad, tag=f"r{self.rank}",
                                      provenance={**self.provenance, "rank": self.rank,
                                                  "world_size": self.world_size})
        self.shards.append(path)
        _log.debug("feature cache: wrote %s (%d GIFs, %d bad)", path.name, len(self._entries), len(self._bad))
        self._rows, self._entries, self._bad, self._since = [], [], [], None
