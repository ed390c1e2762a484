"""Ranking at scale: a streaming, resumable, multi-process ranking job (issue 16).

``run_rank_job(checkpoint, source, out_dir, top_k=..., ...)`` (:mod:`gifemo.ranking.job`)
reads candidates lazily (:mod:`~gifemo.ranking.candidates`), cuts them into fixed-size shards,
and runs a Lightning ``predict`` over this process' unfinished shards
(:mod:`~gifemo.ranking.predict`): decode, embed with the checkpoint's backbone, score with its
head, keep each shard's top-K per emotion and write it atomically
(:mod:`~gifemo.ranking.shard_files`). A merge (:mod:`~gifemo.ranking.merge`) reads the shard
files in order and keeps a running top-K (:mod:`~gifemo.ranking.topk`); ties go to the lower
candidate index, so a resumed or multi-process run gives the same files as one uninterrupted
process. Names are imported on first use so that the plain modules load without Lightning.
"""
_EXPORTS = {"run_rank_job": "job", "merge_job": "merge", "RankJobResult": "job"}
__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"gifemo.ranking.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'gifemo.ranking' has no attribute {name!r}")
