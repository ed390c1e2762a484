"""A campaign's candidate pool: the GIFs to check, from a folder or a dataset manifest.

The paper gathered ~50,000 candidates per emotion by searching Giphy with the emotion's top
10 tags (§3.2). Here a pool is either

* a dataset folder (or its ``manifest.csv``) in the :mod:`gifemo.data.manifest` format, which
  carries the candidates' tags (the tag features need them), or
* a plain folder of ``*.gif`` files (searched recursively): ids are the paths relative to the
  folder without the suffix, tags are empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gifemo.collect.errors import PoolError
from gifemo.data.manifest import MANIFEST, ManifestError, load_dataset


@dataclass(frozen=True)
class CandidatePool:
    """Candidates in a fixed order (the row order of every per-candidate array)."""

    source: Path
    ids: list[str]
    paths: list[Path]
    tags: list[list[str]]

    def __len__(self) -> int:
        return len(self.ids)


def load_pool(source: str | Path) -> CandidatePool:
    """Read a pool from a dataset folder, a ``manifest.csv`` or a folder of GIFs."""
    src = Path(source).expanduser().resolve()
    if not src.exists():
        raise PoolError(f"candidate pool {src}: no such file or folder")
    if src.is_file() or (src / MANIFEST).is_file():
        try:
            ds = load_dataset(src)
        except ManifestError as e:
            raise PoolError(f"candidate pool {src}: {e}") from e
        pool = CandidatePool(src, list(ds.ids), [Path(p) for p in ds.paths], [list(t) for t in ds.tags])
    else:
        files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() == ".gif")
        ids = [p.relative_to(src).with_suffix("").as_posix() for p in files]
        pool = CandidatePool(src, ids, files, [[] for _ in files])
    if len(pool) == 0:
        raise PoolError(f"candidate pool {src}: holds no GIFs")
    return pool
