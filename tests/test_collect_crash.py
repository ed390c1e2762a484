"""Killed mid-write, nothing committed is lost: a real server process is SIGKILLed while several
labellers write to it, then the database is reopened and checked."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the labelling app needs the 'collect' extra")
pytest.importorskip("uvicorn", reason="the labelling app needs the 'collect' extra")
import httpx  # noqa: E402

from gifemo.collect.access import create_labeller  # noqa: E402
from gifemo.collect.campaigns import create_campaign  # noqa: E402
from gifemo.collect.consensus import decide  # noqa: E402
from gifemo.collect.db import connect  # noqa: E402
from gifemo.collect.demo import synthetic_pool  # noqa: E402
from gifemo.collect.server_process import start_server  # noqa: E402

pytestmark = pytest.mark.timeout(90)


def check_consistent(conn):
    """Counters and labels agree with the judgements table; returns (n_judgement_rows, n_decided)."""
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    for c in conn.execute("SELECT * FROM candidates").fetchall():
        ans = [r[0] for r in conn.execute("SELECT answer FROM judgements WHERE campaign_id = ? AND gif_id = ?",
                                          (c["campaign_id"], c["gif_id"]))]
        assert (c["n_yes"], c["n_no"], c["n_skip"]) == (ans.count("yes"), ans.count("no"), ans.count("skip"))
        assert c["label"] == decide(c["n_yes"], c["n_no"])
    camp = conn.execute("SELECT * FROM campaigns").fetchone()
    labels = [r[0] for r in conn.execute("SELECT label FROM candidates WHERE label IS NOT NULL")]
    looks = sorted(r[0] for r in conn.execute("SELECT look FROM candidates WHERE label IS NOT NULL"))
    assert camp["n_decided"] == len(labels) and camp["n_positive"] == sum(labels)
    assert looks == list(range(1, len(labels) + 1))
    n = conn.execute("SELECT COUNT(*) FROM judgements").fetchone()[0]
    assert camp["n_judgements"] == conn.execute(
        "SELECT COUNT(*) FROM judgements WHERE answer <> 'skip'").fetchone()[0]
    return n, len(labels)


def _labeller_loop(url, token, truth, acked, stop, errors):
    h = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=h, timeout=5.0) as c:
        while not stop.is_set():
            try:
                n = c.get("/api/campaigns/1/next").json()
                if n["done"]:
                    return
                ans = "yes" if truth[n["gif_id"]] else "no"
                r = c.post("/api/campaigns/1/judgements", json={"gif_id": n["gif_id"], "answer": ans})
            except (httpx.TransportError, ValueError):
                return                                   # the server was killed
            if r.status_code == 201:
                acked.append((token, n["gif_id"], ans))
            elif r.status_code != 409:
                errors.append(r.text)


def test_sigkill_during_writes_loses_no_committed_answer(tmp_path):
    pool = synthetic_pool(tmp_path / "pool", n=80, d=6, seed=1)
    db = tmp_path / "c.db"
    conn = connect(db)
    tokens = [create_labeller(conn, f"l{i}") for i in range(4)]
    create_campaign(conn, tmp_path / "data", name="c", emotion="amusement", candidates=pool.folder,
                    checkpoint=pool.head, features=pool.features, target_np=int(pool.positive.sum()))
    conn.close()
    truth = dict(zip(pool.ids, pool.positive))
    server = start_server(db, tmp_path / "server.log")
    acked, errors, stop = [], [], threading.Event()
    threads = [threading.Thread(target=_labeller_loop, args=(server.url, t, truth, acked, stop, errors))
               for t in tokens]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(acked) < 40 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.kill()                                    # writers are mid-request right now
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=15)
        server.kill()
    assert not errors, errors[:3]
    assert len(acked) >= 40, "labellers did not get going before the deadline"

    conn = connect(db)                                   # recovery: the WAL is replayed on open
    name = {r["id"]: r["name"] for r in conn.execute("SELECT id, name FROM labellers")}
    tok_name = {t: f"l{i}" for i, t in enumerate(tokens)}
    stored = {(name[r["labeller_id"]], r["gif_id"], r["answer"]) for r in conn.execute(
        "SELECT labeller_id, gif_id, answer FROM judgements")}
    assert {(tok_name[t], g, a) for t, g, a in acked} <= stored
    n_rows, _ = check_consistent(conn)
    assert n_rows - len(acked) <= len(tokens)            # at most one unacknowledged commit per writer
    conn.close()

    server = start_server(db, tmp_path / "server2.log")  # and it carries on
    try:
        h = {"Authorization": f"Bearer {tokens[0]}"}
        n = httpx.get(server.url + "/api/campaigns/1/next", headers=h, timeout=5).json()
        r = httpx.post(server.url + "/api/campaigns/1/judgements", headers=h, timeout=5,
                       json={"gif_id": n["gif_id"], "answer": "no"})
        assert r.status_code == 201, r.text
    finally:
        server.stop()
    conn = connect(db)
    assert check_consistent(conn)[0] == n_rows + 1


CHILD = r"""
import sys, time
from gifemo.collect.access import Labeller
from gifemo.collect.db import connect, transaction
from gifemo.collect.labelling import next_candidate, submit_judgement
conn = connect(sys.argv[1])
who = Labeller(1, "l0", False)
ids = sys.argv[2].split(",")
for _ in range(5):
    g = next_candidate(conn, 1, who)["gif_id"]
    submit_judgement(conn, 1, who, g, "yes")
    print("committed", g, flush=True)
    ids.remove(g)
conn.execute("BEGIN IMMEDIATE")
for g in ids:
    conn.execute("INSERT INTO judgements (campaign_id, gif_id, labeller_id, answer, created_at) "
                 "VALUES (1, ?, 1, 'no', 0)", (g,))
conn.execute("UPDATE campaigns SET n_judgements = n_judgements + 1000")
print("inside", flush=True)
time.sleep(60)
"""


def test_sigkill_inside_a_transaction_rolls_it_back(tmp_path):
    pool = synthetic_pool(tmp_path / "pool", n=12, d=4, seed=2)
    db = tmp_path / "c.db"
    conn = connect(db)
    create_labeller(conn, "l0")
    create_campaign(conn, tmp_path / "data", name="c", emotion="amusement", candidates=pool.folder,
                    checkpoint=pool.head, features=pool.features, target_np=2)
    conn.close()
    p = subprocess.Popen([sys.executable, "-c", CHILD, str(db), ",".join(pool.ids)],
                         stdout=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in p.stdout:
            lines.append(line.split())
            if line.startswith("inside"):
                break
    finally:
        p.kill()
        p.wait(timeout=10)
    assert [x[0] for x in lines] == ["committed"] * 5 + ["inside"]
    conn = connect(db)
    got = [r[0] for r in conn.execute("SELECT gif_id FROM judgements ORDER BY id")]
    assert got == [x[1] for x in lines[:5]]             # every commit kept, the open transaction gone
    check_consistent(conn)
    assert conn.execute("SELECT n_judgements FROM campaigns").fetchone()[0] == 5
    assert np.all([conn.execute("SELECT n_yes FROM candidates WHERE gif_id = ?", (g,)).fetchone()[0] == 1
                   for g in got])
