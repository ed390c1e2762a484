"""The Lightning data module of both stages (design.md "Two stages").

Stage 1, ``predict``: GIF files -> C3D clips, fed to the frozen backbone. The dataset item is
one GIF (:class:`~gifemo.features.clip_batches.GifClipDataset`: ``(gif_index, clips [n, 3, 16,
112, 112])``); the loader yields :class:`~gifemo.features.clip_batches.ClipBatch` es that pack
the clips of several GIFs into exactly ``clip_batch_size`` clips, split over ranks and workers
without padding (:mod:`gifemo.features.clip_batches`). A GIF that cannot be decoded is
skipped, sent along in the batch's ``bad`` list, added to :attr:`GifDataModule.bad_files` in
the main process, written to ``run_dir/bad_files.csv`` at the end and counted in the log.

Stage 2, ``fit``/``validate``/``test``: cached features. :meth:`GifDataModule.set_features`
takes ``X [N, d]``, ``Y [N, 17]`` and boolean masks per split; loaders yield
``(x [B, d], y [B, 17], mask [B, 17])`` over the GIFs that have at least one labelled emotion
in that split, and :meth:`GifDataModule.full_batch` returns the same as whole tensors (the
convex solvers use full batches). ``y`` is 0 wherever ``mask`` is False (no NaN leaks).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from gifemo.data.bad_files import BadFileLog
from gifemo.data.decode import BACKENDS, DecodeLimits
from gifemo.data.emotions import EMOTIONS
from gifemo.features.clip_batches import ClipBatch, GifClipDataset, PackedClipBatches, shard_for_rank

_log = logging.getLogger(__name__)

__all__ = ["GifDataModule", "ClipBatch", "GifClipDataset", "PackedClipBatches", "shard_for_rank"]

SPLITS = ("train", "val", "test")


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
