"""The on-disk dataset format: a folder of GIFs described by CSV files.

Layout
------
A dataset is a folder holding ``manifest.csv``, the GIF files it names, and at most one
label file, ``votes.csv`` or ``scores.csv``::

    mydata/
      manifest.csv
      votes.csv          (pairwise votes)            — or —
      scores.csv         (precomputed TrueSkill µ, σ)
      gifs/0001.gif …

All files are UTF-8 CSV (a byte-order mark is tolerated) with a header row. Header names are
matched after stripping spaces and lower-casing; column order is free; values are stripped of
surrounding spaces. Rows whose fields are all empty are skipped.

``manifest.csv`` — one row per GIF:

==============  ===========================================================================
``id``          unique, non-empty string (the key used by votes.csv and scores.csv)
``path``        the GIF file, relative to the folder (``/`` separators; an absolute path is
                used as is); the file must exist
``tags``        the GIF's tags separated by ``|`` (may be empty); normalised on load with
                :func:`gifemo.data.tags.normalize_tag` (lower case, stripped, single spaces);
                empty entries are dropped, repeats kept (they are counts)
any other       a boolean flag per GIF, value ``0`` or ``1`` — e.g. ``cartoon``,
column          ``multi_scene``; loaded into ``GifDataset.flags[name]``. A flag column that is
                absent is absent from ``flags`` (unknown, not False).
==============  ===========================================================================

``votes.csv`` — one row per vote, in the order cast (TrueSkill is order dependent):
``emotion,left,right,choice``; ``emotion`` one of :data:`gifemo.data.emotions.EMOTIONS`,
``left``/``right`` manifest ids, ``choice`` ``left``, ``right`` or ``neither`` (a draw).
``choice`` ``both`` is also accepted (a draw, as ``neither``). GIFGIF's own vote records are
accepted as they come: header ``metric,left,right,choice`` plus an optional ``country``
column (``metric`` is the emotion, ``left``/``right`` the GIF file ids, i.e. manifest ids;
the country is kept by :func:`read_votes` / :func:`write_gifgif_votes` and not used for the
ratings). µ and σ are computed with :func:`gifemo.data.labels.trueskill_scores` under the
rule ``labels`` of :func:`load_dataset` (``trueskill`` or ``gifgif``) and cached in
``.gifemo_cache/`` keyed by the votes file's bytes and the rule
(:mod:`gifemo.data.ratings_cache`).

``scores.csv`` — precomputed ratings, e.g. GIFGIF's own: ``id,emotion,mu,sigma``, at most one
row per (id, emotion); ``mu`` finite, ``sigma`` finite and >= 0. Pairs without a row are
unlabelled.

Both ``votes.csv`` and ``scores.csv`` present is an error (which one holds the truth is
ambiguous). Neither present gives an unlabelled dataset (all µ, σ NaN), e.g. candidates to rank.

Errors
------
:func:`load_dataset` checks everything before returning and raises one :class:`ManifestError`
listing every problem as ``file row N: reason``; rows are numbered as a spreadsheet or text
editor shows them (the header is row 1). Problems found: unreadable or non-UTF-8 file, missing
or duplicated column, wrong number of fields, empty or duplicated id, missing GIF file, bad
flag value, unknown emotion, vote naming an unknown GIF id or a GIF against itself, bad
choice, non-numeric or out-of-range µ/σ, duplicated (id, emotion) score, both label files.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gifemo.atomic_file import atomic_write
from gifemo.data.emotions import EMOTIONS
from gifemo.data.labels import RULES, Vote, label_targets, trueskill_scores, vote_problems
from gifemo.data.ratings_cache import cached_ratings
from gifemo.data.tags import normalize_tag

MANIFEST = "manifest.csv"
VOTES = "votes.csv"
SCORES = "scores.csv"
MANIFEST_COLUMNS = ("id", "path", "tags")
VOTES_COLUMNS = ("emotion", "left", "right", "choice")
GIFGIF_VOTES_COLUMNS = ("metric", "left", "right", "choice")  # + optional "country"
SCORES_COLUMNS = ("id", "emotion", "mu", "sigma")
TAG_SEPARATOR = "|"
_MAX_LISTED = 200


class ManifestError(ValueError):
    """A dataset folder that cannot be loaded.

    ``problems`` holds every ``(file name, row or None, reason)`` found; the message lists them
    (the first 200, then a count).
    """

    def __init__(self, root: Path | str, problems: list[tuple[str, int | None, str]]):
        self.root = Path(root)
        self.problems = problems
        lines = [f"  {f}" + (f" row {r}" if r is not None else "") + f": {why}"
                 for f, r, why in problems[:_MAX_LISTED]]
        if len(problems) > _MAX_LISTED:
            lines.append(f"  … and {len(problems) - _MAX_LISTED} more (see ManifestError.problems)")
        super().__init__(f"{len(problems)} problem(s) in dataset {self.root}:\n" + "\n".join(lines))


@dataclass
class GifDataset:
    """A loaded dataset: GIFs, their tags and flags, and TrueSkill ratings per emotion.

    Attributes
    ----------
    root : Path
        The dataset folder.
    ids : list of str
        GIF ids in manifest order (the row order of every array here).
    paths : list of Path
        Absolute GIF paths.
    tags : list of list of str
        Normalised tags per GIF.
    flags : dict of str to np.ndarray of bool, shape (N,)
        Optional per-GIF flags (e.g. ``cartoon``, ``multi_scene``).
    mu, sigma : np.ndarray of float64, shape (N, 17)
        TrueSkill ratings, columns in ``EMOTIONS`` order; NaN where unlabelled.
    """

    root: Path
    ids: list[str]
    paths: list[Path]
    tags: list[list[str]]
    flags: dict[str, np.ndarray] = field(default_factory=dict)
    mu: np.ndarray | None = None
    sigma: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.ids)
        if self.mu is None:
            self.mu = np.full((n, len(EMOTIONS)), np.nan)
        if self.sigma is None:
            self.sigma = np.full((n, len(EMOTIONS)), np.nan)
        shapes = {"paths": len(self.paths), "tags": len(self.tags),
                  **{f"flags[{k!r}]": len(v) for k, v in self.flags.items()},
                  "mu": self.mu.shape[0], "sigma": self.sigma.shape[0]}
        bad = {k: v for k, v in shapes.items() if v != n}
        if bad or self.mu.shape[1:] != (len(EMOTIONS),) or self.sigma.shape != self.mu.shape:
            raise ValueError(f"GifDataset with {n} ids has inconsistent fields: {bad or (self.mu.shape, self.sigma.shape)}")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def y(self) -> np.ndarray:
        """Label score µ − 3σ, float64 (N, 17), NaN where unlabelled (§3.1)."""
        return label_targets(self.mu, self.sigma)[0]

    @property
    def positive(self) -> np.ndarray:
        """bool (N, 17): y > 25 (§3.2); False where unlabelled."""
        return label_targets(self.mu, self.sigma)[1]

    @property
    def mask(self) -> np.ndarray:
        """bool (N, 17): the GIF has a label for that emotion."""
        return label_targets(self.mu, self.sigma)[2]


def load_dataset(path: str | Path, labels: str = "trueskill") -> GifDataset:
    """Read and validate a dataset folder (see the module docstring for the format).

    Parameters
    ----------
    path : str or Path
        The folder, or its ``manifest.csv``.
    labels : {"trueskill", "gifgif"}
        Rating rule for ``votes.csv`` (:func:`gifemo.data.labels.trueskill_scores`); a
        ``scores.csv`` is used as it is.

    Returns
    -------
    GifDataset

    Raises
    ------
    ManifestError
        Listing every problem found in every file, with file names and row numbers.
    """
    if labels not in RULES:
        raise ValueError(f"labels must be one of {RULES}, got {labels!r}")
    path = Path(path)
    manifest_path = path if path.is_file() or path.suffix.lower() == ".csv" else path / MANIFEST
    root = manifest_path.parent.resolve()
    problems: list[tuple[str, int | None, str]] = []
    if not manifest_path.is_file():
        raise ManifestError(root, [(manifest_path.name, None, f"not found ({manifest_path})")])

    ids, paths, tags, flags, known_ids = _read_manifest(manifest_path, root, problems)

    votes_path, scores_path = root / VOTES, root / SCORES
    mu = sigma = None
    if votes_path.exists() and scores_path.exists():
        problems.append((SCORES, None, f"both {VOTES} and {SCORES} exist; keep only one (ambiguous labels)"))
    elif votes_path.exists():
        votes = _read_votes(votes_path, known_ids, problems)
        if not problems:
            mu, sigma = cached_ratings(votes_path, ids,
                                       lambda: trueskill_scores(votes, ids, rule=labels),
                                       rule=labels)
    elif scores_path.exists():
        mu, sigma = _read_scores(scores_path, ids, known_ids, problems)
    if not ids and not problems:
        problems.append((manifest_path.name, None, "no GIFs listed"))
    if problems:
        raise ManifestError(root, problems)
    return GifDataset(root=root, ids=ids, paths=paths, tags=tags, flags=flags, mu=mu, sigma=sigma)


def write_dataset(
    folder: str | Path,
    ids: Sequence[str],
    rel_paths: Sequence[str | Path],
    tags: Sequence[Sequence[str]],
    flags: Mapping[str, Sequence[bool]] | None = None,
    votes: Iterable[Vote] | None = None,
    scores: tuple[np.ndarray, np.ndarray] | Iterable[tuple[str, str, float, float]] | None = None,
) -> Path:
    """Write ``manifest.csv`` (and ``votes.csv`` or ``scores.csv``) in ``folder``.

    Parameters
    ----------
    folder : str or Path
        Created if missing. GIF files are not copied: ``rel_paths`` name files in it.
    ids, rel_paths, tags : sequences of length N
        One entry per GIF; a tag may not contain ``|``.
    flags : mapping of str to sequence of bool, optional
        Extra 0/1 columns, in the mapping's order.
    votes : iterable of Vote, optional
        Written in order to ``votes.csv``.
    scores : (mu, sigma) arrays of shape (N, 17), or iterable of (id, emotion, mu, sigma), optional
        Written to ``scores.csv`` (NaN entries of the arrays are skipped).

    Returns
    -------
    Path
        The ``manifest.csv`` written. Files are written to a temporary name and renamed, so a
        failure leaves any previous file intact.
    """
    folder = Path(folder)
    n = len(ids)
    if len(rel_paths) != n or len(tags) != n:
        raise ValueError(f"ids, rel_paths and tags must have one entry per GIF: "
                         f"{n}, {len(rel_paths)}, {len(tags)}")
    if votes is not None and scores is not None:
        raise ValueError("give votes or scores, not both")
    flags = dict(flags or {})
    for name, values in flags.items():
        if not isinstance(name, str) or name.strip().lower() != name or not name \
                or name in MANIFEST_COLUMNS:
            raise ValueError(f"bad flag column name {name!r} (lower-case, not one of {MANIFEST_COLUMNS})")
        if len(values) != n:
            raise ValueError(f"flag {name!r} has {len(values)} values for {n} GIFs")
    seen: set[str] = set()
    rows = []
    for i, (gif_id, rel, gif_tags) in enumerate(zip(ids, rel_paths, tags)):
        if not isinstance(gif_id, str) or not gif_id.strip() or gif_id != gif_id.strip():
            raise ValueError(f"GIF {i}: id {gif_id!r} must be a non-empty string without surrounding spaces")
        if gif_id in seen:
            raise ValueError(f"GIF {i}: duplicated id {gif_id!r}")
        seen.add(gif_id)
        if isinstance(gif_tags, str):
            raise ValueError(f"GIF {i} ({gif_id}): tags must be a list of strings, got the string {gif_tags!r}")
        for t in gif_tags:
            if TAG_SEPARATOR in t:
                raise ValueError(f"GIF {i} ({gif_id}): tag {t!r} contains the separator {TAG_SEPARATOR!r}")
        row = [gif_id, Path(rel).as_posix(), TAG_SEPARATOR.join(gif_tags)]
        row += ["1" if bool(flags[name][i]) else "0" for name in flags]
        rows.append(row)

    folder.mkdir(parents=True, exist_ok=True)
    label_rows: list[list[str]] | None = None
    label_file = other = None
    if votes is not None:
        label_file, other, header = VOTES, SCORES, list(VOTES_COLUMNS)
        label_rows = [[str(x) for x in v] for v in votes]
        bad = vote_problems([Vote(*r) if len(r) == 4 else tuple(r) for r in label_rows], ids)
        if bad:
            raise ValueError(f"bad votes: {bad[:_MAX_LISTED]}")
    elif scores is not None:
        label_file, other, header = SCORES, VOTES, list(SCORES_COLUMNS)
        label_rows = _score_rows(scores, ids)
    if other is not None and (folder / other).exists():
        raise ValueError(f"{folder / other} exists; writing {label_file} beside it would make the labels ambiguous")
    _atomic_csv(folder / MANIFEST, [*MANIFEST_COLUMNS, *flags], rows)
    if label_rows is not None:
        _atomic_csv(folder / label_file, header, label_rows)
    return folder / MANIFEST


# --------------------------------------------------------------------------- reading


def _read_csv(path: Path, required: Sequence[str], problems: list, optional_extra: bool = False):
    """Rows of a CSV as (row number, dict) with normalised header names; None if unusable."""
    name = path.name
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            records = list(csv.reader(f))
    except UnicodeDecodeError as e:
        problems.append((name, None, f"not UTF-8 text ({e.reason} at byte {e.start})"))
        return None
    except (OSError, csv.Error) as e:
        problems.append((name, None, f"cannot be read ({e})"))
        return None
    if not records:
        problems.append((name, 1, f"empty file; expected a header {','.join(required)}"))
        return None
    header = [h.strip().lower() for h in records[0]]
    missing = [c for c in required if c not in header]
    dupes = sorted({h for h in header if header.count(h) > 1})
    unnamed = [i + 1 for i, h in enumerate(header) if not h]
    extra = [h for h in header if h and h not in required]
    if missing:
        problems.append((name, 1, f"missing column(s) {', '.join(missing)} (header: {','.join(header)})"))
    if dupes:
        problems.append((name, 1, f"duplicated column(s) {', '.join(dupes)}"))
    if unnamed:
        problems.append((name, 1, f"column(s) {unnamed} have no name"))
    if extra and not optional_extra:
        problems.append((name, 1, f"unexpected column(s) {', '.join(extra)}; expected {','.join(required)}"))
    if missing or dupes or unnamed:
        return None
    rows = []
    for number, rec in enumerate(records[1:], start=2):
        if all(not x.strip() for x in rec):
            continue
        if len(rec) != len(header):
            problems.append((name, number, f"{len(rec)} fields, header has {len(header)}"))
            continue
        rows.append((number, {h: v.strip() for h, v in zip(header, rec)}))
    return header, rows


def _read_manifest(path: Path, root: Path, problems: list):
    ids: list[str] = []
    paths: list[Path] = []
    tags: list[list[str]] = []
    known_ids: set[str] = set()
    parsed = _read_csv(path, MANIFEST_COLUMNS, problems, optional_extra=True)
    if parsed is None:
        return ids, paths, tags, {}, known_ids
    header, rows = parsed
    flag_names = [h for h in header if h not in MANIFEST_COLUMNS]
    flag_values: dict[str, list[bool]] = {k: [] for k in flag_names}
    first_row: dict[str, int] = {}
    name = path.name
    for number, row in rows:
        ok = True
        gif_id = row["id"]
        if not gif_id:
            problems.append((name, number, "empty id"))
            ok = False
        elif gif_id in first_row:
            problems.append((name, number, f"duplicated id {gif_id!r} (first on row {first_row[gif_id]})"))
            ok = False
        else:
            first_row[gif_id] = number
            known_ids.add(gif_id)
        rel = row["path"]
        if not rel:
            problems.append((name, number, "empty path"))
            ok = False
            gif_path = None
        else:
            gif_path = (root / rel).resolve()
            if not gif_path.is_file():
                problems.append((name, number, f"GIF file not found: {rel} ({gif_path})"))
                ok = False
        row_flags = {}
        for k in flag_names:
            v = row[k]
            if v not in ("0", "1"):
                problems.append((name, number, f"flag {k}={v!r}; expected 0 or 1"))
                ok = False
            row_flags[k] = v == "1"
        if ok:
            ids.append(gif_id)
            paths.append(gif_path)
            tags.append([t for t in (normalize_tag(x) for x in row["tags"].split(TAG_SEPARATOR)) if t])
            for k in flag_names:
                flag_values[k].append(row_flags[k])
    flags = {k: np.asarray(v, dtype=bool) for k, v in flag_values.items()}
    return ids, paths, tags, flags, known_ids


def _votes_header(path: Path) -> list[str]:
    """The normalised header of a votes file ([] if unreadable; _read_csv reports why)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            first = next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return []
    return [h.strip().lower() for h in first]


def _read_votes_rows(path: Path, problems: list) -> tuple[list[Vote], list[str | None], list[int]]:
    """Votes (ours: emotion,left,right,choice; GIFGIF's: metric,left,right,choice[,country]),
    their countries (None without a country column) and their row numbers."""
    header = _votes_header(path)
    gifgif = "metric" in header and "emotion" not in header
    required = GIFGIF_VOTES_COLUMNS if gifgif else VOTES_COLUMNS
    parsed = _read_csv(path, required, problems, optional_extra=gifgif)
    if parsed is None:
        return [], [], []
    header, rows = parsed
    if gifgif:
        extra = [h for h in header if h not in (*GIFGIF_VOTES_COLUMNS, "country")]
        if extra:
            problems.append((path.name, 1, f"unexpected column(s) {', '.join(extra)}; expected "
                             f"{','.join(GIFGIF_VOTES_COLUMNS)}[,country]"))
            return [], [], []
    key = "metric" if gifgif else "emotion"
    votes = [Vote(r[key], r["left"], r["right"], r["choice"]) for _, r in rows]
    countries = [r.get("country") if gifgif and "country" in header else None for _, r in rows]
    return votes, countries, [n for n, _ in rows]


def _read_votes(path: Path, known_ids: set[str], problems: list) -> list[Vote]:
    votes, _, numbers = _read_votes_rows(path, problems)
    for i, reason in vote_problems(votes, sorted(known_ids)):
        problems.append((path.name, numbers[i], reason))
    return votes


def read_votes(path: str | Path) -> tuple[list[Vote], list[str | None]]:
    """The votes of a votes file in either format, in order, with their countries (None
    where the file has no ``country`` column). Raises ManifestError on a malformed file."""
    path = Path(path)
    problems: list = []
    votes, countries, numbers = _read_votes_rows(path, problems)
    for i, reason in vote_problems(votes):
        problems.append((path.name, numbers[i], reason))
    if problems:
        raise ManifestError(path.parent, problems)
    return votes, countries


def write_gifgif_votes(path: str | Path, votes: Iterable[Vote],
                       countries: Sequence[str | None] | None = None) -> Path:
    """Write votes as GIFGIF's records, ``metric,left,right,choice[,country]`` (the country
    column only when ``countries`` is given; None is written as an empty field)."""
    path = Path(path)
    votes = [Vote(*v) for v in votes]
    bad = vote_problems(votes)
    if bad:
        raise ValueError(f"bad votes: {bad[:_MAX_LISTED]}")
    header = list(GIFGIF_VOTES_COLUMNS)
    rows = [[v.emotion, v.left, v.right, v.choice] for v in votes]
    if countries is not None:
        countries = list(countries)
        if len(countries) != len(rows):
            raise ValueError(f"{len(countries)} countries for {len(rows)} votes")
        header.append("country")
        for row, c in zip(rows, countries):
            row.append("" if c is None else str(c))
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_csv(path, header, rows)
    return path


def _read_scores(path: Path, ids: list[str], known_ids: set[str], problems: list):
    mu = np.full((len(ids), len(EMOTIONS)), np.nan)
    sigma = np.full_like(mu, np.nan)
    parsed = _read_csv(path, SCORES_COLUMNS, problems)
    if parsed is None:
        return mu, sigma
    _, rows = parsed
    row_of = {gif: i for i, gif in enumerate(ids)}
    column = {e: j for j, e in enumerate(EMOTIONS)}
    first_row: dict[tuple[str, str], int] = {}
    name = path.name
    for number, r in rows:
        gif_id, emotion = r["id"], r["emotion"].lower()
        ok = True
        if gif_id not in known_ids:
            problems.append((name, number, f"id {gif_id!r} is not in {MANIFEST}"))
            ok = False
        if emotion not in column:
            problems.append((name, number, f"unknown emotion {r['emotion']!r}"))
            ok = False
        values = {}
        for key in ("mu", "sigma"):
            try:
                values[key] = float(r[key])
            except ValueError:
                problems.append((name, number, f"{key}={r[key]!r} is not a number"))
                ok = False
                continue
            if not math.isfinite(values[key]):
                problems.append((name, number, f"{key}={r[key]!r} is not finite"))
                ok = False
        if "sigma" in values and values["sigma"] < 0:
            problems.append((name, number, f"sigma={r['sigma']!r} is negative"))
            ok = False
        key = (gif_id, emotion)
        if key in first_row:
            problems.append((name, number, f"second score for ({gif_id}, {emotion}) (first on row {first_row[key]})"))
            ok = False
        else:
            first_row[key] = number
        if ok and gif_id in row_of:  # ids whose manifest row was bad are already reported there
            mu[row_of[gif_id], column[emotion]] = values["mu"]
            sigma[row_of[gif_id], column[emotion]] = values["sigma"]
    return mu, sigma


# --------------------------------------------------------------------------- writing


def _score_rows(scores, ids: Sequence[str]) -> list[list[str]]:
    if isinstance(scores, tuple) and len(scores) == 2 and all(isinstance(a, np.ndarray) for a in scores):
        mu, sigma = (np.asarray(a, dtype=np.float64) for a in scores)
        if mu.shape != (len(ids), len(EMOTIONS)) or sigma.shape != mu.shape:
            raise ValueError(f"scores arrays must have shape {(len(ids), len(EMOTIONS))}, got {mu.shape}, {sigma.shape}")
        label_targets(mu, sigma)  # validates NaN pattern and ranges
        return [[ids[i], EMOTIONS[j], repr(float(mu[i, j])), repr(float(sigma[i, j]))]
                for i, j in zip(*np.nonzero(~np.isnan(mu)))]
    rows = []
    for k, row in enumerate(scores):
        if len(row) != 4:
            raise ValueError(f"score {k}: expected (id, emotion, mu, sigma), got {row!r}")
        gif_id, emotion, m, s = row
        if emotion not in EMOTIONS:
            raise ValueError(f"score {k}: unknown emotion {emotion!r}")
        rows.append([str(gif_id), str(emotion), repr(float(m)), repr(float(s))])
    return rows


def _atomic_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    with atomic_write(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)

