"""The labelling web app (FastAPI + Jinja2, served by uvicorn on 127.0.0.1).

Pages (signed-in labellers; anyone else is sent to ``/login``)::

    GET  /login                         sign in with a token
    GET  /                              campaigns and their progress
    GET  /campaigns/{id}                label: GIF playing, yes / no / skip (keys y / n / s),
                                        progress towards Np, running precision, agreement,
                                        looks saved (replay)
    GET  /campaigns/{id}/compare        "which of these two GIFs expresses <emotion> more?"
                                        left / right / neither (keys ← / → / ↓ or l / r / n)
    GET  /gifs/{id}/{gif_id}            the GIF file of a candidate (ids are percent-encoded in
                                        every URL the app builds)

JSON API (``Authorization: Bearer <token>`` or the sign-in cookie; errors are
``{"detail": message}`` with 401/403/404/409/413/422, or 503 when the database cannot take a
write — read-only, full, locked —; nothing is stored by a request that fails)::

    POST /api/session                   {"token"} -> sets the cookie; DELETE signs out
    GET  /api/me
    GET  /api/campaigns                                     list with progress
    POST /api/campaigns                 (admin)             create: name, emotion, candidates,
                                                            checkpoint, target_np[, features,
                                                            weights, rerank_every, rerank_rho];
                                                            or zero_shot: true[, text_model] and
                                                            no checkpoint (any emotion name)
    GET  /api/campaigns/{id}                                progress, agreement, replay, re-ranks
    GET  /api/campaigns/{id}/next                           next candidate for me (or done)
    POST /api/campaigns/{id}/judgements {"gif_id", "answer": yes|no|skip}  for the GIF ``next`` gave me
    GET  /api/campaigns/{id}/gifs/{gif_id}/answers          everyone's answers, after my own
    GET  /api/campaigns/{id}/pair                           next pair for me to compare
    POST /api/campaigns/{id}/votes      {"left", "right", "choice": left|right|neither}  on the pair
                                                            ``pair`` gave me, while active
    POST /api/campaigns/{id}/rerank     (admin)             re-rank now
    POST /api/campaigns/{id}/reopen     (admin)             {"target_np"}: a larger target, active again
    POST /api/campaigns/{id}/export     (admin)             {"copy_gifs"} -> dataset folder

Request bodies are limited to :data:`MAX_BODY_BYTES` (a larger ``Content-Length`` is refused
before anything is read) and, on every route but ``/api/session``, the token is checked before
the body is read. JSON fields are checked strictly: unknown fields, text that is not valid
Unicode (lone surrogates) and integers beyond SQLite's 64 bits are 422s. Re-ranking runs in a
child process of the server (:class:`gifemo.collect.rerank.RerankWorker`), never inside a
request. There are no /docs or /openapi.json routes (less to guard; this list is the API).

Each request opens its own SQLite connection (:mod:`gifemo.collect.db`); every write is one
transaction in the service modules, so this file only parses, authorises and formats.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection

from gifemo.collect.access import Labeller, authenticate
from gifemo.collect.campaigns import (
    MAX_SQL_INT,
    campaign_stats,
    create_campaign,
    get_campaign,
    list_campaigns,
    pool_root,
    reopen_campaign,
)
from gifemo.collect.db import connect
from gifemo.collect.errors import CollectError, Forbidden, NotFound, Unauthorized
from gifemo.collect.export import export_campaign
from gifemo.collect.labelling import next_candidate, others_answers, submit_judgement
from gifemo.collect.pool import file_problem
from gifemo.collect.rerank import RerankWorker, rerank_campaign
from gifemo.collect.votes import next_pair, record_vote

COOKIE = "gifemo_token"
HERE = Path(__file__).parent
MAX_BODY_BYTES = 64 * 1024
PUBLIC_PATHS = ("/api/session",)      # the only routes that take a body without a token


class AsciiJSONResponse(JSONResponse):
    """JSON with every non-ASCII character escaped, so no text (not even a lone surrogate
    echoed back in a message) can make encoding the answer fail."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def _unicode(s: str) -> str:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("not valid Unicode text (it holds a lone surrogate)") from None
    return s


Text = Annotated[str, StringConstraints(max_length=4096), AfterValidator(_unicode)]
SqlInt = Annotated[int, Field(ge=1, le=MAX_SQL_INT)]
CampaignId = Annotated[int, PathParam(ge=1, le=MAX_SQL_INT)]
GifId = Annotated[str, PathParam(max_length=4096)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SessionIn(Body):
    token: Text


class JudgementIn(Body):
    gif_id: Text
    answer: Text


class VoteIn(Body):
    left: Text
    right: Text
    choice: Text


class CampaignIn(Body):
    name: Text
    emotion: Text
    candidates: Text
    checkpoint: Text | None = None
    target_np: SqlInt
    features: Text | None = None
    weights: Text | None = None
    rerank_every: SqlInt | None = None
    rerank_rho: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    zero_shot: bool = False
    text_model: Text = "default"


class ReopenIn(Body):
    target_np: SqlInt


class ExportIn(Body):
    copy_gifs: bool = False


def _clean(x: Any) -> Any:
    """JSON-safe copy: NaN/inf become null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def gif_url(cid: int, gif_id: str) -> str:
    """The URL of a candidate's file, the id percent-encoded (``/ ? # %`` included)."""
    return f"/gifs/{cid}/{quote(gif_id, safe='')}"


def request_token(conn: HTTPConnection) -> str | None:
    """The bearer token of a request, else its sign-in cookie."""
    auth = conn.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return conn.cookies.get(COOKIE)


def _error(status: int, detail: str) -> AsciiJSONResponse:
    return AsciiJSONResponse({"detail": detail}, status_code=status)


class BodyGuard:
    """ASGI middleware: refuse a body over ``max_bytes`` (by ``Content-Length`` before reading,
    else while reading), and check the token of a non-public request that may carry a body
    before reading it. The body is then handed on in one piece."""

    def __init__(self, app, db_path: Path, max_bytes: int = MAX_BODY_BYTES):
        self.app, self.db_path, self.max_bytes = app, db_path, max_bytes

    def _signed_in(self, token: str | None) -> bool:
        conn = connect(self.db_path)
        try:
            return authenticate(conn, token) is not None
        finally:
            conn.close()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        conn = HTTPConnection(scope)
        length = conn.headers.get("content-length")
        if length is not None and (not length.isascii() or not length.isdigit()):
            return await _error(400, "bad Content-Length header")(scope, receive, send)
        if length is not None and int(length) > self.max_bytes:
            return await _error(413, f"request body of {length} bytes is over the limit of "
                                     f"{self.max_bytes}")(scope, receive, send)
        if scope["method"] not in ("GET", "HEAD", "OPTIONS") and scope["path"] not in PUBLIC_PATHS:
            try:
                ok = await run_in_threadpool(self._signed_in, request_token(conn))
            except sqlite3.Error as e:
                return await _error(503, f"the database is unavailable ({e})")(scope, receive, send)
            if not ok:
                return await _error(401, "sign in with your labeller token (Authorization: Bearer "
                                         "<token>)")(scope, receive, send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return                                   # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_bytes:
                return await _error(413, f"request body over the limit of {self.max_bytes} bytes")(
                    scope, receive, send)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors():
        where = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def create_app(db_path: str | Path, *, data_root: str | Path | None = None,
               export_root: str | Path | None = None, rerank_worker: bool = True) -> FastAPI:
    """Build the app over the database at ``db_path`` (created if missing).

    ``data_root`` holds each campaign's cached features (default ``<db>-data/``);
    ``export_root`` is where API exports are written (default ``<db>-exports/``).
    ``rerank_worker`` runs due re-ranks in a background thread while the app is served.
    """
    db_path = Path(db_path).resolve()
    data_root = Path(data_root) if data_root else db_path.with_name(db_path.stem + "-data")
    export_root = Path(export_root) if export_root else db_path.with_name(db_path.stem + "-exports")
    connect(db_path).close()  # create the schema once, up front
    worker = RerankWorker(db_path) if rerank_worker else None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if worker is not None:
            worker.start()
        yield
        if worker is not None:
            await run_in_threadpool(worker.stop)

    app = FastAPI(title="gifemo collect", docs_url=None, redoc_url=None, openapi_url=None,
                  default_response_class=AsciiJSONResponse, lifespan=lifespan)
    app.state.rerank_worker = worker
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(BodyGuard, db_path=db_path)
    templates = Jinja2Templates(directory=str(HERE / "templates"))

    @app.exception_handler(CollectError)
    async def _collect_error(request: Request, exc: CollectError) -> JSONResponse:
        return _error(exc.status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(sqlite3.Error)
    async def _db_error(request: Request, exc: sqlite3.Error) -> JSONResponse:
        if isinstance(exc, sqlite3.IntegrityError):
            return _error(409, "the request conflicts with data stored meanwhile; nothing was stored")
        return _error(503, f"the database cannot take this request now ({exc}); nothing was stored, "
                           "retry later")

    def db() -> Iterator[Any]:
        conn = connect(db_path, check_same_thread=False)
        try:
            yield conn
        finally:
            conn.close()

    def user(request: Request, conn=Depends(db)) -> Labeller:
        who = authenticate(conn, request_token(request))
        if who is None:
            raise Unauthorized("sign in with your labeller token (Authorization: Bearer <token>)")
        return who

    def admin(who: Labeller = Depends(user)) -> Labeller:
        if not who.is_admin:
            raise Forbidden(f"{who.name} is not an admin; this needs the admin token")
        return who

    def signed_in_page(request: Request, conn, template: str, context=dict):
        """Render ``template`` for the signed-in labeller, or send a stranger to /login;
        ``context()`` runs only once signed in (an unknown campaign then gives 404)."""
        who = authenticate(conn, request_token(request))
        if who is None:
            return RedirectResponse("/login", status_code=303)
        return templates.TemplateResponse(request, template, {"who": who, **context()})

    # ------------------------------------------------------------------ pages
    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request):
        return templates.TemplateResponse(request, "login.html", {})

    @app.get("/", response_class=HTMLResponse)
    def index_page(request: Request, conn=Depends(db)):
        return signed_in_page(request, conn, "index.html", lambda: {
            "campaigns": [c.progress() for c in list_campaigns(conn)]})

    @app.get("/campaigns/{cid}", response_class=HTMLResponse)
    def label_page(cid: CampaignId, request: Request, conn=Depends(db)):
        return signed_in_page(request, conn, "label.html", lambda: {"c": get_campaign(conn, cid)})

    @app.get("/campaigns/{cid}/compare", response_class=HTMLResponse)
    def compare_page(cid: CampaignId, request: Request, conn=Depends(db)):
        return signed_in_page(request, conn, "compare.html", lambda: {"c": get_campaign(conn, cid)})

    @app.get("/gifs/{cid}/{gif_id:path}")
    def gif_file(cid: CampaignId, gif_id: GifId, conn=Depends(db), who: Labeller = Depends(user)):
        c = get_campaign(conn, cid)
        r = conn.execute("SELECT path FROM candidates WHERE campaign_id = ? AND gif_id = ?",
                         (c.id, gif_id)).fetchone()
        if r is None:
            raise NotFound(f"GIF id {gif_id!r} is not a candidate of campaign {c.name!r}")
        why = file_problem(r[0], pool_root(c))
        if why is not None:
            raise NotFound(f"GIF {gif_id!r} of campaign {c.name!r} cannot be served: {why}")
        return FileResponse(r[0], media_type="image/gif", headers={"Cache-Control": "private, max-age=3600"})

    # ------------------------------------------------------------------ API
    @app.post("/api/session")
    def sign_in(body: SessionIn, conn=Depends(db)):
        who = authenticate(conn, body.token.strip())
        if who is None:
            raise Unauthorized("unknown token")
        resp = AsciiJSONResponse({"name": who.name, "is_admin": who.is_admin})
        resp.set_cookie(COOKIE, body.token.strip(), httponly=True, samesite="strict", path="/")
        return resp

    @app.delete("/api/session")
    def sign_out():
        resp = AsciiJSONResponse({"signed_out": True})
        resp.delete_cookie(COOKIE, path="/")
        return resp

    @app.get("/api/me")
    def me(who: Labeller = Depends(user)):
        return {"id": who.id, "name": who.name, "is_admin": who.is_admin}

    @app.get("/api/campaigns")
    def campaigns(conn=Depends(db), who: Labeller = Depends(user)):
        return _clean([c.progress() for c in list_campaigns(conn)])

    @app.post("/api/campaigns", status_code=201)
    def new_campaign(body: CampaignIn, conn=Depends(db), who: Labeller = Depends(admin)):
        c = create_campaign(conn, data_root, **body.model_dump())
        return _clean(c.progress())

    @app.get("/api/campaigns/{cid}")
    def campaign(cid: CampaignId, conn=Depends(db), who: Labeller = Depends(user)):
        return _clean(campaign_stats(conn, cid))

    @app.get("/api/campaigns/{cid}/next")
    def next_gif(cid: CampaignId, conn=Depends(db), who: Labeller = Depends(user)):
        nxt = next_candidate(conn, cid, who)
        prog = get_campaign(conn, cid).progress()
        if nxt is None:
            reason = "complete" if prog["status"] == "complete" else "nothing left for you"
            return _clean({"done": True, "reason": reason, "progress": prog})
        return _clean({"done": False, **nxt, "url": gif_url(cid, nxt["gif_id"]), "progress": prog})

    @app.post("/api/campaigns/{cid}/judgements", status_code=201)
    def judge(cid: CampaignId, body: JudgementIn, conn=Depends(db), who: Labeller = Depends(user)):
        out = submit_judgement(conn, cid, who, body.gif_id, body.answer)
        out["rerank_queued"] = out.pop("rerank_due")
        if out["rerank_queued"] and worker is not None:
            worker.wake()
        return _clean(out)

    @app.get("/api/campaigns/{cid}/gifs/{gif_id:path}/answers")
    def answers(cid: CampaignId, gif_id: GifId, conn=Depends(db), who: Labeller = Depends(user)):
        return others_answers(conn, cid, who, gif_id)

    @app.get("/api/campaigns/{cid}/pair")
    def pair(cid: CampaignId, conn=Depends(db), who: Labeller = Depends(user)):
        c = get_campaign(conn, cid)
        p = next_pair(conn, c.id, who)
        if p is None:
            return {"done": True, "emotion": c.emotion, "status": c.status}
        return {"done": False, "emotion": c.emotion, "left": p[0], "right": p[1],
                "left_url": gif_url(cid, p[0]), "right_url": gif_url(cid, p[1])}

    @app.post("/api/campaigns/{cid}/votes", status_code=201)
    def vote(cid: CampaignId, body: VoteIn, conn=Depends(db), who: Labeller = Depends(user)):
        return record_vote(conn, cid, who, body.left, body.right, body.choice)

    @app.post("/api/campaigns/{cid}/rerank")
    def rerank(cid: CampaignId, conn=Depends(db), who: Labeller = Depends(admin)):
        return _clean({"rerank": rerank_campaign(conn, cid)})

    @app.post("/api/campaigns/{cid}/reopen")
    def reopen(cid: CampaignId, body: ReopenIn, conn=Depends(db), who: Labeller = Depends(admin)):
        return _clean(reopen_campaign(conn, cid, body.target_np).progress())

    @app.post("/api/campaigns/{cid}/export")
    def export(cid: CampaignId, body: ExportIn, conn=Depends(db), who: Labeller = Depends(admin)):
        c = get_campaign(conn, cid)
        out = export_root / f"{c.name}-{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**6:06d}"
        return _clean(export_campaign(conn, c.id, out, copy_gifs=body.copy_gifs))

    return app
