"""The ranking job's Lightning ``predict`` pieces: shard clip stream, data module, shard scorer.

Stage 1's pieces are reused as they are: :class:`~gifemo.features.clip_batches.GifClipDataset`
and :class:`~gifemo.features.clip_batches.PackedClipBatches` decode and cut clips,
:class:`~gifemo.features.backbone_module.BackboneModule` runs the frozen backbone,
:class:`~gifemo.models.pooling.ClipMeanAccumulator` pools a GIF's clips (mean, L2 — paper
§3.3) and :class:`~gifemo.features.progress.ExtractionProgress` shows GIFs/s.

What is new is the unit of work, a *shard* of candidates: :class:`ShardClipStream` yields the
clip batches of this rank's unfinished shards, one shard after another, packing each shard's
clips on their own (a batch never spans two shards, so the same shard gives the same batches
whatever the number of processes or where a run was resumed: bitwise-equal features).
:class:`ShardScorer` (a prediction writer) pools the features, scores them with the
recognizer's head once a shard is complete, keeps the shard's top-K per emotion and writes
the shard file atomically; nothing else of the shard stays in memory.
"""
from __future__ import annotations

import logging
import time
from typing import NamedTuple

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from gifemo.data.clips import ClipSpec
from gifemo.data.decode import DecodeLimits
from gifemo.features.clip_batches import GifClipDataset, PackedClipBatches
from gifemo.models.pooling import ClipMeanAccumulator
from gifemo.ranking.candidates import CandidateSource, iter_shards, shards_of_rank
from gifemo.ranking.shard_files import write_shard
from gifemo.ranking.topk import top_k_order

_log = logging.getLogger(__name__)


class RankBatch(NamedTuple):
    """A :class:`~gifemo.features.clip_batches.ClipBatch` of one shard, plus which shard.

    ``gif_index`` is the position within the shard; ``candidates`` (the shard's
    :class:`~gifemo.ranking.candidates.Candidate` list) comes with the shard's first batch,
    ``last`` is True on its last batch.
    """

    clips: torch.Tensor
    gif_index: torch.Tensor
    clip_pos: torch.Tensor
    n_clips: torch.Tensor
    bad: list
    shard: int
    candidates: list | None
    last: bool


class ShardClipStream(IterableDataset):
    """Clip batches of the shards ``shards`` of ``source`` (loader workers split the shards)."""

    def __init__(self, source: CandidateSource, shard_size: int, shards: list[int],
                 clip_batch_size: int, backend: str, limits: DecodeLimits | None,
                 max_clips: int | None, clip_spec: ClipSpec):
        self.source, self.shard_size, self.shards = source, int(shard_size), list(shards)
        self.clip_batch_size = int(clip_batch_size)
        self.backend, self.limits, self.max_clips, self.clip_spec = backend, limits, max_clips, clip_spec

    def __iter__(self):
        mine = self.shards
        info = get_worker_info()
        if info is not None:
            mine = mine[info.id::info.num_workers]
        if not mine:
            return
        wanted = set(mine)
        for shard, cands in iter_shards(self.source, self.shard_size, wanted):
            gifs = GifClipDataset([c.path for c in cands], self.backend, self.limits,
                                  self.max_clips, self.clip_spec)
            batches = iter(PackedClipBatches(gifs, range(len(cands)), self.clip_batch_size,
                                             split_workers=False))  # the shard is this worker's
            first, prev = True, next(batches, None)
            while prev is not None:
                nxt = next(batches, None)
                yield RankBatch(*prev, shard=shard, candidates=cands if first else None,
                                last=nxt is None)
                first, prev = False, nxt
            wanted.discard(shard)
            if not wanted:
                return


class ShardDataModule(pl.LightningDataModule):
    """``predict_dataloader``: this rank's share (:func:`shards_of_rank`) of ``pending``."""

    def __init__(self, source: CandidateSource, shard_size: int, pending: list[int], *,
                 clip_batch_size: int = 8, num_workers: int = 0, pin_memory: bool = False,
                 backend: str = "pyav", limits: DecodeLimits | None = None,
                 max_clips_per_gif: int | None = None, clip_spec: ClipSpec = ClipSpec()):
        super().__init__()
        self.source, self.shard_size, self.pending = source, int(shard_size), sorted(pending)
        self.clip_batch_size, self.num_workers, self.pin_memory = clip_batch_size, num_workers, pin_memory
        self.backend, self.limits = backend, limits
        self.max_clips_per_gif, self.clip_spec = max_clips_per_gif, clip_spec

    def my_shards(self) -> list[int]:
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        return shards_of_rank(self.pending, rank, world)

    def predict_dataloader(self) -> DataLoader:
        stream = ShardClipStream(self.source, self.shard_size, self.my_shards(), self.clip_batch_size,
                                 self.backend, self.limits, self.max_clips_per_gif, self.clip_spec)
        return DataLoader(stream, batch_size=None, num_workers=self.num_workers,
                          pin_memory=self.pin_memory)


class _ShardState:
    def __init__(self, candidates):
        self.candidates = candidates
        self.acc = ClipMeanAccumulator()
        self.features: dict[int, np.ndarray] = {}
        self.bad: dict[int, str] = {}
        self.t0 = time.monotonic()


class ShardScorer(BasePredictionWriter):
    """Pool, score and write each shard as its last batch arrives.

    Parameters
    ----------
    out_dir : path
        The job folder (shard files go to ``out_dir/shards``).
    job_key : str
        Stored in every shard file (a rerun reuses only its own job's shards).
    score : callable(visual float32 [n, d], tag_lists) -> float32 [n, T]
        The recognizer head.
    columns : list of int
        Score columns (emotions) the job ranks.
    top_k : int
    keep_scores, keep_features : bool
        Also store every scored candidate's scores (float16) / features (float16).
    """

    def __init__(self, out_dir, job_key: str, score, columns: list[int], top_k: int,
                 keep_scores: bool = False, keep_features: bool = False):
        super().__init__(write_interval="batch")
        self.out_dir, self.job_key, self.score = out_dir, job_key, score
        self.columns, self.top_k = list(columns), int(top_k)
        self.keep_scores, self.keep_features = bool(keep_scores), bool(keep_features)
        self.rank, self.world_size = 0, 1
        self.open: dict[int, _ShardState] = {}
        self.written: list[int] = []

    def setup(self, trainer, pl_module, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        self.rank, self.world_size = trainer.global_rank, trainer.world_size

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch,
                           batch_idx: int, dataloader_idx: int = 0) -> None:
        self.consume(batch, prediction)

    def consume(self, batch: RankBatch, features) -> None:
        """Take one batch and its clip features ``[b, d]``; finish the shard on its last batch."""
        shard = int(batch.shard)
        if batch.candidates is not None:
            self.open[shard] = _ShardState(batch.candidates)
        state = self.open[shard]
        if isinstance(features, torch.Tensor):
            features = features.detach().float().cpu().numpy()
        gif_index = np.asarray(batch.gif_index.cpu(), dtype=np.int64)
        n_clips = np.asarray(batch.n_clips.cpu(), dtype=np.int64)
        if len(gif_index):
            for g, feat, _ in state.acc.add(gif_index, n_clips, features):
                state.features[g] = feat
        for g, reason in batch.bad:
            state.bad[int(g)] = str(reason)
        if batch.last:
            self._finish(shard, self.open.pop(shard))

    def _finish(self, shard: int, state: _ShardState) -> None:
        cands = state.candidates
        if len(state.acc) or len(state.features) + len(state.bad) != len(cands):
            raise RuntimeError(f"shard {shard}: {len(state.features)} scored + {len(state.bad)} bad "
                               f"of {len(cands)} candidates ({len(state.acc)} incomplete)")
        good = sorted(state.features)
        index = np.asarray([cands[g].index for g in good], dtype=np.int64)
        T = len(self.columns)
        if good:
            visual = np.stack([state.features[g] for g in good])
            scores = np.asarray(self.score(visual, [list(cands[g].tags) for g in good]),
                                dtype=np.float32)[:, self.columns]
        else:
            visual, scores = None, np.zeros((0, T), np.float32)
        top = sorted(set().union(*[top_k_order(scores[:, t], index, self.top_k).tolist()
                                   for t in range(T)])) if good else []
        bad = sorted(state.bad)
        arrays = {
            "top_index": index[top], "top_scores": scores[top],
            "top_ids": np.asarray([cands[good[p]].id for p in top], dtype=str),
            "top_paths": np.asarray([cands[good[p]].path for p in top], dtype=str),
            "bad_index": np.asarray([cands[g].index for g in bad], dtype=np.int64),
            "bad_ids": np.asarray([cands[g].id for g in bad], dtype=str),
            "bad_paths": np.asarray([cands[g].path for g in bad], dtype=str),
            "bad_reasons": np.asarray([state.bad[g] for g in bad], dtype=str),
        }
        if self.keep_scores:
            arrays["all_index"], arrays["all_scores"] = index, scores.astype(np.float16)
        if self.keep_features and visual is not None:
            arrays["features"] = visual.astype(np.float16)
        meta = {"job_key": self.job_key, "shard": shard, "start": cands[0].index,
                "stop": cands[-1].index + 1, "n_scored": len(good), "n_bad": len(bad),
                "rank": self.rank, "world_size": self.world_size,
                "seconds": round(time.monotonic() - state.t0, 3)}
        write_shard(self.out_dir, shard, meta, arrays)
        self.written.append(shard)
        _log.debug("rank %d: shard %d written (%d scored, %d bad)", self.rank, shard, len(good), len(bad))

    def on_predict_epoch_end(self, trainer, pl_module) -> None:
        super().on_predict_epoch_end(trainer, pl_module)
        if self.open:
            raise RuntimeError(f"rank {self.rank}: shard(s) {sorted(self.open)} did not finish")
