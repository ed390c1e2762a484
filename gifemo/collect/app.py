"""The labelling web app (FastAPI + Jinja2, served by uvicorn on 127.0.0.1).

Pages (signed-in labellers; anyone else is sent to ``/login``)::

    GET  /login                         sign in with a token
    GET  /                              campaigns and their progress
    GET  /campaigns/{id}                label: GIF playing, yes / no / skip (keys y / n / s),
                                        progress towards Np, running precision, agreement,
                                        looks saved (replay)
    GET  /campaigns/{id}/compare        "which of these two GIFs expresses <emotion> more?"
                                        left / right / neither (keys ← / → / ↓ or l / r / n)
    GET  /gifs/{id}/{gif_id}            the GIF file of a candidate

JSON API (``Authorization: Bearer <token>`` or the sign-in cookie; errors are
``{"detail": message}`` with 401/403/404/409/422)::

    POST /api/session                   {"token"} -> sets the cookie; DELETE signs out
    GET  /api/me
    GET  /api/campaigns                                     list with progress
    POST /api/campaigns                 (admin)             create: name, emotion, candidates,
                                                            checkpoint, target_np[, features,
                                                            rerank_every, rerank_rho]
    GET  /api/campaigns/{id}                                progress, agreement, replay, re-ranks
    GET  /api/campaigns/{id}/next                           next candidate for me (or done)
    POST /api/campaigns/{id}/judgements {"gif_id", "answer": yes|no|skip}
    GET  /api/campaigns/{id}/gifs/{gif_id}/answers          everyone's answers, after my own
    GET  /api/campaigns/{id}/pair                           next pair for me to compare
    POST /api/campaigns/{id}/votes      {"left", "right", "choice": left|right|neither}
    POST /api/campaigns/{id}/rerank     (admin)             re-rank now
    POST /api/campaigns/{id}/export     (admin)             {"labels", "copy_gifs"} -> dataset folder

Each request opens its own SQLite connection (:mod:`gifemo.collect.db`); every write is one
transaction in the service modules, so this file only parses, authorises and formats.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel

from gifemo.collect.access import Labeller, authenticate
from gifemo.collect.campaigns import (
    campaign_stats,
    create_campaign,
    get_campaign,
    list_campaigns,
)
from gifemo.collect.db import connect
from gifemo.collect.errors import CollectError, Forbidden, NotFound, Unauthorized
from gifemo.collect.export import export_campaign
from gifemo.collect.labelling import next_candidate, others_answers, submit_judgement
from gifemo.collect.rerank import rerank_campaign
from gifemo.collect.votes import next_pair, record_vote

COOKIE = "gifemo_token"
HERE = Path(__file__).parent


class SessionIn(BaseModel):
    token: str


class JudgementIn(BaseModel):
    gif_id: str
    answer: str


class VoteIn(BaseModel):
    left: str
    right: str
    choice: str


class CampaignIn(BaseModel):
    name: str
    emotion: str
    candidates: str
    checkpoint: str
    target_np: int
    features: str | None = None
    rerank_every: int | None = None
    rerank_rho: float = 1.0


class ExportIn(BaseModel):
    labels: str = "auto"
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


def create_app(db_path: str | Path, *, data_root: str | Path | None = None,
               export_root: str | Path | None = None) -> FastAPI:
    """Build the app over the database at ``db_path`` (created if missing).

    ``data_root`` holds each campaign's cached features (default ``<db>-data/``);
    ``export_root`` is where API exports are written (default ``<db>-exports/``).
    """
    db_path = Path(db_path).resolve()
    data_root = Path(data_root) if data_root else db_path.with_name(db_path.stem + "-data")
    export_root = Path(export_root) if export_root else db_path.with_name(db_path.stem + "-exports")
    connect(db_path).close()  # create the schema once, up front

    app = FastAPI(title="gifemo collect", docs_url="/api/docs", redoc_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=str(HERE / "templates"))

    @app.exception_handler(CollectError)
    async def _collect_error(request: Request, exc: CollectError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    def db() -> Iterator[Any]:
        conn = connect(db_path, check_same_thread=False)
        try:
            yield conn
        finally:
            conn.close()

    def _token(request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return request.cookies.get(COOKIE)

    def user(request: Request, conn=Depends(db)) -> Labeller:
        who = authenticate(conn, _token(request))
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
        who = authenticate(conn, _token(request))
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
    def label_page(cid: int, request: Request, conn=Depends(db)):
        return signed_in_page(request, conn, "label.html", lambda: {"c": get_campaign(conn, cid)})

    @app.get("/campaigns/{cid}/compare", response_class=HTMLResponse)
    def compare_page(cid: int, request: Request, conn=Depends(db)):
        return signed_in_page(request, conn, "compare.html", lambda: {"c": get_campaign(conn, cid)})

    @app.get("/gifs/{cid}/{gif_id:path}")
    def gif_file(cid: int, gif_id: str, conn=Depends(db), who: Labeller = Depends(user)):
        c = get_campaign(conn, cid)
        r = conn.execute("SELECT path FROM candidates WHERE campaign_id = ? AND gif_id = ?",
                         (c.id, gif_id)).fetchone()
        if r is None:
            raise NotFound(f"GIF id {gif_id!r} is not a candidate of campaign {c.name!r}")
        if not Path(r[0]).is_file():
            raise NotFound(f"GIF {gif_id!r}: file {r[0]} is missing on the server")
        return FileResponse(r[0], media_type="image/gif", headers={"Cache-Control": "private, max-age=3600"})

    # ------------------------------------------------------------------ API
    @app.post("/api/session")
    def sign_in(body: SessionIn, conn=Depends(db)):
        who = authenticate(conn, body.token.strip())
        if who is None:
            raise Unauthorized("unknown token")
        resp = JSONResponse({"name": who.name, "is_admin": who.is_admin})
        resp.set_cookie(COOKIE, body.token.strip(), httponly=True, samesite="strict", path="/")
        return resp

    @app.delete("/api/session")
    def sign_out():
        resp = JSONResponse({"signed_out": True})
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
    def campaign(cid: int, conn=Depends(db), who: Labeller = Depends(user)):
        return _clean(campaign_stats(conn, cid))

    @app.get("/api/campaigns/{cid}/next")
    def next_gif(cid: int, conn=Depends(db), who: Labeller = Depends(user)):
        nxt = next_candidate(conn, cid, who)
        prog = get_campaign(conn, cid).progress()
        if nxt is None:
            reason = "complete" if prog["status"] == "complete" else "nothing left for you"
            return _clean({"done": True, "reason": reason, "progress": prog})
        return _clean({"done": False, **nxt, "url": f"/gifs/{cid}/{nxt['gif_id']}", "progress": prog})

    @app.post("/api/campaigns/{cid}/judgements", status_code=201)
    def judge(cid: int, body: JudgementIn, conn=Depends(db), who: Labeller = Depends(user)):
        out = submit_judgement(conn, cid, who, body.gif_id, body.answer)
        if out.pop("rerank_due"):
            out["rerank"] = rerank_campaign(conn, cid)
        return _clean(out)

    @app.get("/api/campaigns/{cid}/gifs/{gif_id:path}/answers")
    def answers(cid: int, gif_id: str, conn=Depends(db), who: Labeller = Depends(user)):
        return others_answers(conn, cid, who, gif_id)

    @app.get("/api/campaigns/{cid}/pair")
    def pair(cid: int, conn=Depends(db), who: Labeller = Depends(user)):
        c = get_campaign(conn, cid)
        p = next_pair(conn, c.id, who)
        if p is None:
            return {"done": True, "emotion": c.emotion}
        return {"done": False, "emotion": c.emotion, "left": p[0], "right": p[1],
                "left_url": f"/gifs/{cid}/{p[0]}", "right_url": f"/gifs/{cid}/{p[1]}"}

    @app.post("/api/campaigns/{cid}/votes", status_code=201)
    def vote(cid: int, body: VoteIn, conn=Depends(db), who: Labeller = Depends(user)):
        return record_vote(conn, cid, who, body.left, body.right, body.choice)

    @app.post("/api/campaigns/{cid}/rerank")
    def rerank(cid: int, conn=Depends(db), who: Labeller = Depends(admin)):
        return _clean({"rerank": rerank_campaign(conn, cid)})

    @app.post("/api/campaigns/{cid}/export")
    def export(cid: int, body: ExportIn, conn=Depends(db), who: Labeller = Depends(admin)):
        c = get_campaign(conn, cid)
        out = export_root / f"{c.name}-{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**6:06d}"
        return _clean(export_campaign(conn, c.id, out, labels=body.labels, copy_gifs=body.copy_gifs))

    return app
