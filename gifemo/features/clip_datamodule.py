"""Stage 1's Lightning data module: GIF files -> clips for the frozen backbone (``predict``).

The dataset item is one GIF (:class:`~gifemo.features.clip_batches.GifClipDataset`:
``(gif_index, clips [n, 3, L, H, W])`` cut by the backbone's
:class:`~gifemo.data.clips.ClipSpec`); the loader yields
:class:`~gifemo.features.clip_batches.ClipBatch` es that pack the clips of several GIFs into
exactly ``clip_batch_size`` clips, split over ranks and workers without padding. A GIF that
cannot be decoded is skipped, sent along in the batch's ``bad`` list, added to
:attr:`ClipDataModule.bad_files` in the main process, written to ``run_dir/bad_files.csv``
at the end and counted in the log.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from gifemo.data.bad_files import BadFileLog
from gifemo.data.clips import PAPER_CLIPS, ClipSpec
from gifemo.data.decode import BACKENDS, DecodeLimits
from gifemo.data.manifest import load_dataset
from gifemo.features.clip_batches import ClipBatch, GifClipDataset, PackedClipBatches

_log = logging.getLogger(__name__)


def _split_limits(limits: dict) -> DecodeLimits | None:
    if not limits:
        return None
    known = set(DecodeLimits.__dataclass_fields__)
    unknown = sorted(set(limits) - known)
    if unknown:
        raise TypeError(f"unknown decode limit(s) {unknown}; known: {sorted(known)}")
    return DecodeLimits(**limits)


class ClipDataModule(pl.LightningDataModule):
    """GIF clips for feature extraction (the ``predict`` stage).

    Parameters
    ----------
    manifest : str
        Dataset folder or its ``manifest.csv`` (:func:`gifemo.data.manifest.load_dataset`).
    backend : str, default="pyav"
        Decoder backend (:data:`gifemo.data.decode.BACKENDS`).
    clip_spec : ClipSpec, default=PAPER_CLIPS
        The backbone's clip geometry.
    max_clips_per_gif : int or None, default=None
        Cap on clips per GIF (evenly spaced); None keeps all (paper §3.3).
    clip_batch_size : int, default=8
        Clips (not GIFs) per predict batch.
    num_workers : int, default=0
        DataLoader worker processes (decoding runs there).
    pin_memory : bool, default=False
        Page-locked host batches (faster host->GPU copies).
    run_dir : str, optional
        Where ``bad_files.csv`` goes at the end of the predict stage.
    **limits
        :class:`~gifemo.data.decode.DecodeLimits` fields (``max_frames=...``, ``timeout_s=...``).
    """

    def __init__(self, manifest: str, backend: str = "pyav", clip_spec: ClipSpec = PAPER_CLIPS,
                 max_clips_per_gif: int | None = None, clip_batch_size: int = 8,
                 num_workers: int = 0, pin_memory: bool = False, run_dir: str | None = None,
                 **limits):
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(f"unknown decode backend {backend!r}; known: {list(BACKENDS)}")
        self.manifest = str(manifest)
        self.backend = backend
        self.clip_spec = clip_spec
        self.max_clips_per_gif = max_clips_per_gif
        self.clip_batch_size = int(clip_batch_size)
        self.num_workers = int(num_workers)
        self.pin_memory = bool(pin_memory)
        self.run_dir = run_dir
        self.limits = _split_limits(limits)
        self.dataset = None  # GifDataset, loaded in setup("predict") or by the caller
        self.predict_indices: list[int] | None = None
        self.bad_files = BadFileLog()

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "predict") and self.dataset is None:
            self.dataset = load_dataset(self.manifest)

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
        gifs = GifClipDataset(self.dataset.paths, self.backend, self.limits, self.max_clips_per_gif,
                              self.clip_spec)
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
