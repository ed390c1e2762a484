"""Per-person access tokens: created by an admin command, stored only as SHA-256 hashes.

A token is 32 random bytes from :mod:`secrets` (URL-safe text). The database keeps its SHA-256,
so a copy of the database does not give anyone a way in; a lost token is replaced by creating
a new labeller. Admin tokens (``is_admin``) may also create campaigns, re-rank and export.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
from dataclasses import dataclass

from gifemo.collect.db import now, transaction
from gifemo.collect.errors import Conflict, InvalidInput

_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


@dataclass(frozen=True)
class Labeller:
    """A signed-in person."""

    id: int
    name: str
    is_admin: bool


def token_hash(token: str) -> str:
    """Hex SHA-256 of a token (what the database stores)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


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
    """The labeller holding ``token``, or None."""
    if not token or len(token) > 256:
        return None
    row = conn.execute("SELECT id, name, is_admin FROM labellers WHERE token_sha256 = ?",
                       (token_hash(token),)).fetchone()
    return None if row is None else Labeller(row["id"], row["name"], bool(row["is_admin"]))


def list_labellers(conn: sqlite3.Connection) -> list[Labeller]:
    """Every labeller, by id."""
    return [Labeller(r["id"], r["name"], bool(r["is_admin"]))
            for r in conn.execute("SELECT id, name, is_admin FROM labellers ORDER BY id")]
