"""Load a dataset folder; for the demo, (re)generate it first when missing or stale."""
from __future__ import annotations

import logging
import time
from pathlib import Path

from gifemo.data.manifest import GifDataset, load_dataset

_log = logging.getLogger(__name__)


def prepare_dataset(manifest: str | Path, *, generate: bool = False, n_gifs: int = 600,
                    demo_seed: int = 0, votes_per_gif: float = 28.0,
                    labels: str = "trueskill") -> GifDataset:
    """``load_dataset(manifest, labels=...)``; with ``generate=True`` first write the synthetic
    demo there when it is missing or was made with other parameters (:mod:`gifemo.data.demo`).
    ``labels``: the rating rule for votes (``trueskill`` or ``gifgif``, :mod:`gifemo.data.labels`)."""
    manifest = Path(manifest)
    if generate:
        from gifemo.data.demo import demo_is_current, generate_demo

        if not demo_is_current(manifest, int(n_gifs), int(demo_seed), float(votes_per_gif)):
            _log.info("generating the demo dataset in %s (n_gifs=%d, seed=%d)", manifest, n_gifs,
                      demo_seed)
            t0 = time.perf_counter()
            generate_demo(manifest, int(n_gifs), int(demo_seed), votes_per_gif=float(votes_per_gif))
            _log.info("demo dataset written in %.1f s", time.perf_counter() - t0)
    t0 = time.perf_counter()
    dataset = load_dataset(manifest, labels=labels)
    _log.info("dataset %s: %d GIFs, %d labelled (GIF, emotion) pairs, %.1f %% positive "
              "(loaded in %.1f s)", dataset.root, len(dataset), int(dataset.mask.sum()),
              100.0 * dataset.positive.sum() / max(dataset.mask.sum(), 1),
              time.perf_counter() - t0)
    return dataset
