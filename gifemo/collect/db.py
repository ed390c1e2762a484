"""The labelling app's one SQLite database: schema, connections, transactions.

Why SQLite in WAL mode: one file, no server to run, readers never block the writer, and a
committed transaction survives the process being killed (the write-ahead log is replayed on
the next open). ``synchronous=FULL`` also makes each commit survive a power cut (one fsync per
commit; at human labelling rates this costs nothing).

Every write goes through :func:`transaction`, which starts with ``BEGIN IMMEDIATE`` (takes the
write lock up front, so two writers never deadlock upgrading a read lock) and commits or rolls
back as a whole. Connections are cheap; the app opens one per request (``sqlite3`` connections
must not be shared between threads).

The schema carries a version (``meta.schema_version``); an older database is brought up to
date on open by the additive statements in :data:`MIGRATIONS` (new columns and tables only,
so nothing stored is rewritten), one transaction per step.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA_VERSION = 2
BUSY_TIMEOUT_MS = 10_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS labellers (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    token_sha256 TEXT NOT NULL UNIQUE,
    is_admin     INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    created_at   REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS campaigns (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    emotion       TEXT NOT NULL,
    candidates    TEXT NOT NULL,
    checkpoint    TEXT NOT NULL,
    features      TEXT NOT NULL,
    target_np     INTEGER NOT NULL CHECK (target_np > 0),
    rerank_every  INTEGER CHECK (rerank_every IS NULL OR rerank_every > 0),
    rerank_rho    REAL NOT NULL CHECK (rerank_rho > 0),
    status        TEXT NOT NULL CHECK (status IN ('active', 'complete')),
    n_candidates  INTEGER NOT NULL,
    n_decided     INTEGER NOT NULL DEFAULT 0,
    n_positive    INTEGER NOT NULL DEFAULT 0,
    n_judgements  INTEGER NOT NULL DEFAULT 0,
    created_at    REAL NOT NULL,
    completed_at  REAL,
    ready         INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS candidates (
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
    gif_id      TEXT NOT NULL,
    path        TEXT NOT NULL,
    tags        TEXT NOT NULL,
    pool_row    INTEGER NOT NULL,
    score0      REAL NOT NULL,
    rank0       INTEGER NOT NULL,
    score       REAL NOT NULL,
    rank        INTEGER NOT NULL,
    n_yes       INTEGER NOT NULL DEFAULT 0,
    n_no        INTEGER NOT NULL DEFAULT 0,
    n_skip      INTEGER NOT NULL DEFAULT 0,
    label       INTEGER CHECK (label IS NULL OR label IN (0, 1)),
    look        INTEGER,
    decided_at  REAL,
    unavailable TEXT,
    PRIMARY KEY (campaign_id, gif_id)
);
CREATE INDEX IF NOT EXISTS candidates_rank ON candidates (campaign_id, label, rank);
CREATE TABLE IF NOT EXISTS judgements (
    id          INTEGER PRIMARY KEY,
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
    gif_id      TEXT NOT NULL,
    labeller_id INTEGER NOT NULL REFERENCES labellers(id),
    answer      TEXT NOT NULL CHECK (answer IN ('yes', 'no', 'skip')),
    created_at  REAL NOT NULL,
    UNIQUE (campaign_id, gif_id, labeller_id),
    FOREIGN KEY (campaign_id, gif_id) REFERENCES candidates (campaign_id, gif_id)
);
CREATE TABLE IF NOT EXISTS leases (
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
    labeller_id INTEGER NOT NULL REFERENCES labellers(id),
    gif_id      TEXT NOT NULL,
    expires_at  REAL NOT NULL,
    PRIMARY KEY (campaign_id, labeller_id)
);
CREATE INDEX IF NOT EXISTS leases_gif ON leases (campaign_id, gif_id);
CREATE TABLE IF NOT EXISTS votes (
    id          INTEGER PRIMARY KEY,
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
    labeller_id INTEGER NOT NULL REFERENCES labellers(id),
    emotion     TEXT NOT NULL,
    left_id     TEXT NOT NULL,
    right_id    TEXT NOT NULL,
    choice      TEXT NOT NULL CHECK (choice IN ('left', 'right', 'neither')),
    pair_lo     TEXT NOT NULL,
    pair_hi     TEXT NOT NULL,
    created_at  REAL NOT NULL,
    CHECK (left_id <> right_id),
    UNIQUE (campaign_id, labeller_id, pair_lo, pair_hi)
);
CREATE TABLE IF NOT EXISTS reranks (
    id           INTEGER PRIMARY KEY,
    campaign_id  INTEGER NOT NULL REFERENCES campaigns(id),
    n_decided    INTEGER NOT NULL,
    n_train      INTEGER NOT NULL,
    n_train_pos  INTEGER NOT NULL,
    rel_gap      REAL NOT NULL,
    seconds      REAL NOT NULL,
    created_at   REAL NOT NULL,
    UNIQUE (campaign_id, n_decided)
);
CREATE TABLE IF NOT EXISTS offered_pairs (
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
    labeller_id INTEGER NOT NULL REFERENCES labellers(id),
    pair_lo     TEXT NOT NULL,
    pair_hi     TEXT NOT NULL,
    offered_at  REAL NOT NULL,
    PRIMARY KEY (campaign_id, labeller_id, pair_lo, pair_hi)
);
"""

# Statements that bring a database of the key's version to the next one (additive only).
MIGRATIONS = {
    1: [
        "ALTER TABLE campaigns ADD COLUMN ready INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE candidates ADD COLUMN unavailable TEXT",
        """CREATE TABLE IF NOT EXISTS offered_pairs (
            campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
            labeller_id INTEGER NOT NULL REFERENCES labellers(id),
            pair_lo     TEXT NOT NULL,
            pair_hi     TEXT NOT NULL,
            offered_at  REAL NOT NULL,
            PRIMARY KEY (campaign_id, labeller_id, pair_lo, pair_hi))""",
    ],
}


def connect(path: str | Path, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """Open (creating if needed) the database at ``path`` in WAL mode with the schema in place.

    Returns a connection in autocommit mode (``isolation_level=None``): nothing is written
    except inside :func:`transaction`. Rows come back as :class:`sqlite3.Row`.
    ``check_same_thread=False`` is for the web app, where one request's connection is opened,
    used and closed by different worker threads one after another (never at the same time).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                           check_same_thread=check_same_thread)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        conn.close()
        raise sqlite3.OperationalError(f"{path}: could not switch to WAL mode (got {mode!r})")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    if conn.execute("SELECT name FROM sqlite_master WHERE name = 'meta'").fetchone() is None:
        with transaction(conn):
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    conn.execute(stmt)
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                         (str(SCHEMA_VERSION),))
    version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if version is not None and int(version[0]) in MIGRATIONS:
        _migrate(conn, int(version[0]))
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if version is None or int(version[0]) != SCHEMA_VERSION:
        conn.close()
        raise sqlite3.OperationalError(
            f"{path}: schema version {version[0] if version else None}, expected {SCHEMA_VERSION}")
    return conn


_WRITERS = threading.RLock()   # re-entered, SQLite refuses the nested BEGIN (no deadlock)


def _migrate(conn: sqlite3.Connection, version: int) -> None:
    """Apply :data:`MIGRATIONS` from ``version`` up to :data:`SCHEMA_VERSION`, one transaction each."""
    while version in MIGRATIONS:
        with transaction(conn):
            current = int(conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
            if current == version:  # another process may have migrated meanwhile
                for stmt in MIGRATIONS[version]:
                    conn.execute(stmt)
                conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version + 1),))
        version += 1


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``; any exception rolls the whole transaction back.

    Writers of one process queue on :data:`_WRITERS` first: SQLite's busy handler polls with
    sleeps of up to 100 ms, so threads that all wait inside SQLite get the lock late and in
    no order (answer latency's long tail); queued here, each starts as the last one commits.
    Other processes still meet SQLite's own lock.
    """
    with _WRITERS:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def now() -> float:
    """Wall-clock seconds since the epoch (what every ``*_at`` column holds)."""
    return time.time()


@contextmanager
def read_snapshot(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A read transaction: every query inside sees the same committed state."""
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        conn.execute("COMMIT")
