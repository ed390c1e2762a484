"""Re-ranking a campaign's remaining candidates on the labels so far.

A campaign with ``rerank_every = N`` is re-ranked once per *block*: after its N-th, 2N-th, …
decision. The re-rank for block b reads the consensus labels of the first b decisions
(``look <= b``), refits the head on the cached features (:func:`gifemo.collect.scoring.refit_scores`,
seconds) and rewrites the candidates' ``score``/``rank`` in one transaction that also inserts
the ``reranks`` row ``(campaign, n_decided = b)``. So a block's re-rank gives the same result
whenever it runs, runs at most once (``UNIQUE (campaign, n_decided)``; two processes racing
both compute, one commits), and a block whose re-rank did not commit — the process was killed,
the feature file was missing — is simply still *due* and is redone later (:func:`due_blocks`).
The decision that completes a campaign starts no re-rank. ``rank0`` (the checkpoint's order) is
never changed, so :mod:`gifemo.collect.replay` can compare against it.

Re-ranking never runs inside a labeller's request: :class:`RerankWorker` is a child process of
the server (:func:`worker_main`, niced, one math thread) that runs every due block, woken
through its stdin when an answer completes a block and every few seconds anyway (a restart,
another server on the same database). A process, not a thread: importing torch and refitting
would otherwise hold the server's interpreter lock for seconds, and every answer with it
(``benchmarks/collect_latency.py`` measures this). The child exits when the server closes its
stdin — or dies, kill -9 included.
"""

from __future__ import annotations

import logging
import os
import select
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from gifemo.collect.campaigns import get_campaign, list_campaigns
from gifemo.collect.db import connect, now, transaction
from gifemo.collect.errors import CollectError, PoolError
from gifemo.collect.scoring import refit_scores

log = logging.getLogger("gifemo.collect.rerank")


def due_blocks(conn: sqlite3.Connection, campaign: int | str) -> list[int]:
    """Decision counts b = N, 2N, … reached by the campaign whose re-rank has not committed yet."""
    c = get_campaign(conn, campaign)
    if not c.rerank_every:
        return []
    last = c.n_decided if c.status == "active" else c.n_decided - 1
    done = {r[0] for r in conn.execute("SELECT n_decided FROM reranks WHERE campaign_id = ?", (c.id,))}
    return [b for b in range(c.rerank_every, last + 1, c.rerank_every) if b not in done]


def rerank_campaign(conn: sqlite3.Connection, campaign: int | str, upto: int | None = None) -> dict | None:
    """Refit on the first ``upto`` decisions (default: all so far) and re-rank every candidate;
    None if a re-rank at that decision count is already recorded."""
    c = get_campaign(conn, campaign)
    n_decided = c.n_decided if upto is None else int(upto)
    if conn.execute("SELECT 1 FROM reranks WHERE campaign_id = ? AND n_decided = ?",
                    (c.id, n_decided)).fetchone():
        return None
    t0 = time.perf_counter()
    rows = conn.execute("SELECT gif_id, pool_row, score0, label, look FROM candidates WHERE campaign_id = ? "
                        "ORDER BY pool_row", (c.id,)).fetchall()
    try:
        X = np.load(c.features, mmap_mode="r")
    except (OSError, ValueError) as e:
        raise PoolError(f"campaign {c.name!r}: its cached feature file cannot be read "
                        f"({type(e).__name__}); re-ranking waits until it is restored") from e
    if X.ndim != 2 or X.shape[0] != len(rows):
        raise PoolError(f"campaign {c.name!r}: cached features have shape {X.shape} for {len(rows)} candidates")
    base = np.array([r["score0"] for r in rows], dtype=np.float64)
    lab = [(r["pool_row"], r["label"]) for r in rows if r["label"] is not None and r["look"] <= n_decided]
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


def run_due_reranks(conn: sqlite3.Connection) -> tuple[list[dict], list[str]]:
    """Run every due block of every campaign, oldest first; returns (re-ranks done, errors).

    A campaign whose re-rank fails (its feature file is gone …) is reported and left due; the
    others go on.
    """
    done, errors = [], []
    for c in list_campaigns(conn):
        try:
            for block in due_blocks(conn, c.id):
                out = rerank_campaign(conn, c.id, upto=block)
                if out is not None:
                    done.append({"campaign": c.id, **out})
        except (CollectError, sqlite3.Error) as e:
            errors.append(f"campaign {c.name!r}: {e}")
    return done, errors


class RerankWorker:
    """The server's re-rank child process over the database at ``db_path`` (module docstring)."""

    def __init__(self, db_path: str | Path, poll_s: float = 2.0):
        self.db_path = Path(db_path)
        self.poll_s = poll_s
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def start(self) -> RerankWorker:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
                self._proc = subprocess.Popen(
                    [sys.executable, "-c", "from gifemo.collect.rerank import worker_main; worker_main()",
                     str(self.db_path), str(self.poll_s)], stdin=subprocess.PIPE, env=env)
        return self

    def wake(self) -> None:
        """Ask for a pass now (an answer completed a block); restarts a child that died."""
        self.start()
        with self._lock:
            try:
                self._proc.stdin.write(b"w")
                self._proc.stdin.flush()
            except (OSError, ValueError):
                pass                                     # it is gone; the next wake restarts it

    def stop(self, timeout: float = 30.0) -> None:
        """Close the child's stdin (it finishes the re-rank in hand and exits), then wait."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def worker_main(argv: list[str] | None = None) -> None:
    """The child process: ``DB POLL_S``; runs due re-ranks until its stdin closes."""
    db, poll_s = (argv or sys.argv[1:])[:2]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s re-rank worker: %(message)s")
    try:
        os.nice(10)                                       # answers first on a busy machine
    except OSError:
        pass
    seen: set[str] = set()
    fd = sys.stdin.fileno()
    while True:
        try:
            conn = connect(db)
            try:
                done, errors = run_due_reranks(conn)
            finally:
                conn.close()
        except Exception as e:  # noqa: BLE001 - the worker must outlive any one failure
            done, errors = [], [f"{type(e).__name__}: {e}"]
        for r in done:
            log.info("campaign %s re-ranked at %s decisions (%.2f s)", r["campaign"], r["n_decided"], r["seconds"])
        for e in set(errors) - seen:
            log.error("%s", e)
        seen = set(errors)
        ready, _, _ = select.select([fd], [], [], float(poll_s))
        if ready and not os.read(fd, 4096):
            return                                        # the server closed the pipe or died
