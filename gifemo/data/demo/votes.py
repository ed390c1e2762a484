"""The demo's pairwise votes (§3.1): random pairs among the GIFs compared for an emotion, judged
by a Bradley–Terry choice on a saturating intensity of the true score."""
from __future__ import annotations

import numpy as np

from gifemo.data.demo.latents import _T_MAX, _sigmoid
from gifemo.data.emotions import EMOTIONS


# --------------------------------------------------------------------------- votes
def sample_votes(intensity: np.ndarray, ids: list[str], rng: np.random.Generator,
                 votes_per_gif: float = 28.0, coverage: tuple[float, float] = (0.6, 0.9),
                 ) -> list[tuple[str, str, str, str]]:
    """Pairwise votes ``(emotion, left, right, choice)`` in the order they were cast.

    For each emotion a random fraction (``coverage``, drawn per emotion) of the GIFs enters the
    comparison pool; the others are never compared for it (no label, §3.1). Pairs are uniform
    among the pool, ``votes_per_gif * len(pool) / 2`` of them, so a GIF is compared
    ``votes_per_gif`` times on average. ``neither`` has probability ``0.03 + 0.15 (1 - t_max/10)``,
    otherwise ``left`` wins with probability ``sigmoid(t_left - t_right)``.
    """
    n = intensity.shape[0]
    votes: list[tuple[str, str, str, str]] = []
    for j, e in enumerate(EMOTIONS):
        c = rng.uniform(*coverage)
        pool = np.flatnonzero(rng.random(n) < c)
        if len(pool) < 2:
            continue
        m = int(round(votes_per_gif * len(pool) / 2))
        left = pool[rng.integers(len(pool), size=m)]
        right = pool[(np.searchsorted(pool, left) + rng.integers(1, len(pool), size=m)) % len(pool)]
        tl, tr = intensity[left, j], intensity[right, j]
        p_neither = 0.03 + 0.15 * (1.0 - np.maximum(tl, tr) / _T_MAX)
        p_left = _sigmoid(tl - tr)
        u = rng.random(m)
        w = rng.random(m)
        for a, b, un, nu, wl, pl in zip(left, right, u, p_neither, w, p_left):
            choice = "neither" if un < nu else ("left" if wl < pl else "right")
            votes.append((e, ids[a], ids[b], choice))
    return votes


