"""Candidate GIFs for a ranking job, read lazily, numbered, and cut into fixed-size shards.

Three sources, each yielding :class:`Candidate` s in a fixed order (the *candidate index* is
the position in that order, 0-based):

- a **paths file** (:class:`PathsFile`): one candidate per non-blank line, read line by line
  (a file of 150 M lines is never held in memory). A line is ``path`` (the id is the path as
  written) or ``id<TAB>path`` (so one file can be listed under several ids). Relative paths
  are relative to the paths file's folder. Ids are not checked for uniqueness (that would
  need memory growing with the file); the candidate index is the key.
- a **folder tree** (:class:`FolderTree`): ``**/*.gif``, walked lazily with each folder's
  entries sorted (so the order is that of sorted relative paths' components); id = the path
  relative to the folder, without suffix (as :func:`gifemo.rank.discover_candidates`).
- a **manifest** (:class:`ManifestSource`): a dataset folder / ``manifest.csv``
  (:func:`gifemo.data.manifest.load_dataset`, loaded into memory), with its tags.

:func:`iter_shards` cuts a source into shards ``s = index // shard_size``;
:func:`shards_of_rank` deals them round-robin to ranks. :meth:`CandidateSource.survey` counts
the candidates and fingerprints the source in one streaming pass (the job's identity).
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from gifemo.data.manifest import MANIFEST, load_dataset


class CandidateError(ValueError):
    """A candidate source cannot be read (names the file and line)."""


class Candidate(NamedTuple):
    """One candidate: its index in the source, id, absolute path and tags (may be empty)."""

    index: int
    id: str
    path: str
    tags: tuple = ()


class SourceSurvey(NamedTuple):
    """What one pass over a source saw: candidate count and a SHA-256 of its listing."""

    kind: str
    location: str
    n_candidates: int
    sha256: str


class CandidateSource:
    """A re-iterable, ordered stream of :class:`Candidate` s."""

    kind = ""

    def __init__(self, location: str | os.PathLike):
        self.location = Path(location).resolve()

    def __iter__(self) -> Iterator[Candidate]:  # pragma: no cover - abstract
        raise NotImplementedError

    def survey(self) -> SourceSurvey:
        """Count and fingerprint the candidates in one pass (id and path of each)."""
        h, n = hashlib.sha256(), 0
        for c in self:
            h.update(f"{c.id}\t{c.path}\t{' '.join(c.tags)}\n".encode("utf-8", "surrogateescape"))
            n += 1
        return SourceSurvey(self.kind, str(self.location), n, h.hexdigest())


class PathsFile(CandidateSource):
    """A text file of ``path`` or ``id<TAB>path`` lines (UTF-8), read lazily."""

    kind = "paths"

    def __iter__(self) -> Iterator[Candidate]:
        base = str(self.location.parent)
        index = 0
        try:
            fh = open(self.location, encoding="utf-8", errors="surrogateescape", newline=None)
        except OSError as e:
            raise CandidateError(f"paths file {self.location}: {e.strerror or e}") from None
        with fh:
            for line_no, line in enumerate(fh, start=1):
                line = line.rstrip("\n")
                if not line.strip():
                    continue
                parts = line.split("\t")
                if len(parts) == 1:
                    gid, path = parts[0].strip(), parts[0].strip()
                elif len(parts) == 2 and parts[0].strip() and parts[1].strip():
                    gid, path = parts[0].strip(), parts[1].strip()
                else:
                    raise CandidateError(f"paths file {self.location}, line {line_no}: expected "
                                         f"'path' or 'id<TAB>path', got {line[:200]!r}")
                yield Candidate(index, gid, path if os.path.isabs(path) else os.path.join(base, path))
                index += 1


def _walk_sorted(folder: Path) -> Iterator[Path]:
    """Files under ``folder``, depth first, each folder's entries sorted by name."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as e:
        raise CandidateError(f"folder {folder}: {e.strerror or e}") from None
    for e in entries:
        if e.is_dir(follow_symlinks=False):
            yield from _walk_sorted(Path(e.path))
        elif e.is_file():
            yield Path(e.path)


class FolderTree(CandidateSource):
    """Every ``*.gif`` (any case) under a folder, walked lazily in sorted order."""

    kind = "folder"

    def __iter__(self) -> Iterator[Candidate]:
        index = 0
        for p in _walk_sorted(self.location):
            if p.suffix.lower() == ".gif":
                yield Candidate(index, p.relative_to(self.location).with_suffix("").as_posix(), str(p))
                index += 1


class ManifestSource(CandidateSource):
    """A dataset folder or ``manifest.csv`` (loaded whole; tags included)."""

    kind = "manifest"

    def __iter__(self) -> Iterator[Candidate]:
        ds = load_dataset(self.location)
        for i, (gid, path, tags) in enumerate(zip(ds.ids, ds.paths, ds.tags)):
            yield Candidate(i, gid, str(path), tuple(tags))


def open_source(source: str | os.PathLike | None = None, paths: str | os.PathLike | None = None) -> CandidateSource:
    """The source of ``paths`` (a paths file) or ``source`` (folder tree, dataset folder or
    ``manifest.csv``); exactly one must be given."""
    if (source is None) == (paths is None):
        raise CandidateError("give exactly one of a candidate folder / manifest and a paths file")
    if paths is not None:
        if not Path(paths).is_file():
            raise CandidateError(f"paths file {paths}: not found")
        return PathsFile(paths)
    source = Path(source)
    if source.is_file() and source.suffix.lower() == ".csv":
        return ManifestSource(source)
    if source.is_dir():
        return ManifestSource(source) if (source / MANIFEST).is_file() else FolderTree(source)
    if source.is_file():
        return PathsFile(source)
    raise CandidateError(f"{source}: not a folder, manifest.csv or paths file")


def n_shards(n_candidates: int, shard_size: int) -> int:
    return -(-int(n_candidates) // int(shard_size))


def shard_bounds(shard: int, shard_size: int, n_candidates: int) -> tuple[int, int]:
    """Candidate indices ``[start, stop)`` of a shard."""
    start = shard * shard_size
    return start, min(start + shard_size, n_candidates)


def shards_of_rank(shards: Iterable[int], rank: int, world_size: int) -> list[int]:
    """Shards this rank computes: those with ``shard % world_size == rank`` (each shard has
    exactly one owner, whatever has been finished before)."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    return [s for s in shards if s % world_size == rank]


def iter_shards(candidates: Iterable[Candidate], shard_size: int,
                wanted=None) -> Iterator[tuple[int, list[Candidate]]]:
    """``(shard, candidates)`` for consecutive blocks of ``shard_size`` candidates; only the
    shards in ``wanted`` (a container of shard numbers; None = all) are materialised."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    block, current = [], None
    for c in candidates:
        s = c.index // shard_size
        if s != current:
            if block:
                yield current, block
            block, current = [], s
        if wanted is None or s in wanted:
            block.append(c)
    if block:
        yield current, block
