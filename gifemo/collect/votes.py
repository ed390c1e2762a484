"""Pairwise votes: "which of these two GIFs expresses <emotion> more?".

Votes are stored one row per answer and read back as :class:`gifemo.data.labels.Vote`
``(emotion, left, right, choice)`` in the order cast — the format
:func:`gifemo.data.labels.trueskill_scores` and ``votes.csv`` use — so TrueSkill µ, σ can be
recomputed from them (paper §3.1).

Pairs are drawn where they inform the labels most: among the campaign's decided candidates
(the top of the ranking while fewer than two are decided), the GIF with the fewest votes so
far against the least-voted partner that this labeller has not yet compared it with (ties
broken at random). A labeller votes on an unordered pair at most once, only on a pair the app
offered to them (``offered_pairs``, written when the pair is handed out), and only while the
campaign is active (an admin may reopen a complete one). Candidates whose file cannot be shown
are never offered.
"""

from __future__ import annotations

import random
import sqlite3
from collections import Counter

from gifemo.collect.access import Labeller
from gifemo.collect.campaigns import get_campaign
from gifemo.collect.db import now, transaction
from gifemo.collect.errors import Conflict, InvalidInput, NotFound
from gifemo.data.labels import CHOICES, Vote

TOP_WHEN_UNDECIDED = 10


def next_pair(conn: sqlite3.Connection, campaign: int | str, who: Labeller,
              rng: random.Random | None = None) -> tuple[str, str] | None:
    """(left, right) GIF ids for ``who`` to compare, or None when they have compared every pair."""
    rng = rng or random.Random()
    c = get_campaign(conn, campaign)
    if c.status != "active":
        return None
    with transaction(conn):
        pool = [r[0] for r in conn.execute("SELECT gif_id FROM candidates WHERE campaign_id = ? "
                                           "AND label IS NOT NULL AND unavailable IS NULL ORDER BY look", (c.id,))]
        if len(pool) < 2:
            pool = [r[0] for r in conn.execute("SELECT gif_id FROM candidates WHERE campaign_id = ? AND "
                                               "unavailable IS NULL ORDER BY rank LIMIT ?",
                                               (c.id, TOP_WHEN_UNDECIDED))]
        counts: Counter[str] = Counter()
        for lft, rgt in conn.execute("SELECT left_id, right_id FROM votes WHERE campaign_id = ?", (c.id,)):
            counts[lft] += 1
            counts[rgt] += 1
        done = {(lo, hi) for lo, hi in conn.execute(
            "SELECT pair_lo, pair_hi FROM votes WHERE campaign_id = ? AND labeller_id = ?", (c.id, who.id))}
        keyed = sorted(pool, key=lambda g: (counts[g], rng.random()))
        for a in keyed:
            for b in keyed:
                if b != a and (min(a, b), max(a, b)) not in done:
                    conn.execute("INSERT OR REPLACE INTO offered_pairs (campaign_id, labeller_id, pair_lo, "
                                 "pair_hi, offered_at) VALUES (?, ?, ?, ?, ?)",
                                 (c.id, who.id, min(a, b), max(a, b), now()))
                    return (a, b) if rng.random() < 0.5 else (b, a)
    return None


def record_vote(conn: sqlite3.Connection, campaign: int | str, who: Labeller, left: str, right: str,
                choice: str) -> dict:
    """Store one vote; refuses unknown GIFs, a GIF against itself, bad choices, repeated pairs,
    pairs never offered to ``who``, and votes on a campaign that is not active."""
    if choice not in CHOICES:
        raise InvalidInput(f"choice {choice!r}: expected one of {', '.join(CHOICES)}")
    for side, g in (("left", left), ("right", right)):
        if not isinstance(g, str) or not g:
            raise InvalidInput(f"{side} GIF id {g!r}: expected a non-empty string")
    if left == right:
        raise InvalidInput(f"GIF {left!r} cannot be compared with itself")
    c = get_campaign(conn, campaign)
    lo, hi = min(left, right), max(left, right)
    with transaction(conn):
        status = conn.execute("SELECT status FROM campaigns WHERE id = ?", (c.id,)).fetchone()[0]
        if status != "active":
            raise Conflict(f"campaign {c.name!r} is {status}; no more votes (an admin may reopen it)")
        for side, g in (("left", left), ("right", right)):
            if not conn.execute("SELECT 1 FROM candidates WHERE campaign_id = ? AND gif_id = ?",
                                (c.id, g)).fetchone():
                raise NotFound(f"{side} GIF id {g!r} is not a candidate of campaign {c.name!r}")
        if conn.execute("SELECT 1 FROM votes WHERE campaign_id = ? AND labeller_id = ? AND pair_lo = ? "
                        "AND pair_hi = ?", (c.id, who.id, lo, hi)).fetchone():
            raise Conflict(f"{who.name} has already compared {lo!r} and {hi!r} in campaign {c.name!r}")
        if not conn.execute("SELECT 1 FROM offered_pairs WHERE campaign_id = ? AND labeller_id = ? AND "
                            "pair_lo = ? AND pair_hi = ?", (c.id, who.id, lo, hi)).fetchone():
            raise Conflict(f"the pair {lo!r}, {hi!r} was not offered to {who.name} in campaign {c.name!r}; "
                           f"vote on a pair from GET /api/campaigns/{c.id}/pair")
        cur = conn.execute("INSERT INTO votes (campaign_id, labeller_id, emotion, left_id, right_id, choice, "
                           "pair_lo, pair_hi, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (c.id, who.id, c.emotion, left, right, choice, lo, hi, now()))
    return {"vote_id": cur.lastrowid, "emotion": c.emotion, "left": left, "right": right, "choice": choice}


def campaign_votes(conn: sqlite3.Connection, campaign: int | str) -> list[Vote]:
    """The campaign's votes in the order cast."""
    c = get_campaign(conn, campaign)
    return [Vote(r[0], r[1], r[2], r[3]) for r in conn.execute(
        "SELECT emotion, left_id, right_id, choice FROM votes WHERE campaign_id = ? ORDER BY id", (c.id,))]
