"""Emotion labels from pairwise votes via TrueSkill (Chen & Picard 2017, §3.1–3.2).

GIFGIF shows two GIFs and asks "which better expresses E?"; the answer is the left GIF, the
right one, or "neither". Each GIF has one TrueSkill rating per emotion, initialised to
µ₀ = 25, σ₀ = 25/3 (§3.1). Here every vote is one two-player TrueSkill match in that emotion's
rating table: "left"/"right" is a win for that GIF, "neither" is a draw. Votes are applied in
the order given (TrueSkill is order dependent). The paper states only µ₀ and σ₀; the other
parameters are the ``trueskill`` package's defaults, which are also the values of the TrueSkill
paper: β = σ₀/2 ≈ 4.167, τ = σ₀/100 ≈ 0.083, draw probability 0.10 (:data:`TRUESKILL_PARAMS`).

The label score is the 1 % lower quantile ``y = µ − 3σ`` (§3.1) and a GIF is positive for E
iff ``y > µ₀ = 25`` (§3.2). A GIF never compared for E has no label for E: µ and σ are NaN and
its mask entry is False — never "missing = negative".

Updates use the maintained ``trueskill`` package (``rate_1vs1`` with its built-in erfc) rather
than our own copy of the update equations; the tests check it against those equations written
out with scipy. It is pure Python: 105 µs per ``rate_1vs1`` call and 177 µs per vote through
:func:`trueskill_scores` on the shared 2-core development machine, i.e. 5–10 minutes for
GIFGIF's 3.1 M votes — fine for a one-off labelling step; ``scores.csv`` avoids it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np
import trueskill

from gifemo.data.emotions import EMOTIONS

MU0 = 25.0
SIGMA0 = 25.0 / 3.0
TRUESKILL_PARAMS: dict[str, float] = {
    "mu": MU0, "sigma": SIGMA0, "beta": SIGMA0 / 2.0, "tau": SIGMA0 / 100.0, "draw_probability": 0.10,
}
CHOICES = ("left", "right", "neither")
_MAX_LISTED = 20


class Vote(NamedTuple):
    """One answer to "which GIF better expresses ``emotion``?": ``choice`` is left, right or neither."""

    emotion: str
    left: str
    right: str
    choice: str


class VoteError(ValueError):
    """Bad votes; ``problems`` holds every ``(vote_index, reason)`` found (0-based indices)."""

    def __init__(self, problems: list[tuple[int, str]]):
        self.problems = problems
        shown = "\n".join(f"  vote {i}: {r}" for i, r in problems[:_MAX_LISTED])
        more = f"\n  … and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
        super().__init__(f"{len(problems)} bad vote(s):\n{shown}{more}")


def vote_problems(votes: Sequence[Vote], ids: Sequence[str] | None = None) -> list[tuple[int, str]]:
    """Every problem in ``votes`` as ``(index, reason)``: unknown emotion or choice, a GIF voted
    against itself, or (when ``ids`` is given) a GIF id not in ``ids``."""
    known = None if ids is None else set(ids)
    emotions = set(EMOTIONS)
    problems = []
    for i, v in enumerate(votes):
        if not isinstance(v, tuple) or len(v) != 4:
            problems.append((i, f"not a (emotion, left, right, choice) vote: {v!r}"))
            continue
        emotion, left, right, choice = v
        if not isinstance(emotion, str) or emotion.strip().lower() not in emotions:
            problems.append((i, f"unknown emotion {emotion!r}"))
        if not isinstance(choice, str) or choice.strip().lower() not in CHOICES:
            problems.append((i, f"unknown choice {choice!r}; expected one of {', '.join(CHOICES)}"))
        if left == right:
            problems.append((i, f"GIF {left!r} compared with itself"))
        if known is not None:
            for side, gif in (("left", left), ("right", right)):
                if gif not in known:
                    problems.append((i, f"{side} GIF id {gif!r} is not in the dataset"))
    return problems


def trueskill_scores(votes: Iterable[Vote], ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """TrueSkill µ and σ of every GIF for every emotion from pairwise votes (§3.1).

    Parameters
    ----------
    votes : iterable of Vote
        In the order they were cast. ``emotion`` and ``choice`` are matched case-insensitively.
    ids : sequence of str
        GIF ids; row order of the result.

    Returns
    -------
    mu, sigma : np.ndarray of float64, shape (N, 17)
        Columns in :data:`gifemo.data.emotions.EMOTIONS` order; NaN where the GIF was never
        compared for that emotion.

    Raises
    ------
    VoteError
        (a ValueError) listing every bad vote by index, before any rating is computed.
    """
    ids = list(ids)
    row = {gif: i for i, gif in enumerate(ids)}
    if len(row) != len(ids):
        seen, dupes = set(), []
        for gif in ids:
            (dupes.append(gif) if gif in seen else seen.add(gif))
        raise ValueError(f"duplicated GIF ids: {sorted(set(dupes))[:_MAX_LISTED]}")
    votes = list(votes)
    problems = vote_problems(votes, ids)
    if problems:
        raise VoteError(problems)

    env = trueskill.TrueSkill(**TRUESKILL_PARAMS)
    column = {e: j for j, e in enumerate(EMOTIONS)}
    tables: list[dict[int, trueskill.Rating]] = [{} for _ in EMOTIONS]  # one rating table per emotion
    for i, (emotion, left, right, choice) in enumerate(votes):
        table = tables[column[emotion.strip().lower()]]
        a, b = row[left], row[right]
        ra = table[a] if a in table else env.create_rating()
        rb = table[b] if b in table else env.create_rating()
        choice = choice.strip().lower()
        try:
            if choice == "right":
                rb, ra = trueskill.rate_1vs1(rb, ra, env=env)
            else:
                ra, rb = trueskill.rate_1vs1(ra, rb, drawn=(choice == "neither"), env=env)
        except FloatingPointError as e:
            raise VoteError([(i, f"TrueSkill update failed numerically ({e})")]) from None
        table[a], table[b] = ra, rb

    mu = np.full((len(ids), len(EMOTIONS)), np.nan)
    sigma = np.full_like(mu, np.nan)
    for j, table in enumerate(tables):
        for r, rating in table.items():
            mu[r, j], sigma[r, j] = rating.mu, rating.sigma
    return mu, sigma


def is_positive(y, mask=None) -> np.ndarray:
    """The one positive rule (§3.2): label score ``y = µ − 3σ`` strictly above µ₀ = 25.

    ``y`` is any array-like of label scores (NaN where unlabelled); ``mask``, when given, is
    where a label exists. Returns bool of ``y``'s shape: False where NaN or outside ``mask``.
    """
    positive = np.asarray(y, dtype=np.float64) > MU0  # NaN compares False
    if mask is not None:
        positive &= np.asarray(mask, dtype=bool)
    return positive


def label_targets(mu: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Regression targets, binary labels and the label mask from TrueSkill ratings (§3.1–3.2).

    Parameters
    ----------
    mu, sigma : np.ndarray, shape (N, 17)
        NaN where unlabelled (both NaN together).

    Returns
    -------
    y : np.ndarray of float64, shape (N, 17)
        ``mu - 3 * sigma`` (NaN where unlabelled).
    positive : np.ndarray of bool, shape (N, 17)
        :func:`is_positive`: ``y > 25`` (False where unlabelled; use ``mask``).
    mask : np.ndarray of bool, shape (N, 17)
        ``~isnan(mu)``: the GIF has a label for that emotion.
    """
    mu = np.asarray(mu, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    if mu.shape != sigma.shape:
        raise ValueError(f"mu has shape {mu.shape} but sigma has shape {sigma.shape}")
    mask = ~np.isnan(mu)
    if not np.array_equal(mask, ~np.isnan(sigma)):
        bad = np.argwhere(mask != ~np.isnan(sigma))[0]
        raise ValueError(f"mu and sigma disagree about which entries are labelled (first at {tuple(int(i) for i in bad)})")
    if np.any(sigma[mask] < 0) or not np.all(np.isfinite(mu[mask]) & np.isfinite(sigma[mask])):
        raise ValueError("sigma must be finite and >= 0 and mu finite where labelled")
    y = mu - 3.0 * sigma
    return y, is_positive(y, mask), mask
