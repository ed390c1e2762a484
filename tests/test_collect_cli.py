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
