"""Write a file so that readers see the old content or the new one, never a torn mix.

:func:`atomic_write` opens a temporary file in the target's folder (same file system, so
the final ``os.replace`` is an atomic rename), yields it, flushes and fsyncs it, renames
it over the target and fsyncs the folder so the rename itself survives a power cut. On any
error, including ``KeyboardInterrupt``, the temporary file is removed and the target is
left untouched. Every file gifemo writes for later runs (feature shards and their index,
checkpoints, ranked lists, bad-file lists, manifests, the ratings cache) goes through it.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

TMP_SUFFIX = ".tmp"
"""Suffix of the temporary files (``.<name>.<random>.tmp``), for cleaning up after a kill."""


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *, encoding: str | None = None,
                 newline: str | None = None) -> Iterator[IO]:
    """``with atomic_write(path, "w", encoding="utf-8") as f: f.write(...)``.

    ``mode`` is ``"wb"`` or ``"w"`` (text; pass ``encoding``/``newline`` as to ``open``).
    The parent folder is created when missing.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write writes whole files: mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=encoding if "b" not in mode else None,
                       newline=newline if "b" not in mode else None) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. a platform without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
