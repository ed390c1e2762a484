"""Shared fixtures: the real Hydra config, composed and shrunk for fast CPU tests.

``compose_cfg(tmp_path, overrides)`` composes ``conf/train.yaml`` exactly as ``train.py``
does and then shrinks it: CPU, a tiny generated demo set (:data:`N_GIFS` GIFs, generated once
per session), a narrow C3D (same architecture, width 1/8), one clip per GIF, the CSV logger,
no progress bars, a session-wide feature cache (so C3D runs once per session), and the run
directory under ``tmp_path``. Nothing prompts, nothing touches the network.

Heavy imports stay inside the fixtures so that collecting other test files stays cheap.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"
N_GIFS = 60          # enough for positives in every emotion's test pool at seed 0
DEMO_SEED = 0
C3D_WIDTH = 0.125


def tiny_overrides(session_root: Path, run_dir: Path, c3d: bool = True) -> list[str]:
    """Overrides that make a run small, offline and CPU-only (applied before the test's own);
    ``c3d=False`` leaves out ``backbone.width`` (a C3D-only key) for another backbone."""
    return [
        f"paths.root_dir={session_root}",
        f"paths.data_dir={session_root / 'data'}",
        f"paths.log_dir={session_root / 'outputs'}",
        f"paths.cache_dir={session_root / 'cache'}",
        f"paths.output_dir={run_dir}",
        f"data.manifest={session_root / 'data' / 'demo'}",
        f"data.n_gifs={N_GIFS}",
        f"data.demo_seed={DEMO_SEED}",
        "data.max_clips_per_gif=1",
    ] + ([f"backbone.width={C3D_WIDTH}"] if c3d else []) + [
        "extract.accelerator=cpu",
        "extract.progress=false",
        "logger=csv",
        "+trainer.enable_progress_bar=false",
    ]


@pytest.fixture(scope="session")
def session_root(tmp_path_factory) -> Path:
    """One folder per test session: the tiny demo set and the shared feature cache."""
    return tmp_path_factory.mktemp("gifemo_session")


@pytest.fixture(scope="session")
def demo_dir(session_root) -> Path:
    """The tiny demo dataset (generated once per session)."""
    from gifemo.data.demo import generate_demo

    return generate_demo(session_root / "data" / "demo", n_gifs=N_GIFS, seed=DEMO_SEED,
                         progress=False)


@pytest.fixture(scope="session")
def small_run_overrides(session_root):
    """``small_run_overrides(run_dir, c3d=True) -> list[str]``: :func:`tiny_overrides` for this
    session (for tests that start ``train.py`` themselves; ``c3d=False`` for another backbone)."""
    return lambda run_dir, c3d=True: tiny_overrides(session_root, Path(run_dir), c3d)


@pytest.fixture(scope="session")
def compose_cfg(session_root, demo_dir):
    """``compose_cfg(run_dir, overrides=[...], return_hydra_config=False) -> DictConfig``."""
    from hydra import compose, initialize_config_dir

    def _compose(run_dir: Path, overrides=(), return_hydra_config: bool = False):
        c3d = not any(o.startswith("backbone=") and o != "backbone=c3d" for o in overrides)
        base = tiny_overrides(session_root, Path(run_dir), c3d)
        if {"data=gifgif", "data=paper_synthetic"} & set(overrides):  # no demo generation keys
            base = [o for o in base if not o.startswith(("data.n_gifs", "data.demo_seed"))]
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose("train", overrides=base + list(overrides),
                           return_hydra_config=return_hydra_config)

    return _compose


@pytest.fixture(scope="session")
def trained_lasso(session_root, compose_cfg):
    """One trained lasso run (visual + tags) shared by the checkpoint and rank tests.

    Returns (metrics, objects) of :func:`gifemo.training.run_train`.
    """
    from gifemo.training import run_train

    cfg = compose_cfg(session_root / "runs" / "lasso", ["model=lasso", "model.penalty.rho=1.0"])
    return run_train(cfg)


@pytest.fixture(autouse=True, scope="session")
def _quiet_threads():
    """The shared 2-core box: keep BLAS/torch to few threads in this process."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(min(old, 2))
    with pytest.MonkeyPatch.context() as mp:  # the environment is restored afterwards
        mp.setenv("WANDB_SILENT", os.environ.get("WANDB_SILENT", "true"))
        yield
    torch.set_num_threads(old)


@pytest.fixture(autouse=True)
def _fresh_cv_memo():
    """Each test starts without cross-validation results kept by an earlier test (the memo is
    for rows of one reproduction run, not for tests; cleared only if already imported)."""
    import sys

    selection = sys.modules.get("gifemo.models.selection")
    if selection is not None:
        selection.CV_MEMO.clear()
    yield


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny solver problems: thread start-up dominates on the 2 shared cores, so use one."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def require_text_model() -> None:
    """Skip on a developer machine without the ``text`` extra; under ``CI=true`` (which installs
    it) a missing sentence-transformers or packaged model is a failure, never a skip."""
    import importlib.util

    missing = [m for m in ("sentence_transformers", "all_minilm_l6_v2")
               if importlib.util.find_spec(m) is None]
    if missing:
        reason = (f"{', '.join(missing)} not installed (pip install -e '.[text]')")
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def sentence_encoder():
    """The default sentence-embedding tag encoder (packaged all-MiniLM-L6-v2), loaded once."""
    require_text_model()
    from gifemo.models.text_encoder import SentenceTagEncoder

    enc = SentenceTagEncoder()
    enc.identity()          # load now (about 10 s on the 2 cores), once per session
    return enc
