"""Write the demo dataset folder (manifest, votes, GIFs, ground truth) and read its truth back."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path

import numpy as np

from gifemo.data.demo.latents import _T_MAX, _T_SHIFT, _T_SLOPE, Latents, sample_latents
from gifemo.data.demo.render import (
    GIF_DIR,
    GifSpec,
    _write_gif_job,
    sample_gif_specs,
    write_gif,
)
from gifemo.data.demo.tags import sample_tags
from gifemo.data.demo.votes import sample_votes
from gifemo.data.emotions import EMOTIONS, NEGATIVE_GROUP, POSITIVE_GROUP
from gifemo.data.labels import Vote
from gifemo.data.manifest import write_dataset

GENERATOR_VERSION = 3
TRUTH_FILE = "demo_truth.json"


class DemoExistsError(FileExistsError):
    """The output folder exists and is not a demo dataset, so it is never overwritten."""


# --------------------------------------------------------------------------- dataset
def demo_params(n_gifs: int, seed: int, votes_per_gif: float) -> dict:
    """What determines a demo's content (stored in the truth file, compared to skip regeneration)."""
    return {"generator_version": GENERATOR_VERSION, "n_gifs": int(n_gifs), "seed": int(seed),
            "votes_per_gif": float(votes_per_gif)}


def read_truth(folder: str | os.PathLike) -> dict:
    """The ground truth written beside a demo dataset (``demo_truth.json``)."""
    with open(Path(folder) / TRUTH_FILE, encoding="utf-8") as fh:
        return json.load(fh)


def demo_is_current(folder: str | os.PathLike, n_gifs: int, seed: int,
                    votes_per_gif: float = 28.0) -> bool:
    """True when ``folder`` holds a complete demo made with these parameters."""
    folder = Path(folder)
    try:
        truth = read_truth(folder)
    except (OSError, ValueError):
        return False
    if truth.get("params") != demo_params(n_gifs, seed, votes_per_gif):
        return False
    return (folder / "manifest.csv").is_file() and all(
        (folder / p).is_file() for p in truth.get("paths", [None]))


def _truth(ids, specs: list[GifSpec], latents: Latents, params: dict) -> dict:
    r = lambda a: np.round(np.asarray(a, dtype=float), 6).tolist()  # noqa: E731
    return {
        "params": params,
        "emotions": list(EMOTIONS),
        "groups": {"positive": list(POSITIVE_GROUP), "negative": list(NEGATIVE_GROUP)},
        "vote_model": {"intensity": "t_max * sigmoid(slope * (score - shift))",
                       "t_max": _T_MAX, "slope": _T_SLOPE, "shift": _T_SHIFT},
        "ids": list(ids),
        "paths": [s.path for s in specs],
        "n_frames": [s.n_frames for s in specs],
        "delays_ms": [s.delays_ms for s in specs],
        "size_wh": [[s.width, s.height] for s in specs],
        "encoding": [s.encoding for s in specs],
        "loop": [s.loop for s in specs],
        "valence": r(latents.valence),
        "arousal": r(latents.arousal),
        "group_factors": r(latents.group_factors),
        "scores": r(latents.scores),
        "intensity": r(latents.intensity),
        "emotion_factors": r(latents.own),
        "cartoon": [bool(x) for x in latents.cartoon],
        "multi_scene": [bool(x) for x in latents.multi_scene],
    }


def generate_demo(out_dir: str | os.PathLike, n_gifs: int = 600, seed: int = 0, *,
                  votes_per_gif: float = 28.0, workers: int | None = None,
                  progress: bool = True, overwrite: bool = True) -> Path:
    """Write a synthetic GIFGIF+-like dataset folder and return its path.

    Parameters
    ----------
    out_dir : path
        Dataset folder to create: ``manifest.csv``, ``votes.csv``, ``gifs/*.gif``,
        ``demo_truth.json``. It is built in a temporary sibling and moved into place, so a
        crash never leaves half a dataset. An existing folder is replaced only if it is a
        demo (has ``demo_truth.json``) and ``overwrite``; anything else raises
        :class:`DemoExistsError`.
    n_gifs : int, default=600
    seed : int, default=0
        Everything is a deterministic function of (n_gifs, seed, votes_per_gif).
    votes_per_gif : float, default=28
        Mean comparisons per GIF and emotion among the GIFs compared for that emotion.
    workers : int or None
        Processes that render GIFs (None: ``min(os.cpu_count(), 8)``; 1: in this process).
    progress : bool, default=True
        Show a tqdm progress bar while writing GIFs.
    """
    if n_gifs < 2:
        raise ValueError(f"n_gifs must be at least 2, got {n_gifs}")
    if votes_per_gif <= 0:
        raise ValueError(f"votes_per_gif must be positive, got {votes_per_gif}")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not (out / TRUTH_FILE).is_file():
            raise DemoExistsError(f"{out}: exists and is not a demo dataset (no {TRUTH_FILE}); "
                                  "refusing to overwrite it")
        if not overwrite:
            raise DemoExistsError(f"{out}: a demo dataset already exists (overwrite=False)")

    ss = np.random.SeedSequence([int(seed), GENERATOR_VERSION])
    rng_lat, rng_tags, rng_votes, rng_specs = (np.random.default_rng(s) for s in ss.spawn(4))
    width = max(5, len(str(n_gifs - 1)))
    ids = [f"demo_{i:0{width}d}" for i in range(n_gifs)]
    latents = sample_latents(n_gifs, rng_lat)
    tags = sample_tags(latents, rng_tags)
    votes = sample_votes(latents.intensity, ids, rng_votes, votes_per_gif=votes_per_gif)
    specs = sample_gif_specs(latents, ids, rng_specs)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (tmp / GIF_DIR).mkdir()
        _render_all(specs, tmp, workers, progress)
        flags = {"cartoon": latents.cartoon.copy(), "multi_scene": latents.multi_scene.copy()}
        write_dataset(tmp, ids, [s.path for s in specs], tags, flags=flags,
                      votes=[Vote(*v) for v in votes])
        with open(tmp / TRUTH_FILE, "w", encoding="utf-8") as fh:
            json.dump(_truth(ids, specs, latents, demo_params(n_gifs, seed, votes_per_gif)), fh)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _render_all(specs: list[GifSpec], root: Path, workers: int | None, progress: bool) -> None:
    from tqdm.auto import tqdm

    if workers is None:
        workers = min(os.cpu_count() or 1, 8)
    # Longest GIFs first, so one slow file does not finish last on its own.
    order = sorted(specs, key=lambda s: -s.n_frames * s.width * s.height)
    if workers <= 1 or len(specs) < 8:
        with tqdm(total=len(specs), desc="writing GIFs", unit="gif", disable=not progress) as bar:
            for s in order:
                write_gif(s, root)
                bar.update()
        return
    # Workers only run numpy and Pillow. fork (where it exists) needs no `if __name__ ==
    # "__main__"` guard in the caller's script, which spawn does; the pool is started before
    # the progress bar so no tqdm thread exists yet when it forks.
    method = "fork" if "fork" in get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context(method)) as ex:
        jobs = ex.map(_write_gif_job, [(s, str(root)) for s in order], chunksize=4)
        with tqdm(total=len(specs), desc="writing GIFs", unit="gif", disable=not progress) as bar:
            for _ in jobs:
                bar.update()


def truth_scores(folder: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """ids and the true score matrix float64 [N, 17] of a demo folder."""
    t = read_truth(folder)
    return t["ids"], np.asarray(t["scores"], dtype=float)

