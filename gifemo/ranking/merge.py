"""Merge a ranking job's shard files into the final rankings (deterministic, streaming).

:func:`merge_job` reads ``shards/shard-*.npz`` in shard order, checks that every shard is
there and accounts for each of its candidates exactly once (scored or bad), keeps a
:class:`~gifemo.ranking.topk.RunningTopK` over the shards' top-K rows and streams the bad
files out. It writes (each file atomically)::

    top_<emotion>.csv    rank,id,path,score,index — best first; ties: lower index first
    bad_files.csv        index,id,path,reason — candidates that could not be decoded
    scores_float16.npy   [n_candidates, T] float16, NaN for bad files (only with keep_scores)
    summary.json         counts and the files written

The output depends only on the shard files' contents, not on which process wrote them or
when, so it is the same for one process, several, or a run resumed after a kill.
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gifemo.atomic_file import TMP_SUFFIX, atomic_write
from gifemo.ranking.candidates import n_shards, shard_bounds
from gifemo.ranking.shard_files import SHARD_DIR, read_job, read_shard, shard_path
from gifemo.ranking.topk import RunningTopK

SCORES_FILE = "scores_float16.npy"


class IncompleteJobError(RuntimeError):
    """Some shards are missing or inconsistent: the job must be run (again) first."""


@dataclass
class MergeResult:
    n_candidates: int
    n_scored: int
    n_bad: int
    files: dict = field(default_factory=dict)  # emotion -> ranked CSV path; plus "bad", "scores"
    top: dict = field(default_factory=dict)    # emotion -> [(index, id, path, score)] best first


def ranked_csv_name(emotion: str) -> str:
    return f"top_{emotion}.csv"


def merge_job(out_dir: str | os.PathLike) -> MergeResult:
    """Merge the finished shards of the job in ``out_dir`` (see the module docstring)."""
    out_dir = Path(out_dir)
    job = read_job(out_dir)
    spec, key = job["spec"], job["key"]
    n_cand, size = int(spec["source"]["n_candidates"]), int(spec["shard_size"])
    emotions, k, keep_scores = list(spec["emotions"]), int(spec["top_k"]), bool(spec["keep_scores"])
    total = n_shards(n_cand, size)
    missing = [s for s in range(total) if not shard_path(out_dir, s).is_file()]
    if missing:
        raise IncompleteJobError(f"{out_dir}: {len(missing)} of {total} shards not finished (e.g. "
                                 f"{missing[:5]}); run the job again to compute them")
    top = RunningTopK(k, len(emotions))
    n_scored = n_bad = 0
    scores_all = None
    tmp_scores = out_dir / f".{SCORES_FILE}.partial{TMP_SUFFIX}"
    if keep_scores:
        scores_all = np.lib.format.open_memmap(tmp_scores, mode="w+", dtype=np.float16,
                                               shape=(n_cand, len(emotions)))
    bad_path = out_dir / "bad_files.csv"
    with atomic_write(bad_path, "w", newline="", encoding="utf-8") as bad_fh:
        bad_csv = csv.writer(bad_fh)
        bad_csv.writerow(["index", "id", "path", "reason"])
        for s in range(total):
            meta, a = read_shard(shard_path(out_dir, s))
            start, stop = shard_bounds(s, size, n_cand)
            _check_shard(out_dir, s, meta, a, key, start, stop, keep_scores)
            top.update(a["top_index"], a["top_scores"], a["top_ids"].tolist(), a["top_paths"].tolist())
            bad_csv.writerows(zip(a["bad_index"].tolist(), a["bad_ids"].tolist(),
                                  a["bad_paths"].tolist(), a["bad_reasons"].tolist()))
            if scores_all is not None:
                block = np.full((stop - start, len(emotions)), np.nan, np.float16)
                block[a["all_index"] - start] = a["all_scores"]
                scores_all[start:stop] = block
            n_scored += int(meta["n_scored"])
            n_bad += int(meta["n_bad"])
    files = {"bad": str(bad_path)}
    if scores_all is not None:
        scores_all.flush()
        del scores_all
        os.replace(tmp_scores, out_dir / SCORES_FILE)
        files["scores"] = str(out_dir / SCORES_FILE)
    result = MergeResult(n_cand, n_scored, n_bad, files)
    for t, e in enumerate(emotions):
        rows = top.table(t)
        result.top[e] = rows
        path = out_dir / ranked_csv_name(e)
        with atomic_write(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["rank", "id", "path", "score", "index"])
            for r, (i, gid, p, score) in enumerate(rows, start=1):
                w.writerow([r, gid, p, format(score, ".9g"), i])  # 9 digits: float32 exact
        files[e] = str(path)
    summary = {"n_candidates": n_cand, "n_scored": n_scored, "n_bad": n_bad, "n_shards": total,
               "top_k": k, "emotions": emotions, "files": {e: Path(p).name for e, p in files.items()}}
    with atomic_write(out_dir / "summary.json", "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1, sort_keys=True)
    for stale in (out_dir / SHARD_DIR).glob(f"*{TMP_SUFFIX}"):  # left by a killed writer
        stale.unlink(missing_ok=True)
    return result


def _check_shard(out_dir, s, meta, a, key, start, stop, keep_scores) -> None:
    where = f"{shard_path(out_dir, s)}"
    if meta.get("job_key") != key:
        raise IncompleteJobError(f"{where}: written for another job; remove it and run the job again")
    if (meta["shard"], meta["start"], meta["stop"]) != (s, start, stop):
        raise IncompleteJobError(f"{where}: covers [{meta['start']}, {meta['stop']}), expected "
                                 f"[{start}, {stop})")
    if meta["n_scored"] + meta["n_bad"] != stop - start:
        raise IncompleteJobError(f"{where}: {meta['n_scored']} scored + {meta['n_bad']} bad != "
                                 f"{stop - start} candidates")
    idx = np.concatenate([a["top_index"], a["bad_index"]] + ([a["all_index"]] if keep_scores else []))
    if idx.size and (idx.min() < start or idx.max() >= stop):
        raise IncompleteJobError(f"{where}: candidate indices outside [{start}, {stop})")
    if keep_scores and len(np.union1d(a["all_index"], a["bad_index"])) != stop - start:
        raise IncompleteJobError(f"{where}: scored and bad candidates do not cover the shard once")
