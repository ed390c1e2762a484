"""Per-person access tokens: created by an admin command, stored only as SHA-256 hashes.

A token is 32 random bytes from :mod:`secrets` (URL-safe text). The database keeps its SHA-256,
so a copy of the database does not give anyone a way in. A lost or leaked token is replaced
with :func:`rotate_token` (the old one stops working at once); :func:`revoke_labeller` shuts a
person out for good while keeping their answers. Admin tokens (``is_admin``) may also create
campaigns, re-rank, reopen and export.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
from dataclasses import dataclass

from gifemo.collect.db import now, transaction
from gifemo.collect.errors import Conflict, InvalidInput, NotFound

_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


@dataclass(frozen=True)
class Labeller:
    """A signed-in person."""

    id: int
    name: str
    is_admin: bool


REVOKED = "revoked:"   # prefix of the stored hash of a revoked labeller: no token hashes to it


def token_hash(token: str) -> str:
    """Hex SHA-256 of a token (what the database stores)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _labeller_row(conn: sqlite3.Connection, name: str) -> sqlite3.Row:
    r = conn.execute("SELECT id, name, token_sha256 FROM labellers WHERE name = ?", (name,)).fetchone() \
        if isinstance(name, str) and _NAME.match(name) else None
    if r is None:
        raise NotFound(f"no labeller {name!r}")
    return r


def rotate_token(conn: sqlite3.Connection, name: str) -> str:
    """Give ``name`` a new token (returned, shown once); the old one stops working. Also
    re-admits a revoked labeller."""
    token = secrets.token_urlsafe(32)
    with transaction(conn):
        r = _labeller_row(conn, name)
        conn.execute("UPDATE labellers SET token_sha256 = ? WHERE id = ?", (token_hash(token), r["id"]))
    return token


def revoke_labeller(conn: sqlite3.Connection, name: str) -> None:
    """Shut ``name`` out: their token stops working and their leases are released; their
    answers and votes stay."""
    with transaction(conn):
        r = _labeller_row(conn, name)
        conn.execute("UPDATE labellers SET token_sha256 = ? WHERE id = ?",
                     (f"{REVOKED}{r['id']}:{secrets.token_hex(8)}", r["id"]))
        conn.execute("DELETE FROM leases WHERE labeller_id = ?", (r["id"],))


def create_labeller(conn: sqlite3.Connection, name: str, *, admin: bool = False) -> str:
    """Add a labeller and return their new token (shown once; only its hash is kept)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(f"labeller name {name!r}: use 1-64 letters, digits or _ . @ -")
    token = secrets.token_urlsafe(32)
    with transaction(conn):
        if conn.execute("SELECT 1 FROM labellers WHERE name = ?", (name,)).fetchone():
            raise Conflict(f"labeller {name!r} already exists")
        conn.execute("INSERT INTO labellers (name, token_sha256, is_admin, created_at) "
                     "VALUES (?, ?, ?, ?)", (name, token_hash(token), int(admin), now()))
    return token


def authenticate(conn: sqlite3.Connection, token: str | None) -> Labeller | None:
    """The labeller holding ``token``, or None (also for text that is not a token at all)."""
    if not isinstance(token, str) or not token or len(token) > 256 or not token.isascii():
        return None
    row = conn.execute("SELECT id, name, is_admin FROM labellers WHERE token_sha256 = ?",
                       (token_hash(token),)).fetchone()
    return None if row is None else Labeller(row["id"], row["name"], bool(row["is_admin"]))


def list_labellers(conn: sqlite3.Connection, *, revoked: bool = False) -> list[Labeller]:
    """Every labeller (revoked ones only with ``revoked=True``), by id."""
    return [Labeller(r["id"], r["name"], bool(r["is_admin"]))
            for r in conn.execute("SELECT id, name, is_admin, token_sha256 FROM labellers ORDER BY id")
            if revoked or not r["token_sha256"].startswith(REVOKED)]
