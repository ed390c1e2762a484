"""Regression tests for the labelling app's integrity holes: export keeps every consensus label,
files are served only from inside their pool, answers and votes only where the app put them,
re-ranking off the request path and resumable, one campaign per name, encoded GIF URLs,
unusable files skipped by the queue, and campaign names that cannot leave their folder."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the labelling app needs the 'collect' extra (fastapi, jinja2, httpx)")
from fastapi.testclient import TestClient
from collect_client import CampaignClient  # noqa: E402

from gifemo.collect.access import create_labeller
from gifemo.collect.app import create_app
from gifemo.collect.db import connect
from gifemo.collect.demo import synthetic_pool, write_tiny_gif
from gifemo.collect.scoring import save_features, save_head
from gifemo.data.emotions import EMOTIONS
from gifemo.data.manifest import load_dataset, write_dataset

pytestmark = pytest.mark.timeout(300)  # the restart test waits for a niced worker on a loaded box
COL = EMOTIONS.index("amusement")


class Env(CampaignClient):
    """A database with four people and one campaign over a synthetic pool, behind a TestClient."""

    def __init__(self, tmp_path, n=24, target_np=3, rerank_every=None, pool=None, **app_kw):
        self.tmp = tmp_path
        self.pool = pool or synthetic_pool(tmp_path / "pool", n=n, d=6, seed=3, head_noise=3.0)
        self.db = tmp_path / "c.db"
        conn = connect(self.db)
        self.tokens = {name: create_labeller(conn, name, admin=(name == "admin"))
                       for name in ("admin", "alice", "bob", "carol")}
        conn.close()
        self.client = TestClient(create_app(self.db, export_root=tmp_path / "exports", **app_kw))
        self.cid = None
        if pool is None:
            r = self.create(name="c1", target_np=target_np, rerank_every=rerank_every)
            assert r.status_code == 201, r.text
            self.cid = r.json()["id"]
        self.truth = dict(zip(self.pool.ids, self.pool.positive))

    def create(self, **kw):
        body = dict(emotion="amusement", candidates=str(self.pool.folder), checkpoint=str(self.pool.head),
                    features=str(self.pool.features), target_np=3, rerank_every=None)
        return self.post("admin", "/api/campaigns", **{**body, **kw})


    def count(self, table):
        conn = connect(self.db)
        try:
            return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        finally:
            conn.close()

    def label_until_done(self, names=("alice", "bob")):
        """Each labeller answers the truth for whatever the queue gives them until it stops."""
        done = set()
        while len(done) < len(names):
            for who in names:
                n = self.next(who)
                if n["done"]:
                    done.add(who)
                    continue
                r = self.judge(who, n["gif_id"], "yes" if self.truth[n["gif_id"]] else "no")
                assert r.status_code == 201, r.text


@pytest.fixture
def env(tmp_path):
    return Env(tmp_path)


# ----------------------------------------------------------------------------------- 1. export

@pytest.mark.parametrize("with_votes", [False, True])
def test_export_keeps_every_confirmed_label_with_and_without_votes(env, with_votes):
    from gifemo.models.penalties import RidgePenalty
    from gifemo.models.solvers import fit_multitask_linear

    env.label_until_done()
    conn = connect(env.db)
    confirmed = {r[0]: r[1] for r in conn.execute("SELECT gif_id, label FROM candidates WHERE label IS NOT NULL")}
    conn.close()
    assert sum(confirmed.values()) == 3 and len(confirmed) > 3
    env.post("admin", f"/api/campaigns/{env.cid}/reopen", target_np=4)   # votes need an active campaign
    if with_votes:                                    # one stray vote was enough to lose every label
        p = env.get("bob", f"/api/campaigns/{env.cid}/pair").json()
        r = env.post("bob", f"/api/campaigns/{env.cid}/votes", left=p["left"], right=p["right"], choice="left")
        assert r.status_code == 201, r.text
    r = env.post("admin", f"/api/campaigns/{env.cid}/export")
    assert r.status_code == 200, r.text
    ds = load_dataset(r.json()["folder"])
    got = {g: int(ds.positive[i, COL]) for i, g in enumerate(ds.ids) if ds.mask[i, COL]}
    assert got == confirmed                           # every confirmed positive and negative, no other
    assert not ds.mask[:, np.arange(len(EMOTIONS)) != COL].any()
    votes_file = Path(r.json()["folder"]) / "pairwise_votes.csv"
    assert votes_file.is_file() == with_votes
    if with_votes:
        assert votes_file.read_text().splitlines()[1] == f"amusement,{p['left']},{p['right']},left"
    # retraining on the export sees exactly these labels: the targets it fits are above the
    # positive threshold for the confirmed positives only, and the fit separates them
    rows = [env.pool.ids.index(g) for g in ds.ids]
    X = env.pool.X[rows].astype(np.float64)
    fit = fit_multitask_linear(X, ds.y, ds.mask, RidgePenalty(1e-3))
    assert fit.converged
    train_pos = {g for i, g in enumerate(ds.ids) if ds.mask[i, COL] and ds.y[i, COL] > 25}
    assert train_pos == {g for g, v in confirmed.items() if v == 1}
    s = X @ fit.W.numpy()[:, COL] + float(fit.b.numpy()[COL])
    lab = np.array([confirmed.get(g, -1) for g in ds.ids])
    assert s[lab == 1].min() > s[lab == 0].max()


# ------------------------------------------------------------------------------------ 2. paths

def _pool_with_rows(folder: Path, extra_rows: list[tuple[str, str]]):
    """A 6-GIF dataset folder plus ``extra_rows`` (id, path) appended to its manifest, with a
    head and a feature file covering every id."""
    ids = [f"g{i}" for i in range(6)]
    for i, g in enumerate(ids):
        write_tiny_gif(folder / "gifs" / f"{g}.gif", hue=i / 6, size=32, n_frames=2)
    write_dataset(folder, ids, [f"gifs/{g}.gif" for g in ids], [[] for _ in ids])
    with open(folder / "manifest.csv", "a", encoding="utf-8") as fh:
        for g, p in extra_rows:
            fh.write(f"{g},{p},\n")
    all_ids = ids + [g for g, _ in extra_rows]
    X = np.random.default_rng(0).standard_normal((len(all_ids), 3))
    head = save_head(folder.parent / "head.npz", np.ones((3, len(EMOTIONS))), np.zeros(len(EMOTIONS)))
    feats = save_features(folder.parent / "feats.npz", all_ids, X)
    return head, feats


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_a_pool_row_outside_the_pool_folder_is_refused_naming_the_row(tmp_path, kind):
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    pool = tmp_path / "pool"
    pool.mkdir()
    if kind == "symlink":
        (pool / "link.gif").symlink_to(secret)
        row = ("outside", "link.gif")
    else:
        row = ("outside", "../secret.txt" if kind == "dotdot" else str(secret))
    head, feats = _pool_with_rows(pool, [row])
    env = Env(tmp_path, pool=type("P", (), dict(folder=pool, head=head, features=feats, ids=[], positive=[]))())
    r = env.create(name="c1")
    assert r.status_code == 422, r.text
    assert "row 8" in r.json()["detail"] and "outside" in r.json()["detail"]
    assert env.count("campaigns") == 0


def test_the_gif_route_serves_only_files_inside_the_pool_and_reveals_no_path(env, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"GIF89a but secret")
    g = env.next("alice")["gif_id"]
    conn = connect(env.db)                               # a row changed behind the app's back
    conn.execute("UPDATE candidates SET path = ? WHERE gif_id = ?", (str(secret), g))
    conn.execute("UPDATE candidates SET path = ? WHERE gif_id = ?",
                 (str(env.pool.folder / "gifs" / ".." / ".." / "secret.txt"), env.pool.ids[0]))
    conn.close()
    for gid in (g, env.pool.ids[0]):
        r = env.get("alice", f"/gifs/{env.cid}/{gid}")
        assert r.status_code == 404 and b"secret" not in r.content and str(tmp_path) not in r.text
    gone = next(x for x in env.pool.ids[1:] if x != g)
    (env.pool.folder / "gifs" / f"{gone}.gif").unlink()
    r = env.get("alice", f"/gifs/{env.cid}/{gone}")
    assert r.status_code == 404 and "missing" in r.json()["detail"] and str(tmp_path) not in r.text


# ---------------------------------------------------------------------------- 3. leased answers

def test_answers_only_for_the_candidate_the_queue_leased(env):
    ids = env.pool.ids
    top = env.next("alice")["gif_id"]
    other = next(g for g in ids if g != top)
    r = env.judge("bob", top, "yes")                     # bob never asked for a GIF
    assert r.status_code == 409 and "not the candidate" in r.json()["detail"]
    r = env.judge("alice", other, "yes")                 # alice picks another than hers
    assert r.status_code == 409 and "not the candidate" in r.json()["detail"]
    assert env.count("judgements") == 0
    assert env.judge("alice", top, "yes").status_code == 201
    assert env.next("bob")["gif_id"] == top              # the second labeller is entitled to it
    assert env.judge("bob", top, "no").status_code == 201
    nxt = env.next("carol")                              # ... and the third after a disagreement
    assert nxt["gif_id"] == top
    r = env.judge("carol", top, "yes").json()
    assert r["decided"] and r["label"] == 1


# ------------------------------------------------------------------------------------ 4. votes

def test_votes_only_on_offered_pairs_and_not_after_completion(env):
    url = f"/api/campaigns/{env.cid}/votes"
    a, b, c = env.pool.ids[:3]
    r = env.post("alice", url, left=a, right=b, choice="left")
    assert r.status_code == 409 and "not offered" in r.json()["detail"]
    p = env.get("alice", f"/api/campaigns/{env.cid}/pair").json()
    r = env.post("bob", url, left=p["left"], right=p["right"], choice="left")   # offered to alice only
    assert r.status_code == 409 and "not offered" in r.json()["detail"]
    assert env.post("alice", url, left=p["right"], right=p["left"], choice="neither").status_code == 201
    p2 = env.get("alice", f"/api/campaigns/{env.cid}/pair").json()
    env.label_until_done()                               # the campaign completes
    r = env.post("alice", url, left=p2["left"], right=p2["right"], choice="left")
    assert r.status_code == 409 and "complete" in r.json()["detail"]
    assert env.get("alice", f"/api/campaigns/{env.cid}/pair").json()["done"]
    assert env.count("votes") == 1
    r = env.post("alice", f"/api/campaigns/{env.cid}/reopen", target_np=5)
    assert r.status_code == 403
    r = env.post("admin", f"/api/campaigns/{env.cid}/reopen", target_np=5)
    assert r.status_code == 200 and r.json()["status"] == "active"
    assert env.post("alice", url, left=p2["left"], right=p2["right"], choice="left").status_code == 201


# --------------------------------------------------------------------------------- 5. re-ranks

def _wait_for_reranks(env, client, n, timeout_s=120.0):
    # the worker is a niced child that imports torch first: slow on a loaded machine
    deadline = time.monotonic() + timeout_s
    while env.count("reranks") < n and time.monotonic() < deadline:
        time.sleep(0.05)
    return client.get(f"/api/campaigns/{env.cid}", headers=env.h("admin")).json()


def test_an_answer_never_runs_a_rerank_and_a_failed_block_is_redone(tmp_path):
    env = Env(tmp_path, n=24, target_np=8, rerank_every=2)   # no lifespan: no worker
    feats = Path(connect(env.db).execute("SELECT features FROM campaigns").fetchone()[0])
    hidden = feats.with_suffix(".hidden")
    feats.rename(hidden)                                 # the re-rank of the first block cannot run
    for _ in range(2):
        g = env.next("alice")["gif_id"]
        assert env.next("bob")["gif_id"] == g
        assert env.judge("alice", g, "no").status_code == 201
        r = env.judge("bob", g, "no")
        assert r.status_code == 201, r.text              # was: stored, then a 500 from the re-rank
    assert r.json()["rerank_queued"] and env.count("reranks") == 0
    from gifemo.collect.rerank import (
        run_due_reranks,  # what the worker runs, here in-process
    )

    conn = connect(env.db)
    done, errors = run_due_reranks(conn)
    assert done == [] and "feature file" in errors[0] and str(feats) not in errors[0]
    s = env.get("admin", f"/api/campaigns/{env.cid}").json()
    assert s["n_decided"] == 2 and s["reranks_pending"] == [2] and s["reranks"] == []
    hidden.rename(feats)                                 # the file is back: the block is redone
    done, errors = run_due_reranks(conn)
    assert [d["n_decided"] for d in done] == [2] and errors == []
    s = env.get("admin", f"/api/campaigns/{env.cid}").json()
    assert [x["n_decided"] for x in s["reranks"]] == [2] and s["reranks_pending"] == []
    assert s["reranks"][0]["n_train"] == 2


def test_a_block_whose_rerank_never_committed_is_redone_after_a_restart(tmp_path):
    """As after a kill -9 in the middle of a re-rank: decisions stored, no re-rank row."""
    from gifemo.collect.access import authenticate
    from gifemo.collect.labelling import next_candidate, submit_judgement

    env = Env(tmp_path, n=24, target_np=8, rerank_every=2)
    conn = connect(env.db)
    a, b = (authenticate(conn, env.tokens[n]) for n in ("alice", "bob"))
    for _ in range(5):
        g = next_candidate(conn, env.cid, a)["gif_id"]
        assert next_candidate(conn, env.cid, b)["gif_id"] == g
        submit_judgement(conn, env.cid, a, g, "no")
        submit_judgement(conn, env.cid, b, g, "no")
    conn.close()
    assert env.count("reranks") == 0
    with TestClient(create_app(env.db)) as client:       # the restarted server
        s = _wait_for_reranks(env, client, 2)
    assert [x["n_decided"] for x in s["reranks"]] == [2, 4] and s["reranks_pending"] == []
    assert [x["n_train"] for x in s["reranks"]] == [2, 4]


def test_a_blocks_rerank_is_the_same_whenever_it_runs(tmp_path):
    """Block b refits on the first b decisions only, so running it late changes nothing."""
    from gifemo.collect.access import authenticate
    from gifemo.collect.labelling import next_candidate, submit_judgement
    from gifemo.collect.rerank import rerank_campaign

    env = Env(tmp_path, n=24, target_np=8, rerank_every=2)   # no lifespan: no worker
    conn = connect(env.db)
    a, b = (authenticate(conn, env.tokens[n]) for n in ("alice", "bob"))

    def decide():
        g = next_candidate(conn, env.cid, a)["gif_id"]
        assert next_candidate(conn, env.cid, b)["gif_id"] == g
        submit_judgement(conn, env.cid, a, g, "yes" if env.truth[g] else "no")
        submit_judgement(conn, env.cid, b, g, "yes" if env.truth[g] else "no")

    decide(), decide()
    snap = tmp_path / "snap.db"
    conn.execute(f"VACUUM INTO '{snap}'")
    on_time = rerank_campaign(conn, env.cid, upto=2)
    ranks_on_time = conn.execute("SELECT gif_id, rank FROM candidates ORDER BY gif_id").fetchall()
    late = connect(snap)
    for _ in range(3):                                  # labelling went on before the block ran
        g = next_candidate(late, env.cid, a)["gif_id"]
        assert next_candidate(late, env.cid, b)["gif_id"] == g
        submit_judgement(late, env.cid, a, g, "no")
        submit_judgement(late, env.cid, b, g, "no")
    r = rerank_campaign(late, env.cid, upto=2)
    assert r["n_train"] == on_time["n_train"] == 2
    assert late.execute("SELECT gif_id, rank FROM candidates ORDER BY gif_id").fetchall() == ranks_on_time
    assert rerank_campaign(late, env.cid, upto=2) is None                # once per block


# ---------------------------------------------------------------------------------- 6. names

def test_two_creations_with_one_name_keep_the_winners_files(tmp_path, monkeypatch):
    from gifemo.collect import campaigns

    pools = [synthetic_pool(tmp_path / f"pool{k}", n=10 + k, d=4 + k, seed=k) for k in range(2)]
    real = campaigns.score_pool
    barrier = threading.Barrier(2, timeout=1.0)

    def slow_score(pool, *args, **kw):
        out = real(pool, *args, **kw)
        try:
            barrier.wait()                               # both have scored before either writes
        except threading.BrokenBarrierError:
            pass
        if pool.source == pools[1].folder.resolve():
            time.sleep(0.3)                              # the second writes last
        return out

    monkeypatch.setattr(campaigns, "score_pool", slow_score)
    db = tmp_path / "c.db"
    connect(db).close()
    results = [None, None]

    def create(k):
        conn = connect(db)
        try:
            time.sleep(0.1 * k)                          # the first reserves first
            results[k] = campaigns.create_campaign(
                conn, tmp_path / "data", name="same", emotion="amusement", candidates=pools[k].folder,
                checkpoint=pools[k].head, features=pools[k].features, target_np=2)
        except Exception as e:  # noqa: BLE001
            results[k] = e
        finally:
            conn.close()

    threads = [threading.Thread(target=create, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wins = [r for r in results if isinstance(r, campaigns.Campaign)]
    losses = [r for r in results if isinstance(r, Exception)]
    assert len(wins) == 1 and len(losses) == 1, results
    assert "already exists" in str(losses[0]) or "being created" in str(losses[0])
    win = wins[0]
    k = results.index(win)
    X = np.load(win.features)
    assert X.shape == pools[k].X.shape and np.array_equal(X, pools[k].X)
    assert Path(win.features).parent == tmp_path / "data" / "campaigns" / str(win.id)


@pytest.mark.parametrize("name", [".", "..", "...", "feature-cache", "campaigns", "42", "-x", ".hidden", "a..b"])
def test_campaign_names_that_could_leave_their_folder_are_refused(env, name):
    r = env.create(name=name)
    assert r.status_code == 422 and "campaign name" in r.json()["detail"], r.text
    assert env.count("campaigns") == 1


# ------------------------------------------------------------------------------ 8. URL encoding

def test_ids_with_url_metacharacters_round_trip(tmp_path):
    """Through a real server (Starlette's TestClient decodes paths twice, uvicorn once)."""
    import httpx

    from gifemo.collect.campaigns import create_campaign
    from gifemo.collect.server_process import start_server

    names = ["q?x=1", "hash#frag", "pct%41", "sub/dir id", "plus+amp&", "naïve", "..%2e"]
    folder = tmp_path / "odd"
    for i, n in enumerate(names):
        write_tiny_gif(folder / f"{n}.gif", hue=i / 7, size=24, n_frames=2)
    ids = sorted(names)
    X = np.random.default_rng(1).standard_normal((len(ids), 3))
    head = save_head(tmp_path / "head.npz", np.ones((3, len(EMOTIONS))), np.zeros(len(EMOTIONS)))
    feats = save_features(tmp_path / "feats.npz", ids, X)
    db = tmp_path / "c.db"
    conn = connect(db)
    tokens = [create_labeller(conn, n) for n in ("alice", "bob")]
    c = create_campaign(conn, tmp_path / "data", name="odd", emotion="amusement", candidates=folder,
                        checkpoint=head, features=feats, target_np=len(ids))
    conn.close()
    server = start_server(db, tmp_path / "server.log")
    try:
        alice = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {tokens[0]}"}, timeout=10)
        served = []
        for _ in ids:
            n = alice.get(f"/api/campaigns/{c.id}/next").json()
            g = alice.get(n["url"])
            assert g.status_code == 200, (n, g.text)
            assert g.content == (folder / f"{n['gif_id']}.gif").read_bytes()
            served.append(n["gif_id"])
            r = alice.post(f"/api/campaigns/{c.id}/judgements", json={"gif_id": n["gif_id"], "answer": "yes"})
            assert r.status_code == 201, r.text
        assert sorted(served) == ids
        bob = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {tokens[1]}"}, timeout=10)
        p = bob.get(f"/api/campaigns/{c.id}/pair").json()
        for side in ("left", "right"):
            assert bob.get(p[side + "_url"]).content == (folder / f"{p[side]}.gif").read_bytes()
    finally:
        server.stop()


# --------------------------------------------------------------------------- 9. unusable files

def test_deleted_or_broken_files_are_not_handed_out(env):
    conn = connect(env.db)
    order = [r[0] for r in conn.execute("SELECT gif_id FROM candidates ORDER BY rank")]
    conn.close()
    gifs = env.pool.folder / "gifs"
    (gifs / f"{order[0]}.gif").unlink()
    (gifs / f"{order[1]}.gif").write_bytes(b"<html>not a gif</html>")
    (gifs / f"{order[2]}.gif").write_bytes(b"")
    n = env.next("alice")
    assert n["gif_id"] == order[3]
    s = env.get("admin", f"/api/campaigns/{env.cid}").json()
    assert s["n_unavailable"] == 3
    pairs = {tuple(sorted((p["left"], p["right"])))
             for p in (env.get("bob", f"/api/campaigns/{env.cid}/pair").json() for _ in range(5))}
    assert not {g for pr in pairs for g in pr} & set(order[:3])


def test_a_version_1_database_is_migrated_on_open_keeping_its_rows(env):
    """Databases written before the ready / unavailable columns and offered pairs open as before."""
    import sqlite3

    g = env.next("alice")["gif_id"]
    assert env.judge("alice", g, "yes").status_code == 201
    raw = sqlite3.connect(env.db)
    raw.executescript("ALTER TABLE campaigns DROP COLUMN ready; ALTER TABLE candidates DROP COLUMN unavailable; "
                      "DROP TABLE offered_pairs; UPDATE meta SET value = '1' WHERE key = 'schema_version';")
    raw.close()
    conn = connect(env.db)
    assert conn.execute("SELECT value FROM meta").fetchone()[0] == "2"
    assert conn.execute("SELECT ready FROM campaigns").fetchone()[0] == 1
    assert conn.execute("SELECT COUNT(*) FROM judgements").fetchone()[0] == 1
    conn.close()
    assert env.next("bob")["gif_id"] == g and env.judge("bob", g, "yes").json()["decided"]
