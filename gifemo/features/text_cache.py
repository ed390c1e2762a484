"""On-disk cache of tag embeddings, keyed by the text model's identity and the tag text.

Layout under ``cache_dir``::

    text-<key16>.npz     tags [n] (unicode), vectors float32 [n, D]; key16 = SHA-256 of the
                         model identity (dim, weights digest, pooling rule; not its name)

A tag is embedded once per model, whatever GIF or run it comes from; a new tag is added on the
next save (the file is rewritten atomically, so a killed run leaves the old file or the new
one). A file that cannot be read is reported and recomputed, never trusted half-read.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from gifemo.atomic_file import atomic_write
from gifemo.features.cache import canonical_json
from gifemo.models.text_encoder import SentenceTagEncoder

_log = logging.getLogger(__name__)


def text_cache_path(cache_dir: str | Path, identity: dict) -> Path:
    """``<cache_dir>/text-<key16>.npz`` for a model identity (its name is not part of the key:
    the packaged copy and the hub copy of the same weights share one file)."""
    keyed = {k: identity.get(k) for k in ("kind", "dim", "weights_id", "pooling")}
    key = hashlib.sha256(canonical_json(keyed).encode()).hexdigest()[:16]
    return Path(cache_dir) / f"text-{key}.npz"


def load_text_cache(path: str | Path, dim: int) -> dict[str, np.ndarray]:
    """Tag -> unit vector from ``path``; empty when missing or unreadable (logged)."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as z:
            tags, vectors = [str(t) for t in z["tags"]], np.asarray(z["vectors"], np.float32)
        if vectors.shape != (len(tags), dim) or not np.isfinite(vectors).all():
            raise ValueError(f"vectors {vectors.shape} for {len(tags)} tags of size {dim}")
    except Exception as e:  # noqa: BLE001 - a bad cache file is recomputed, not fatal
        _log.warning("text embedding cache %s is unreadable (%s: %s); recomputing it",
                     path, type(e).__name__, e)
        return {}
    return dict(zip(tags, vectors))


def save_text_cache(path: str | Path, memo: dict[str, np.ndarray]) -> Path:
    """Write tag -> vector atomically (sorted by tag)."""
    tags = sorted(memo)
    vectors = (np.stack([memo[t] for t in tags]).astype(np.float32) if tags
               else np.zeros((0, 0), np.float32))
    with atomic_write(path) as fh:
        np.savez(fh, tags=np.asarray(tags, dtype=str), vectors=vectors)
    return Path(path)


def embed_tag_lists(encoder: SentenceTagEncoder, tag_lists: Iterable[Iterable[str]],
                    cache_dir: str | Path | None) -> np.ndarray:
    """``encoder.encode_numpy(tag_lists)`` with the tags' vectors read from and added to the
    cache in ``cache_dir`` (None: no cache)."""
    if cache_dir is None:
        return encoder.encode_numpy(tag_lists)
    ident = encoder.identity()
    path = text_cache_path(cache_dir, ident)
    cached = load_text_cache(path, int(ident["dim"]))
    for t, v in cached.items():
        encoder.memo.setdefault(t, v)
    out = encoder.encode_numpy(tag_lists)
    if set(encoder.memo) - set(cached):
        save_text_cache(path, {**cached, **encoder.memo})
        _log.info("text embedding cache %s: %d tags (%d new)", path, len(encoder.memo),
                  len(set(encoder.memo) - set(cached)))
    return out
