"""Lightning prediction writer around :class:`~gifemo.features.shard_buffer.ShardBuffer`.

``BasePredictionWriter`` with ``write_interval="batch"``: every predicted batch (fc6 rows of a
:class:`~gifemo.features.clip_batches.ClipBatch`) goes to the buffer; the buffer is bound to
the Trainer's rank at setup, and flushed at the end of the epoch and when Lightning reports an
exception (so a crash keeps every complete GIF; a hard kill loses at most one buffer).
"""
from __future__ import annotations

from pytorch_lightning.callbacks import BasePredictionWriter

from gifemo.features.shard_buffer import ShardBuffer


class ShardWriter(BasePredictionWriter):
    """Prediction writer storing per-GIF features in cache shards (arguments: :class:`ShardBuffer`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(write_interval="batch")
        self.buffer = ShardBuffer(*args, **kwargs)
        self.buffer.on_gif_done = self._on_gif_done

    def _on_gif_done(self, gif_index: int) -> None:
        """Called after each completed GIF (hook for progress or tests)."""

    @property
    def n_gifs(self) -> int:
        return self.buffer.n_gifs

    @property
    def n_bad(self) -> int:
        return self.buffer.n_bad

    def setup(self, trainer, pl_module, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        self.buffer.bind(trainer.global_rank, trainer.world_size)

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch,
                           batch_idx: int, dataloader_idx: int = 0) -> None:
        self.buffer.consume(batch, prediction)

    def on_predict_epoch_end(self, trainer, pl_module) -> None:
        super().on_predict_epoch_end(trainer, pl_module)
        self.buffer.flush()
        if len(self.buffer.pending):
            raise RuntimeError(f"rank {self.buffer.rank}: {len(self.buffer.pending)} GIF(s) got "
                               "only part of their clips")

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self.buffer.flush()  # keep what is complete; the rerun computes the rest
