"""The admin command line: init, tokens, campaign creation, export, and loopback-only serving."""

from __future__ import annotations

import json

import pytest

from gifemo.collect.access import authenticate
from gifemo.collect.cli import main
from gifemo.collect.db import connect
from gifemo.collect.demo import synthetic_pool
from gifemo.data.manifest import load_dataset


def test_admin_commands_end_to_end(tmp_path, capsys):
    pool = synthetic_pool(tmp_path / "pool", n=10, d=4, seed=0)
    db = tmp_path / "c.db"
    assert main(["init", "--db", str(db)]) == 0
    admin_tok = capsys.readouterr().out.split("admin token: ")[1].strip()
    assert main(["init", "--db", str(db)]) == 0
    assert "already exists" in capsys.readouterr().out
    assert main(["add-labeller", "--db", str(db), "ann"]) == 0
    ann_tok = capsys.readouterr().out.strip()
    assert main(["add-labeller", "--db", str(db), "ann"]) == 2
    assert "already exists" in capsys.readouterr().err
    conn = connect(db)
    assert authenticate(conn, admin_tok).is_admin and authenticate(conn, ann_tok).name == "ann"
    assert conn.execute("SELECT COUNT(*) FROM labellers WHERE token_sha256 = ?", (ann_tok,)).fetchone()[0] == 0
    assert main(["create-campaign", "--db", str(db), "--name", "c", "--emotion", "fear", "--candidates",
                 str(pool.folder), "--checkpoint", str(pool.head), "--features", str(pool.features), "--np", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["n_candidates"] == 10
    assert main(["create-campaign", "--db", str(db), "--name", "d", "--emotion", "joy", "--candidates",
                 str(pool.folder), "--checkpoint", str(pool.head), "--features", str(pool.features), "--np", "2"]) == 2
    assert "unknown emotion 'joy'" in capsys.readouterr().err
    assert main(["export", "--db", str(db), "--campaign", "c", "--out", str(tmp_path / "out")]) == 2
    assert "no decided or compared" in capsys.readouterr().err
    conn.execute("UPDATE candidates SET label = 1, look = 1 WHERE gif_id = 'g0000'")
    assert main(["export", "--db", str(db), "--campaign", "c", "--out", str(tmp_path / "out"), "--copy-gifs"]) == 0
    ds = load_dataset(tmp_path / "out")
    assert ds.ids == ["g0000"] and ds.paths[0].parent == (tmp_path / "out" / "gifs").resolve()


def test_serve_refuses_a_non_loopback_address(tmp_path):
    pytest.importorskip("uvicorn", reason="the labelling app needs the 'collect' extra")
    with pytest.raises(SystemExit, match="loopback only"):
        main(["serve", "--db", str(tmp_path / "c.db"), "--host", "0.0.0.0"])


def test_cli_errors_are_one_line_not_tracebacks(tmp_path, capsys):
    folder = tmp_path / "a-folder"
    folder.mkdir()
    assert main(["init", "--db", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["serve", "--db", str(tmp_path / "c.db"), "--port", "99999"]) == 2
    err = capsys.readouterr().err
    assert "port 99999" in err and "Traceback" not in err
    (tmp_path / "junk.db").write_bytes(b"this is not a database" * 100)
    assert main(["add-labeller", "--db", str(tmp_path / "junk.db"), "ann"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "junk.db" in err


def test_tokens_can_be_rotated_and_revoked(tmp_path, capsys):
    db = tmp_path / "c.db"
    assert main(["add-labeller", "--db", str(db), "ann"]) == 0
    old = capsys.readouterr().out.strip()
    assert main(["rotate-token", "--db", str(db), "ann"]) == 0
    new = capsys.readouterr().out.strip()
    conn = connect(db)
    assert new != old and authenticate(conn, old) is None and authenticate(conn, new).name == "ann"
    assert main(["revoke", "--db", str(db), "ann"]) == 0
    assert authenticate(conn, new) is None
    assert main(["revoke", "--db", str(db), "nobody"]) == 2
    assert "no labeller 'nobody'" in capsys.readouterr().err
    assert main(["rotate-token", "--db", str(db), "ann"]) == 0      # re-admits ann with a new token
    assert authenticate(conn, capsys.readouterr().out.strip()).name == "ann"


def test_create_campaign_takes_backbone_weights(tmp_path, capsys, monkeypatch):
    import gifemo.collect.cli as cli

    pool = synthetic_pool(tmp_path / "pool", n=6, d=3, seed=0)
    seen = {}
    real = cli.create_campaign

    def spy(*a, **kw):
        seen.update(kw)
        return real(*a, **kw)

    monkeypatch.setattr(cli, "create_campaign", spy)
    args = ["create-campaign", "--db", str(tmp_path / "c.db"), "--name", "c", "--emotion", "fear",
            "--candidates", str(pool.folder), "--checkpoint", str(pool.head), "--np", "2"]
    assert main(args + ["--features", str(pool.features), "--weights", str(tmp_path / "c3d.pt")]) == 2
    assert seen["weights"] == str(tmp_path / "c3d.pt")
    assert "go with a training checkpoint" in capsys.readouterr().err   # a head has no backbone


def test_demo_makes_new_tokens_when_the_database_is_new_or_the_file_lost(tmp_path, capsys, monkeypatch):
    import gifemo.collect.cli as cli
    import gifemo.collect.demo as demo_module

    pool = synthetic_pool(tmp_path / "pool", n=30, d=3, seed=0)
    monkeypatch.setattr(demo_module, "build_demo",
                        lambda root: demo_module.DemoFiles(pool.folder, pool.folder, pool.head))
    real = cli.create_campaign
    monkeypatch.setattr(cli, "create_campaign", lambda *a, **kw: real(*a, **kw, features=pool.features))
    db = tmp_path / "c.db"

    def signed_in(tokens):
        conn = connect(db)
        try:
            return {n: getattr(authenticate(conn, t), "name", None) for n, t in tokens.items()}
        finally:
            conn.close()

    (tmp_path / "c-data").mkdir()
    first = cli.demo(db, 0, run_server=False)
    assert signed_in(first) == {n: n for n in first}
    for p in tmp_path.glob("c.db*"):                     # the database is deleted, tokens.json stays
        p.unlink()
    second = cli.demo(db, 0, run_server=False)
    assert signed_in(second) == {n: n for n in second} and second["alice"] != first["alice"]
    (tmp_path / "c-data" / "tokens.json").unlink()       # tokens.json lost, the database kept
    third = cli.demo(db, 0, run_server=False)
    assert signed_in(third) == {n: n for n in third}
    assert signed_in(second)["alice"] is None            # the lost tokens were replaced
    capsys.readouterr()


def test_an_interrupted_creation_keeps_its_name_until_forgotten(tmp_path, capsys):
    pool = synthetic_pool(tmp_path / "pool", n=6, d=3, seed=0)
    db = tmp_path / "c.db"
    conn = connect(db)
    conn.execute("INSERT INTO campaigns (name, emotion, candidates, checkpoint, features, target_np, rerank_rho, "
                 "status, n_candidates, created_at, ready) VALUES ('c', 'fear', '', '', '', 2, 1, 'active', 0, 0, 0)")
    (tmp_path / "c-data" / "campaigns" / "1").mkdir(parents=True)   # as left by a process killed mid-way
    args = ["create-campaign", "--db", str(db), "--name", "c", "--emotion", "fear", "--candidates",
            str(pool.folder), "--checkpoint", str(pool.head), "--features", str(pool.features), "--np", "2"]
    assert main(args) == 2
    assert "forget-unfinished c" in capsys.readouterr().err
    assert main(["forget-unfinished", "--db", str(db), "c"]) == 0
    assert not (tmp_path / "c-data" / "campaigns" / "1").exists()
    assert main(args) == 0
    assert main(["forget-unfinished", "--db", str(db), "c"]) == 2          # a finished one stays
    assert "finished" in capsys.readouterr().err
    assert conn.execute("SELECT COUNT(*) FROM campaigns WHERE ready = 1").fetchone()[0] == 1
