"""The ranking job: checkpoint + candidates -> top-K per emotion, streaming and resumable.

:func:`run_rank_job` is the front door (``scripts/rank.py --paths ...`` calls it):

1. loads the recognizer and rebuilds its backbone with the hash check of
   :func:`gifemo.rank.resolve_backbone`;
2. surveys the source in one streaming pass (count + SHA-256 of the listing) and opens the
   job folder: ``job.json`` records the settings; a folder holding another job is refused;
3. lists the finished shards (their files exist and carry this job's key) and runs a
   Lightning ``predict`` over the rest (:mod:`gifemo.ranking.predict`); under DDP each rank
   takes the pending shards ``s`` with ``s % world_size == rank``, so every candidate is
   scored by exactly one process;
4. waits for every rank, then rank 0 merges the shard files (:func:`gifemo.ranking.merge.merge_job`).

Killed at any point, a rerun with the same arguments skips the finished shards; shard files
are written atomically and the merge is deterministic, so the output equals that of an
uninterrupted run. Launch several processes with ``devices=N`` (Lightning starts them), or
under ``torchrun`` / SLURM with ``devices`` = processes per node and ``num_nodes``
(docs/ranking_at_scale.md).
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytorch_lightning as pl

from gifemo.checkpoint import load_recognizer
from gifemo.data.decode import DecodeLimits
from gifemo.features.backbone_module import BackboneModule
from gifemo.features.progress import ExtractionProgress
from gifemo.features.visual_features import DecodeConfig, RunConfig, resolve_run
from gifemo.file_hash import file_sha256
from gifemo.rank import RankError, resolve_backbone, score_features
from gifemo.ranking.candidates import open_source, shard_bounds, n_shards, shards_of_rank
from gifemo.ranking.merge import MergeResult, merge_job
from gifemo.ranking.predict import ShardDataModule, ShardScorer
from gifemo.ranking.shard_files import finished_shards, open_job

_log = logging.getLogger(__name__)

BARRIER_TIMEOUT_H = 72
"""Hours a rank may wait at the end for the others (DDP collective timeout)."""


@dataclass
class RankJobResult:
    """What a process of the job did; ``merged`` is set on the process that merged (rank 0)."""

    out_dir: Path
    n_candidates: int
    n_shards: int
    skipped: int            # shards finished by earlier runs
    computed: list          # shards this process computed
    rank: int
    world_size: int
    merged: MergeResult | None = None


def _scorer(model):
    return lambda visual, tag_lists: score_features(model, visual, tag_lists)


def run_rank_job(checkpoint, out_dir, *, source=None, paths=None, top_k: int = 100,
                 emotions: list[str] | None = None, shard_size: int = 1000,
                 weights: str | None = None, run=None, num_nodes: int = 1,
                 keep_scores: bool = False, keep_features: bool = False,
                 merge: bool = True) -> RankJobResult:
    """Rank the candidates of ``source`` (folder / manifest) or ``paths`` (paths file).

    Parameters
    ----------
    checkpoint : path
        A recognizer checkpoint with visual features (:mod:`gifemo.checkpoint`).
    out_dir : path
        The job folder (created; reused by a rerun of the same job).
    top_k : int
        Candidates kept per emotion.
    emotions : list of str, optional
        Emotions to rank (default: all of the checkpoint's).
    shard_size : int
        Candidates per shard (the unit of work, of resumption and of memory).
    weights : str, optional
        Backbone weights file (hash-checked against the checkpoint).
    run : mapping or RunConfig, optional
        :class:`~gifemo.features.RunConfig` fields: accelerator, devices, strategy, precision,
        clip_batch_size, num_workers, progress (shard_size/flush_every_s/retry_bad unused).
    num_nodes : int
        Nodes of a multi-node launch (torchrun / SLURM).
    keep_scores, keep_features : bool
        Also keep every candidate's scores (float16; merged into ``scores_float16.npy``) /
        features (float16, in the shard files).
    merge : bool
        Merge on rank 0 at the end (False: leave it to ``merge_job``).
    """
    if top_k < 1 or shard_size < 1:
        raise RankError(f"top_k and shard_size must be >= 1 (got {top_k}, {shard_size})")
    model, ckpt = load_recognizer(checkpoint)
    if not model.layout.uses_visual:
        raise RankError("the streaming ranking job needs a model with visual features; rank a "
                        "tags-only model with gifemo.rank.rank_gifs (scripts/rank.py without --paths)")
    all_emotions = list(model.emotions)
    emotions = all_emotions if emotions is None else list(emotions)
    unknown = [e for e in emotions if e not in all_emotions]
    if unknown:
        raise RankError(f"unknown emotion(s) {unknown}; choose from {all_emotions} or 'all'")
    backbone = resolve_backbone(ckpt.get("backbone") or {}, weights, str(checkpoint))
    decode = DecodeConfig.from_mapping(dict(ckpt.get("decode") or {}))
    max_clips = (ckpt.get("clips") or {}).get("max_clips_per_gif")
    rcfg = resolve_run(run if isinstance(run, RunConfig) else RunConfig.from_mapping(dict(run or {})))

    src = open_source(source, paths)
    survey = src.survey()
    if survey.n_candidates == 0:
        raise RankError(f"{survey.location}: no candidates")
    spec = {"checkpoint_sha256": file_sha256(checkpoint), "backbone": backbone.identity(),
            "max_clips_per_gif": max_clips, "decode": decode.limits_record() | {"backend": decode.backend},
            "source": survey._asdict(), "shard_size": int(shard_size), "top_k": int(top_k),
            "emotions": emotions, "keep_scores": bool(keep_scores), "keep_features": bool(keep_features)}
    out_dir = Path(out_dir)
    key = open_job(out_dir, spec)
    total = n_shards(survey.n_candidates, shard_size)
    done = finished_shards(out_dir, key)
    pending = [s for s in range(total) if s not in done]
    _log.info("ranking job %s: %d candidates, %d shards (%d finished earlier, %d to compute)",
              out_dir, survey.n_candidates, total, len(done), len(pending))

    columns = [all_emotions.index(e) for e in emotions]
    scorer = ShardScorer(out_dir, key, _scorer(model), columns, top_k, keep_scores, keep_features)
    dm = ShardDataModule(src, shard_size, pending, clip_batch_size=rcfg.clip_batch_size,
                         num_workers=rcfg.num_workers, pin_memory=rcfg.pin_memory,
                         backend=decode.backend, limits=DecodeLimits(**decode.limits()),
                         max_clips_per_gif=max_clips, clip_spec=backbone.clip_spec)
    progress = ExtractionProgress(total=0, enable=rcfg.progress, label=f"rank ({backbone.name})")
    trainer = pl.Trainer(accelerator=rcfg.accelerator, devices=rcfg.devices, num_nodes=num_nodes,
                         strategy=_strategy(rcfg.strategy), precision=rcfg.precision, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[scorer, progress],
                         use_distributed_sampler=False, inference_mode=True,
                         default_root_dir=str(out_dir))
    mine = shards_of_rank(pending, trainer.global_rank, trainer.world_size)
    progress.total = sum(len(range(*shard_bounds(s, shard_size, survey.n_candidates))) for s in mine)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Couldn't infer the batch indices")
        trainer.predict(BackboneModule(backbone, channels_last=rcfg.channels_last, compile=rcfg.compile),
                        datamodule=dm, return_predictions=False)
    trainer.strategy.barrier("gifemo-rank-shards-written")  # waits for the slowest rank
    result = RankJobResult(out_dir, survey.n_candidates, total, len(done), list(scorer.written),
                           trainer.global_rank, trainer.world_size)
    if merge and trainer.global_rank == 0:
        result.merged = merge_job(out_dir)
    return result


def _strategy(name: str):
    """``"ddp"`` with a long collective timeout: ranks that finish their shards wait at the
    final barrier for the slowest one (torch's default of 30 min would abort them)."""
    if name != "ddp":
        return name
    from pytorch_lightning.strategies import DDPStrategy

    return DDPStrategy(timeout=timedelta(hours=BARRIER_TIMEOUT_H))

