"""Hostile input against every route of the labelling app: each bad request is a 4xx (or 503)
JSON error with a message, stores nothing, and the server keeps serving.

The battery — no token, another labeller's token, a labeller's token on admin routes,
malformed JSON, lone surrogates, huge ids, an over-limit body — is run on every route the app
has; a route added without a battery entry fails :func:`test_every_route_is_in_the_battery`.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import time

import pytest

pytest.importorskip("fastapi", reason="the labelling app needs the 'collect' extra (fastapi, jinja2, httpx)")
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Mount

import gifemo.collect.app as app_module
from gifemo.collect.access import create_labeller
from gifemo.collect.app import create_app
from gifemo.collect.db import connect
from gifemo.collect.demo import synthetic_pool

pytestmark = pytest.mark.timeout(120)
HUGE = str(2**64)
SURROGATE_JSON = '"\\ud800"'                  # a lone surrogate, as JSON writes it
MAX_BODY_BYTES = getattr(app_module, "MAX_BODY_BYTES", 64 * 1024)
OVER = b"{" + b" " * (MAX_BODY_BYTES + 10) + b"}"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One campaign, alice holding a lease and an offered pair, bob a third labeller."""
    tmp = tmp_path_factory.mktemp("hostile")
    pool = synthetic_pool(tmp / "pool", n=12, d=4, seed=5)
    db = tmp / "c.db"
    conn = connect(db)
    tokens = {n: create_labeller(conn, n, admin=(n == "admin")) for n in ("admin", "alice", "bob")}
    conn.close()
    client = TestClient(create_app(db, export_root=tmp / "exports"), raise_server_exceptions=False)
    h = {n: {"Authorization": f"Bearer {t}"} for n, t in tokens.items()}
    r = client.post("/api/campaigns", headers=h["admin"], json=dict(
        name="c1", emotion="amusement", candidates=str(pool.folder), checkpoint=str(pool.head),
        features=str(pool.features), target_np=3))
    assert r.status_code == 201, r.text
    gif = client.get("/api/campaigns/1/next", headers=h["alice"]).json()["gif_id"]
    pair = client.get("/api/campaigns/1/pair", headers=h["alice"]).json()
    return dict(client=client, db=db, h=h, gif=gif, pair=pair, pool=pool, tmp=tmp,
                campaign=dict(name="c2", emotion="amusement", candidates=str(pool.folder),
                              checkpoint=str(pool.head), features=str(pool.features), target_np=2))


def snapshot(w) -> str:
    """Everything stored: every row of every table, and every file the app writes."""
    conn = sqlite3.connect(w["db"])
    try:
        dump = "\n".join(conn.iterdump())
    finally:
        conn.close()
    files = sorted(str(p.relative_to(w["tmp"])) for p in w["tmp"].rglob("*")
                   if "exports" in p.parts or "c-data" in p.parts)
    return dump + "\n" + "\n".join(files)


# Every route: (method, path template) -> how to fill it and what it accepts.
#   url:    the URL with valid ids;  cid_url / gif_url: the same with the campaign / GIF id replaced
#   body:   a valid JSON body (None: the route takes none)
#   auth:   "public", "page" (strangers are redirected to /login), "user" or "admin"
#   other:  a request by bob on something that is alice's (lease, offered pair, answer)
def routes(w):
    g, p = w["gif"], w["pair"]
    return {
        ("GET", "/login"): dict(url="/login", auth="public"),
        ("GET", "/"): dict(url="/", auth="page"),
        ("GET", "/campaigns/{cid}"): dict(url="/campaigns/1", cid_url="/campaigns/{}", auth="page"),
        ("GET", "/campaigns/{cid}/compare"): dict(url="/campaigns/1/compare", cid_url="/campaigns/{}/compare",
                                                   auth="page"),
        ("GET", "/gifs/{cid}/{gif_id:path}"): dict(url=f"/gifs/1/{g}", cid_url="/gifs/{}/" + g,
                                                    gif_url="/gifs/1/{}", auth="user"),
        ("POST", "/api/session"): dict(url="/api/session", body={"token": "x" * 43}, auth="public",
                                       fields=["token"]),
        ("DELETE", "/api/session"): dict(url="/api/session", auth="public"),
        ("GET", "/api/me"): dict(url="/api/me", auth="user"),
        ("GET", "/api/campaigns"): dict(url="/api/campaigns", auth="user"),
        ("POST", "/api/campaigns"): dict(url="/api/campaigns", body=w["campaign"], auth="admin",
                                         fields=["name", "emotion", "candidates"], ints=["target_np"]),
        ("GET", "/api/campaigns/{cid}"): dict(url="/api/campaigns/1", cid_url="/api/campaigns/{}", auth="user"),
        ("GET", "/api/campaigns/{cid}/next"): dict(url="/api/campaigns/1/next", cid_url="/api/campaigns/{}/next",
                                                   auth="user"),
        ("POST", "/api/campaigns/{cid}/judgements"): dict(
            url="/api/campaigns/1/judgements", cid_url="/api/campaigns/{}/judgements", auth="user",
            body={"gif_id": g, "answer": "yes"}, fields=["gif_id", "answer"], other="bob"),
        ("GET", "/api/campaigns/{cid}/gifs/{gif_id:path}/answers"): dict(
            url=f"/api/campaigns/1/gifs/{g}/answers", cid_url="/api/campaigns/{}/gifs/" + g + "/answers",
            gif_url="/api/campaigns/1/gifs/{}/answers", auth="user", other="bob"),
        ("GET", "/api/campaigns/{cid}/pair"): dict(url="/api/campaigns/1/pair", cid_url="/api/campaigns/{}/pair",
                                                   auth="user"),
        ("POST", "/api/campaigns/{cid}/votes"): dict(
            url="/api/campaigns/1/votes", cid_url="/api/campaigns/{}/votes", auth="user",
            body={"left": p["left"], "right": p["right"], "choice": "left"}, fields=["left", "right", "choice"],
            other="bob"),
        ("POST", "/api/campaigns/{cid}/rerank"): dict(url="/api/campaigns/1/rerank",
                                                      cid_url="/api/campaigns/{}/rerank", auth="admin"),
        ("POST", "/api/campaigns/{cid}/reopen"): dict(url="/api/campaigns/1/reopen",
                                                      cid_url="/api/campaigns/{}/reopen", auth="admin",
                                                      body={"target_np": 5}, ints=["target_np"]),
        ("POST", "/api/campaigns/{cid}/export"): dict(url="/api/campaigns/1/export",
                                                      cid_url="/api/campaigns/{}/export", auth="admin",
                                                      body={"copy_gifs": False}),
        ("GET", "/static"): dict(url="/static/collect.css", auth="public"),
    }


def app_routes(client) -> set[tuple[str, str]]:
    out = set()
    for r in client.app.routes:
        if isinstance(r, APIRoute):
            out |= {(m, r.path_format if ":path" not in r.path else r.path) for m in r.methods}
        elif isinstance(r, Mount):
            out.add(("GET", r.path))
    return out


def test_every_route_is_in_the_battery(world):
    assert app_routes(world["client"]) == set(routes(world))


def battery(w, spec, method):
    """(label, request kwargs, expected statuses) for every hostile request that applies."""
    h = w["h"]
    user = h["admin"] if spec["auth"] == "admin" else h["alice"]
    body = spec.get("body")
    js = {"Content-Type": "application/json"}
    cases = []
    if spec["auth"] in ("user", "admin"):
        cases.append(("no token", dict(url=spec["url"], json=body), {401}))
        cases.append(("unknown token", dict(url=spec["url"], json=body, headers={"Authorization": "Bearer nope"}),
                      {401}))
        cases.append(("non-ASCII token", dict(url=spec["url"], json=body,
                                              headers={"Authorization": b"Bearer \xed\xa0\x80"}), {401}))
    if spec["auth"] == "page":
        cases.append(("no token", dict(url=spec["url"]), {303}))
    if spec["auth"] == "admin":
        cases.append(("labeller on admin route", dict(url=spec["url"], json=body, headers=h["alice"]), {403}))
    if "other" in spec:
        cases.append(("another labeller's token", dict(url=spec["url"], json=body, headers=h[spec["other"]]),
                      {403, 409}))
    if body is not None:
        for bad in ('{"gif_id": ', "[1, 2", "not json", "\xff\xfe", "null", "[]", '"text"'):
            cases.append((f"malformed JSON {bad!r}", dict(url=spec["url"], content=bad.encode("utf-8", "replace"),
                                                          headers={**user, **js}), {422}))
        cases.append(("unknown field", dict(url=spec["url"], json={**body, "extra": 1}, headers=user), {422}))
        cases.append(("form post", dict(url=spec["url"], content=json.dumps(body),
                                        headers={**user, "Content-Type": "text/plain"}), {422}))
        for f in spec.get("fields", []):
            raw = json.dumps({**body, f: "@@"}).replace('"@@"', SURROGATE_JSON)
            cases.append((f"lone surrogate in {f}", dict(url=spec["url"], content=raw, headers={**user, **js}),
                          {422}))
        for f in spec.get("ints", []):
            cases.append((f"huge {f}", dict(url=spec["url"], json={**body, f: 2**70}, headers=user), {422}))
            cases.append((f"bool {f}", dict(url=spec["url"], json={**body, f: True}, headers=user), {422}))
    if "cid_url" in spec:
        for bad in (HUGE, "-1", "0", "%ED%A0%80", "1e3", "9" * 400):
            cases.append((f"campaign id {bad[:20]}", dict(url=spec["cid_url"].format(bad), json=body,
                                                          headers=user), {404, 422}))
    if "gif_url" in spec:
        for bad in (HUGE, "%ED%A0%80", "..%2F..%2Fetc%2Fpasswd", "x" * 5000):
            cases.append((f"GIF id {bad[:20]}", dict(url=spec["gif_url"].format(bad), headers=user), {404, 422}))
    cases.append(("over-limit body", dict(url=spec["url"], content=OVER, headers={**user, **js}), {413}))
    cases.append(("over-limit body, no token", dict(url=spec["url"], content=OVER, headers=js), {413}))
    cases.append(("chunked over-limit body", dict(url=spec["url"], content=iter([OVER[:40000], OVER[40000:]]),
                                                  headers={**user, **js}), {413}))
    return [(label, method, kw, expect) for label, kw, expect in cases]


def test_the_battery_on_every_route_gives_4xx_json_and_stores_nothing(world):
    client = world["client"]
    failures = []
    n = 0
    for (method, _), spec in routes(world).items():
        for label, method_, kw, expect in battery(world, spec, method):
            before = snapshot(world)
            kw = dict(kw)
            headers = kw.pop("headers", {})
            r = client.request(method_, kw.pop("url"), headers=headers, follow_redirects=False, **kw)
            n += 1
            problem = None
            if r.status_code not in expect:
                problem = f"status {r.status_code}, expected {sorted(expect)}: {r.text[:200]}"
            elif r.status_code == 303:
                if r.headers.get("location") != "/login":
                    problem = f"redirected to {r.headers.get('location')}"
            else:
                try:
                    detail = r.json()["detail"]
                    assert isinstance(detail, str) and detail
                except Exception:  # noqa: BLE001
                    problem = f"not a JSON error with a message: {r.text[:200]!r}"
            if snapshot(world) != before:
                problem = (problem or "") + " and it stored something"
            if problem:
                failures.append(f"{method} {spec['url']} [{label}]: {problem}")
    assert not failures, f"{len(failures)} of {n} hostile requests misanswered:\n" + "\n".join(failures)
    assert n > 250
    # and the server still serves
    r = client.get("/api/campaigns/1/next", headers=world["h"]["alice"])
    assert r.status_code == 200 and r.json()["gif_id"] == world["gif"]


def test_lone_surrogates_in_answers_and_votes_are_422_not_500(world):
    client, h = world["client"], world["h"]["alice"]
    for url, raw, field in (("/api/campaigns/1/judgements", '{"gif_id": "\\ud800", "answer": "yes"}', "gif_id"),
                            ("/api/campaigns/1/judgements", '{"gif_id": "g", "answer": "\\udfff"}', "answer"),
                            ("/api/campaigns/1/votes", '{"left": "\\ud800", "right": "g", "choice": "left"}', "left"),
                            ("/api/session", '{"token": "\\ud800"}', "token")):
        r = client.post(url, content=raw, headers={**h, "Content-Type": "application/json"})
        assert r.status_code == 422 and field in r.json()["detail"], (url, r.text)
    assert connect(world["db"]).execute("SELECT COUNT(*) FROM judgements").fetchone()[0] == 0


def test_huge_ids_in_urls_are_4xx(world):
    client, h = world["client"], world["h"]["alice"]
    for url in (f"/api/campaigns/{HUGE}", f"/api/campaigns/{HUGE}/next", f"/gifs/{HUGE}/x",
                f"/api/campaigns/{2**63}/pair"):
        r = client.get(url, headers=h)
        assert r.status_code in (404, 422) and r.json()["detail"], (url, r.text)


def _write_fails(message):
    """A ``connect`` whose connections refuse writes as SQLite does with ``message``."""
    real = connect

    class Refusing:
        def __init__(self, conn):
            self._conn = conn

        def execute(self, sql, *args):
            if sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE", "REPLACE")):
                raise sqlite3.OperationalError(message)
            return self._conn.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self._conn, name)

    return lambda *a, **kw: Refusing(real(*a, **kw))


def _read_only(*a, **kw):
    conn = connect(*a, **kw)
    conn.execute("PRAGMA query_only = ON")         # SQLite's own "attempt to write a readonly database"
    return conn


@pytest.mark.parametrize("kind", ["read-only", "full"])
def test_a_database_that_refuses_writes_gives_503_and_the_server_goes_on(tmp_path, monkeypatch, kind):
    pool = synthetic_pool(tmp_path / "pool", n=8, d=4, seed=6)
    db = tmp_path / "c.db"
    conn = connect(db)
    tok = create_labeller(conn, "alice")
    adm = create_labeller(conn, "admin", admin=True)
    conn.close()
    client = TestClient(create_app(db), raise_server_exceptions=False)
    h = {"Authorization": f"Bearer {tok}"}
    r = client.post("/api/campaigns", headers={"Authorization": f"Bearer {adm}"}, json=dict(
        name="c", emotion="amusement", candidates=str(pool.folder), checkpoint=str(pool.head),
        features=str(pool.features), target_np=2))
    g = client.get("/api/campaigns/1/next", headers=h).json()["gif_id"]
    monkeypatch.setattr(app_module, "connect",
                        _read_only if kind == "read-only" else _write_fails("database or disk is full"))
    r = client.post("/api/campaigns/1/judgements", headers=h, json={"gif_id": g, "answer": "yes"})
    assert r.status_code == 503, r.text
    assert ("readonly" if kind == "read-only" else "full") in r.json()["detail"]
    r = client.get("/api/campaigns/1/next", headers=h)    # a lease is a write too
    assert r.status_code == 503, r.text
    assert client.get("/api/me", headers=h).status_code == 200        # reads go on
    assert connect(db).execute("SELECT COUNT(*) FROM judgements").fetchone()[0] == 0
    monkeypatch.undo()
    r = client.post("/api/campaigns/1/judgements", headers=h, json={"gif_id": g, "answer": "yes"})
    assert r.status_code == 201, r.text


def test_body_limit_before_parsing_and_token_before_reading_on_a_real_server(tmp_path):
    """Raw HTTP to a uvicorn process: the answer comes before the body is sent."""
    from gifemo.collect.server_process import start_server

    db = tmp_path / "c.db"
    conn = connect(db)
    tok = create_labeller(conn, "alice")
    conn.close()
    server = start_server(db, tmp_path / "server.log")
    host, port = server.url.removeprefix("http://").split(":")

    def head_only(path, length, token=None, wait_s=5.0):
        """Send headers announcing ``length`` body bytes, none of the body; the status line."""
        with socket.create_connection((host, int(port)), timeout=wait_s) as s:
            auth = f"Authorization: Bearer {token}\r\n" if token else ""
            s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{auth}"
                      f"Content-Length: {length}\r\n\r\n".encode())
            try:
                return s.recv(4096).decode("latin-1").split("\r\n")[0]
            except TimeoutError:
                return "no answer before the body"

    try:
        t0 = time.monotonic()
        assert " 413 " in head_only("/api/campaigns/1/judgements", 10**9, tok)
        assert " 413 " in head_only("/api/session", 10**9)
        assert " 401 " in head_only("/api/campaigns/1/judgements", 60_000)      # no token
        assert " 401 " in head_only("/api/campaigns/1/votes", 60_000, "stolen")  # a wrong one
        assert time.monotonic() - t0 < 4.0
        assert head_only("/api/campaigns/1/judgements", 100, tok, wait_s=1.0) == "no answer before the body"
    finally:
        server.stop()
