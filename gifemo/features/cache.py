"""On-disk cache of per-GIF visual features (design.md "Two stages").

Layout under ``cache_dir``::

    c3d-<key16>/                  one folder per feature *settings* (see :func:`settings_key`)
      settings.json               the settings in full, and their key
      shards/<stamp>-r<rank>.npy  float32 [n, d] features, one row per GIF
      shards/<stamp>-r<rank>.json rows' GIF content hashes, ids, paths; bad files; provenance
      index.json                  last manifest's GIFs -> content hash, (size, mtime_ns), shard, row

Invalidation rules:

* **Settings** (weights identity, backbone width, input convention, clip settings, decode
  backend, compute dtype, feature code version) form the key of the folder: changing any of
  them selects another folder, so *every* GIF is recomputed under the new settings (the old
  folder stays and is reused if the settings come back; delete it to reclaim space). The
  compute dtype (fp32 / bf16 / fp16) changes the features, so it is in the key; compute
  details that do not change them beyond float rounding (memory layout, compilation, batch
  size, workers, device) are recorded in the shards but are not part of the key.
* **GIF contents**: features are stored by the SHA-256 of the GIF file's bytes, so only GIFs
  whose bytes changed (or are new) are recomputed; renamed/moved/duplicated files reuse their
  features. Hashing every file on every run would read the whole dataset, so the index keeps
  each path's ``(size, mtime_ns)`` and its hash: a file whose size and mtime are unchanged is
  not re-read (the same trust ``make`` and ``git``'s index place in stat data); any other file
  is hashed in full.
* **Bad files** are cached too (by content hash, with the decode limits that rejected them), so
  a rerun does not wait again for a file that timed out; other limits, or ``retry_bad``, retry.

Resumability: a shard is written to a temporary name and renamed (atomic on POSIX); its
``.json`` is written last and is the shard's done-marker. A run killed at any point leaves
only complete shards (plus temporary files, removed later), and the next run computes only
the GIFs they lack. Shards carry a timestamp-and-random name, so ranks of a multi-GPU run
and concurrent runs never write the same file.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gifemo.atomic_file import TMP_SUFFIX, atomic_write
from gifemo.file_hash import file_sha256

_log = logging.getLogger(__name__)

INDEX_FORMAT = "gifemo.feature_cache/1"
CONTENT_HASH = ("sha256 of the file bytes; a path whose (size, mtime_ns) equals the index's "
                "is not re-read")
_TMP_MAX_AGE_S = 24 * 3600


def canonical_json(obj) -> str:
    """JSON with sorted keys and no whitespace (stable input for hashing)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def settings_key(settings: dict) -> str:
    """Hex SHA-256 of the canonical JSON of the feature settings."""
    return hashlib.sha256(canonical_json(settings).encode()).hexdigest()


def _atomic_write_json(path: Path, obj) -> None:
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(obj, indent=1, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------- file hashes

@dataclass(frozen=True)
class FileFingerprint:
    """A GIF file's identity: size, mtime (ns) and SHA-256 of its bytes."""

    path: str
    size: int
    mtime_ns: int
    sha256: str




def fingerprint_files(paths, known: dict[str, dict] | None = None) -> tuple[list[FileFingerprint | None], int]:
    """Fingerprint files, re-using ``known[path]`` hashes whose (size, mtime_ns) still match.

    Returns
    -------
    (fingerprints, n_hashed)
        ``None`` for a file that cannot be stat-ed or read (missing, permissions); ``n_hashed``
        counts files whose bytes were read.
    """
    known = known or {}
    out, n_hashed = [], 0
    for p in paths:
        p = str(p)
        try:
            st = os.stat(p)
            prev = known.get(p)
            if prev and prev.get("size") == st.st_size and prev.get("mtime_ns") == st.st_mtime_ns \
                    and prev.get("sha256"):
                sha = prev["sha256"]
            else:
                sha = file_sha256(p)
                n_hashed += 1
        except OSError:
            out.append(None)
            continue
        out.append(FileFingerprint(p, st.st_size, st.st_mtime_ns, sha))
    return out, n_hashed


# --------------------------------------------------------------------------- the cache

@dataclass
class CacheContents:
    """What the done shards of a cache hold (later shards win for the same content hash)."""

    features: dict[str, tuple[str, int]] = field(default_factory=dict)  # sha256 -> (shard, row)
    bad: dict[str, dict] = field(default_factory=dict)  # sha256 -> {"reason", "limits", ...}
    dim: int | None = None
    shards: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # unreadable / inconsistent shards


class FeatureCache:
    """One settings folder of the feature cache (see the module docstring for the layout)."""

    def __init__(self, cache_dir: str | os.PathLike, settings: dict):
        self.settings = settings
        self.key = settings_key(settings)
        self.dir = Path(cache_dir) / f"{settings.get('kind', 'features')}-{self.key[:16]}"
        self.shard_dir = self.dir / "shards"

    def create(self) -> "FeatureCache":
        """Make the folders and write ``settings.json`` if missing; returns self."""
        self.shard_dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / "settings.json"
        if not path.exists():
            _atomic_write_json(path, {"key": self.key, "settings": self.settings})
        return self

    # ---------------------------------------------------------------- shards
    def write_shard(self, features: np.ndarray, entries: list[dict], bad: list[dict],
                    tag: str = "r0", provenance: dict | None = None) -> Path:
        """Atomically write one shard: ``features[i]`` belongs to ``entries[i]`` (needs "sha256").

        The ``.npy`` goes first, then the ``.json`` (the done-marker). Returns the json path.
        """
        features = np.ascontiguousarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[0] != len(entries):
            raise ValueError(f"shard: {features.shape} features for {len(entries)} entries")
        self.shard_dir.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}-{tag}"
        npy = self.shard_dir / f"{name}.npy"
        with atomic_write(npy) as f:
            np.save(f, features)
        meta = {"settings_key": self.key, "n": len(entries), "dim": int(features.shape[1]),
                "entries": entries, "bad": bad, "provenance": provenance or {}}
        _atomic_write_json(self.shard_dir / f"{name}.json", meta)
        return self.shard_dir / f"{name}.json"

    def scan(self) -> CacheContents:
        """Read every done shard's metadata (features are opened lazily by :meth:`gather`)."""
        out = CacheContents()
        if not self.shard_dir.is_dir():
            return out
        self._remove_stale_tmp()
        for meta_path in sorted(self.shard_dir.glob("[0-9]*.json")):
            name = meta_path.stem
            try:
                meta = json.loads(meta_path.read_text())
                if meta.get("settings_key") != self.key:
                    raise ValueError("settings key differs")
                n, dim = int(meta["n"]), int(meta["dim"])
                if n:
                    arr = np.load(self.shard_dir / f"{name}.npy", mmap_mode="r")
                    if arr.shape != (n, dim) or arr.dtype != np.float32:
                        raise ValueError(f"array {arr.shape} {arr.dtype}, metadata says ({n}, {dim})")
                    if out.dim is not None and dim != out.dim:
                        raise ValueError(f"dim {dim} differs from other shards' {out.dim}")
                    out.dim = dim
            except (OSError, ValueError, KeyError, TypeError) as e:
                _log.warning("feature cache: ignoring shard %s (%s)", meta_path, e)
                out.skipped.append(name)
                continue
            out.shards.append(name)
            for row, entry in enumerate(meta["entries"]):
                out.features[entry["sha256"]] = (name, row)
                out.bad.pop(entry["sha256"], None)
            for entry in meta.get("bad", []):
                if entry.get("sha256") and entry["sha256"] not in out.features:
                    out.bad[entry["sha256"]] = entry
        return out

    def gather(self, contents: CacheContents, shas: list[str]) -> np.ndarray:
        """Feature rows for these content hashes, float32 ``[len(shas), d]`` (in memory)."""
        dim = contents.dim or 0
        out = np.empty((len(shas), dim), dtype=np.float32)
        by_shard: dict[str, list[tuple[int, int]]] = {}
        for i, sha in enumerate(shas):
            shard, row = contents.features[sha]
            by_shard.setdefault(shard, []).append((i, row))
        for shard, pairs in by_shard.items():
            arr = np.load(self.shard_dir / f"{shard}.npy", mmap_mode="r")
            dst, src = map(np.asarray, zip(*pairs))
            out[dst] = arr[src]
        return out

    def _remove_stale_tmp(self) -> None:
        now = time.time()
        for tmp in self.shard_dir.glob(f".*{TMP_SUFFIX}"):
            try:
                if now - tmp.stat().st_mtime > _TMP_MAX_AGE_S:
                    tmp.unlink()
            except OSError:
                pass

    # ---------------------------------------------------------------- index
    def load_index(self) -> dict | None:
        """The last run's index, or None when absent or unreadable."""
        path = self.dir / "index.json"
        try:
            index = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if index.get("format") != INDEX_FORMAT or index.get("key") != self.key:
            return None
        return index

    def known_files(self, index: dict | None) -> dict[str, dict]:
        """path -> {"size", "mtime_ns", "sha256"} from an index (for :func:`fingerprint_files`)."""
        return dict((index or {}).get("files", {}))

    def write_index(self, gifs: list[dict], bad: list[dict], files: dict[str, dict], extra: dict) -> Path:
        """Atomically write ``index.json`` (settings, per-GIF rows, bad files, stat cache)."""
        index = {"format": INDEX_FORMAT, "key": self.key, "settings": self.settings,
                 "content_hash": CONTENT_HASH, **extra, "gifs": gifs, "bad": bad, "files": files}
        path = self.dir / "index.json"
        _atomic_write_json(path, index)
        return path
