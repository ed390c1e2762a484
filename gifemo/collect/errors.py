"""Typed errors of the labelling app; each maps to one HTTP status (see ``gifemo.collect.app``).

The message always names the offending value (campaign, GIF id, choice …), so a 4xx reply
tells the caller what to fix.
"""

from __future__ import annotations


class CollectError(Exception):
    """Base class; ``status`` is the HTTP status the web app answers with."""

    status = 400


class InvalidInput(CollectError):
    """A request value that is malformed or out of range (bad choice, bad emotion, Np < 1 …)."""

    status = 422


class NotFound(CollectError):
    """An unknown campaign, GIF id or labeller."""

    status = 404


class Conflict(CollectError):
    """A valid request that the current state refuses: GIF already judged by this labeller,
    already decided, campaign complete, pair already voted."""

    status = 409


class Forbidden(CollectError):
    """A signed-in labeller asking for something they may not have (admin action, others'
    answers before giving their own)."""

    status = 403


class Unauthorized(CollectError):
    """No token, or a token that matches no labeller."""

    status = 401


class PoolError(CollectError):
    """A candidate pool, head or feature file that cannot be used (names the file)."""

    status = 422

