"""Command line of the labelling app (``scripts/collect.py``).

::

    collect.py init            --db collect.db                 # creates the db, prints an admin token
    collect.py add-labeller    --db collect.db alice [--admin] # prints alice's token (shown once)
    collect.py rotate-token    --db collect.db alice           # a new token for alice; the old one stops
    collect.py revoke          --db collect.db alice           # alice's token stops working for good
    collect.py create-campaign --db collect.db --name amuse-1 --emotion amusement \
                               --candidates POOL --checkpoint CKPT [--features F.npz | --weights C3D.pt] \
                               --np 3000 [--rerank-every 50]
    collect.py create-campaign --db collect.db --name awe-1 --zero-shot awe --candidates POOL \
                               --np 300 --rerank-every 20   # no checkpoint: zero-shot from tags
    collect.py reopen          --db collect.db --campaign amuse-1 --np 4000
    collect.py forget-unfinished --db collect.db amuse-1       # release the name of an interrupted creation
    collect.py serve           --db collect.db [--port 8765]   # http://127.0.0.1:8765/
    collect.py export          --db collect.db --campaign amuse-1 --out DIR [--copy-gifs]
    collect.py demo            --db collect.db [--port 8765]   # demo data + campaign + tokens, then serve

The server binds the loopback interface only. Errors are one line on stderr (exit status 2),
never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from pathlib import Path

from gifemo.collect.access import (
    authenticate,
    create_labeller,
    list_labellers,
    revoke_labeller,
    rotate_token,
)
from gifemo.collect.campaigns import create_campaign, forget_unfinished, get_campaign, reopen_campaign
from gifemo.collect.db import connect
from gifemo.collect.errors import CollectError, NotFound

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _data_root(db: Path) -> Path:
    db = db.resolve()
    return db.with_name(db.stem + "-data")


def serve(db: Path, host: str = "127.0.0.1", port: int = 8765, log_level: str = "info") -> None:
    """Run the app with uvicorn on the loopback interface."""
    import uvicorn

    from gifemo.collect.app import create_app

    if host not in LOOPBACK:
        raise SystemExit(f"refusing to bind {host!r}: the labelling app serves on loopback only "
                         f"({', '.join(LOOPBACK)})")
    if not 0 < port < 65536:
        raise CollectError(f"port {port}: expected 1-65535")
    uvicorn.run(create_app(db), host=host, port=port, log_level=log_level)


def _ensure_admin(conn) -> str | None:
    if any(lab.is_admin for lab in list_labellers(conn)):
        return None
    return create_labeller(conn, "admin", admin=True)


def demo(db: Path, port: int, run_server: bool = True) -> dict:
    """Build the demo campaign (idempotent), write tokens to ``<db>-data/tokens.json``, serve.

    A token in ``tokens.json`` is kept only if it still signs its person in to ``db`` (the
    database may have been deleted or the token rotated); otherwise a new one is made.
    """
    from gifemo.collect.demo import build_demo

    root = _data_root(db)
    root.mkdir(parents=True, exist_ok=True)
    files = build_demo(root / "demo")
    conn = connect(db)
    tokens_path = root / "tokens.json"
    try:
        tokens = json.loads(tokens_path.read_text()) if tokens_path.is_file() else {}
    except (OSError, ValueError):
        tokens = {}
    tokens = tokens if isinstance(tokens, dict) else {}
    existing = {lab.name for lab in list_labellers(conn, revoked=True)}
    for name, admin in (("admin", True), ("alice", False), ("bob", False), ("carol", False)):
        who = authenticate(conn, tokens.get(name))
        if who is not None and who.name == name:
            continue
        tokens[name] = rotate_token(conn, name) if name in existing else create_labeller(conn, name, admin=admin)
    fd = os.open(tokens_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(tokens, fh, indent=2)
    tokens_path.chmod(0o600)
    try:
        c = get_campaign(conn, "demo-amusement")
    except NotFound:
        c = create_campaign(conn, root, name="demo-amusement", emotion="amusement", candidates=files.pool,
                            checkpoint=files.checkpoint, target_np=20, rerank_every=10)
    conn.close()
    print(f"campaign {c.name!r}: {c.n_candidates} candidates, target {c.target_np} positives")
    print(f"labeller tokens (also in {tokens_path}):")
    for name, tok in tokens.items():
        print(f"  {name:6s} {tok}")
    if run_server:
        print(f"open http://127.0.0.1:{port}/ and sign in with a token")
        serve(db, port=port)
    return tokens


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="collect.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    def add(name: str, help: str) -> argparse.ArgumentParser:
        s = sub.add_parser(name, help=help)
        s.add_argument("--db", type=Path, required=True, help="SQLite database file")
        return s

    add("init", "create the database and an admin token")
    s = add("add-labeller", "create a labeller and print their token")
    s.add_argument("name")
    s.add_argument("--admin", action="store_true")
    s = add("rotate-token", "give a labeller a new token (printed); the old one stops working")
    s.add_argument("name")
    s = add("revoke", "stop a labeller's token from working (their answers stay)")
    s.add_argument("name")
    s = add("create-campaign", "score a candidate pool and open a campaign")
    s.add_argument("--name", required=True)
    s.add_argument("--emotion", help="one of the 17 emotions (with --checkpoint)")
    s.add_argument("--candidates", required=True, help="folder of GIFs, dataset folder or manifest.csv")
    s.add_argument("--checkpoint", help="training checkpoint, or a precomputed head .npz")
    s.add_argument("--zero-shot", metavar="EMOTION", default=None,
                   help="no checkpoint: start from zero-shot scores of the candidates' tags for "
                        "this emotion (any name); with --rerank-every the ranking then learns "
                        "from the answers")
    s.add_argument("--text-model", default="default",
                   help="sentence model for --zero-shot (default: the packaged all-MiniLM-L6-v2)")
    s.add_argument("--features", help="feature file (.npz) for a precomputed head")
    s.add_argument("--weights", help="C3D backbone weights file for a training checkpoint whose "
                   "recorded weights path does not exist here")
    s.add_argument("--np", dest="target_np", type=int, required=True, help="target number of positives")
    s.add_argument("--rerank-every", type=int, default=None)
    s.add_argument("--rerank-rho", type=float, default=1.0)
    s = add("reopen", "raise a campaign's target Np and make it active again")
    s.add_argument("--campaign", required=True)
    s.add_argument("--np", dest="target_np", type=int, required=True, help="new target number of positives")
    s = add("forget-unfinished", "release the name of a campaign whose creation was interrupted")
    s.add_argument("name")
    s = add("serve", "run the web app on 127.0.0.1")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8765)
    s.add_argument("--log-level", default="info")
    s = add("export", "write a campaign's labels and votes as a dataset folder")
    s.add_argument("--campaign", required=True)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--copy-gifs", action="store_true")
    s = add("demo", "demo data + campaign + tokens, then serve")
    s.add_argument("--port", type=int, default=8765)
    s.add_argument("--no-serve", action="store_true")
    a = p.parse_args(argv)

    try:
        return _run(a)
    except CollectError as e:
        print(f"error: {e}", file=sys.stderr)
    except sqlite3.Error as e:
        print(f"error: database {a.db}: {e}", file=sys.stderr)
    except OSError as e:
        print(f"error: {e.strerror or e}" + (f": {e.filename}" if e.filename else ""), file=sys.stderr)
    except (ValueError, OverflowError) as e:
        print(f"error: {e}", file=sys.stderr)
    return 2


def _run(a: argparse.Namespace) -> int:
    if a.db.is_dir():
        raise CollectError(f"--db {a.db} is a folder; give the database file (e.g. {a.db / 'collect.db'})")
    if a.cmd == "serve":
        serve(a.db, a.host, a.port, a.log_level)
        return 0
    if a.cmd == "demo":
        demo(a.db, a.port, run_server=not a.no_serve)
        return 0
    conn = connect(a.db)
    try:
        _admin_command(conn, a)
    finally:
        conn.close()
    return 0


def _admin_command(conn, a: argparse.Namespace) -> None:
    if a.cmd == "init":
        tok = _ensure_admin(conn)
        print(f"admin token: {tok}" if tok else "an admin already exists; "
              "use add-labeller NAME --admin for another")
    elif a.cmd == "add-labeller":
        print(create_labeller(conn, a.name, admin=a.admin))
    elif a.cmd == "rotate-token":
        print(rotate_token(conn, a.name))
    elif a.cmd == "revoke":
        revoke_labeller(conn, a.name)
        print(f"revoked {a.name}: their token no longer signs in (rotate-token {a.name} re-admits them)")
    elif a.cmd == "forget-unfinished":
        cid = forget_unfinished(conn, _data_root(a.db), a.name)
        print(f"released the name {a.name!r} (interrupted campaign {cid})")
    elif a.cmd == "reopen":
        print(json.dumps(reopen_campaign(conn, a.campaign, a.target_np).progress(), indent=2))
    elif a.cmd == "create-campaign":
        if (a.checkpoint is None) == (a.zero_shot is None):
            raise CollectError("create-campaign: give --checkpoint (with --emotion) or --zero-shot EMOTION")
        if a.zero_shot is None and a.emotion is None:
            raise CollectError("create-campaign: --checkpoint needs --emotion")
        if a.zero_shot is not None and a.emotion not in (None, a.zero_shot):
            raise CollectError(f"create-campaign: --emotion {a.emotion!r} and --zero-shot "
                               f"{a.zero_shot!r} disagree")
        zs = a.zero_shot is not None
        c = create_campaign(conn, _data_root(a.db), name=a.name,
                            emotion=a.zero_shot if zs else a.emotion,
                            candidates=a.candidates, checkpoint=a.checkpoint, features=a.features,
                            target_np=a.target_np, rerank_every=a.rerank_every,
                            rerank_rho=a.rerank_rho, weights=a.weights, zero_shot=zs,
                            text_model=a.text_model)
        print(json.dumps(c.progress(), indent=2))
    elif a.cmd == "export":
        from gifemo.collect.export import export_campaign

        summary = export_campaign(conn, a.campaign, a.out, copy_gifs=a.copy_gifs)
        print(json.dumps(summary, indent=2))
