"""PRMetricsCallback through a real Trainer: values vs brute force, batching invariance,
masks and the y > 25 rule, files, emotions without positives (synthetic scores)."""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import CSVLogger

from gifemo.data.feature_datamodule import FeatureDataModule
from gifemo.data.emotions import EMOTIONS
from gifemo.eval.callbacks import PRMetricsCallback
from gifemo.eval.metrics import PR_AUC_NOTE, NoPositivesWarning
from gifemo.models.layout import FeatureLayout
from gifemo.models.linear_recognizer import LinearRecognizer

T = len(EMOTIONS)


def _brute_auc(y: np.ndarray, s: np.ndarray) -> float:
    """Interpolated PR-AUC on the 1001-point grid, from first principles."""
    grid = np.linspace(0, 1, 1001)
    pts = [((s >= th)[y].sum() / y.sum(), y[s >= th].mean()) for th in np.unique(s)]
    prec = [max([p for r, p in pts if r >= g - 1e-12], default=0.0) for g in grid]
    return float(np.trapezoid(prec, grid))


def _setup(n=50, seed=0):
    """A recognizer whose scores are a fixed noisy copy of y (W = 1 on a one-hot input)."""
    rng = np.random.default_rng(seed)
    Y = rng.uniform(5, 40, size=(n, T)).astype(np.float32)
    M = rng.random((n, T)) < 0.6
    M[:, 3] &= Y[:, 3] <= 25  # emotion 3: no positive in the mask
    X = (Y + rng.normal(scale=8, size=Y.shape)).astype(np.float32)  # features = noisy scores
    m = LinearRecognizer(layout=FeatureLayout("visual", T, 0))
    with torch.no_grad():
        m.head.W.copy_(torch.eye(T))
    return m, X, Y, M


def _test(tmp_path, batch_size, loggers=False):
    m, X, Y, M = _setup()
    dm = FeatureDataModule(batch_size=batch_size)
    dm.set_features(X, Y, {"test": M})
    cb = PRMetricsCallback(out_dir=str(tmp_path), n_pos=3000, n_all=50000)
    trainer = pl.Trainer(accelerator="cpu", logger=loggers, callbacks=[cb],
                         enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path)
    with pytest.warns(NoPositivesWarning):
        out = trainer.test(m, datamodule=dm, verbose=False)[0]
    return cb, out, X, Y, M


def test_values_match_brute_force_and_batching_does_not_matter(tmp_path):
    cb, out, X, Y, M = _test(tmp_path / "a", batch_size=7)
    per = []
    for t, e in enumerate(EMOTIONS):
        y = Y[M[:, t], t] > 25
        if not y.any():
            assert f"test/pr_auc/{e}" not in cb.metrics["test"]
            continue
        ref = _brute_auc(y, X[M[:, t], t])
        per.append(ref)
        assert cb.metrics["test"][f"test/pr_auc/{e}"] == pytest.approx(ref, abs=1e-9)
        assert out[f"test/pr_auc/{e}"] == pytest.approx(ref, abs=1e-6)  # float32 log
    assert cb.metrics["test"]["test/pr_auc"] == pytest.approx(np.mean(per), abs=1e-9)
    assert cb.metrics["test"]["test/n_emotions"] == T - 1
    rates = [(Y[M[:, t], t] > 25).mean() for t in range(T) if t != 3]
    assert cb.metrics["test"]["test/unsorted_pr_auc"] == pytest.approx(np.mean(rates))
    assert cb.metrics["test"]["test/unsorted_n_tilde"] == pytest.approx(3000 / np.mean(rates))
    cb2, _, _, _, _ = _test(tmp_path / "b", batch_size=1000)
    assert cb2.metrics["test"] == pytest.approx(cb.metrics["test"])


def test_files_png_csv_markdown(tmp_path):
    cb, _, X, Y, M = _test(tmp_path, batch_size=16)
    png = tmp_path / "test_pr_curve.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    rows = list(csv.DictReader(open(tmp_path / "test_pr_table.csv")))
    assert [r["emotion"] for r in rows] == list(EMOTIONS) + ["averaged"]
    r3 = rows[3]
    assert r3["pr_auc"] == "" and int(r3["n_positive"]) == 0  # NaN written as empty
    r0 = rows[0]
    assert int(r0["n_labelled"]) == int(M[:, 0].sum())
    assert int(r0["n_positive"]) == int((Y[M[:, 0], 0] > 25).sum())
    assert float(r0["unsorted_pr_auc"]) == pytest.approx(float(r0["positive_rate"]))
    md = (tmp_path / "test_pr_table.md").read_text()
    # the table (header, rule, T emotions, the mean), a blank line, the sentence saying which PR-AUC
    assert md.startswith("| emotion |") and md.count("\n") == T + 5
    assert md.rstrip("\n").endswith(PR_AUC_NOTE)
    assert {p.name for p in cb.files["test"]} == {"test_pr_curve.png", "test_pr_table.csv",
                                                  "test_pr_table.md"}


def test_scalars_reach_the_logger(tmp_path):
    logger = CSVLogger(str(tmp_path), name="csv")
    cb, _, _, _, _ = _test(tmp_path, batch_size=16, loggers=[logger])
    logger.finalize("success")
    rows = list(csv.DictReader(open(tmp_path / "csv" / "version_0" / "metrics.csv")))
    logged = {k: float(v) for r in rows for k, v in r.items() if v not in ("", None)}
    assert logged["test/pr_auc"] == pytest.approx(cb.metrics["test"]["test/pr_auc"], rel=1e-6)
    assert math.isfinite(logged["test/n_tilde"]) and "test/mse" in logged


def test_wandb_logger_gets_image_and_table(tmp_path, monkeypatch):
    """With a WandbLogger the PNG and the table are sent (mode=disabled: no files, no network)."""
    from pytorch_lightning.loggers import WandbLogger

    calls = {}
    monkeypatch.setattr(WandbLogger, "log_image", lambda self, key, images, **kw: calls.setdefault("image", (key, images)))
    monkeypatch.setattr(WandbLogger, "log_table", lambda self, key, columns, data, **kw: calls.setdefault("table", (key, columns, data)))
    logger = WandbLogger(project="gifemo-test", save_dir=str(tmp_path), mode="disabled")
    _test(tmp_path, batch_size=16, loggers=[logger])
    key, images = calls["image"]
    assert key == "test/pr_curve" and images[0].endswith("test_pr_curve.png")
    key, columns, data = calls["table"]
    assert key == "test/pr_table" and columns[0] == "emotion" and len(data) == T + 1
    import wandb
    wandb.finish()


def test_label_exactly_25_is_not_positive_through_the_callback(tmp_path):
    """y = 25.0 exactly (µ = µ₀ + 3σ) is a negative (§3.2: y > 25): through a real Trainer,
    every emotion has 1 positive among 4 labelled GIFs, ranked second."""
    y_col = np.array([25.0, 26.0, 25.0, 10.0], np.float32)
    Y = np.repeat(y_col[:, None], T, axis=1)
    X = np.repeat(np.array([3.0, 2.0, 1.0, 0.0], np.float32)[:, None], T, axis=1)  # scores
    M = np.ones((4, T), bool)
    m = LinearRecognizer(layout=FeatureLayout("visual", T, 0))
    with torch.no_grad():
        m.head.W.copy_(torch.eye(T))
    dm = FeatureDataModule(batch_size=3)
    dm.set_features(X, Y, {"test": M})
    cb = PRMetricsCallback(out_dir=str(tmp_path), n_pos=3000, n_all=50000, plot=False)
    trainer = pl.Trainer(accelerator="cpu", logger=False, callbacks=[cb], enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)
    trainer.test(m, datamodule=dm, verbose=False)
    got = cb.metrics["test"]
    assert got["test/unsorted_pr_auc"] == pytest.approx(0.25)  # 1 positive of 4, not 3 of 4
    # the one positive is ranked 2nd: precision 1/2 at every recall -> PR-AUC 0.5 (hand-worked)
    assert got["test/pr_auc"] == pytest.approx(0.5, abs=1e-9)
    assert got["test/n_emotions"] == T
    rows = list(csv.DictReader(open(tmp_path / "test_pr_table.csv")))
    assert [int(r["n_positive"]) for r in rows[:T]] == [1] * T


def test_rejects_bad_configuration_and_step_outputs():
    with pytest.raises(ValueError, match="n_pos"):
        PRMetricsCallback(n_pos=10, n_all=5)
    with pytest.raises(TypeError, match="scores, y and mask"):
        PRMetricsCallback()._collect("test", torch.zeros(3))


def test_extra_metrics_are_per_emotion_and_averaged_like_a_direct_computation(tmp_path):
    """A plugged-in metric (scikit-learn's average precision) equals computing it by hand on
    each emotion's labelled entries and averaging over the emotions with a positive."""
    from sklearn.metrics import average_precision_score

    from gifemo.eval.callbacks import PRMetricsCallback

    rng = np.random.default_rng(5)
    n = 40
    scores = rng.normal(size=(n, 17)).astype(np.float32)
    y = rng.normal(25, 6, size=(n, 17)).astype(np.float32)
    mask = rng.random((n, 17)) < 0.7
    y[:, 3] = 10.0  # an emotion without positives: left out of the average
    cb = PRMetricsCallback(plot=False, table=False, extra_metrics={"ap": average_precision_score})

    cb.stage_metrics("test", scores, y, mask)
    pos = (y > 25) & mask
    want = [average_precision_score(pos[mask[:, t], t], scores[mask[:, t], t])
            for t in range(17) if pos[:, t].any()]
    assert cb.metrics["test"]["test/ap"] == pytest.approx(np.mean(want), rel=1e-12)
    assert "test/ap/contentment" not in cb.metrics["test"]  # column 3 has no positive
    assert sum(k.startswith("test/ap/") for k in cb.metrics["test"]) == len(want)
    with pytest.raises(TypeError, match="callable"):
        PRMetricsCallback(extra_metrics={"bad": 3})
