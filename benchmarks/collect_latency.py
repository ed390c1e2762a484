"""Answer latency of the labelling app with 20 concurrent labellers, re-ranking on against off.

Two phases in one run, each against a fresh server process (``python -m gifemo.collect.cli
serve``, uvicorn on 127.0.0.1) over its own copy of the same database:

* ``rerank on``  — the campaign re-ranks every ``--rerank-every`` decisions: the server's
  background worker (:class:`gifemo.collect.rerank.RerankWorker`) refits the head on the cached
  features (N candidates × d features, d = 4235 as C3D fc6 + tags) while the labellers answer;
  its first re-rank also imports torch in that process;
* ``rerank off`` — the same campaign with ``rerank_every`` unset.

Each of ``--labellers`` threads loops GET ``/next`` → POST ``/judgements`` (the truth of a
synthetic pool) until ``--answers`` answers are acknowledged in all; the POST's wall time is
the answer latency. Reported: p50 / p99 / max per phase, their ratio on/off, and the re-ranks
that ran during the "on" phase (count, seconds each).

Run:  .venv/bin/python benchmarks/collect_latency.py [--answers 600] [--out latency.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from gifemo.collect.access import create_labeller
from gifemo.collect.campaigns import create_campaign
from gifemo.collect.db import connect
from gifemo.collect.demo import SyntheticPool, synthetic_pool
from gifemo.collect.server_process import start_server


def prepare(root: Path, pool: SyntheticPool, n_labellers: int, rerank_every: int | None) -> tuple[Path, list[str]]:
    """A database with ``n_labellers`` people and one campaign over ``pool``."""
    db = root / f"{'on' if rerank_every else 'off'}.db"
    conn = connect(db)
    tokens = [create_labeller(conn, f"l{i:02d}") for i in range(n_labellers)]
    create_campaign(conn, root / f"{db.stem}-data", name="bench", emotion="amusement", candidates=pool.folder,
                    checkpoint=pool.head, features=pool.features, target_np=int(pool.positive.sum()),
                    rerank_every=rerank_every)
    conn.close()
    return db, tokens


def labeller(url: str, token: str, truth: dict, budget: list, lock: threading.Lock,
             latencies: list, errors: list) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60.0) as c:
        while True:
            with lock:
                if budget[0] <= 0:
                    return
                budget[0] -= 1
            n = c.get("/api/campaigns/1/next").json()
            if n.get("done"):
                return
            t0 = time.perf_counter()
            r = c.post("/api/campaigns/1/judgements",
                       json={"gif_id": n["gif_id"], "answer": "yes" if truth[n["gif_id"]] else "no"})
            dt = time.perf_counter() - t0
            if r.status_code == 201:
                latencies.append(dt)
            elif r.status_code != 409:
                errors.append(f"{r.status_code}: {r.text[:200]}")


def phase(db: Path, tokens: list[str], truth: dict, answers: int, log: Path) -> dict:
    server = start_server(db, log, timeout_s=60)
    latencies, errors, budget, lock = [], [], [answers], threading.Lock()
    try:
        t0 = time.perf_counter()
        threads = [threading.Thread(target=labeller, args=(server.url, t, truth, budget, lock, latencies, errors))
                   for t in tokens]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
    finally:
        server.stop()
    conn = sqlite3.connect(db)
    reranks = [r[0] for r in conn.execute("SELECT seconds FROM reranks ORDER BY id")]
    n_decided = conn.execute("SELECT n_decided FROM campaigns").fetchone()[0]
    conn.close()
    lat = np.array(latencies) * 1000
    return {"answers": len(lat), "errors": errors[:5], "n_errors": len(errors), "wall_s": wall,
            "n_decided": n_decided, "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)), "max_ms": float(lat.max()), "mean_ms": float(lat.mean()),
            "reranks": len(reranks), "rerank_seconds_mean": float(np.mean(reranks)) if reranks else None,
            "rerank_seconds_max": float(np.max(reranks)) if reranks else None}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--candidates", type=int, default=2000)
    p.add_argument("--dim", type=int, default=4235)
    p.add_argument("--labellers", type=int, default=20)
    p.add_argument("--answers", type=int, default=600, help="answers per phase, all labellers together")
    p.add_argument("--rerank-every", type=int, default=5)
    p.add_argument("--workdir", type=Path, default=None, help="keep the pool here (default: a temp folder)")
    p.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    a = p.parse_args()
    root = a.workdir or Path(tempfile.mkdtemp(prefix="collect-latency-"))
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    pool = synthetic_pool(root / "pool", n=a.candidates, d=a.dim, seed=0, positive_rate=0.3)
    truth = dict(zip(pool.ids, pool.positive))
    on_db, tokens = prepare(root, pool, a.labellers, a.rerank_every)
    off_db, tokens_off = prepare(root, pool, a.labellers, None)
    print(f"prepared {a.candidates} candidates × {a.dim} features, {a.labellers} labellers "
          f"in {time.perf_counter() - t0:.0f} s ({root})", flush=True)
    results = {}
    for name, db, toks in (("rerank on", on_db, tokens), ("rerank off", off_db, tokens_off)):
        results[name] = phase(db, toks, truth, a.answers, root / f"{db.stem}-server.log")
        r = results[name]
        print(f"{name:10s}: {r['answers']} answers in {r['wall_s']:.1f} s, p50 {r['p50_ms']:.1f} ms, "
              f"p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms; {r['reranks']} re-ranks"
              + (f" ({r['rerank_seconds_mean']:.2f} s each, max {r['rerank_seconds_max']:.2f} s)"
                 if r["reranks"] else "") + (f"; {r['n_errors']} errors {r['errors']}" if r["n_errors"] else ""),
              flush=True)
    on, off = results["rerank on"], results["rerank off"]
    print(f"ratio on/off: p50 {on['p50_ms'] / off['p50_ms']:.2f}×, p99 {on['p99_ms'] / off['p99_ms']:.2f}×")
    meta = {"host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "args": {k: str(v) for k, v in vars(a).items()}}
    if a.out:
        a.out.write_text(json.dumps({"meta": meta, **results}, indent=2))
    if a.workdir is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
