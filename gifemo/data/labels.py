"""Emotion labels from pairwise votes via TrueSkill (Chen & Picard 2017, §3.1–3.2).

GIFGIF shows two GIFs and asks "which better expresses E?"; the answer is the left GIF, the
right one, or "neither". Each GIF has one TrueSkill rating per emotion, initialised to
µ₀ = 25, σ₀ = 25/3 (§3.1). Here every vote is one two-player TrueSkill match in that emotion's
rating table: "left"/"right" is a win for that GIF, "neither" is a draw. Votes are applied in
the order given (TrueSkill is order dependent). The paper states only µ₀ and σ₀; the other
parameters are the ``trueskill`` package's defaults, which are also the values of the TrueSkill
paper: β = σ₀/2 ≈ 4.167, τ = σ₀/100 ≈ 0.083, draw probability 0.10 (:data:`TRUESKILL_PARAMS`).

Two rating rules (``rule=`` of :func:`trueskill_scores`, ``data.labels`` in the configs):

- ``"trueskill"`` (default): the ``trueskill`` package with the parameters above.
- ``"gifgif"``: the GIFGIF platform's own variant (its published analysis code,
  Viral-MediaLab/GIFGIF_Analysis ``scripts/trueskill.py``): µ₀ = 25, σ₀ = 25/3,
  β² = σ₀²/4, τ² = σ₀²/10000, draw probability 0.13 and a draw margin
  ε = Φ⁻¹((0.13 + 1)/2)·√(2β² + 2σ₀²) (the package uses √2·β), see :data:`GIFGIF_PARAMS`.
  Implemented here from the two-player TrueSkill update equations of Herbrich, Minka &
  Graepel (2007) in :func:`gifgif_update`.

Under both rules the answers ``both`` and ``neither`` are draws (GIFGIF's four answers are
left, right, both, neither).

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

import math

import numpy as np
import scipy.special
import scipy.stats
import trueskill

from gifemo.data.emotions import EMOTIONS

MU0 = 25.0
SIGMA0 = 25.0 / 3.0
TRUESKILL_PARAMS: dict[str, float] = {
    "mu": MU0, "sigma": SIGMA0, "beta": SIGMA0 / 2.0, "tau": SIGMA0 / 100.0, "draw_probability": 0.10,
}
_GIFGIF_SIGMA0 = 25.0 / 3.0
_GIFGIF_BETA2 = _GIFGIF_SIGMA0 ** 2 / 4.0
#: The GIFGIF platform's TrueSkill variant; ``draw_margin`` = Φ⁻¹((p + 1)/2)·√(2β² + 2σ₀²).
GIFGIF_PARAMS: dict[str, float] = {
    "mu": 25.0, "sigma": _GIFGIF_SIGMA0, "beta2": _GIFGIF_BETA2,
    "tau2": _GIFGIF_SIGMA0 ** 2 / 10000.0, "draw_probability": 0.13,
    "draw_margin": float(scipy.stats.norm.ppf((0.13 + 1.0) / 2.0))
    * math.sqrt(2.0 * _GIFGIF_BETA2 + 2.0 * _GIFGIF_SIGMA0 ** 2),
}
RULES = ("trueskill", "gifgif")
CHOICES = ("left", "right", "neither")  # the answers our labelling app offers
VOTE_CHOICES = ("left", "right", "both", "neither")  # accepted in votes: GIFGIF's four answers
DRAWS = ("both", "neither")
_MAX_LISTED = 20


class Vote(NamedTuple):
    """One answer to "which GIF better expresses ``emotion``?": ``choice`` is left, right,
    both or neither (both and neither are draws)."""

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
        if not isinstance(choice, str) or choice.strip().lower() not in VOTE_CHOICES:
            problems.append((i, f"unknown choice {choice!r}; expected one of "
                             f"{', '.join(VOTE_CHOICES)}"))
        if left == right:
            problems.append((i, f"GIF {left!r} compared with itself"))
        if known is not None:
            for side, gif in (("left", left), ("right", right)):
                if gif not in known:
                    problems.append((i, f"{side} GIF id {gif!r} is not in the dataset"))
    return problems


def gifgif_update(winner: tuple[float, float], loser: tuple[float, float], drawn: bool,
                  params: dict[str, float] = GIFGIF_PARAMS
                  ) -> tuple[tuple[float, float], tuple[float, float]]:
    """One two-player TrueSkill update (Herbrich, Minka & Graepel 2007) with GIFGIF's
    parameters: ratings are (µ, σ); returns the new (winner, loser) ratings.

    σ² ← σ² + τ² for both players first (additive dynamics); then with
    c² = 2β² + σ_w² + σ_l², t = (µ_w − µ_l)/c and e = ε/c:

    - win:  v = N(t − e)/Φ(t − e),  w = v (v + t − e);
    - draw: v = (N(−e − t) − N(e − t)) / (Φ(e − t) − Φ(−e − t)),
            w = v² + ((e − t) N(e − t) + (e + t) N(e + t)) / (Φ(e − t) − Φ(−e − t));

    µ_w += σ_w² v / c,  µ_l −= σ_l² v / c,  σ² ← σ² (1 − σ² w / c²) for each player.
    """
    mu_w, s_w = winner
    mu_l, s_l = loser
    var_w = s_w * s_w + params["tau2"]
    var_l = s_l * s_l + params["tau2"]
    c2 = 2.0 * params["beta2"] + var_w + var_l
    c = math.sqrt(c2)
    t = (mu_w - mu_l) / c
    e = params["draw_margin"] / c
    pdf = scipy.stats.norm.pdf
    if drawn:
        # v is odd and w even in t: evaluate at |t|, where the denominator is a difference
        # of two upper-tail probabilities (no cancellation between numbers close to 1)
        a = abs(t)
        denom = scipy.special.ndtr(e - a) - scipy.special.ndtr(-e - a)
        v = (pdf(-e - a) - pdf(e - a)) / denom
        w = v * v + ((e - a) * pdf(e - a) + (e + a) * pdf(e + a)) / denom
        if t < 0:
            v = -v
    else:
        x = t - e
        v = math.exp(scipy.stats.norm.logpdf(x) - scipy.special.log_ndtr(x))
        w = v * (v + x)
    if not (math.isfinite(v) and math.isfinite(w)) or not 0.0 <= w < c2 / max(var_w, var_l):
        raise FloatingPointError(f"TrueSkill update out of range (t = {t:.4g}, v = {v}, w = {w})")
    mu_w += var_w * v / c
    mu_l -= var_l * v / c
    var_w *= 1.0 - var_w * w / c2
    var_l *= 1.0 - var_l * w / c2
    return (mu_w, math.sqrt(var_w)), (mu_l, math.sqrt(var_l))


def trueskill_scores(votes: Iterable[Vote], ids: Sequence[str],
                     rule: str = "trueskill") -> tuple[np.ndarray, np.ndarray]:
    """TrueSkill µ and σ of every GIF for every emotion from pairwise votes (§3.1).

    Parameters
    ----------
    votes : iterable of Vote
        In the order they were cast. ``emotion`` and ``choice`` are matched case-insensitively.
    ids : sequence of str
        GIF ids; row order of the result.
    rule : {"trueskill", "gifgif"}
        The ``trueskill`` package's defaults, or GIFGIF's variant (:func:`gifgif_update`).

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
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
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

    if rule == "gifgif":
        prior = (GIFGIF_PARAMS["mu"], GIFGIF_PARAMS["sigma"])

        def rate(ra, rb, drawn):
            return gifgif_update(ra, rb, drawn)
    else:
        env = trueskill.TrueSkill(**TRUESKILL_PARAMS)
        prior = (env.mu, env.sigma)

        def rate(ra, rb, drawn):
            na, nb = trueskill.rate_1vs1(trueskill.Rating(*ra), trueskill.Rating(*rb),
                                         drawn=drawn, env=env)
            return (na.mu, na.sigma), (nb.mu, nb.sigma)

    column = {e: j for j, e in enumerate(EMOTIONS)}
    tables: list[dict[int, tuple[float, float]]] = [{} for _ in EMOTIONS]  # per emotion
    for i, (emotion, left, right, choice) in enumerate(votes):
        table = tables[column[emotion.strip().lower()]]
        a, b = row[left], row[right]
        ra = table.get(a, prior)
        rb = table.get(b, prior)
        choice = choice.strip().lower()
        try:
            if choice == "right":
                rb, ra = rate(rb, ra, False)
            else:
                ra, rb = rate(ra, rb, choice in DRAWS)
        except FloatingPointError as e:
            raise VoteError([(i, f"TrueSkill update failed numerically ({e})")]) from None
        table[a], table[b] = ra, rb

    mu = np.full((len(ids), len(EMOTIONS)), np.nan)
    sigma = np.full_like(mu, np.nan)
    for j, table in enumerate(tables):
        for r, (m, sd) in table.items():
            mu[r, j], sigma[r, j] = m, sd
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
