"""Export a campaign as a dataset folder the training side loads.

The folder is written with :func:`gifemo.data.manifest.write_dataset`, so
:func:`gifemo.data.manifest.load_dataset` reads it back:

* ``manifest.csv`` — every decided candidate and every GIF in a vote, with its tags; paths are
  relative to the folder (GIFs are referenced where they lie, or copied into ``gifs/`` with
  ``copy_gifs=True`` so the folder can be moved).
* ``scores.csv`` — always, from the consensus labels: the labels the loader turns into µ, σ
  for the campaign's emotion (other emotions stay unlabelled — masked, never "negative").
  A consensus label is a confident judgement, written as σ = 0 and µ = µ₀ ± σ₀ (25 ± 8.33),
  so that y = µ − 3σ is above the positive threshold µ₀ = 25 exactly for confirmed positives
  (§3.2), on the same scale as the re-ranking targets (:mod:`gifemo.collect.scoring`). Every
  confirmed positive and negative is read back as such, whether or not there are votes.
* ``pairwise_votes.csv`` — when the campaign has pairwise votes: every vote in the order cast,
  in the columns of ``votes.csv`` (``emotion,left,right,choice``; the paper's own label
  source, §3.1). It is not named ``votes.csv`` because the loader takes one label source per
  folder and the consensus must not be lost: to train on TrueSkill ratings from the votes
  instead, rename it to ``votes.csv`` and remove ``scores.csv``.

Beside them (not read by the loader): ``labels.csv`` (consensus label, yes/no counts and look
number per decided GIF), ``judgements.csv`` (every answer, by labeller) and ``summary.json``
(progress, looks per positive — the campaign's measured Ñ —, agreement and the replay).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sqlite3
from pathlib import Path

from gifemo.collect.campaigns import campaign_stats, get_campaign, pool_root
from gifemo.collect.db import read_snapshot
from gifemo.collect.errors import Conflict
from gifemo.collect.pool import inside
from gifemo.collect.scoring import TARGET_NEGATIVE, TARGET_POSITIVE
from gifemo.collect.votes import campaign_votes
from gifemo.data.manifest import VOTES_COLUMNS, write_dataset

PAIRWISE_VOTES = "pairwise_votes.csv"


def export_campaign(conn: sqlite3.Connection, campaign: int | str, out_dir: str | Path, *,
                    copy_gifs: bool = False) -> dict:
    """Write the campaign's dataset folder to ``out_dir`` (must be new or empty); returns the summary."""
    c = get_campaign(conn, campaign)
    out = Path(out_dir).resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise Conflict(f"export folder {out} exists and is not empty")
    with read_snapshot(conn):  # candidates, votes, judgements and stats agree
        votes = campaign_votes(conn, c.id)
        cands = conn.execute("SELECT gif_id, path, tags, label, n_yes, n_no, look FROM candidates "
                             "WHERE campaign_id = ? ORDER BY pool_row", (c.id,)).fetchall()
        judged = conn.execute(
            "SELECT j.gif_id, l.name, j.answer, j.created_at FROM judgements j "
            "JOIN labellers l ON l.id = j.labeller_id WHERE j.campaign_id = ? ORDER BY j.id",
            (c.id,)).fetchall()
        summary = campaign_stats(conn, c.id)
    in_votes = {g for v in votes for g in (v.left, v.right)}
    keep = [r for r in cands if r["label"] is not None or r["gif_id"] in in_votes]
    if not keep:
        raise Conflict(f"campaign {c.name!r} has no decided or compared GIFs to export")
    if copy_gifs:
        root = pool_root(c)
        outside = [r["gif_id"] for r in keep if not inside(r["path"], root)]
        if outside:
            raise Conflict(f"campaign {c.name!r}: {len(outside)} GIF(s) lie outside the pool folder and are "
                           f"not copied, e.g. {outside[0]!r}")
    out.mkdir(parents=True, exist_ok=True)
    rel_paths = []
    for i, r in enumerate(keep):
        src = Path(r["path"])
        if copy_gifs:
            (out / "gifs").mkdir(exist_ok=True)
            rel = Path("gifs") / f"{i:06d}_{src.name}"
            shutil.copy2(src, out / rel)
        else:
            rel = Path(os.path.relpath(src, out))
        rel_paths.append(rel.as_posix())
    ids = [r["gif_id"] for r in keep]
    tags = [json.loads(r["tags"]) for r in keep]
    scores = [(r["gif_id"], c.emotion, TARGET_POSITIVE if r["label"] else TARGET_NEGATIVE, 0.0)
              for r in keep if r["label"] is not None]
    write_dataset(out, ids, rel_paths, tags, scores=scores)
    if votes:
        with open(out / PAIRWISE_VOTES, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(VOTES_COLUMNS)
            w.writerows([v.emotion, v.left, v.right, v.choice] for v in votes)
    with open(out / "labels.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "emotion", "label", "n_yes", "n_no", "look"])
        for r in sorted((r for r in keep if r["label"] is not None), key=lambda r: r["look"]):
            w.writerow([r["gif_id"], c.emotion, r["label"], r["n_yes"], r["n_no"], r["look"]])
    with open(out / "judgements.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "emotion", "labeller", "answer", "created_at"])
        for r in judged:
            w.writerow([r[0], c.emotion, r[1], r[2], f"{r[3]:.3f}"])
    summary = {**summary, "n_exported": len(keep), "n_exported_votes": len(votes),
               "label_files": ["scores.csv"] + ([PAIRWISE_VOTES] if votes else []), "folder": str(out)}
    with open(out / "summary.json", "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=2)
    return summary
