"""Extension points: a new backbone, penalty or metric is one class/function + one config entry.

Each plug-in here lives in this one file (as a user's would live in one module of theirs),
is wired in through the same config shape as the shipped ones (``_target_`` + constructor
keys), and runs through the real pipeline: the backbone through the feature cache and ranking
checks, the penalty through the certified solver (against scikit-learn's MultiTaskLasso),
the registry and a checkpoint, the metric through the evaluation callback.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from gifemo.checkpoint import load_recognizer, save_checkpoint
from gifemo.data.clips import ClipSpec
from gifemo.features import ensure_visual_features
from gifemo.models.backbone import Backbone, same_backbone
from gifemo.models.layout import FeatureLayout
from gifemo.models.linear_recognizer import LinearRecognizer
from gifemo.models.penalties import PENALTIES, Penalty, make_penalty
from gifemo.models.solvers import fit_multitask_linear


# --------------------------------------------------------------------------- a backbone

class _MeanColour(nn.Module):
    def forward(self, x):  # [N, 3, L, H, W] -> [N, 6]: mean and std of each channel
        return torch.cat([x.mean((2, 3, 4)), x.std((2, 3, 4))], 1)


class MeanColourBackbone(Backbone):
    """Colour statistics of 4-frame 32x32 clips: no weights at all."""

    name = "mean_colour"
    clip_spec = ClipSpec(length=4, stride=2, resize_hw=(40, 40), crop=32)

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = float(scale)

    @property
    def output_dim(self):
        return 6

    def weights_id(self):
        return "none"

    def settings(self):
        return {"scale": self.scale}

    def build(self):
        return _MeanColour().eval().requires_grad_(False)

    def preprocess(self, clips):
        return clips.float() * (self.scale / 255.0)


def test_a_new_backbone_runs_through_the_feature_cache(demo_dir, tmp_path):
    config = {"_target_": f"{__name__}.MeanColourBackbone", "scale": 2.0}  # conf/backbone/*.yaml
    backbone = instantiate(config)
    run = {"accelerator": "cpu", "progress": False}
    table = ensure_visual_features(demo_dir, tmp_path / "cache", backbone, run=run)
    assert table.visual.shape == (len(table.ids), 6) and table.n_computed == len(table.ids)
    np.testing.assert_allclose(np.linalg.norm(table.visual, axis=1), 1.0, rtol=1e-5)
    assert table.backbone["clip_spec"]["length"] == 4 and table.backbone["name"] == "mean_colour"
    # its own cache folder, reused; another setting is another backbone identity
    again = ensure_visual_features(demo_dir, tmp_path / "cache", instantiate(config), run=run)
    assert again.n_computed == 0 and again.cache_dir == table.cache_dir
    other = instantiate({**config, "scale": 3.0}).identity()
    assert not same_backbone(other, table.backbone)


# --------------------------------------------------------------------------- a penalty

class L21Penalty(Penalty):
    """Group lasso over emotions: ρ Σ_i ‖W_i,:‖₂ (a feature is used by all tasks or none)."""

    smooth = False
    name = "l21_test"

    def __init__(self, rho: float):
        super().__init__()
        self.rho = float(rho)

    def value(self, W):
        return self.rho * W.norm(dim=1).sum()

    def prox(self, W, step):
        norms = W.norm(dim=1, keepdim=True)
        return W * torch.clamp(1 - step * self.rho / norms.clamp(min=1e-300), min=0.0)

    def _dual_norm(self, V):
        return float(V.norm(dim=1).max())

    def conjugate(self, V):
        return 0.0 if self._dual_norm(V) <= self.rho * (1 + 1e-12) else math.inf

    def dual_scale(self, V):
        dn = self._dual_norm(V)
        return 1.0 if dn <= self.rho else self.rho / dn

    def config(self):
        return {"name": self.name, "rho": self.rho}


def test_a_new_penalty_solves_registers_and_checkpoints(tmp_path):
    from sklearn.linear_model import MultiTaskLasso

    assert PENALTIES["l21_test"] is L21Penalty  # registered by defining it
    rng = np.random.default_rng(0)
    n, d, T = 60, 8, 17
    X = rng.normal(size=(n, d))
    W_true = rng.normal(size=(d, T)) * (rng.random((d, 1)) < 0.4)
    Y = X @ W_true + 25 + rng.normal(scale=0.3, size=(n, T))
    mask = np.ones((n, T), dtype=bool)
    rho = 40.0
    res = fit_multitask_linear(X, Y, mask, L21Penalty(rho), tol=1e-8, max_iter=20000)
    # scikit-learn: (1/2n)‖Y − XW − b‖² + α Σ‖W_i‖  =  (ours) / 2n  with  α = ρ / 2n
    sk = MultiTaskLasso(alpha=rho / (2 * n), tol=1e-12, max_iter=100000).fit(X, Y)
    np.testing.assert_allclose(res.W.numpy(), sk.coef_.T, atol=1e-4)
    # through the model config shape and a checkpoint (rebuilt by the registry)
    model_cfg = {"_target_": "gifemo.models.linear_recognizer.LinearRecognizer",
                 "penalty": {"_target_": f"{__name__}.L21Penalty", "rho": rho},
                 "cv_grid": [{"rho": 10.0}, {"rho": 1.0}]}
    m = instantiate(model_cfg, _partial_=True)(layout=FeatureLayout("visual", d, 0))
    assert isinstance(m, LinearRecognizer) and isinstance(m.penalty_for({"rho": 1.0}), L21Penalty)
    m.fit_exact(X, Y, mask)
    bb_config = {"_target_": f"{__name__}.MeanColourBackbone", "scale": 1.0}
    m.backbone_info = instantiate(bb_config).identity()
    m2, _ = load_recognizer(save_checkpoint(m, tmp_path / "c.pt", backbone_config=bb_config))
    assert isinstance(m2.penalty, L21Penalty) and m2.penalty.rho == rho
    x = torch.from_numpy(X[:5]).float()
    torch.testing.assert_close(m2(x), m(x).detach())
    assert make_penalty("l21_test", rho=2.0).rho == 2.0


def test_a_penalty_name_cannot_be_taken_twice():
    with pytest.raises(TypeError, match="taken"):
        type("Other", (Penalty,), {"name": "lasso"})


# --------------------------------------------------------------------------- a metric

def precision_at_5(y_true, score):
    """Fraction of positives among the 5 best-scored entries."""
    top = np.argsort(-np.asarray(score), kind="stable")[:5]
    return float(np.asarray(y_true)[top].mean())


def test_a_new_metric_is_one_function_and_one_config_line():
    from gifemo.eval.callbacks import PRMetricsCallback

    cb = instantiate({"_target_": "gifemo.eval.callbacks.PRMetricsCallback", "plot": False,
                      "table": False,
                      "extra_metrics": {"p_at_5": {"_target_": f"{__name__}.precision_at_5",
                                                   "_partial_": True}}})
    assert isinstance(cb, PRMetricsCallback)
    scores = np.tile(np.arange(10, dtype=np.float32)[:, None], (1, 17))
    y = np.full((10, 17), 10.0, dtype=np.float32)
    y[7:, :] = 40.0  # the three best-scored GIFs are positive in every emotion
    mask = np.ones((10, 17), dtype=bool)

    cb.stage_metrics("val", scores, y, mask)
    assert cb.metrics["val"]["val/p_at_5"] == pytest.approx(3 / 5)
