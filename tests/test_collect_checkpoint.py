"""Integration: a campaign scored with a real training checkpoint (narrow C3D + tags, trained by
``gifemo.training.run_train`` on the tiny demo set) ranks exactly as ``gifemo.rank`` does, and
re-ranking refits the head on the real cached features."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = [pytest.mark.timeout(300),
              pytest.mark.slow]  # end to end (training run, C3D features, refits): `make test-all`


def test_campaign_from_a_training_checkpoint_matches_rank_and_reranks(trained_lasso, demo_dir, tmp_path):
    from gifemo.collect.access import Labeller, create_labeller
    from gifemo.collect.campaigns import campaign_stats, create_campaign
    from gifemo.collect.db import connect
    from gifemo.collect.errors import PoolError
    from gifemo.collect.labelling import next_candidate, submit_judgement
    from gifemo.rank import rank_gifs

    ckpt = trained_lasso[1]["checkpoint_path"]
    emotion = "happiness"
    # the campaign reuses the feature cache rank fills (same settings key, so C3D runs once)
    ref = rank_gifs(ckpt, demo_dir, cache_dir=tmp_path / "data" / "feature-cache", run={"progress": False})
    conn = connect(tmp_path / "c.db")
    create_labeller(conn, "a")
    create_labeller(conn, "b")
    c = create_campaign(conn, tmp_path / "data", name="real", emotion=emotion, candidates=demo_dir,
                        checkpoint=ckpt, target_np=5, rerank_every=4)
    assert c.n_candidates == len(ref.ids)
    got = conn.execute("SELECT gif_id, score0, rank0 FROM candidates ORDER BY rank0").fetchall()
    assert [r[0] for r in got] == [ref.ids[i] for i in ref.order(emotion)]
    t = ref.emotions.index(emotion)
    ref_score = dict(zip(ref.ids, ref.scores[:, t]))
    np.testing.assert_allclose([r[1] for r in got], [ref_score[r[0]] for r in got], rtol=1e-5, atol=1e-5)
    X = np.load(tmp_path / "data" / "campaigns" / str(c.id) / "features.npy")
    assert X.shape[0] == len(ref.ids) and X.shape[1] > 0

    a, b = Labeller(1, "a", False), Labeller(2, "b", False)
    for i in range(4):                                    # four decisions trigger one re-rank
        g = next_candidate(conn, c.id, a)["gif_id"]
        assert next_candidate(conn, c.id, b)["gif_id"] == g
        ans = "yes" if i % 2 == 0 else "no"
        submit_judgement(conn, c.id, a, g, ans)
        out = submit_judgement(conn, c.id, b, g, ans)
    assert out["rerank_due"]
    from gifemo.collect.rerank import rerank_campaign

    r = rerank_campaign(conn, c.id)
    assert r["n_train"] == 4 and r["n_train_pos"] == 2 and r["rel_gap"] <= 1e-4
    assert campaign_stats(conn, c.id)["reranks"][0]["n_decided"] == 4
    with pytest.raises(PoolError, match="feature file"):
        create_campaign(conn, tmp_path / "data", name="real2", emotion=emotion, candidates=demo_dir,
                        checkpoint=ckpt, target_np=5, features=tmp_path / "x.npz")
