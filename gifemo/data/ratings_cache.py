"""On-disk cache of TrueSkill ratings, keyed by the exact votes and settings.

TrueSkill over a votes file is order dependent and slow in pure Python (≈180 µs a vote:
≈15 s for the 600-GIF demo's 110 k votes, minutes for GIFGIF's millions), and every
``load_dataset`` would redo it. The ratings are a pure function of (the votes file's bytes,
the manifest's id order, the TrueSkill parameters), so we store them under a SHA-256 of
exactly those and reuse them. The cache lives in ``<dataset>/.gifemo_cache/``; a dataset
folder that is read-only is simply not cached (computed every time), never an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from gifemo.atomic_file import atomic_write
from gifemo.data.labels import GIFGIF_PARAMS, TRUESKILL_PARAMS

log = logging.getLogger(__name__)

CACHE_DIR = ".gifemo_cache"
_FORMAT = 1


def ratings_key(votes_path: Path, ids: Sequence[str], rule: str = "trueskill") -> str:
    """SHA-256 over the votes file's bytes, the id order and the rating rule's parameters."""
    h = hashlib.sha256()
    if rule == "trueskill":  # the key of the package-default rule is unchanged from before
        meta = {"format": _FORMAT, "params": TRUESKILL_PARAMS}
    else:
        meta = {"format": _FORMAT, "rule": rule, "params": GIFGIF_PARAMS}
    h.update(json.dumps(meta, sort_keys=True).encode())
    h.update(b"\0ids\0" + "\n".join(ids).encode())
    h.update(b"\0votes\0")
    with open(votes_path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cached_ratings(
    votes_path: Path, ids: Sequence[str], compute: Callable[[], tuple[np.ndarray, np.ndarray]],
    rule: str = "trueskill",
) -> tuple[np.ndarray, np.ndarray]:
    """Return (mu, sigma) from the cache for these votes and rule, or ``compute()`` them and
    store them."""
    key = ratings_key(votes_path, ids, rule)
    path = votes_path.parent / CACHE_DIR / f"trueskill-{key[:32]}.npz"
    if path.is_file():
        try:
            with np.load(path) as z:
                if str(z["key"]) == key and z["mu"].shape == (len(ids), z["mu"].shape[1]):
                    return z["mu"].copy(), z["sigma"].copy()
        except (OSError, ValueError, KeyError) as exc:  # a damaged cache file is recomputed
            log.warning("ignoring unreadable ratings cache %s: %s", path, exc)
    mu, sigma = compute()
    try:
        with atomic_write(path) as f:
            np.savez(f, key=np.array(key), mu=mu, sigma=sigma)
    except OSError as exc:
        log.debug("ratings not cached (%s): %s", path.parent, exc)
    return mu, sigma
