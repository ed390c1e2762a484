"""The labelling queue: who sees which candidate next, and recording yes/no/skip answers.

Each labeller gets the best-ranked candidate that is undecided, that they have not answered,
and that still needs a judgement once answers given and candidates handed to other labellers
(unexpired *leases*) are counted — so two people are not both sent to a GIF that needs only
one more judgement. A labeller holds at most one lease per campaign; reloading the page gives
the same GIF back until it is answered or the lease expires (:data:`LEASE_SECONDS`).

An answer is accepted only for the candidate leased to that labeller (the one ``next`` gave
them, expired or not, while it is still undecided): nobody can pick which GIFs to judge, so
looks per positive measure the ranking, not the labellers' choices. A candidate whose file is
missing, unreadable, outside the pool folder or not a GIF is marked ``unavailable`` when the
queue reaches it and never handed out.

Every answer is one ``BEGIN IMMEDIATE`` transaction that checks the rules, inserts the
judgement, updates the candidate's counters, applies the consensus rule
(:func:`gifemo.collect.consensus.decide`), and closes the campaign when Np positives are
confirmed. The ``UNIQUE (campaign, gif, labeller)`` constraint backs the "never twice" rule.
"""

from __future__ import annotations

import sqlite3

from gifemo.collect.access import Labeller
from gifemo.collect.campaigns import get_campaign, pool_root
from gifemo.collect.consensus import ANSWERS, JUDGEMENTS, decide
from gifemo.collect.db import now, transaction
from gifemo.collect.errors import Conflict, Forbidden, InvalidInput, NotFound
from gifemo.collect.pool import file_problem

LEASE_SECONDS = 600.0


def _candidate_dict(r: sqlite3.Row) -> dict:
    return {"gif_id": r["gif_id"], "rank": r["rank"] + 1}


def next_candidate(conn: sqlite3.Connection, campaign: int | str, who: Labeller,
                   lease_seconds: float = LEASE_SECONDS) -> dict | None:
    """The next candidate for ``who`` (leased to them), or None when nothing is left for them."""
    c = get_campaign(conn, campaign)
    root = pool_root(c)
    t = now()
    with transaction(conn):
        status = conn.execute("SELECT status FROM campaigns WHERE id = ?", (c.id,)).fetchone()[0]
        if status != "active":
            return None
        held = conn.execute(
            "SELECT c.gif_id, c.rank, c.path FROM leases l JOIN candidates c "
            "ON c.campaign_id = l.campaign_id AND c.gif_id = l.gif_id "
            "WHERE l.campaign_id = ? AND l.labeller_id = ? AND c.label IS NULL AND c.unavailable IS NULL "
            "AND NOT EXISTS (SELECT 1 FROM judgements j WHERE j.campaign_id = c.campaign_id "
            "                AND j.gif_id = c.gif_id AND j.labeller_id = l.labeller_id)",
            (c.id, who.id)).fetchone()
        if held is not None and not _mark_if_unavailable(conn, c.id, held, root):
            conn.execute("UPDATE leases SET expires_at = ? WHERE campaign_id = ? AND labeller_id = ?",
                         (t + lease_seconds, c.id, who.id))
            return _candidate_dict(held)
        while True:
            r = _best_open_candidate(conn, c.id, who, t)
            if r is None or not _mark_if_unavailable(conn, c.id, r, root):
                break
        if r is None:
            conn.execute("DELETE FROM leases WHERE campaign_id = ? AND labeller_id = ?", (c.id, who.id))
            return None
        conn.execute("INSERT OR REPLACE INTO leases (campaign_id, labeller_id, gif_id, expires_at) "
                     "VALUES (?, ?, ?, ?)", (c.id, who.id, r["gif_id"], t + lease_seconds))
        return _candidate_dict(r)


def _mark_if_unavailable(conn: sqlite3.Connection, campaign_id: int, cand: sqlite3.Row, root) -> bool:
    """Mark the candidate unavailable (and drop its leases) if its file cannot be shown."""
    why = file_problem(cand["path"], root)
    if why is not None:
        conn.execute("UPDATE candidates SET unavailable = ? WHERE campaign_id = ? AND gif_id = ?",
                     (why, campaign_id, cand["gif_id"]))
        conn.execute("DELETE FROM leases WHERE campaign_id = ? AND gif_id = ?", (campaign_id, cand["gif_id"]))
    return why is not None


def _best_open_candidate(conn: sqlite3.Connection, campaign_id: int, who: Labeller, t: float):
    """The best-ranked available candidate that still needs ``who`` (module docstring)."""
    return conn.execute(
        "SELECT c.gif_id, c.rank, c.path FROM candidates c "
        "WHERE c.campaign_id = ? AND c.label IS NULL AND c.unavailable IS NULL "
        "AND NOT EXISTS (SELECT 1 FROM judgements j WHERE j.campaign_id = c.campaign_id "
        "                AND j.gif_id = c.gif_id AND j.labeller_id = ?) "
        "AND c.n_yes + c.n_no + (SELECT COUNT(*) FROM leases l WHERE l.campaign_id = c.campaign_id "
        "     AND l.gif_id = c.gif_id AND l.labeller_id <> ? AND l.expires_at > ?) "
        "    < (CASE WHEN c.n_yes > 0 AND c.n_no > 0 THEN 3 ELSE 2 END) "
        "ORDER BY c.rank LIMIT 1", (campaign_id, who.id, who.id, t)).fetchone()


def submit_judgement(conn: sqlite3.Connection, campaign: int | str, who: Labeller, gif_id: str,
                     answer: str) -> dict:
    """Record ``who``'s answer (yes/no/skip) for ``gif_id``; returns the decision and progress.

    Returns a dict with ``decided`` (bool), ``label`` (0/1 or None), ``look`` (the decision's
    look number or None), ``rerank_due`` (this decision completes a block of ``rerank_every``)
    and the campaign's ``progress``.
    """
    if answer not in ANSWERS:
        raise InvalidInput(f"answer {answer!r}: expected one of {', '.join(ANSWERS)}")
    if not isinstance(gif_id, str) or not gif_id:
        raise InvalidInput(f"gif_id {gif_id!r}: expected a non-empty string")
    c = get_campaign(conn, campaign)
    with transaction(conn):
        camp = conn.execute("SELECT * FROM campaigns WHERE id = ?", (c.id,)).fetchone()
        if camp["status"] != "active":
            raise Conflict(f"campaign {c.name!r} is complete ({camp['n_positive']} of "
                           f"{camp['target_np']} positives confirmed); no more answers")
        cand = conn.execute("SELECT * FROM candidates WHERE campaign_id = ? AND gif_id = ?",
                            (c.id, gif_id)).fetchone()
        if cand is None:
            raise NotFound(f"GIF id {gif_id!r} is not a candidate of campaign {c.name!r}")
        if conn.execute("SELECT 1 FROM judgements WHERE campaign_id = ? AND gif_id = ? AND labeller_id = ?",
                        (c.id, gif_id, who.id)).fetchone():
            raise Conflict(f"{who.name} has already answered GIF {gif_id!r} in campaign {c.name!r}")
        if cand["label"] is not None:
            raise Conflict(f"GIF {gif_id!r} is already decided in campaign {c.name!r}")
        if not conn.execute("SELECT 1 FROM leases WHERE campaign_id = ? AND labeller_id = ? AND gif_id = ?",
                            (c.id, who.id, gif_id)).fetchone():
            raise Conflict(f"GIF {gif_id!r} is not the candidate the queue gave {who.name} in campaign "
                           f"{c.name!r}; answer the GIF from GET /api/campaigns/{c.id}/next")
        t = now()
        conn.execute("INSERT INTO judgements (campaign_id, gif_id, labeller_id, answer, created_at) "
                     "VALUES (?, ?, ?, ?, ?)", (c.id, gif_id, who.id, answer, t))
        conn.execute("DELETE FROM leases WHERE campaign_id = ? AND labeller_id = ?", (c.id, who.id))
        n_yes = cand["n_yes"] + (answer == "yes")
        n_no = cand["n_no"] + (answer == "no")
        conn.execute("UPDATE candidates SET n_yes = ?, n_no = ?, n_skip = n_skip + ? "
                     "WHERE campaign_id = ? AND gif_id = ?",
                     (n_yes, n_no, int(answer == "skip"), c.id, gif_id))
        label = decide(n_yes, n_no) if answer in JUDGEMENTS else None
        look = None
        n_decided, n_positive = camp["n_decided"], camp["n_positive"]
        status = "active"
        if label is not None:
            n_decided += 1
            n_positive += label
            look = n_decided
            conn.execute("UPDATE candidates SET label = ?, look = ?, decided_at = ? "
                         "WHERE campaign_id = ? AND gif_id = ?", (label, look, t, c.id, gif_id))
            if n_positive >= camp["target_np"]:
                status = "complete"
            # Others holding a lease on this GIF will get a new one on their next request.
            conn.execute("DELETE FROM leases WHERE campaign_id = ? AND gif_id = ?", (c.id, gif_id))
        conn.execute("UPDATE campaigns SET n_decided = ?, n_positive = ?, n_judgements = n_judgements + ?, "
                     "status = ?, completed_at = CASE WHEN ? = 'complete' THEN ? ELSE completed_at END "
                     "WHERE id = ?", (n_decided, n_positive, int(answer in JUDGEMENTS), status,
                                      status, t, c.id))
    every = c.rerank_every
    return {
        "gif_id": gif_id, "answer": answer, "decided": label is not None, "label": label, "look": look,
        "rerank_due": bool(label is not None and every and status == "active" and n_decided % every == 0),
        "progress": get_campaign(conn, c.id).progress(),
    }


def others_answers(conn: sqlite3.Connection, campaign: int | str, who: Labeller, gif_id: str) -> dict:
    """Everyone's answers for a GIF — only once ``who`` has given their own yes/no (or to admins)."""
    c = get_campaign(conn, campaign)
    cand = conn.execute("SELECT label FROM candidates WHERE campaign_id = ? AND gif_id = ?",
                        (c.id, gif_id)).fetchone()
    if cand is None:
        raise NotFound(f"GIF id {gif_id!r} is not a candidate of campaign {c.name!r}")
    rows = conn.execute("SELECT l.name, j.labeller_id, j.answer FROM judgements j "
                        "JOIN labellers l ON l.id = j.labeller_id "
                        "WHERE j.campaign_id = ? AND j.gif_id = ? ORDER BY j.id", (c.id, gif_id)).fetchall()
    own = [r["answer"] for r in rows if r["labeller_id"] == who.id]
    if not who.is_admin and not (own and own[0] in JUDGEMENTS):
        raise Forbidden(f"give your own answer for GIF {gif_id!r} before seeing others'")
    return {"gif_id": gif_id, "label": cand["label"],
            "answers": [{"labeller": r["name"], "answer": r["answer"]} for r in rows]}
