"""Rank candidate GIFs by emotion with a trained checkpoint.

Small sets (features through the feature cache, one process, one CSV)::

    python scripts/rank.py CHECKPOINT GIF_DIR_OR_MANIFEST [--emotion E] [--top 20]
                           [--out ranked.csv] [--weights PATH] [--cache-dir DIR]
    python scripts/rank.py --zero-shot EMOTION DATASET_DIR_OR_MANIFEST [--top 20] [--out ...]

Millions of candidates (a streaming, resumable job; see docs/ranking_at_scale.md)::

    python scripts/rank.py CHECKPOINT --paths paths.txt --top-k 100 --emotion all
                           [--devices 2] [--num-nodes 1] [--out DIR] [--shard-size 1000]
                           [--keep-scores] [--keep-features] [--merge-only]

The job mode is chosen by ``--paths``, ``--top-k``, ``--devices``, ``--num-nodes``,
``--shard-size``, ``--keep-scores``, ``--keep-features`` or ``--merge-only`` (a folder or
manifest works there too, as SOURCE); ``--out`` is then the job folder (default
``rank_job``), holding ``top_<emotion>.csv``, ``bad_files.csv`` and the shard files that let a
rerun of the same command resume. ``--devices N`` starts N processes (DDP); under torchrun or
SLURM pass the processes per node as ``--devices`` and the node count as ``--num-nodes``.

Features are computed with the checkpoint's backbone (its weights are hash-checked: a
different file is refused), clip settings, tag vocabulary and text model; every emotion is
scored. Undecodable GIFs are skipped and listed in bad_files.csv beside the output.
With ``--zero-shot`` no checkpoint is read: the candidates' tags are embedded by a sentence
model and compared with the emotion's prompts (any emotion name; gifemo.models.zero_shot).
"""
from __future__ import annotations

import argparse
import logging
import sys

from gifemo.checkpoint import CheckpointError
from gifemo.rank import RankError, format_top, rank_gifs, rank_zero_shot

JOB_FLAGS = ("paths", "top_k", "devices", "num_nodes", "shard_size", "keep_scores",
             "keep_features", "merge_only")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("positional", nargs="*", metavar="[CHECKPOINT] [SOURCE]",
                   help="checkpoint.pt written by train.py (not with --zero-shot), then a folder "
                        "of GIFs (recursive) or a dataset folder / manifest.csv")
    p.add_argument("--emotion", default=None,
                   help="sort by this emotion (default: print all); job mode: an emotion or 'all'")
    p.add_argument("--zero-shot", default=None, metavar="EMOTION",
                   help="rank for this emotion (any name) from the tags alone, no checkpoint")
    p.add_argument("--text-model", default=None,
                   help="sentence model for text tag features / zero-shot (default: the "
                        "checkpoint's; for --zero-shot the packaged all-MiniLM-L6-v2)")
    p.add_argument("--clip-weights", default=None, metavar="TAG_OR_FILE",
                   help="--zero-shot from pixels too: an open_clip model's pretrained tag, local "
                        "weights file or 'random' (extra `clip`); combined with the tag scores")
    p.add_argument("--clip-model", default="ViT-B-32", help="open_clip model for --clip-weights")
    p.add_argument("--top", type=int, default=20, help="how many to print (default: 20)")
    p.add_argument("--out", default=None,
                   help="ranked CSV (default: ranked.csv); job mode: the job folder (default: rank_job)")
    p.add_argument("--weights", default=None,
                   help="backbone weights file (default: the checkpoint's); its identity is checked")
    p.add_argument("--cache-dir", default=None, help="feature cache to reuse (default: temporary)")
    p.add_argument("--accelerator", default="auto", help="feature extraction device")
    p.add_argument("--clip-batch-size", type=int, default=8)
    p.add_argument("--num-workers", type=int, default=0, help="decoding worker processes")
    p.add_argument("--no-progress", action="store_true")
    job = p.add_argument_group("ranking job (streaming, resumable, multi-process)")
    job.add_argument("--paths", default=None,
                     help="text file of candidates: 'path' or 'id<TAB>path' per line")
    job.add_argument("--top-k", type=int, default=None, help="candidates kept per emotion (default: 100)")
    job.add_argument("--devices", type=int, default=None, help="processes (DDP) per node (default: 1)")
    job.add_argument("--num-nodes", type=int, default=None, help="nodes of a torchrun/SLURM launch")
    job.add_argument("--strategy", default=None, help="Lightning strategy (default: ddp when >1 process)")
    job.add_argument("--shard-size", type=int, default=None, help="candidates per shard (default: 1000)")
    job.add_argument("--keep-scores", action="store_true",
                     help="also write every candidate's scores (float16) to scores_float16.npy")
    job.add_argument("--keep-features", action="store_true",
                     help="also keep every candidate's features (float16) in the shard files")
    job.add_argument("--merge-only", action="store_true",
                     help="only merge the finished shard files of the job folder --out")
    a = p.parse_args(argv)
    if a.zero_shot:
        if len(a.positional) != 1 or is_job(a):
            p.error("--zero-shot takes one SOURCE (no checkpoint, no job options)")
        a.checkpoint, a.source = None, a.positional[0]
    elif a.clip_weights is not None:
        p.error("--clip-weights goes with --zero-shot (a checkpoint brings its own backbone)")
    elif len(a.positional) in (1, 2):
        a.checkpoint, a.source = a.positional[0], (a.positional[1:] or [None])[0]
    else:
        p.error("give CHECKPOINT SOURCE (or CHECKPOINT --paths FILE, or --zero-shot EMOTION SOURCE)")
    return a


def is_job(a: argparse.Namespace) -> bool:
    return any(getattr(a, f) not in (None, False) for f in JOB_FLAGS)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    a = parse_args(argv)
    try:
        if a.zero_shot:
            return run_zero_shot(a)
        return run_job(a) if is_job(a) else run_small(a)
    except (RankError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def run_small(a: argparse.Namespace) -> int:
    if a.source is None:
        raise RankError("give a folder of GIFs or a manifest (or --paths FILE for a ranking job)")
    run = {"accelerator": a.accelerator, "clip_batch_size": a.clip_batch_size,
           "num_workers": a.num_workers, "progress": not a.no_progress}
    result = rank_gifs(a.checkpoint, a.source, weights=a.weights, out_csv=a.out or "ranked.csv",
                       emotion=a.emotion, cache_dir=a.cache_dir, run=run, text_model=a.text_model)
    print(format_top(result, a.emotion, a.top))
    return _report(result)


def run_zero_shot(a: argparse.Namespace) -> int:
    image_text = None
    if a.clip_weights is not None:
        from gifemo.models.open_clip_frames import OpenClipFrames

        try:
            image_text = OpenClipFrames(a.clip_model, a.clip_weights)
        except (ValueError, OSError, ImportError) as e:
            raise RankError(f"--clip-model {a.clip_model} --clip-weights {a.clip_weights}: {e}") from None
    run = {"accelerator": a.accelerator, "clip_batch_size": a.clip_batch_size,
           "num_workers": a.num_workers, "progress": not a.no_progress}
    result = rank_zero_shot(a.source, a.zero_shot, text_model=a.text_model or "default",
                            out_csv=a.out or "ranked.csv", cache_dir=a.cache_dir,
                            image_text=image_text, run=run)
    what = "tags" + (" + frames (open_clip)" if image_text is not None else "")
    print(f"zero-shot ({what} vs prompts for {result.emotions[0]!r}; no checkpoint)")
    print(format_top(result, result.emotions[0], a.top))
    return _report(result)


def _report(result) -> int:
    print(f"{len(result.ids)} of {result.n_candidates} GIFs ranked -> {result.csv_path}")
    if result.bad:
        print(f"{len(result.bad)} bad GIF(s) skipped; see "
              f"{result.csv_path.parent / 'bad_files.csv'}")
    return 0


def run_job(a: argparse.Namespace) -> int:
    from gifemo.ranking.candidates import CandidateError
    from gifemo.ranking.merge import IncompleteJobError, merge_job
    from gifemo.ranking.shard_files import JobMismatchError

    out = a.out or "rank_job"
    try:
        if a.merge_only:
            merged = merge_job(out)
        else:
            from gifemo.ranking.job import run_rank_job

            devices, nodes = a.devices or 1, a.num_nodes or 1
            strategy = a.strategy or ("ddp" if devices * nodes > 1 else "auto")
            run = {"accelerator": a.accelerator, "devices": devices, "strategy": strategy,
                   "clip_batch_size": a.clip_batch_size, "num_workers": a.num_workers,
                   "progress": not a.no_progress}
            emotions = None if a.emotion in (None, "all") else [a.emotion]
            res = run_rank_job(a.checkpoint, out, source=a.source, paths=a.paths,
                               top_k=a.top_k or 100, emotions=emotions,
                               shard_size=a.shard_size or 1000, weights=a.weights, run=run,
                               num_nodes=nodes, keep_scores=a.keep_scores,
                               keep_features=a.keep_features)
            if res.merged is None:  # not rank 0: rank 0 reports
                return 0
            merged = res.merged
            print(f"{res.n_candidates} candidates in {res.n_shards} shards: {res.skipped} finished "
                  f"earlier, {len(res.computed)} computed by rank 0 of {res.world_size} process(es)")
    except (CandidateError, IncompleteJobError, JobMismatchError) as e:
        raise RankError(str(e)) from None
    k = min(a.top, 5)
    print(f"{merged.n_scored} scored, {merged.n_bad} bad (see {merged.files['bad']})")
    for e, rows in merged.top.items():
        print(f"  {e:<14} " + ", ".join(gid for _, gid, _, _ in rows[:k]) + f"  -> {merged.files[e]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
