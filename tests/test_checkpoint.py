"""Checkpoints load with torch.load(weights_only=True) and rebuild identical recognizers."""
from __future__ import annotations

import fractions
import os

import numpy as np
import pytest
import torch

from gifemo.checkpoint import (CheckpointError, FORMAT, checkpoint_dict, load_checkpoint,
                               load_recognizer, save_checkpoint, to_primitive)
from gifemo.data.emotions import EMOTIONS
from gifemo.data.tags import TagVocabulary
from gifemo.models.c3d import C3DBackbone
from gifemo.models.gp_recognizer import GPRecognizer
from gifemo.models.layout import FeatureLayout
from gifemo.models.linear_recognizer import LinearRecognizer
from gifemo.models.penalties import ClusteredMTLPenalty, make_penalty

BACKBONE_CONFIG = {"_target_": "gifemo.models.c3d.C3DBackbone", "weights": "random",
                   "width": 0.125, "seed": 7, "convention": None}


def _linear(penalty="clustered_mtl", cv_grid=None, **kw):
    kw = {"rho1": 1.0, "rho2": 1.0, **kw} if penalty == "clustered_mtl" else kw
    vocab = TagVocabulary.build([["happy", "lol"], ["sad"], ["happy"]], min_fraction=0.0)
    m = LinearRecognizer(make_penalty(penalty, **kw), cv_grid=cv_grid,
                         layout=FeatureLayout("visual_tags", 6, len(vocab)), vocabulary=vocab)
    with torch.no_grad():
        m.head.W.normal_(generator=torch.Generator().manual_seed(0))
        m.head.b.uniform_(0, 30)
    m.backbone_info = C3DBackbone("random", width=0.125, seed=7).identity()
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
    m = _linear(rho1=2.0, rho2=0.5, k=3, cv_grid=[{"rho1": 1, "rho2": 1}, {"rho1": 10, "rho2": 1}])
    path = save_checkpoint(m, tmp_path / "c.pt", backbone_config=BACKBONE_CONFIG,
                           clips={"max_clips_per_gif": 2},
                           decode={"backend": "pyav", "timeout_s": 30.0},
                           metrics={"test/pr_auc": 0.5}, extra={"note": "x"})
    raw = torch.load(path, weights_only=True)  # the contract: no code, primitives + tensors
    assert raw["format"] == FORMAT and raw["model_kind"] == "linear"
    assert all(isinstance(v, (torch.Tensor, str, int, float, bool, type(None)))
               for v in _walk(raw))
    assert raw["emotions"] == list(EMOTIONS)
    assert raw["hyperparameters"]["penalty"] == {"name": "clustered_mtl", "rho1": 2.0, "rho2": 0.5,
                                                 "k": 3}
    assert raw["features"]["order"] == ["visual", "tags"] and raw["features"]["visual_dim"] == 6
    assert "L2" in raw["features"]["visual_normalisation"]
    assert raw["vocabulary"]["tags"] == m.vocabulary.tags
    assert raw["clips"] == {"max_clips_per_gif": 2}
    assert raw["backbone"]["config"] == BACKBONE_CONFIG
    assert raw["backbone"]["identity"]["weights_id"] == "random:seed=7:width=0.125"
    assert raw["backbone"]["identity"]["clip_spec"] == {"length": 16, "stride": 8,
                                                        "resize_hw": [128, 171], "crop": 112}
    tensors = [v for v in _walk(raw) if isinstance(v, torch.Tensor)]
    assert sum(t.numel() for t in tensors) == 9 * 17 + 17  # W and b only, no backbone

    m2, ckpt = load_recognizer(path)
    assert isinstance(m2, LinearRecognizer) and m2.penalty.config() == m.penalty.config()
    assert m2.vocabulary.tags == m.vocabulary.tags and m2.layout == m.layout
    assert m2.cv_grid == [{"rho1": 1, "rho2": 1}, {"rho1": 10, "rho2": 1}]
    assert m2.backbone_info == raw["backbone"]["identity"]
    x = torch.randn(5, 9)
    torch.testing.assert_close(m2(x), m(x).detach())


def test_cross_validated_penalty_is_what_is_stored(tmp_path):
    m = _linear()
    m.set_penalty(ClusteredMTLPenalty(10.0, 0.1, k=2))
    m2, _ = load_recognizer(save_checkpoint(m, tmp_path / "c.pt", backbone_config=BACKBONE_CONFIG))
    assert (m2.penalty.rho1, m2.penalty.rho2) == (10.0, 0.1)


def test_gp_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4))
    Y = X @ rng.normal(size=(4, 17)) * 5 + 20
    M = rng.random((30, 17)) < 0.8
    m = GPRecognizer(max_train=50, layout=FeatureLayout("visual", 4, 0))
    m.fit_exact(X, Y, M)
    m.backbone_info = C3DBackbone("random", width=0.125, seed=7).identity()
    path = save_checkpoint(m, tmp_path / "gp.pt", backbone_config=BACKBONE_CONFIG)
    raw = torch.load(path, weights_only=True)
    assert raw["model_kind"] == "gp" and raw["vocabulary"] is None
    assert raw["hyperparameters"] == {"max_train": 50, "seed": 0, "n_restarts": 0,
                                      "target_max": 50.0, "include_noise": False,
                                      "score_form": "printed"}
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
    assert ckpt["backbone"]["identity"]["weights_id"] == "random:seed=0:width=0.125"
    assert ckpt["clips"]["max_clips_per_gif"] == 1 and ckpt["decode"]["backend"] == "pyav"
    assert ckpt["fit"]["rel_gap"] <= 1e-4
    assert ckpt["hyperparameters"]["penalty"] == {"name": "lasso", "rho": 1.0}
    assert ckpt["extra"]["config"]["model"]["penalty"]["_target_"].endswith("L1Penalty")


def test_not_a_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"format": FORMAT, "obj": fractions.Fraction(1, 3)}, tmp_path / "unsafe.pt")
    with pytest.raises(CheckpointError, match="weights_only"):
        load_checkpoint(tmp_path / "unsafe.pt")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a gifemo checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    ck = checkpoint_dict(_linear(), backbone_config=BACKBONE_CONFIG)
    ck["head"]["W"] = torch.zeros(3, 17)
    torch.save(ck, tmp_path / "bad_shape.pt")
    with pytest.raises(CheckpointError, match="inconsistent"):
        load_recognizer(tmp_path / "bad_shape.pt")


def test_to_primitive_refuses_objects():
    assert to_primitive({"a": (1, np.float32(2.5)), "b": np.arange(3)})["a"] == [1, 2.5]
    with pytest.raises(TypeError, match="Fraction"):
        to_primitive({"x": fractions.Fraction(1, 3)})


def test_unknown_model_kind_and_missing_backbone_config_are_clear_errors(tmp_path):
    ck = checkpoint_dict(_linear(), backbone_config=BACKBONE_CONFIG)
    ck["model_kind"] = "transformer"
    torch.save(ck, tmp_path / "kind.pt")
    with pytest.raises(CheckpointError, match="unknown model kind 'transformer'"):
        load_recognizer(tmp_path / "kind.pt")
    with pytest.raises(ValueError, match="backbone_config"):
        checkpoint_dict(_linear())
