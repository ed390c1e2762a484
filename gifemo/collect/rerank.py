"""Re-ranking a campaign's remaining candidates on the labels so far (issue 7, point 5).

Runs after every ``rerank_every`` decisions: reads the consensus labels, refits the head on the
cached features (:func:`gifemo.collect.scoring.refit_scores`, seconds) and rewrites the
candidates' ``score``/``rank`` in one transaction. ``rank0`` (the checkpoint's order) is never
changed, so :mod:`gifemo.collect.replay` can compare against it. The ``reranks`` table's
``UNIQUE (campaign, n_decided)`` makes a re-rank at a given label count happen once even when
two requests trigger it together.
"""

from __future__ import annotations

import sqlite3
import time

import numpy as np

from gifemo.collect.campaigns import get_campaign
from gifemo.collect.db import now, transaction
from gifemo.collect.scoring import refit_scores


def rerank_campaign(conn: sqlite3.Connection, campaign: int | str) -> dict | None:
    """Refit on every decided candidate and re-rank; None if already done at this label count."""
    c = get_campaign(conn, campaign)
    t0 = time.perf_counter()
    rows = conn.execute("SELECT gif_id, pool_row, score0, label FROM candidates WHERE campaign_id = ? "
                        "ORDER BY pool_row", (c.id,)).fetchall()
    n_decided = c.n_decided
    if conn.execute("SELECT 1 FROM reranks WHERE campaign_id = ? AND n_decided = ?",
                    (c.id, n_decided)).fetchone():
        return None
    X = np.load(c.features, mmap_mode="r")
    base = np.array([r["score0"] for r in rows], dtype=np.float64)
    lab = [(r["pool_row"], r["label"]) for r in rows if r["label"] is not None]
    fit_rows = np.array([x[0] for x in lab], dtype=np.int64)
    fit_lab = np.array([x[1] for x in lab], dtype=bool)
    refit = refit_scores(X, base, fit_rows, fit_lab, rho=c.rerank_rho)
    order = np.argsort(-refit.scores, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    seconds = time.perf_counter() - t0
    with transaction(conn):
        cur = conn.execute("INSERT OR IGNORE INTO reranks (campaign_id, n_decided, n_train, n_train_pos, "
                           "rel_gap, seconds, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (c.id, n_decided, refit.n_train, refit.n_train_positive, refit.rel_gap,
                            seconds, now()))
        if cur.rowcount == 0:
            return None
        conn.executemany("UPDATE candidates SET score = ?, rank = ? WHERE campaign_id = ? AND gif_id = ?",
                         ((float(refit.scores[i]), int(rank[i]), c.id, rows[i]["gif_id"])
                          for i in range(len(rank))))
    return {"n_decided": n_decided, "n_train": refit.n_train, "n_train_pos": refit.n_train_positive,
            "rel_gap": refit.rel_gap, "seconds": seconds}
