"""Several labellers writing at once to a real server process: nothing lost, nothing counted twice,
and the campaign stops at exactly Np positives."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

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

pytestmark = pytest.mark.timeout(300)
N_LABELLERS = 5
MAX_REQUESTS = 400          # per labeller: bounds the test even if the queue misbehaved


def _work(url, name, token, truth, seed, log, errors):
    rng = random.Random(seed)
    h = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=h, timeout=20.0) as c:
        for _ in range(MAX_REQUESTS):
            n = c.get("/api/campaigns/1/next").json()
            if n["done"]:
                log.append((name, "done", n["reason"], None))
                return
            g = n["gif_id"]
            u = rng.random()
            ans = "skip" if u < 0.05 else ("yes" if truth[g] != (u > 0.85) else "no")  # 10 % mistakes
            r = c.post("/api/campaigns/1/judgements", json={"gif_id": g, "answer": ans})
            log.append((name, g, ans, r.status_code))
            if r.status_code not in (201, 409):
                errors.append(r.text)
            if rng.random() < 0.2:
                p = c.get("/api/campaigns/1/pair").json()
                if not p["done"]:
                    v = c.post("/api/campaigns/1/votes", json={"left": p["left"], "right": p["right"],
                                                               "choice": rng.choice(["left", "right", "neither"])})
                    log.append((name, (p["left"], p["right"]), "vote", v.status_code))
                    if v.status_code not in (201, 409):
                        errors.append(v.text)
        errors.append(f"{name}: still labelling after {MAX_REQUESTS} requests")


def test_concurrent_labellers_lose_and_double_count_nothing(tmp_path):
    pool = synthetic_pool(tmp_path / "pool", n=60, d=6, seed=4, positive_rate=0.4)
    db = tmp_path / "c.db"
    conn = connect(db)
    tokens = {f"l{i}": create_labeller(conn, f"l{i}") for i in range(N_LABELLERS)}
    target = 10
    create_campaign(conn, tmp_path / "data", name="c", emotion="amusement", candidates=pool.folder,
                    checkpoint=pool.head, features=pool.features, target_np=target, rerank_every=7)
    conn.close()
    truth = dict(zip(pool.ids, pool.positive))
    server = start_server(db, tmp_path / "server.log")
    log, errors = [], []
    try:
        threads = [threading.Thread(target=_work, args=(server.url, name, tok, truth, i, log, errors))
                   for i, (name, tok) in enumerate(tokens.items())]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=100)
        assert not any(t.is_alive() for t in threads)
    finally:
        server.stop()
    assert not errors, errors[:3]
    assert all(x[2] == "complete" for x in log if x[1] == "done") and sum(x[1] == "done" for x in log) == N_LABELLERS

    conn = connect(db)
    names = {r["id"]: r["name"] for r in conn.execute("SELECT id, name FROM labellers")}
    stored = Counter((names[r["labeller_id"]], r["gif_id"], r["answer"])
                     for r in conn.execute("SELECT labeller_id, gif_id, answer FROM judgements"))
    acked = Counter((n, g, a) for n, g, a, s in log if a != "vote" and s == 201)
    assert stored == acked                               # every acknowledged answer stored, once
    assert max(Counter((n, g) for n, g, _ in stored.elements()).values()) == 1
    for c in conn.execute("SELECT * FROM candidates"):
        ans = [a for (n, g, a) in stored.elements() if g == c["gif_id"]]
        n_yes, n_no = ans.count("yes"), ans.count("no")
        assert (c["n_yes"], c["n_no"], c["n_skip"]) == (n_yes, n_no, ans.count("skip"))
        assert c["label"] == decide(n_yes, n_no)
        assert n_yes + n_no <= 3
    camp = conn.execute("SELECT * FROM campaigns").fetchone()
    labels = [r[0] for r in conn.execute("SELECT label FROM candidates WHERE label IS NOT NULL")]
    assert camp["status"] == "complete" and camp["n_positive"] == sum(labels) == target
    assert camp["n_decided"] == len(labels)
    assert sorted(r[0] for r in conn.execute("SELECT look FROM candidates WHERE look IS NOT NULL")) == \
        list(range(1, len(labels) + 1))
    votes_acked = sum(1 for _, _, a, s in log if a == "vote" and s == 201)
    assert conn.execute("SELECT COUNT(*) FROM votes").fetchone()[0] == votes_acked
    # the re-rank worker is a niced child process: on a loaded machine it may still be
    # importing torch when the labellers finish, so wait (bounded) for its first block
    deadline = time.monotonic() + 120
    while not conn.execute("SELECT COUNT(*) FROM reranks").fetchone()[0] and time.monotonic() < deadline:
        time.sleep(0.2)
    reranks = [r[0] for r in conn.execute("SELECT n_decided FROM reranks ORDER BY n_decided")]
    assert reranks and len(reranks) == len(set(reranks)) and all(k % 7 == 0 for k in reranks)
