"""A labelling campaign with no checkpoint: zero-shot scores from the tags first, then the
app's re-ranking learns from the answers (cold start -> supervised in the same campaign)."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("sentence_encoder")


def test_zero_shot_campaign_starts_from_tags_and_the_first_rerank_changes_the_ranking(
        demo_dir, tmp_path, capsys):
    from gifemo.collect.access import Labeller, create_labeller
    from gifemo.collect.campaigns import campaign_stats, get_campaign
    from gifemo.collect.cli import main
    from gifemo.collect.db import connect
    from gifemo.collect.labelling import next_candidate, submit_judgement
    from gifemo.collect.rerank import rerank_campaign
    from gifemo.collect.scoring import MU0, SIGMA0, ZERO_SHOT
    from gifemo.data.emotions import EMOTIONS
    from gifemo.data.manifest import load_dataset
    from gifemo.rank import rank_zero_shot

    db = tmp_path / "c.db"
    assert main(["create-campaign", "--db", str(db), "--name", "zs", "--zero-shot", "Happiness",
                 "--candidates", str(demo_dir), "--np", "5", "--rerank-every", "4"]) == 0
    made = json.loads(capsys.readouterr().out)
    conn = connect(db)
    c = get_campaign(conn, "zs")
    assert made["emotion"] == c.emotion == "happiness" and c.checkpoint == f"{ZERO_SHOT}:default"
    # the starting order is rank.py --zero-shot's order, on the head's scale µ0 + σ0 z
    ref = rank_zero_shot(demo_dir, "happiness")
    rows = conn.execute("SELECT gif_id, score0 FROM candidates WHERE campaign_id = ? ORDER BY rank0",
                        (c.id,)).fetchall()
    assert [r[0] for r in rows] == [ref.ids[i] for i in ref.order("happiness")]
    s0 = np.array([r[1] for r in rows])
    assert abs(s0.mean() - MU0) < 1e-6 and abs(s0.std() - SIGMA0) < 1e-6

    truth = load_dataset(demo_dir)
    t = EMOTIONS.index("happiness")
    positive = dict(zip(truth.ids, truth.positive[:, t]))
    create_labeller(conn, "a")
    create_labeller(conn, "b")
    a, b = Labeller(1, "a", False), Labeller(2, "b", False)
    for _ in range(4):                                   # labellers answer as the demo's labels say
        g = next_candidate(conn, c.id, a)["gif_id"]
        assert next_candidate(conn, c.id, b)["gif_id"] == g
        ans = "yes" if positive[g] else "no"
        submit_judgement(conn, c.id, a, g, ans)
        out = submit_judgement(conn, c.id, b, g, ans)
    assert out["rerank_due"]
    before = [r[0] for r in conn.execute("SELECT gif_id FROM candidates WHERE campaign_id = ? AND "
                                         "label IS NULL ORDER BY rank", (c.id,))]
    r = rerank_campaign(conn, c.id)
    assert r["n_train"] == 4 and r["rel_gap"] <= 1e-4
    after = [r[0] for r in conn.execute("SELECT gif_id FROM candidates WHERE campaign_id = ? AND "
                                        "label IS NULL ORDER BY rank", (c.id,))]
    assert sorted(before) == sorted(after) and before != after
    assert campaign_stats(conn, c.id)["reranks"][0]["n_decided"] == 4
    # the next candidate now comes from the re-ranked order
    assert next_candidate(conn, c.id, a)["gif_id"] == after[0]


def test_zero_shot_campaign_arguments_are_checked(demo_dir, tmp_path, capsys):
    from gifemo.collect.cli import main

    db = str(tmp_path / "c.db")
    base = ["create-campaign", "--db", db, "--candidates", str(demo_dir), "--np", "2"]
    assert main(base + ["--name", "x"]) == 2
    assert "--checkpoint (with --emotion) or --zero-shot" in capsys.readouterr().err
    assert main(base + ["--name", "x", "--zero-shot", "awe", "--checkpoint", "c.pt"]) == 2
    capsys.readouterr()
    assert main(base + ["--name", "x", "--zero-shot", "drop table;"]) == 2
    assert "letters" in capsys.readouterr().err
    assert main(base + ["--name", "x", "--zero-shot", "awe", "--emotion", "fear"]) == 2
    assert "disagree" in capsys.readouterr().err
    assert main(base + ["--name", "awe", "--zero-shot", "awe"]) == 0    # any emotion name
    assert json.loads(capsys.readouterr().out)["emotion"] == "awe"
