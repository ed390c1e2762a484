"""Campaigns: an emotion, a candidate pool, a target Np and a checkpoint (or zero-shot scores).

Creating a campaign scores every candidate once with the checkpoint (:mod:`gifemo.collect.scoring`),
or, for a zero-shot campaign (``zero_shot=True``, any emotion name, no checkpoint), from the
candidates' tags against the emotion's prompts;
stores the ranked order in the database (``rank0`` = the checkpoint's order, kept for replay;
``rank`` = the order now used, changed by re-ranking) and caches the candidates' feature matrix
beside the database (``<data_root>/campaigns/<id>/features.npy``) so re-ranking never re-extracts.

The name is reserved first: a row with ``ready = 0`` is inserted (the ``UNIQUE`` name makes a
second creation with the same name fail right there), then the pool is scored and the files
are written into the folder named by the new id, then the candidates are stored and the row
marked ready in one transaction. A creation that fails removes its row and folder; a campaign
that is not ready is invisible to everything but the name check.

A campaign is ``active`` until ``n_positive`` reaches ``target_np``, then ``complete``; an admin
may reopen it with a larger target (:func:`reopen_campaign`).
"""

from __future__ import annotations

import json
import math
import re
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gifemo.collect.consensus import agreement
from gifemo.collect.db import now, transaction
from gifemo.collect.errors import Conflict, InvalidInput, NotFound
from gifemo.collect.pool import load_pool
from gifemo.collect.replay import replay
from gifemo.collect.scoring import DEFAULT_RERANK_RHO, ZERO_SHOT, score_pool, score_pool_zero_shot
from gifemo.data.emotions import EMOTIONS
from gifemo.models.zero_shot import emotion_name

FEATURES_FILE = "features.npy"
CAMPAIGNS_DIR = "campaigns"
MAX_SQL_INT = 2**63 - 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_EMOTION_NAME = re.compile(r"^[A-Za-z][A-Za-z -]{0,39}$")
# names of the folders and files the app keeps beside the database (never campaign names)
RESERVED_NAMES = frozenset({CAMPAIGNS_DIR, "feature-cache", "demo", "tokens.json", "exports"})


def check_campaign_name(name: object) -> str:
    """The name if it is usable: 1-64 of letters, digits, ``_ . -``, starting with a letter or
    digit, not all digits (ids are looked up by number), not one of :data:`RESERVED_NAMES`."""
    if not isinstance(name, str) or not _NAME.match(name) or name.isdigit() \
            or name.lower() in RESERVED_NAMES or ".." in name:
        raise InvalidInput(f"campaign name {name!r}: use 1-64 letters, digits or _ . -, starting with a "
                           f"letter or digit, not all digits, no '..', not one of "
                           f"{', '.join(sorted(RESERVED_NAMES))}")
    return name


def campaign_folder(data_root: str | Path, campaign_id: int) -> Path:
    """Where a campaign's files live: ``<data_root>/campaigns/<id>``."""
    return Path(data_root) / CAMPAIGNS_DIR / str(int(campaign_id))


def pool_root(c: Campaign) -> Path:
    """The folder every candidate file of ``c`` must lie in (the pool folder, or the folder of
    its manifest)."""
    src = Path(c.candidates)
    return src if src.is_dir() else src.parent


@dataclass(frozen=True)
class Campaign:
    """A row of the ``campaigns`` table."""

    id: int
    name: str
    emotion: str
    candidates: str
    checkpoint: str
    features: str
    target_np: int
    rerank_every: int | None
    rerank_rho: float
    status: str
    n_candidates: int
    n_decided: int
    n_positive: int
    n_judgements: int

    @property
    def precision(self) -> float:
        """Running precision: confirmed positives per decided candidate (NaN before any)."""
        return self.n_positive / self.n_decided if self.n_decided else math.nan

    def progress(self) -> dict:
        return {"id": self.id, "name": self.name, "emotion": self.emotion, "status": self.status,
                "target_np": self.target_np, "n_candidates": self.n_candidates,
                "n_decided": self.n_decided, "n_positive": self.n_positive,
                "n_judgements": self.n_judgements, "precision": _finite(self.precision),
                "rerank_every": self.rerank_every}


def _finite(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _row_to_campaign(r: sqlite3.Row) -> Campaign:
    return Campaign(r["id"], r["name"], r["emotion"], r["candidates"], r["checkpoint"], r["features"],
                    r["target_np"], r["rerank_every"], r["rerank_rho"], r["status"], r["n_candidates"],
                    r["n_decided"], r["n_positive"], r["n_judgements"])


def get_campaign(conn: sqlite3.Connection, campaign: int | str) -> Campaign:
    """A ready campaign by id (int or digit string) or name."""
    r = None
    if isinstance(campaign, int) or (isinstance(campaign, str) and campaign.isascii() and campaign.isdigit()):
        if 0 <= int(campaign) <= MAX_SQL_INT:
            r = conn.execute("SELECT * FROM campaigns WHERE id = ? AND ready = 1", (int(campaign),)).fetchone()
    elif isinstance(campaign, str) and _NAME.match(campaign):
        r = conn.execute("SELECT * FROM campaigns WHERE name = ? AND ready = 1", (campaign,)).fetchone()
    if r is None:
        raise NotFound(f"no campaign {campaign!r}")
    return _row_to_campaign(r)


def list_campaigns(conn: sqlite3.Connection) -> list[Campaign]:
    return [_row_to_campaign(r) for r in conn.execute("SELECT * FROM campaigns WHERE ready = 1 ORDER BY id")]


def reopen_campaign(conn: sqlite3.Connection, campaign: int | str, target_np: int) -> Campaign:
    """Raise a campaign's target to ``target_np`` (more than its confirmed positives) and make it
    active again: labelling and votes resume."""
    c = get_campaign(conn, campaign)
    if isinstance(target_np, bool) or not isinstance(target_np, int) or not 0 < target_np <= MAX_SQL_INT:
        raise InvalidInput(f"target_np must be a positive integer, got {target_np!r}")
    with transaction(conn):
        n_pos, n_cand = conn.execute("SELECT n_positive, n_candidates FROM campaigns WHERE id = ?",
                                     (c.id,)).fetchone()
        if target_np <= n_pos:
            raise Conflict(f"campaign {c.name!r} has {n_pos} positives already; reopen it with a "
                           f"target above that")
        if target_np > n_cand:
            raise InvalidInput(f"target_np {target_np} exceeds the campaign's {n_cand} candidates")
        conn.execute("UPDATE campaigns SET target_np = ?, status = 'active', completed_at = NULL "
                     "WHERE id = ?", (target_np, c.id))
    return get_campaign(conn, c.id)


def forget_unfinished(conn: sqlite3.Connection, data_root: str | Path, name: str) -> int:
    """Release the name of a creation that was interrupted (a row still ``ready = 0``) and remove
    its folder; returns the id it had. A finished campaign is never removed."""
    with transaction(conn):
        r = conn.execute("SELECT id, ready FROM campaigns WHERE name = ?", (name,)).fetchone()
        if r is None:
            raise NotFound(f"no campaign {name!r}")
        if r["ready"]:
            raise Conflict(f"campaign {name!r} is finished; only an interrupted creation can be forgotten")
        conn.execute("DELETE FROM campaigns WHERE id = ? AND ready = 0", (r["id"],))
    shutil.rmtree(campaign_folder(data_root, r["id"]), ignore_errors=True)
    return r["id"]


def create_campaign(conn: sqlite3.Connection, data_root: str | Path, *, name: str, emotion: str,
                    candidates: str | Path, checkpoint: str | Path | None = None, target_np: int,
                    features: str | Path | None = None, rerank_every: int | None = None,
                    rerank_rho: float = DEFAULT_RERANK_RHO, weights: str | Path | None = None,
                    zero_shot: bool = False, text_model: str = "default") -> Campaign:
    """Score the pool once, store the ranked candidates and return the new campaign.

    ``weights`` is the C3D backbone weights file for a training checkpoint whose recorded
    weights path does not exist here (as ``rank.py --weights``). ``zero_shot`` starts without
    a checkpoint: any emotion name, scores from the tags (sentence model ``text_model``);
    with ``rerank_every`` the re-ranking then learns from the answers.
    """
    check_campaign_name(name)
    if zero_shot:
        if checkpoint is not None or features is not None or weights is not None:
            raise InvalidInput("a zero-shot campaign has no checkpoint, feature file or weights")
        if not isinstance(emotion, str) or not _EMOTION_NAME.match(emotion.strip()):
            raise InvalidInput(f"emotion {emotion!r}: use 1-40 letters, spaces or - for a "
                               f"zero-shot campaign")
        emotion = emotion_name(emotion)
    elif checkpoint is None:
        raise InvalidInput("give a checkpoint, or start a zero-shot campaign (zero_shot)")
    elif emotion not in EMOTIONS:
        raise InvalidInput(f"unknown emotion {emotion!r}; expected one of {', '.join(EMOTIONS)}")
    if isinstance(target_np, bool) or not isinstance(target_np, int) or not 0 < target_np <= MAX_SQL_INT:
        raise InvalidInput(f"target_np must be a positive integer, got {target_np!r}")
    if rerank_every is not None and (isinstance(rerank_every, bool) or not isinstance(rerank_every, int)
                                     or not 0 < rerank_every <= MAX_SQL_INT):
        raise InvalidInput(f"rerank_every must be a positive integer or null, got {rerank_every!r}")
    if not (isinstance(rerank_rho, (int, float)) and math.isfinite(rerank_rho) and rerank_rho > 0):
        raise InvalidInput(f"rerank_rho must be a positive number, got {rerank_rho!r}")
    with transaction(conn):  # reserve the name before any file is written
        old = conn.execute("SELECT ready FROM campaigns WHERE name = ?", (name,)).fetchone()
        if old is not None:
            raise Conflict(f"campaign {name!r} already exists" if old[0] else
                           f"campaign {name!r} is being created (or its creation was interrupted: "
                           f"collect.py forget-unfinished {name} releases the name)")
        cid = conn.execute(
            "INSERT INTO campaigns (name, emotion, candidates, checkpoint, features, target_np, rerank_every, "
            "rerank_rho, status, n_candidates, created_at, ready) VALUES (?, ?, '', '', '', ?, ?, ?, 'active', "
            "0, ?, 0)", (name, emotion, target_np, rerank_every, float(rerank_rho), now())).lastrowid
    folder = campaign_folder(data_root, cid)
    try:
        return _fill_campaign(conn, cid, folder, data_root, emotion=emotion, candidates=candidates,
                              checkpoint=checkpoint, target_np=target_np, features=features,
                              rerank_every=rerank_every, weights=weights,
                              text_model=text_model if zero_shot else None)
    except BaseException:
        with transaction(conn):
            conn.execute("DELETE FROM campaigns WHERE id = ? AND ready = 0", (cid,))
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _fill_campaign(conn: sqlite3.Connection, cid: int, folder: Path, data_root: str | Path, *, emotion: str,
                   candidates: str | Path, checkpoint: str | Path, target_np: int,
                   features: str | Path | None, rerank_every: int | None,
                   weights: str | Path | None, text_model: str | None = None) -> Campaign:
    """Score the pool, write ``folder``'s files and store the candidates of the reserved row
    ``cid`` (zero-shot when ``text_model`` is given)."""
    pool = load_pool(candidates)
    if target_np > len(pool):
        raise InvalidInput(f"target_np {target_np} exceeds the pool's {len(pool)} candidates")
    if text_model is not None:
        scored = score_pool_zero_shot(pool, emotion, text_model,
                                      cache_dir=Path(data_root) / "feature-cache")
        recorded = f"{ZERO_SHOT}:{text_model}"
    else:
        scored = score_pool(pool, emotion, checkpoint, features,
                            cache_dir=Path(data_root) / "feature-cache", weights=weights)
        recorded = str(Path(checkpoint).resolve())
    if rerank_every is not None and scored.kind != "linear":
        raise InvalidInput(f"re-ranking refits a linear head; checkpoint {checkpoint} is a "
                           f"{scored.kind!r} model (leave rerank_every unset)")
    if target_np > len(scored.rows):
        raise InvalidInput(f"target_np {target_np} exceeds the {len(scored.rows)} candidates that "
                           f"could be scored")
    folder.mkdir(parents=True, exist_ok=True)
    feat_path = folder / FEATURES_FILE
    tmp = folder / (FEATURES_FILE + ".tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, np.ascontiguousarray(scored.X, dtype=np.float32))
    tmp.replace(feat_path)
    if scored.bad:
        with open(folder / "bad_files.json", "w", encoding="utf-8") as fh:
            json.dump([list(b) for b in scored.bad], fh, indent=1)
    order = np.argsort(-scored.scores, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    kept = [(pool.ids[r], pool.paths[r], pool.tags[r]) for r in scored.rows]
    with transaction(conn):
        conn.execute("UPDATE campaigns SET candidates = ?, checkpoint = ?, features = ?, n_candidates = ?, "
                     "ready = 1 WHERE id = ? AND ready = 0",
                     (str(pool.source), recorded, str(feat_path), len(kept), cid))
        conn.executemany(
            "INSERT INTO candidates (campaign_id, gif_id, path, tags, pool_row, score0, rank0, score, rank) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ((cid, g, str(p), json.dumps(t), i, float(s), int(r), float(s), int(r))
             for i, ((g, p, t), s, r) in enumerate(zip(kept, scored.scores, rank))))
    return get_campaign(conn, cid)


def campaign_stats(conn: sqlite3.Connection, campaign: int | str) -> dict:
    """Progress, agreement rates, the replay of the original order and the re-ranks so far."""
    c = get_campaign(conn, campaign)
    # Only decided candidates are read (a few thousand at most), so this stays fast on a pool of
    # 50,000: in the replay, a candidate's index is its original rank (rank0).
    rows = conn.execute("SELECT gif_id, rank0, label, look FROM candidates "
                        "WHERE campaign_id = ? AND label IS NOT NULL", (c.id,)).fetchall()
    labels = np.full(c.n_candidates, np.nan)
    looks = np.full(c.n_candidates, np.nan)
    for r in rows:
        labels[r["rank0"]] = r["label"]
        looks[r["rank0"]] = r["look"]
    decisions = {r["gif_id"]: r["label"] for r in rows}
    judged = conn.execute(
        "SELECT j.gif_id, l.name, j.answer FROM judgements j JOIN labellers l ON l.id = j.labeller_id "
        "WHERE j.campaign_id = ? ORDER BY j.id", (c.id,)).fetchall()
    agree = agreement([(r[0], r[1], r[2]) for r in judged], decisions)
    answers: dict[str, set[str]] = {}
    for g, _, a in judged:
        answers.setdefault(g, set()).add(a)
    awaiting_third = sum(1 for g, a in answers.items() if g not in decisions and {"yes", "no"} <= a)
    pos_looks = np.sort(looks[labels == 1])
    reranks = [dict(r) for r in conn.execute(
        "SELECT n_decided, n_train, n_train_pos, rel_gap, seconds, created_at FROM reranks "
        "WHERE campaign_id = ? ORDER BY id", (c.id,))]
    n_vote = conn.execute("SELECT COUNT(*) FROM votes WHERE campaign_id = ?", (c.id,)).fetchone()[0]
    n_unavailable = conn.execute("SELECT COUNT(*) FROM candidates WHERE campaign_id = ? AND unavailable "
                                 "IS NOT NULL", (c.id,)).fetchone()[0]


    original = np.arange(c.n_candidates)
    return {
        **c.progress(),
        "looks_per_positive": _finite(c.n_decided / c.n_positive) if c.n_positive else None,
        "judgements_per_positive": _finite(c.n_judgements / c.n_positive) if c.n_positive else None,
        "n_tilde_measured": int(pos_looks[c.target_np - 1]) if len(pos_looks) >= c.target_np else None,
        "awaiting_third": awaiting_third,
        "agreement": {k: (_finite(v) if isinstance(v, float) else v) for k, v in agree.items()},
        "replay": replay(original, labels, looks).to_dict(),
        "reranks": reranks,
        "reranks_pending": due_blocks(conn, c.id),
        "n_votes": n_vote,
        "n_unavailable": n_unavailable,
    }


def due_blocks(conn: sqlite3.Connection, campaign: int | str) -> list[int]:
    """Decision counts b = N, 2N, … reached by the campaign whose re-rank has not committed yet."""
    c = get_campaign(conn, campaign)
    if not c.rerank_every:
        return []
    last = c.n_decided if c.status == "active" else c.n_decided - 1
    done = {r[0] for r in conn.execute("SELECT n_decided FROM reranks WHERE campaign_id = ?", (c.id,))}
    return [b for b in range(c.rerank_every, last + 1, c.rerank_every) if b not in done]
