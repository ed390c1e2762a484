"""A campaign's candidate pool: the GIFs to check, from a folder or a dataset manifest.

The paper gathered ~50,000 candidates per emotion by searching Giphy with the emotion's top
10 tags (§3.2). Here a pool is either

* a dataset folder (or its ``manifest.csv``) in the :mod:`gifemo.data.manifest` format, which
  carries the candidates' tags (the tag features need them), or
* a plain folder of ``*.gif`` files (searched recursively): ids are the paths relative to the
  folder without the suffix, tags are empty.

Every candidate file must resolve (symbolic links followed) inside the pool's root — the
folder, or the folder of the manifest — since the app serves candidate files to labellers:
a manifest row naming ``../secret.txt`` or ``/etc/hostname`` is refused with its row number.
"""

from __future__ import annotations

import csv
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


def inside(path: str | Path, root: str | Path) -> bool:
    """Whether ``path`` resolves (symbolic links followed) to a location inside ``root``."""
    try:
        return Path(path).resolve().is_relative_to(Path(root).resolve())
    except (OSError, RuntimeError, ValueError):  # a link loop, a NUL byte ...
        return False


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
        manifest = src if src.is_file() else src / MANIFEST
        outside = [(g, p) for g, p in zip(pool.ids, pool.paths) if not inside(p, manifest.parent)]
        if outside:
            rows = _manifest_rows(manifest)
            listed = "; ".join(f"{manifest.name} row {rows.get(g, '?')}: GIF {g!r} lies outside the pool "
                               "folder" for g, _ in outside[:20])
            raise PoolError(f"candidate pool {manifest.parent}: {len(outside)} path(s) outside the pool "
                            f"folder (the app serves these files to labellers): {listed}")
    else:
        files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() == ".gif")
        outside = [p for p in files if not inside(p, src)]
        if outside:
            raise PoolError(f"candidate pool {src}: {len(outside)} GIF(s) are links to files outside the "
                            f"folder, e.g. {outside[0].relative_to(src).as_posix()}")
        ids = [p.relative_to(src).with_suffix("").as_posix() for p in files]
        pool = CandidatePool(src, ids, files, [[] for _ in files])
    if len(pool) == 0:
        raise PoolError(f"candidate pool {src}: holds no GIFs")
    return pool


def _manifest_rows(manifest: Path) -> dict[str, int]:
    """id -> row number in ``manifest`` (the header is row 1), for error messages."""
    rows: dict[str, int] = {}
    with manifest.open(encoding="utf-8-sig", newline="") as fh:
        records = csv.reader(fh)
        header = [h.strip().lower() for h in next(records, [])]
        if "id" in header:
            for number, rec in enumerate(records, start=2):
                if len(rec) == len(header):
                    rows.setdefault(rec[header.index("id")].strip(), number)
    return rows


GIF_SIGNATURES = (b"GIF87a", b"GIF89a")


def file_problem(path: str | Path, root: str | Path) -> str | None:
    """Why the candidate file at ``path`` cannot be shown (outside ``root``, missing, unreadable,
    not a GIF), or None when it can. The reason never names server paths."""
    if not inside(path, root):
        return "the file lies outside the pool folder"
    try:
        with open(path, "rb") as fh:
            head = fh.read(6)
    except FileNotFoundError:
        return "the file is missing"
    except OSError as e:
        return f"the file cannot be read ({e.strerror or type(e).__name__})"
    if head not in GIF_SIGNATURES:
        return "the file is not a GIF"
    return None
