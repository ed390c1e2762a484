"""Checkpoints load with torch.load(weights_only=True) and rebuild identical recognizers."""
from __future__ import annotations

import fractions
import os

import numpy as np
import pytest
import torch

from gifemo.checkpoint import (CheckpointError, FORMAT, checkpoint_dict, clip_settings,
                               load_checkpoint, load_recognizer, save_checkpoint, to_primitive)
from gifemo.data.emotions import EMOTIONS
from gifemo.data.tags import TagVocabulary
from gifemo.models.c3d import weights_info
from gifemo.models.penalties import ClusteredMTLPenalty
from gifemo.models.recognizer import EmotionRecognizer, FeatureLayout, GPRecognizer


def _linear(penalty="clustered_mtl", **kw):
    kw = {"rho1": 1.0, "rho2": 1.0, **kw} if penalty == "clustered_mtl" else kw
    vocab = TagVocabulary.build([["happy", "lol"], ["sad"], ["happy"]], min_fraction=0.0)
    m = EmotionRecognizer(penalty, layout=FeatureLayout("visual_tags", 6, len(vocab)),
                          vocabulary=vocab, **kw)
    with torch.no_grad():
        m.head.W.normal_(generator=torch.Generator().manual_seed(0))
        m.head.b.uniform_(0, 30)
    info = weights_info("random", width=0.125, seed=7)
    m.backbone_info = {**info.to_dict(), "weights_id": info.weights_id}
    return m


def _walk(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _walk(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v)
    else:
        yield obj


def test_linear_round_trip_weights_only(tmp_path):
    m = _linear(rho1=2.0, rho2=0.5, k=3, cv_grid=[[1, 1], [10, 1]])
    path = save_checkpoint(m, tmp_path / "c.pt", clips=clip_settings(2),
                           decode={"backend": "pyav", "timeout_s": 30.0},
                           metrics={"test/pr_auc": 0.5}, extra={"note": "x"})
    raw = torch.load(path, weights_only=True)  # the contract: no code, primitives + tensors
    assert raw["format"] == FORMAT and raw["model_kind"] == "linear"
    assert all(isinstance(v, (torch.Tensor, str, int, float, bool, type(None)))
               for v in _walk(raw))
    assert raw["emotions"] == list(EMOTIONS)
    assert raw["penalty"] == {"name": "clustered_mtl", "rho1": 2.0, "rho2": 0.5, "k": 3}
    assert raw["features"]["order"] == ["visual", "tags"] and raw["features"]["visual_dim"] == 6
    assert "L2" in raw["features"]["visual_normalisation"]
    assert raw["vocabulary"]["tags"] == m.vocabulary.tags
    assert raw["clips"] == {"clip_len": 16, "stride": 8, "resize_hw": [128, 171], "crop": 112,
                            "max_clips_per_gif": 2}
    assert raw["backbone"]["sha256"] == "random" and raw["backbone"]["width"] == 0.125
    assert raw["backbone"]["weights_id"] == "random:seed=7:width=0.125"
    tensors = [v for v in _walk(raw) if isinstance(v, torch.Tensor)]
    assert sum(t.numel() for t in tensors) == 9 * 17 + 17  # W and b only, no backbone

    m2, ckpt = load_recognizer(path)
    assert isinstance(m2, EmotionRecognizer) and m2.penalty.config() == m.penalty.config()
    assert m2.vocabulary.tags == m.vocabulary.tags and m2.layout == m.layout
    assert m2.cv_grid == [[1.0, 1.0], [10.0, 1.0]] and m2.backbone_info == raw["backbone"]
    x = torch.randn(5, 9)
    torch.testing.assert_close(m2(x), m(x).detach())


def test_cross_validated_penalty_is_what_is_stored(tmp_path):
    m = _linear()
    m.set_penalty(ClusteredMTLPenalty(10.0, 0.1, k=2))
    m2, _ = load_recognizer(save_checkpoint(m, tmp_path / "c.pt"))
    assert (m2.penalty.rho1, m2.penalty.rho2) == (10.0, 0.1)


def test_gp_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4))
    Y = X @ rng.normal(size=(4, 17)) * 5 + 20
    M = rng.random((30, 17)) < 0.8
    m = GPRecognizer(max_train=50, layout=FeatureLayout("visual", 4, 0))
    m.fit_exact(X, Y, M)
    path = save_checkpoint(m, tmp_path / "gp.pt")
    raw = torch.load(path, weights_only=True)
    assert raw["model_kind"] == "gp" and raw["penalty"] is None and raw["vocabulary"] is None
    m2, _ = load_recognizer(path)
    x = torch.from_numpy(rng.normal(size=(6, 4)))
    torch.testing.assert_close(m2(x), m(x), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(m2.predicted_targets(x), m.predicted_targets(x))


def test_trained_checkpoint_reproduces_the_run(trained_lasso):
    """The checkpoint of a real run scores the test features exactly as the trained model."""
    metrics, objects = trained_lasso
    path = objects["checkpoint_path"]
    assert os.path.getsize(path) < 200_000  # head + vocabulary, not the backbone
    m2, ckpt = load_recognizer(path)
    X, _, _ = objects["datamodule"].full_batch("test")
    torch.testing.assert_close(m2(X), objects["model"](X).detach())
    assert ckpt["metrics"]["test/pr_auc"] == pytest.approx(metrics["test/pr_auc"])
    assert ckpt["backbone"]["weights_id"] == "random:seed=0:width=0.125"
    assert ckpt["clips"]["max_clips_per_gif"] == 1 and ckpt["decode"]["backend"] == "pyav"
    assert ckpt["fit"]["rel_gap"] <= 1e-4
    assert ckpt["extra"]["config"]["model"]["penalty"] == "lasso"


def test_not_a_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"format": FORMAT, "obj": fractions.Fraction(1, 3)}, tmp_path / "unsafe.pt")
    with pytest.raises(CheckpointError, match="weights_only"):
        load_checkpoint(tmp_path / "unsafe.pt")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a gifemo checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    ck = checkpoint_dict(_linear())
    ck["head"]["W"] = torch.zeros(3, 17)
    torch.save(ck, tmp_path / "bad_shape.pt")
    with pytest.raises(CheckpointError, match="inconsistent"):
        load_recognizer(tmp_path / "bad_shape.pt")


def test_to_primitive_refuses_objects():
    assert to_primitive({"a": (1, np.float32(2.5)), "b": np.arange(3)})["a"] == [1, 2.5]
    with pytest.raises(TypeError, match="Fraction"):
        to_primitive({"x": fractions.Fraction(1, 3)})
