"""On-disk state of a ranking job: ``job.json`` (what is being ranked) and one file per shard.

Layout of the job's output folder::

    job.json                 the job's settings and source survey (written once, checked on rerun)
    shards/shard-0000042.npz one finished shard (written atomically: present = complete)
    top_<emotion>.csv        the merged rankings, bad_files.csv, summary.json (see merge)

A shard file (``np.savez``, no pickles) holds the shard's own top-K rows per emotion (the
union over emotions: ``top_index``, ``top_scores`` float32 [m, T], ``top_ids``, ``top_paths``),
its bad files (``bad_index``, ``bad_ids``, ``bad_paths``, ``bad_reasons``), its ``meta``
(JSON: job key, shard bounds, counts, the rank that wrote it) and, when asked,
``all_index`` / ``all_scores`` (float16 [n, T], every scored candidate) and ``features``
(float16 [n, d]). A shard file whose job key differs from the current job is not reused.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from gifemo.atomic_file import atomic_write

JOB_FILE = "job.json"
SHARD_DIR = "shards"
JOB_FORMAT = "gifemo.rank_job/1"


class JobMismatchError(ValueError):
    """The output folder holds a job with other settings or another source."""


def job_key(spec: dict) -> str:
    """SHA-256 of the canonical JSON of a job spec."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def open_job(out_dir: str | os.PathLike, spec: dict) -> str:
    """Write ``job.json`` for ``spec`` (or check the one there) and return the job key.

    Raises :class:`JobMismatchError` naming the keys that differ when the folder holds
    another job.
    """
    out_dir = Path(out_dir)
    spec = {"format": JOB_FORMAT, **spec}
    key = job_key(spec)
    path = out_dir / JOB_FILE
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise JobMismatchError(f"{path}: unreadable ({e}); remove it or choose another output folder") from None
        if old.get("key") != key:
            diff = sorted(k for k in set(spec) | set(old.get("spec", {}))
                          if spec.get(k) != old.get("spec", {}).get(k))
            raise JobMismatchError(f"{out_dir} holds a ranking job with other settings (differs in "
                                   f"{diff}); choose another output folder or remove it")
        return key
    with atomic_write(path, "w", encoding="utf-8") as f:
        json.dump({"key": key, "spec": spec}, f, indent=1, sort_keys=True)
    return key


def read_job(out_dir: str | os.PathLike) -> dict:
    """The ``{"key", "spec"}`` of ``out_dir/job.json``."""
    path = Path(out_dir) / JOB_FILE
    if not path.is_file():
        raise JobMismatchError(f"{out_dir}: no {JOB_FILE} (not a ranking job folder)")
    return json.loads(path.read_text(encoding="utf-8"))


def shard_path(out_dir: str | os.PathLike, shard: int) -> Path:
    return Path(out_dir) / SHARD_DIR / f"shard-{shard:07d}.npz"


def write_shard(out_dir, shard: int, meta: dict, arrays: dict) -> Path:
    """Write one shard file atomically (temp file, fsync, rename)."""
    path = shard_path(out_dir, shard)
    with atomic_write(path, "wb") as f:
        np.savez(f, meta=np.asarray(json.dumps(meta, sort_keys=True)), **arrays)
    return path


def read_shard(path: str | os.PathLike) -> tuple[dict, dict]:
    """``(meta, arrays)`` of a shard file."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("meta")))
    return meta, arrays


def shard_meta(path: str | os.PathLike) -> dict | None:
    """The ``meta`` of a shard file, or None when it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return json.loads(str(z["meta"]))
    except Exception:  # noqa: BLE001 - an unreadable shard is recomputed
        return None


def finished_shards(out_dir, key: str) -> set[int]:
    """Shards with a readable file of the job ``key`` (the ones a rerun skips)."""
    done = set()
    folder = Path(out_dir) / SHARD_DIR
    if not folder.is_dir():
        return done
    for p in folder.glob("shard-*.npz"):
        meta = shard_meta(p)
        if meta is not None and meta.get("job_key") == key:
            done.add(int(meta["shard"]))
    return done
