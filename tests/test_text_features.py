"""Text tag features end to end (train -> checkpoint -> rank) and zero-shot ranking.

On the tiny session demo (60 GIFs); the sentence model is the packaged all-MiniLM-L6-v2
(skipped on a developer machine without the ``text`` extra, a failure under CI=true).
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from gifemo.checkpoint import load_checkpoint, load_recognizer
from gifemo.data.manifest import load_dataset
from gifemo.rank import RankError, rank_gifs, rank_zero_shot
from gifemo.training import run_train
from test_rank import RUN, rank_cli

pytestmark = pytest.mark.usefixtures("sentence_encoder")


@pytest.fixture(scope="module")
def text_run(compose_cfg, session_root):
    cfg = compose_cfg(session_root / "runs" / "text_lasso", ["features=text", "model=ridge"])
    return run_train(cfg)


def test_text_features_train_and_rank_with_the_same_embeddings(text_run, demo_dir, tmp_path,
                                                               sentence_encoder):
    metrics, objects = text_run
    feats, model = objects["features"], objects["model"]
    assert feats.layout.group == "text" and feats.layout.dim == 384
    assert np.isfinite(metrics["test/pr_auc"]) and metrics["test/pr_auc"] > 0
    ds = objects["dataset"]
    # the training rows are the encoder's own rows of each GIF's tags
    np.testing.assert_allclose(feats.X[:5], sentence_encoder.encode_numpy(ds.tags[:5]), atol=1e-6)
    ckpt = load_checkpoint(objects["checkpoint_path"])
    assert ckpt["text_encoder"]["identity"] == sentence_encoder.identity()
    assert ckpt["backbone"] is None and ckpt["features"]["text_dim"] == 384
    res = rank_gifs(objects["checkpoint_path"], demo_dir, out_csv=tmp_path / "r.csv", run=RUN)
    with torch.no_grad():
        want = model(torch.from_numpy(feats.X)).numpy()
    index = {g: i for i, g in enumerate(res.ids)}
    got = res.scores[[index[ds.ids[i]] for i in feats.rows]]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_visual_text_trains_end_to_end(compose_cfg, tmp_path):
    metrics, objects = run_train(compose_cfg(tmp_path, ["features=visual_text", "model=ridge"]))
    lay = objects["features"].layout
    assert lay.blocks == ("visual", "text") and lay.text_dim == 384 and lay.visual_dim > 0
    assert np.isfinite(metrics["test/pr_auc"])
    model, ckpt = load_recognizer(objects["checkpoint_path"])
    assert model.text_encoder is not None and ckpt["backbone"] is not None
    # the streaming ranking job scores such a model from its candidates' tags too
    from gifemo.rank import score_features
    from gifemo.ranking.job import _scorer

    feats, ds = objects["features"], objects["dataset"]
    visual = feats.X[:4, :lay.visual_dim]
    tags = [ds.tags[i] for i in feats.rows[:4]]
    np.testing.assert_allclose(_scorer(model)(visual, tags), score_features(model, visual, tags))
    with pytest.raises(ValueError, match="uses tags"):   # text is made from tags: None is misuse
        model.features(visual, None)


def test_a_checkpoint_of_another_text_model_is_refused(text_run, demo_dir, tmp_path):
    _, objects = text_run
    ckpt = load_checkpoint(objects["checkpoint_path"])
    ckpt["text_encoder"]["identity"]["weights_id"] = "f" * 16
    bad = tmp_path / "other.pt"
    torch.save(ckpt, bad)
    with pytest.raises(RankError, match="ffffffffffffffff"):
        rank_gifs(bad, demo_dir, run=RUN)


def test_zero_shot_ranks_any_emotion_without_a_checkpoint(demo_dir, tmp_path, capsys):
    res = rank_zero_shot(demo_dir, ["happiness", "nostalgia"], out_csv=tmp_path / "z.csv")
    ds = load_dataset(demo_dir)
    assert res.scores.shape == (len(ds), 2) and res.emotions == ["happiness", "nostalgia"]
    assert np.isfinite(res.scores).all() and np.abs(res.scores).max() <= 1 + 1e-5
    untagged = [i for i, t in enumerate(ds.tags) if not t]
    assert all(res.scores[i, 0] == 0 for i in untagged)
    # the command line, no checkpoint
    assert rank_cli.main(["--zero-shot", "happiness", str(demo_dir), "--top", "3",
                          "--out", str(tmp_path / "cli.csv")]) == 0
    out = capsys.readouterr().out
    assert "top 3 of" in out and "for happiness" in out and res.top("happiness", 1)[0][0] in out
    with pytest.raises(SystemExit):   # a checkpoint is not read with --zero-shot
        rank_cli.parse_args(["--zero-shot", "happiness", "ckpt.pt", str(demo_dir)])


def test_zero_shot_of_a_folder_without_tags_is_a_clear_error(demo_dir, tmp_path):
    folder = tmp_path / "plain"
    folder.mkdir()
    for p in sorted((demo_dir / "gifs").glob("*.gif"))[:2]:
        shutil.copy(p, folder / p.name)
    with pytest.raises(RankError, match="no tags"):
        rank_zero_shot(folder, "happiness")
