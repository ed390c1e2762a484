"""API tests of the labelling app through FastAPI's TestClient, on a synthetic pool with known truth."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the labelling app needs the 'collect' extra (fastapi, jinja2, httpx)")
pytest.importorskip("httpx", reason="FastAPI's TestClient needs httpx")
from fastapi.testclient import TestClient  # noqa: E402
from collect_client import CampaignClient  # noqa: E402

from gifemo.collect.access import create_labeller  # noqa: E402
from gifemo.collect.app import COOKIE, create_app  # noqa: E402
from gifemo.collect.db import connect  # noqa: E402
from gifemo.collect.demo import synthetic_pool  # noqa: E402
from gifemo.collect.scoring import load_head  # noqa: E402
from gifemo.data.emotions import EMOTIONS  # noqa: E402
from gifemo.data.labels import Vote, trueskill_scores  # noqa: E402
from gifemo.data.manifest import load_dataset  # noqa: E402

pytestmark = pytest.mark.timeout(60)


class Env(CampaignClient):
    def __init__(self, tmp_path, n=30, target_np=4, rerank_every=None):
        self.pool = synthetic_pool(tmp_path / "pool", n=n, d=8, seed=3)
        self.db = tmp_path / "c.db"
        conn = connect(self.db)
        self.tokens = {name: create_labeller(conn, name, admin=(name == "admin"))
                       for name in ("admin", "alice", "bob", "carol")}
        conn.close()
        self.client = TestClient(create_app(self.db, export_root=tmp_path / "exports"))
        r = self.post("admin", "/api/campaigns", name="c1", emotion="amusement",
                      candidates=str(self.pool.folder), checkpoint=str(self.pool.head),
                      features=str(self.pool.features), target_np=target_np, rerank_every=rerank_every)
        assert r.status_code == 201, r.text
        self.cid = r.json()["id"]
        self.truth = dict(zip(self.pool.ids, self.pool.positive))



@pytest.fixture
def env(tmp_path):
    return Env(tmp_path)


def test_auth_required_and_admin_guards_creation(env):
    c = env.client
    assert c.get("/api/me").status_code == 401
    assert c.get("/api/me", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert env.get("alice", "/api/me").json() == {"id": 2, "name": "alice", "is_admin": False}
    r = env.post("alice", "/api/campaigns", name="c2", emotion="anger", candidates=str(env.pool.folder),
                 checkpoint=str(env.pool.head), features=str(env.pool.features), target_np=2)
    assert r.status_code == 403 and "admin" in r.json()["detail"]
    r = env.post("alice", f"/api/campaigns/{env.cid}/export")
    assert r.status_code == 403
    # Sign-in through the session endpoint sets a cookie that then authenticates.
    r = c.post("/api/session", json={"token": env.tokens["bob"]})
    assert r.status_code == 200 and COOKIE in r.cookies
    assert c.get("/api/me").json()["name"] == "bob"
    # A cross-site form cannot post JSON: a non-JSON body with the cookie is refused, nothing stored.
    g = c.get(f"/api/campaigns/{env.cid}/next").json()["gif_id"]
    r = c.post(f"/api/campaigns/{env.cid}/judgements", content=f'{{"gif_id": "{g}", "answer": "yes"}}',
               headers={"Content-Type": "text/plain"})
    assert r.status_code == 422
    assert connect(env.db).execute("SELECT COUNT(*) FROM judgements").fetchone()[0] == 0
    assert c.delete("/api/session").status_code == 200
    c.cookies.clear()
    assert c.get("/api/me").status_code == 401


def test_campaign_creation_validates_input(env):
    base = dict(name="c3", emotion="amusement", candidates=str(env.pool.folder), checkpoint=str(env.pool.head),
                features=str(env.pool.features), target_np=2)
    for bad, word in ((dict(emotion="glee"), "glee"), (dict(target_np=0), "target_np"),
                      (dict(target_np=10_000), "exceeds"), (dict(name="c1"), "already exists"),
                      (dict(candidates="/nonexistent/pool"), "no such"), (dict(features=None), "feature file"),
                      (dict(name="bad name!"), "campaign name"), (dict(rerank_every=0), "rerank_every")):
        r = env.post("admin", "/api/campaigns", **{**base, **bad})
        assert 400 <= r.status_code < 500, (bad, r.text)
        assert word in r.json()["detail"], (bad, r.json())


def test_candidates_are_served_in_the_heads_ranked_order(env):
    head = load_head(env.pool.head)
    expected = np.argsort(-(env.pool.X.astype(np.float64) @ head.W[:, EMOTIONS.index("amusement")]),
                          kind="stable")
    seen = []
    for _ in range(5):  # alice skips her way down the list: each next is the next best-ranked
        n = env.next("alice")
        seen.append(n["gif_id"])
        assert env.judge("alice", n["gif_id"], "skip").status_code == 201
    assert seen == [env.pool.ids[i] for i in expected[:5]]
    assert [env.next("bob")["rank"]] == [1]


def test_two_labellers_agree_or_a_third_decides(env):
    a = env.next("alice")["gif_id"]
    assert env.next("alice")["gif_id"] == a          # reload gives the same leased GIF
    b = env.next("bob")["gif_id"]
    assert b == a                                     # the top GIF needs two judgements
    assert env.next("carol")["gif_id"] != a           # ... but not three while two hold it
    r = env.judge("alice", a, "yes").json()
    assert not r["decided"]
    r = env.judge("bob", a, "yes").json()
    assert r["decided"] and r["label"] == 1 and r["look"] == 1
    assert r["progress"]["n_positive"] == 1 and r["progress"]["precision"] == 1.0

    g = env.next("carol")["gif_id"]                   # carol still holds the second-ranked GIF
    assert env.next("alice")["gif_id"] == g           # one answer/lease short of two
    assert env.judge("alice", g, "yes").json()["decided"] is False
    other = env.next("bob")["gif_id"]
    assert other != g                                 # alice's answer + carol's lease cover g
    assert env.judge("carol", g, "no").json()["decided"] is False   # disagreement: a third is needed
    assert env.next("alice")["gif_id"] != g
    assert env.judge("bob", other, "skip").status_code == 201
    assert env.next("bob")["gif_id"] == g
    r = env.judge("bob", g, "no").json()
    assert r["decided"] and r["label"] == 0 and r["look"] == 2
    s = env.get("admin", f"/api/campaigns/{env.cid}").json()
    assert s["n_decided"] == 2 and s["n_positive"] == 1 and s["precision"] == 0.5
    assert s["agreement"]["n_pairs"] == 2 and s["agreement"]["pair_agreement"] == 0.5
    assert s["agreement"]["n_third"] == 1
    assert s["agreement"]["per_labeller"] == {"alice": {"n": 2, "agree_with_consensus": 0.5},
                                             "bob": {"n": 2, "agree_with_consensus": 1.0},
                                             "carol": {"n": 1, "agree_with_consensus": 1.0}}


def test_rules_and_validation_give_4xx_with_a_message(env):
    g = env.next("alice")["gif_id"]
    cases = [
        (env.judge("alice", g, "maybe"), 422, "maybe"),
        (env.judge("alice", "no-such-gif", "yes"), 404, "no-such-gif"),
        (env.post("alice", "/api/campaigns/999/judgements", gif_id=g, answer="yes"), 404, "999"),
        (env.post("alice", f"/api/campaigns/{env.cid}/judgements", gif_id=g), 422, "answer"),
    ]
    for r, status, word in cases:
        assert r.status_code == status, r.text
        assert word in str(r.json()["detail"])
    assert env.judge("alice", g, "yes").status_code == 201
    r = env.judge("alice", g, "no")
    assert r.status_code == 409 and "already answered" in r.json()["detail"]
    assert env.next("bob")["gif_id"] == g
    connect(env.db).execute("UPDATE leases SET expires_at = 0")   # bob's lease runs out ...
    assert env.next("carol")["gif_id"] == g                       # ... so carol is sent to g too
    assert env.judge("bob", g, "yes").status_code == 201          # bob still answers first
    r = env.judge("carol", g, "yes")
    assert r.status_code == 409 and "already decided" in r.json()["detail"]
    rows = connect(env.db).execute("SELECT COUNT(*) FROM judgements").fetchone()[0]
    assert rows == 2                                  # nothing from the refused requests was stored


def test_nobody_sees_others_answers_before_their_own(env):
    g = env.next("alice")["gif_id"]
    env.judge("alice", g, "no")
    url = f"/api/campaigns/{env.cid}/gifs/{g}/answers"
    r = env.get("bob", url)
    assert r.status_code == 403 and "own answer" in r.json()["detail"]
    nb = env.next("bob")
    assert nb["gif_id"] == g and "answers" not in nb and "n_yes" not in str(nb)
    env.judge("bob", g, "skip")
    assert env.get("bob", url).status_code == 403     # a skip is not an answer
    assert env.get("alice", url).json()["answers"] == [{"labeller": "alice", "answer": "no"},
                                                      {"labeller": "bob", "answer": "skip"}]
    assert env.get("admin", url).status_code == 200


def _label_until_done(env, names=("alice", "bob")):
    """Both labellers answer the truth, in turn, until the campaign stops."""
    looks = 0
    while True:
        n = env.next(names[0])
        if n["done"]:
            return n, looks
        for who in names:
            m = env.next(who)
            assert m["gif_id"] == n["gif_id"]
            r = env.judge(who, m["gif_id"], "yes" if env.truth[m["gif_id"]] else "no")
            assert r.status_code == 201, r.text
        looks += 1


def test_campaign_stops_at_np_with_exact_precision_and_looks(env):
    done, looks = _label_until_done(env)
    assert done["reason"] == "complete"
    s = env.get("alice", f"/api/campaigns/{env.cid}").json()
    # Independent count: walk the head's ranking until 4 true positives.
    head = load_head(env.pool.head)
    order = np.argsort(-(env.pool.X.astype(np.float64) @ head.W[:, 0]), kind="stable")
    hits = np.cumsum(env.pool.positive[order])
    n_looks = int(np.flatnonzero(hits == 4)[0]) + 1
    assert looks == n_looks == s["n_decided"] == s["n_tilde_measured"]
    assert s["status"] == "complete" and s["n_positive"] == 4
    assert s["precision"] == pytest.approx(4 / n_looks)
    assert s["looks_per_positive"] == pytest.approx(n_looks / 4)
    assert s["agreement"]["pair_agreement"] == 1.0
    assert s["replay"]["actual"] == s["replay"]["original_lower"] == s["replay"]["original_upper"] == n_looks
    r = env.judge("carol", env.next("carol").get("gif_id") or env.pool.ids[order[-1]], "yes")
    assert r.status_code == 409 and "complete" in r.json()["detail"]


def test_pairwise_votes_are_stored_in_the_labels_format(env):
    url = f"/api/campaigns/{env.cid}/votes"
    pairs = []
    for _ in range(6):
        p = env.get("alice", f"/api/campaigns/{env.cid}/pair").json()
        assert not p["done"] and p["emotion"] == "amusement" and p["left"] != p["right"]
        assert (p["left"], p["right"]) not in pairs and (p["right"], p["left"]) not in pairs
        choice = "left" if env.truth[p["left"]] >= env.truth[p["right"]] else "right"
        assert env.post("alice", url, left=p["left"], right=p["right"], choice=choice).status_code == 201
        pairs.append((p["left"], p["right"], choice))
    lft, rgt, _ = pairs[0]
    for body, status, word in ((dict(left=lft, right=rgt, choice="left"), 409, "already compared"),
                               (dict(left=rgt, right=lft, choice="neither"), 409, "already compared"),
                               (dict(left=lft, right=rgt, choice="both"), 422, "both"),
                               (dict(left=lft, right=lft, choice="left"), 422, "itself"),
                               (dict(left=lft, right="zzz", choice="left"), 404, "zzz")):
        r = env.post("alice", url, **body)
        assert r.status_code == status and word in r.json()["detail"], (body, r.text)
    pb = env.get("bob", f"/api/campaigns/{env.cid}/pair").json()
    assert env.post("bob", url, left=pb["left"], right=pb["right"], choice="neither").status_code == 201
    rows = connect(env.db).execute("SELECT emotion, left_id, right_id, choice FROM votes ORDER BY id").fetchall()
    votes = [Vote(*r) for r in rows]
    assert votes == [Vote("amusement", *p) for p in pairs] + [Vote("amusement", pb["left"], pb["right"], "neither")]
    mu, _ = trueskill_scores(votes, env.pool.ids)
    voted = {g for v in votes for g in (v.left, v.right)}
    col = EMOTIONS.index("amusement")
    assert all(np.isnan(mu[i, col]) != (g in voted) for i, g in enumerate(env.pool.ids))


def test_export_loads_with_the_manifest_loader_and_retrains(env):
    from gifemo.models.penalties import RidgePenalty
    from gifemo.models.solvers import fit_multitask_linear

    _label_until_done(env)
    r = env.post("admin", f"/api/campaigns/{env.cid}/export")
    assert r.status_code == 200, r.text
    out = r.json()
    ds = load_dataset(out["folder"])
    col = EMOTIONS.index("amusement")
    assert out["label_files"] == ["scores.csv"] and len(ds) == out["n_decided"]
    assert list(ds.positive[:, col]) == [bool(env.truth[g]) for g in ds.ids]
    assert ds.mask[:, col].all() and not ds.mask[:, np.arange(17) != col].any()
    assert all(p.is_file() for p in ds.paths)
    rows = [env.pool.ids.index(g) for g in ds.ids]
    fit = fit_multitask_linear(env.pool.X[rows], ds.y, ds.mask, RidgePenalty(1.0))
    assert fit.converged and fit.W.shape == (8, 17)


def test_gif_files_and_pages(env):
    g = env.next("alice")["gif_id"]
    r = env.get("alice", f"/gifs/{env.cid}/{g}")
    assert r.status_code == 200 and r.content[:6] == b"GIF89a"
    assert env.client.get(f"/gifs/{env.cid}/{g}").status_code == 401
    assert env.get("alice", f"/gifs/{env.cid}/../../etc/passwd").status_code == 404
    r = env.client.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    env.client.cookies.set(COOKIE, env.tokens["alice"])
    assert "c1" in env.client.get("/").text
    page = env.client.get(f"/campaigns/{env.cid}").text
    assert "amusement" in page and 'id="btn-yes"' in page
    assert "more?" in env.client.get(f"/campaigns/{env.cid}/compare").text


def test_reranking_refits_every_n_labels_and_reports_replay(tmp_path):
    from gifemo.collect.rerank import run_due_reranks

    env = Env(tmp_path, n=40, target_np=10, rerank_every=4)
    conn = connect(env.db)
    done = set()
    while len(done) < 2:
        for who in ("alice", "bob"):
            n = env.next(who)
            if n["done"]:
                done.add(who)
                continue
            r = env.judge(who, n["gif_id"], "yes" if env.truth[n["gif_id"]] else "no")
            assert r.status_code == 201
            if r.json()["rerank_queued"]:             # the server's worker would do this now
                assert run_due_reranks(conn)[1] == []
    s = env.get("admin", f"/api/campaigns/{env.cid}").json()
    assert [x["n_decided"] for x in s["reranks"]] == list(range(4, s["n_decided"], 4))
    assert all(x["rel_gap"] <= 1e-4 for x in s["reranks"])
    conn = connect(env.db)
    changed = conn.execute("SELECT COUNT(*) FROM candidates WHERE rank <> rank0").fetchone()[0]
    assert changed > 0
    rp = s["replay"]
    assert rp["k"] == 10 and rp["actual"] == s["n_decided"]
    assert rp["original_lower"] <= rp["original_estimate"] <= (rp["original_upper"] or 10**9)


def test_an_expired_lease_frees_the_gif_for_someone_else(env):
    from gifemo.collect.access import authenticate
    from gifemo.collect.labelling import next_candidate

    conn = connect(env.db)
    a, b, c = (authenticate(conn, env.tokens[n]) for n in ("alice", "bob", "carol"))
    top = next_candidate(conn, env.cid, a)["gif_id"]
    assert next_candidate(conn, env.cid, b)["gif_id"] == top
    assert next_candidate(conn, env.cid, c)["gif_id"] != top       # two leases cover it
    # bob walks away: his lease runs out, and carol is sent to the top GIF instead
    conn.execute("UPDATE leases SET expires_at = 0 WHERE labeller_id = ?", (b.id,))
    conn.execute("DELETE FROM leases WHERE labeller_id = ?", (c.id,))
    assert next_candidate(conn, env.cid, c)["gif_id"] == top
