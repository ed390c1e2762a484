"""The paper-scale synthetic dataset (benchmarks/paper_scale_data.py) at a small shape, and
the data option that reads its cached visual features (data.visual_features)."""
import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

from gifemo.data.manifest import load_dataset
from gifemo.features.assemble import FeatureConfigError, assemble_features, load_visual_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from paper_scale_data import generate  # noqa: E402


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("pss") / "paper_synthetic", n_gifs=400,
                    n_gifgif=120, d_visual=24, seed=0)


def test_generator_writes_a_loadable_dataset_of_the_papers_layout(small_set):
    ds = load_dataset(small_set)
    assert len(ds) == 400
    assert ds.mask[:120].all()                        # GIFGIF GIFs: rated on every emotion
    assert (ds.mask[120:].sum(1) == 1).all()          # collected GIFs: one emotion each
    rate_gifgif = ds.positive[:120].sum() / ds.mask[:120].sum()
    rate_new = ds.positive[120:].sum() / ds.mask[120:].sum()
    assert 0.05 < rate_gifgif < 0.25 and 0.25 < rate_new < 0.6
    visual = np.load(small_set / "visual.npy")
    assert visual.shape == (400, 24) and visual.dtype == np.float32 and (visual >= 0).all()
    np.testing.assert_allclose(np.linalg.norm(visual, axis=1), 1.0, rtol=1e-5)


def test_generator_is_deterministic(small_set, tmp_path):
    again = generate(tmp_path / "again", n_gifs=400, n_gifgif=120, d_visual=24, seed=0)
    for name in ("manifest.csv", "scores.csv", "visual.npy"):
        a, b = ((p / name).read_bytes() for p in (small_set, again))
        assert hashlib.sha256(a).digest() == hashlib.sha256(b).digest(), name


def test_visual_file_feeds_the_features_without_a_backbone(small_set):
    ds = load_dataset(small_set)
    feats = assemble_features(ds, ds.mask, group="visual_tags",
                              visual_file=small_set / "visual.npy")
    assert feats.layout.visual_dim == 24 and feats.layout.tag_dim > 0
    np.testing.assert_array_equal(feats.X[:, :24], np.load(small_set / "visual.npy"))
    assert feats.backbone["name"] == "precomputed"


def test_visual_file_errors_name_the_file(small_set, tmp_path):
    bad = tmp_path / "short.npy"
    np.save(bad, np.zeros((399, 24), dtype=np.float32))
    with pytest.raises(FeatureConfigError, match="short.npy.*400 GIFs"):
        load_visual_file(bad, 400)
    nan = np.zeros((400, 24), dtype=np.float32)
    nan[7, 3] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    with pytest.raises(FeatureConfigError, match="nan.npy: row 7"):
        load_visual_file(tmp_path / "nan.npy", 400)
    (tmp_path / "junk.npy").write_text("not an array")
    with pytest.raises(FeatureConfigError, match="junk.npy"):
        load_visual_file(tmp_path / "junk.npy", 400)


@pytest.mark.slow
def test_trace_norm_row_runs_on_the_synthetic_set(small_set, compose_cfg, tmp_path):
    """data=paper_synthetic end to end through run_train (CV over the trace-norm grid):
    no backbone is built and no feature cache is written."""
    from gifemo.training import run_train

    cfg = compose_cfg(tmp_path / "run", ["data=paper_synthetic", f"data.manifest={small_set}",
                                         "experiment=table2_trace_norm", "data.split.n_folds=3",
                                         "trace_norm_grid=[{rho:10.0},{rho:1.0}]",
                                         "save_checkpoint=false"])
    cache = Path(str(cfg.features.cache_dir))

    def cached():
        return sorted(str(f) for f in cache.rglob("*")) if cache.exists() else []

    before = cached()
    metrics, objects = run_train(cfg)
    assert np.isfinite(metrics["test/pr_auc"]) and metrics["fit/rel_gap"] <= 1e-4
    assert objects["features"].backbone["name"] == "precomputed"
    assert cached() == before  # no backbone ran, nothing was added to the feature cache
