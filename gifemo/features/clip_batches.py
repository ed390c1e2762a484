"""Clip batches for feature extraction: one GIF per item, packed into fixed-size clip batches.

The unit of work is one GIF (:class:`GifClipDataset` item = ``(gif_index, clips [n, 3, 16,
112, 112])``), but the device wants full batches of *clips*: :class:`PackedClipBatches` packs
the clips of several GIFs into batches of exactly ``clip_batch_size`` clips (a long GIF may
span batches; every clip carries its GIF's index, its position and its GIF's clip count, so
the consumer knows when a GIF is complete). Clips travel as uint8 (they are whole numbers
0..255 after the resize): 4x less worker->main and host->device traffic than float32; the
model converts on the device.

Work is split without padding: a rank takes positions ``rank::world_size`` of the work list
(:func:`shard_for_rank`), each loader worker a stride of that. Unlike ``DistributedSampler``
nothing is repeated, so each GIF is computed exactly once, in a fixed order. A GIF that
cannot be decoded (:class:`~gifemo.data.decode.GifDecodeError`, unreadable file, no frames)
is skipped and reported in the next batch's ``bad`` list.

Plain PyTorch (no Lightning), so worker processes and tests import it cheaply.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from gifemo.data.clips import PAPER_CLIPS, ClipSpec, make_clips
from gifemo.data.decode import DecodeLimits, GifDecodeError, decode


def shard_for_rank(items: Sequence[int], rank: int, world_size: int) -> list[int]:
    """Items this rank processes: positions ``rank, rank + world_size, ...`` (no padding).

    Every item belongs to exactly one rank; ranks differ in length by at most one.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    return list(items)[rank::world_size]


class ClipBatch(NamedTuple):
    """A batch of clips from one or more GIFs (stage 1).

    Attributes
    ----------
    clips : Tensor, uint8 (or float32), shape [b, 3, 16, 112, 112]
        RGB 0..255.
    gif_index : Tensor, int64 [b]
        Dataset row of each clip's GIF.
    clip_pos : Tensor, int64 [b]
        Position of the clip within its GIF (0 .. n_clips - 1).
    n_clips : Tensor, int64 [b]
        Number of clips of that GIF (all of them, also those in other batches).
    bad : list of (gif_index, reason)
        GIFs skipped since the previous batch; may come with ``b == 0`` clips.
    """

    clips: torch.Tensor
    gif_index: torch.Tensor
    clip_pos: torch.Tensor
    n_clips: torch.Tensor
    bad: list


class GifClipDataset(Dataset):
    """One item per GIF: ``(gif_index, clips)`` with clips float32 ``[n, 3, 16, 112, 112]``.

    Raises :class:`~gifemo.data.decode.GifDecodeError` (or ``OSError``/``ValueError``) for a
    file that cannot be turned into clips; :class:`PackedClipBatches` turns those into ``bad``.
    """

    def __init__(self, paths: Sequence[str | Path], backend: str = "pyav",
                 limits: DecodeLimits | None = None, max_clips: int | None = None,
                 clip_spec: ClipSpec = PAPER_CLIPS):
        self.paths = [str(p) for p in paths]
        self.backend = backend
        self.limits = limits
        self.max_clips = max_clips
        self.clip_spec = clip_spec

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor]:
        frames = decode(self.paths[i], backend=self.backend, limits=self.limits)
        return i, make_clips(frames.rgb, max_clips=self.max_clips, spec=self.clip_spec)


def _as_uint8_if_exact(clips: torch.Tensor) -> torch.Tensor:
    """uint8 copy when every value is a whole number in 0..255 (lossless), else unchanged."""
    if clips.dtype == torch.uint8:
        return clips
    if clips.numel() and bool(((clips >= 0) & (clips <= 255) & (clips == clips.round())).all()):
        return clips.to(torch.uint8)
    return clips


class PackedClipBatches(IterableDataset):
    """Pack the clips of many GIFs into batches of exactly ``clip_batch_size`` clips.

    Parameters
    ----------
    gifs : GifClipDataset
    indices : sequence of int
        Dataset rows to run (the work list, identical on every rank).
    clip_batch_size : int
        Clips per batch (the last batch of each worker may be smaller).
    rank, world_size : int
        This process' share is :func:`shard_for_rank` of ``indices``; loader workers then take
        strides of that share.
    split_workers : bool, default=True
        False when the caller already gave each loader worker its own ``indices`` (the
        ranking job hands whole shards to workers).
    """

    def __init__(self, gifs: GifClipDataset, indices: Sequence[int], clip_batch_size: int,
                 rank: int = 0, world_size: int = 1, split_workers: bool = True):
        if clip_batch_size < 1:
            raise ValueError(f"clip_batch_size must be >= 1, got {clip_batch_size}")
        self.gifs = gifs
        self.indices = [int(i) for i in indices]
        self.clip_batch_size = int(clip_batch_size)
        self.rank, self.world_size = rank, world_size
        self.split_workers = bool(split_workers)

    def my_indices(self) -> list[int]:
        """GIFs of this rank (all workers together)."""
        return shard_for_rank(self.indices, self.rank, self.world_size)

    def __iter__(self):
        mine = self.my_indices()
        info = get_worker_info()
        if info is not None and self.split_workers:
            mine = mine[info.id::info.num_workers]
        pending: deque = deque()  # (gif_index, clips, first clip not yet emitted)
        buffered = 0
        bad: list = []
        for i in mine:
            try:
                _, clips = self.gifs[i]
            except (GifDecodeError, OSError, ValueError) as e:
                bad.append((i, getattr(e, "reason", None) or f"{type(e).__name__}: {e}"))
                continue
            pending.append((i, _as_uint8_if_exact(clips), 0))
            buffered += clips.shape[0]
            while buffered >= self.clip_batch_size:
                batch, buffered = self._take(pending, buffered, bad)
                bad = []
                yield batch
        while buffered > 0 or bad:
            batch, buffered = self._take(pending, buffered, bad)
            bad = []
            yield batch

    def _take(self, pending: deque, buffered: int, bad: list) -> tuple[ClipBatch, int]:
        want = min(self.clip_batch_size, buffered)
        parts, gif_index, clip_pos, n_clips = [], [], [], []
        while want > 0:
            i, clips, start = pending.popleft()
            n = clips.shape[0]
            stop = min(n, start + want)
            parts.append(clips[start:stop])
            gif_index += [i] * (stop - start)
            clip_pos += list(range(start, stop))
            n_clips += [n] * (stop - start)
            want -= stop - start
            buffered -= stop - start
            if stop < n:
                pending.appendleft((i, clips, stop))
        if parts:
            clips = torch.cat(parts) if len(parts) > 1 else parts[0].clone()
        else:
            clips = torch.empty((0, 3, 16, 112, 112), dtype=torch.uint8)
        as_long = lambda v: torch.tensor(v, dtype=torch.int64)
        return ClipBatch(clips, as_long(gif_index), as_long(clip_pos), as_long(n_clips), bad), buffered
