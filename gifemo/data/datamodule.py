"""The Lightning data module of both stages (design.md "Two stages").

Stage 1, ``predict``: GIF files -> C3D clips, fed to the frozen backbone. The unit of work is
one GIF (:class:`GifClipDataset` item = ``(gif_index, clips [n, 3, 16, 112, 112])``), but the
device wants full batches of *clips*: :class:`PackedClipBatches` packs the clips of several
GIFs into batches of exactly ``clip_batch_size`` clips (a long GIF may span batches; every
clip carries its GIF's index, its position and its GIF's clip count so the consumer knows when
a GIF is complete). Clips travel as uint8 (they are whole numbers 0..255 after the resize),
4x less worker->main and host->device traffic than float32; the model converts on device.

The GIFs to run are split without padding: this rank takes positions ``rank::world_size`` of
the work list (:func:`shard_for_rank`), and each loader worker a stride of that. Unlike
``DistributedSampler`` nothing is repeated, so each GIF is computed exactly once; the order
is fixed (deterministic). A GIF that cannot be decoded (typed
:class:`~gifemo.data.decode.GifDecodeError`, unreadable file, no frames) is skipped, sent
along in the batch's ``bad`` list, added to :attr:`GifDataModule.bad_files` in the main
process, written to ``run_dir/bad_files.csv`` at the end and counted in the log.

Stage 2, ``fit``/``validate``/``test``: cached features. :meth:`GifDataModule.set_features`
takes ``X [N, d]``, ``Y [N, 17]`` and boolean masks per split; loaders yield
``(x [B, d], y [B, 17], mask [B, 17])`` over the GIFs that have at least one labelled emotion
in that split, and :meth:`GifDataModule.full_batch` returns the same as whole tensors (the
convex solvers use full batches). ``y`` is 0 wherever ``mask`` is False (no NaN leaks).
"""
from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset, get_worker_info

from gifemo.data.bad_files import BadFileLog
from gifemo.data.clips import make_clips
from gifemo.data.decode import BACKENDS, DecodeLimits, GifDecodeError, decode
from gifemo.data.emotions import EMOTIONS

_log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


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
                 limits: DecodeLimits | None = None, max_clips: int | None = None):
        self.paths = [str(p) for p in paths]
        self.backend = backend
        self.limits = limits
        self.max_clips = max_clips

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor]:
        frames = decode(self.paths[i], backend=self.backend, limits=self.limits)
        return i, make_clips(frames.rgb, max_clips=self.max_clips)


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
    """

    def __init__(self, gifs: GifClipDataset, indices: Sequence[int], clip_batch_size: int,
                 rank: int = 0, world_size: int = 1):
        if clip_batch_size < 1:
            raise ValueError(f"clip_batch_size must be >= 1, got {clip_batch_size}")
        self.gifs = gifs
        self.indices = [int(i) for i in indices]
        self.clip_batch_size = int(clip_batch_size)
        self.rank, self.world_size = rank, world_size

    def my_indices(self) -> list[int]:
        """GIFs of this rank (all workers together)."""
        return shard_for_rank(self.indices, self.rank, self.world_size)

    def __iter__(self):
        mine = self.my_indices()
        info = get_worker_info()
        if info is not None:
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


def _split_limits(limits: dict) -> DecodeLimits | None:
    if not limits:
        return None
    known = set(DecodeLimits.__dataclass_fields__)
    unknown = sorted(set(limits) - known)
    if unknown:
        raise TypeError(f"unknown decode limit(s) {unknown}; known: {sorted(known)}")
    return DecodeLimits(**limits)


class GifDataModule(pl.LightningDataModule):
    """GIF clips for feature extraction (predict) and cached features for the heads.

    Parameters
    ----------
    manifest : str
        Dataset folder or its ``manifest.csv`` (:func:`gifemo.data.manifest.load_dataset`).
    backend : str, default="pyav"
        Decoder backend (:data:`gifemo.data.decode.BACKENDS`).
    max_clips_per_gif : int or None, default=None
        Cap on clips per GIF (evenly spaced); None keeps all (paper §3.3).
    clip_batch_size : int, default=8
        Clips (not GIFs) per predict batch.
    batch_size : int, default=256
        GIFs per batch of the feature loaders (stage 2).
    num_workers : int, default=0
        DataLoader worker processes (decoding runs there).
    pin_memory : bool, default=False
        Page-locked host batches (faster host->GPU copies).
    seed : int, default=0
        Seed of the training loader's shuffling.
    run_dir : str, optional
        Where ``bad_files.csv`` goes at the end of the predict stage.
    **limits
        :class:`~gifemo.data.decode.DecodeLimits` fields (``max_frames=...``, ``timeout_s=...``).
    """

    def __init__(self, manifest: str, backend: str = "pyav", max_clips_per_gif: int | None = None,
                 clip_batch_size: int = 8, batch_size: int = 256, num_workers: int = 0,
                 pin_memory: bool = False, seed: int = 0, run_dir: str | None = None, **limits):
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(f"unknown decode backend {backend!r}; known: {list(BACKENDS)}")
        self.manifest = str(manifest)
        self.backend = backend
        self.max_clips_per_gif = max_clips_per_gif
        self.clip_batch_size = int(clip_batch_size)
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.pin_memory = bool(pin_memory)
        self.seed = int(seed)
        self.run_dir = run_dir
        self.limits = _split_limits(limits)
        self.dataset = None  # GifDataset, loaded in setup("predict") or by the caller
        self.predict_indices: list[int] | None = None
        self.bad_files = BadFileLog()
        self._features: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None = None

    # ------------------------------------------------------------------ stage 1: predict
    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "predict") and self.dataset is None:
            from gifemo.data.manifest import load_dataset
            self.dataset = load_dataset(self.manifest)
        if stage in ("fit", "validate", "test") and self._features is None:
            raise RuntimeError(f"GifDataModule: call set_features(...) before the {stage!r} stage "
                               "(stage 2 trains on cached features)")

    def select_for_predict(self, indices: Sequence[int] | None) -> None:
        """Restrict the predict stage to these dataset rows (None = every GIF)."""
        self.predict_indices = None if indices is None else [int(i) for i in indices]

    def _rank_world(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is not None:
            return trainer.global_rank, trainer.world_size
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1

    def predict_packer(self) -> PackedClipBatches:
        """The iterable of :class:`ClipBatch` for this rank (no DataLoader around it)."""
        if self.dataset is None:
            self.setup("predict")
        gifs = GifClipDataset(self.dataset.paths, self.backend, self.limits, self.max_clips_per_gif)
        indices = range(len(gifs)) if self.predict_indices is None else self.predict_indices
        rank, world = self._rank_world()
        return PackedClipBatches(gifs, indices, self.clip_batch_size, rank, world)

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(self.predict_packer(), batch_size=None, num_workers=self.num_workers,
                          pin_memory=self.pin_memory)

    def on_before_batch_transfer(self, batch, dataloader_idx: int):
        if isinstance(batch, ClipBatch):
            for i, reason in batch.bad:
                self.bad_files.add(str(self.dataset.paths[i]), reason)
        return batch

    def teardown(self, stage: str) -> None:
        if stage == "predict":
            self.write_bad_files()

    def write_bad_files(self) -> Path | None:
        """Write ``run_dir/bad_files.csv`` (when ``run_dir`` is set) and log the count."""
        n = len(self.bad_files)
        if n:
            _log.warning("%d GIF(s) could not be decoded and were skipped%s", n,
                         f"; listed in {Path(self.run_dir) / 'bad_files.csv'}" if self.run_dir else "")
        if self.run_dir is None:
            return None
        Path(self.run_dir).mkdir(parents=True, exist_ok=True)
        return self.bad_files.write_csv(self.run_dir)

    # ------------------------------------------------------------------ stage 2: features
    def set_features(self, X, Y, masks: dict) -> None:
        """Attach cached features and labels for the fit/validate/test stages.

        Parameters
        ----------
        X : array or Tensor, float, shape [N, d]
        Y : array or Tensor, float, shape [N, 17]
            Targets (``mu - 3 sigma``); may be NaN where the mask is False.
        masks : dict of str -> bool array [N, 17]
            Keys among ``"train"``, ``"val"``, ``"test"``: which (GIF, emotion) labels a split uses.
        """
        X = torch.as_tensor(np.asarray(X), dtype=torch.float32)
        Y = torch.as_tensor(np.asarray(Y), dtype=torch.float32)
        if X.ndim != 2:
            raise ValueError(f"X must be [N, d], got shape {tuple(X.shape)}")
        n = X.shape[0]
        if tuple(Y.shape) != (n, len(EMOTIONS)):
            raise ValueError(f"Y must be [N={n}, {len(EMOTIONS)}], got shape {tuple(Y.shape)}")
        if not torch.isfinite(X).all():
            rows = torch.nonzero(~torch.isfinite(X).all(1)).flatten()[:10].tolist()
            raise ValueError(f"X has non-finite values in rows {rows}")
        unknown = sorted(set(masks) - set(SPLITS))
        if unknown:
            raise ValueError(f"unknown split name(s) {unknown}; expected {list(SPLITS)}")
        features = {}
        for name, m in masks.items():
            M = torch.as_tensor(np.asarray(m, dtype=bool))
            if tuple(M.shape) != (n, len(EMOTIONS)):
                raise ValueError(f"mask {name!r} must be bool [N={n}, 17], got {tuple(M.shape)}")
            bad = M & ~torch.isfinite(Y)
            if bad.any():
                rows = torch.nonzero(bad.any(1)).flatten()[:10].tolist()
                raise ValueError(f"split {name!r}: Y is not finite inside the mask in rows {rows}")
            rows = M.any(1)
            y = torch.where(M, torch.nan_to_num(Y), torch.zeros(()))
            features[name] = (X[rows], y[rows], M[rows])
        self._features = features

    def full_batch(self, name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(X, Y, M)`` of split ``name`` (rows with at least one labelled emotion there)."""
        if self._features is None:
            raise RuntimeError("GifDataModule: call set_features(...) first")
        if name not in self._features:
            raise KeyError(f"no split {name!r}; set_features got {sorted(self._features)}")
        return self._features[name]

    def _loader(self, name: str, shuffle: bool) -> DataLoader:
        ds = TensorDataset(*self.full_batch(name))
        gen = torch.Generator().manual_seed(self.seed) if shuffle else None
        return DataLoader(ds, batch_size=self.batch_size, shuffle=shuffle, generator=gen,
                          pin_memory=self.pin_memory)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
