"""Ready-made campaigns: a synthetic pool with a known truth (tests) and the demo (``make collect``).

:func:`synthetic_pool` writes a small candidate pool whose positives are known: tiny real GIFs,
a ``manifest.csv`` with tags, a precomputed feature file and a linear head that ranks the pool
better than chance but not perfectly (a noisy copy of the true direction). Tests use it to drive
the app without running C3D; the ground truth lets them check consensus, replay and re-ranking.

:func:`build_demo` prepares ``make collect``: a demo training set and a separate candidate pool
from :func:`gifemo.data.demo.generate_demo`, and a real training checkpoint from ``train.py``
(tag features, lasso; paper Table 2's "tag features only" row) that scores the pool through the
same path as :mod:`gifemo.rank`. Tag features keep the demo ready in about two minutes on two
cores; extracting C3D features for both sets would take tens of minutes there.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from gifemo.collect.scoring import save_features, save_head
from gifemo.data.emotions import EMOTIONS
from gifemo.data.manifest import write_dataset


@dataclass(frozen=True)
class SyntheticPool:
    """Files of a synthetic pool and its truth."""

    folder: Path           # dataset folder (manifest.csv + gifs/)
    head: Path             # precomputed head (.npz)
    features: Path         # feature file (.npz)
    ids: list[str]
    X: np.ndarray          # float32 [N, d]
    positive: np.ndarray   # bool [N], truth for ``emotion``
    emotion: str


def write_tiny_gif(path: Path, hue: float, size: int = 96, n_frames: int = 4) -> None:
    """A small looping animated GIF: a bar sweeping across a background of the given hue."""
    frames = []
    r, g, b = (int(255 * v) for v in colorsys.hsv_to_rgb(hue % 1.0, 0.55, 0.85))
    for t in range(n_frames):
        a = np.zeros((size, size, 3), np.uint8)
        a[:] = (r, g, b)
        x0 = (t * size) // n_frames
        a[size // 3: 2 * size // 3, x0: x0 + size // n_frames] = (250, 250, 250)
        frames.append(Image.fromarray(a).convert("P", palette=Image.Palette.ADAPTIVE, colors=16))
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=120, loop=0)


def synthetic_pool(folder: str | Path, n: int = 40, d: int = 12, *, emotion: str = "amusement",
                   positive_rate: float = 0.3, head_noise: float = 0.8, seed: int = 0) -> SyntheticPool:
    """Write a pool of ``n`` GIFs whose truth for ``emotion`` is a linear function of ``d`` features."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    X = rng.standard_normal((n, d)).astype(np.float32)
    w_true = rng.standard_normal(d)
    s_true = X @ w_true
    positive = s_true > np.quantile(s_true, 1 - positive_rate)
    ids = [f"g{i:04d}" for i in range(n)]
    rel = [f"gifs/{g}.gif" for g in ids]
    for i, p in enumerate(rel):
        write_tiny_gif(folder / p, hue=(0.33 if positive[i] else 0.0) + 0.1 * rng.random(), size=64, n_frames=3)
    tags = [["synthetic", "pos" if positive[i] else "neg"] if rng.random() < 0.5 else ["synthetic"]
            for i in range(n)]
    write_dataset(folder, ids, rel, tags)
    W = np.zeros((d, len(EMOTIONS)))
    t = EMOTIONS.index(emotion)
    W[:, t] = w_true + head_noise * np.linalg.norm(w_true) / np.sqrt(d) * rng.standard_normal(d)
    b = np.full(len(EMOTIONS), 20.0)
    head = save_head(folder.parent / f"{folder.name}-head.npz", W, b)
    feats = save_features(folder.parent / f"{folder.name}-features.npz", ids, X)
    return SyntheticPool(folder, head, feats, ids, X, positive, emotion)


@dataclass(frozen=True)
class DemoFiles:
    """What :func:`build_demo` wrote."""

    train: Path
    pool: Path
    checkpoint: Path


def build_demo(root: str | Path, *, n_train: int = 400, n_pool: int = 300, seed: int = 0,
               progress: bool = True) -> DemoFiles:
    """Demo training set + candidate pool + a trained checkpoint (module docstring); reuses what exists.

    The checkpoint comes from the project's own training entry point, ``train.py`` (Hydra), run
    as ``features=tags model=lasso`` on the training set, in a child process.
    """
    import subprocess
    import sys

    from gifemo.data.demo import demo_is_current, generate_demo

    root = Path(root).resolve()
    train, pool, run = root / "train", root / "pool", root / "train-run"
    if not demo_is_current(train, n_train, seed):
        generate_demo(train, n_gifs=n_train, seed=seed, progress=progress)
    if not demo_is_current(pool, n_pool, seed + 1):
        generate_demo(pool, n_gifs=n_pool, seed=seed + 1, progress=progress)
    ckpt = run / "checkpoint.pt"
    if not ckpt.is_file() or ckpt.stat().st_mtime < (train / "manifest.csv").stat().st_mtime:
        script = Path(__file__).resolve().parents[2] / "train.py"
        if not script.is_file():
            raise FileNotFoundError(f"{script}: the demo trains its checkpoint with the repository's "
                                    "train.py; run it from a source checkout")
        cmd = [sys.executable, str(script), "features=tags", "model=lasso", f"data.manifest={train}",
               f"data.n_gifs={n_train}", f"data.demo_seed={seed}", "logger=csv", f"hydra.run.dir={run}",
               "extract.progress=false", f"paths.cache_dir={root / 'feature_cache'}"]
        print("training the demo checkpoint:", " ".join(cmd[1:]), flush=True)
        subprocess.run(cmd, check=True, cwd=script.parent)
    return DemoFiles(train, pool, ckpt)
