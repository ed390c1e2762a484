"""Progress of a feature extraction: a tqdm bar in GIFs with GIFs/s and clips/s.

Lightning's own bar counts batches, which mean nothing here (a batch is a fixed number of
clips from a varying number of GIFs). This callback counts a GIF when its last clip (or its
bad-file report) has passed, and logs a one-line summary at the end. Only rank 0 draws; it
shows rank 0's share.
"""
from __future__ import annotations

import logging
import time

from pytorch_lightning.callbacks import Callback
from tqdm.auto import tqdm

_log = logging.getLogger(__name__)


class ExtractionProgress(Callback):
    """tqdm bar over ``total`` GIFs (this rank's share), postfix clips/s; summary log line."""

    def __init__(self, total: int, enable: bool = True, label: str = "features"):
        self.total = int(total)
        self.enable = enable
        self.label = str(label)
        self.gifs = self.clips = self.bad = 0
        self.seconds = 0.0
        self._bar = None

    def on_predict_start(self, trainer, pl_module) -> None:
        self.gifs = self.clips = self.bad = 0
        self._t0 = time.perf_counter()
        if self.enable and trainer.is_global_zero:
            self._bar = tqdm(total=self.total, unit="GIF", desc=self.label, dynamic_ncols=True)

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        done = int((batch.clip_pos == batch.n_clips - 1).sum()) + len(batch.bad)
        self.gifs += done
        self.bad += len(batch.bad)
        self.clips += int(batch.clips.shape[0])
        if self._bar is not None:
            self._bar.update(done)
            dt = max(time.perf_counter() - self._t0, 1e-9)
            self._bar.set_postfix(clips_s=f"{self.clips / dt:.1f}", bad=self.bad, refresh=False)

    def on_predict_end(self, trainer, pl_module) -> None:
        self.seconds = time.perf_counter() - self._t0
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if trainer.is_global_zero:
            _log.info("%s (rank 0): %d GIFs, %d clips, %d bad in %.1f s (%.2f GIFs/s, "
                      "%.2f clips/s)", self.label, self.gifs, self.clips, self.bad, self.seconds,
                      self.gifs / max(self.seconds, 1e-9), self.clips / max(self.seconds, 1e-9))
