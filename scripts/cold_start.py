"""Replay a labelling campaign per emotion on a labelled dataset: looks needed to reach Np.

    python scripts/cold_start.py DATASET_DIR [--np 20] [--every 10] [--rho 1.0]
        [--checkpoint CKPT] [--cache-dir DIR] [--seed 0] [--out DIR] [--text-model default]

Each emotion's test pool (the split train.py uses, seed ``--seed``) is the campaign's candidate
pool and its labels stand in for the labellers. Strategies (gifemo.collect.cold_start):
(a) unsorted, (b) zero-shot from the tags, (c) zero-shot + re-rank every N looks as the app
does, (d) a ridge head on the text features trained on the other emotions' labels only, mixed
by prompt similarity, (e) the supervised ``--checkpoint`` (e.g. clustered MTL; its visual
features from ``--cache-dir``). Writes ``cold_start.md`` (the table), ``cold_start.png`` (looks
vs positives found, one curve per strategy) and ``cold_start.json`` into ``--out``.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from gifemo.collect.cold_start import (cold_start_orders, emotion_prompt_matrix, format_table,
                                       other_emotions_scores, plot_curves, replay_emotion)
from gifemo.data.emotions import EMOTIONS
from gifemo.data.manifest import load_dataset
from gifemo.data.splits import make_split
from gifemo.features.text_cache import embed_tag_lists
from gifemo.models.penalties import RidgePenalty
from gifemo.models.solvers import fit_multitask_linear
from gifemo.models.text_encoder import SentenceTagEncoder


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("dataset", help="dataset folder (manifest.csv + votes.csv or scores.csv)")
    p.add_argument("--np", dest="k", type=int, default=20, help="target positives per campaign")
    p.add_argument("--every", type=int, default=10, help="re-rank after this many looks (c)")
    p.add_argument("--rho", type=float, default=1.0, help="re-rank ridge weight (as the app's)")
    p.add_argument("--checkpoint", default=None, help="supervised checkpoint for strategy (e)")
    p.add_argument("--cache-dir", default=None, help="feature cache (checkpoint, tag vectors)")
    p.add_argument("--seed", type=int, default=0, help="test-split seed (data.split.seed)")
    p.add_argument("--text-model", default="default")
    p.add_argument("--out", default="outputs/cold_start", help="output folder")
    return p.parse_args(argv)


def supervised_scores(checkpoint: str, dataset_dir: str, ds, cache_dir) -> np.ndarray:
    """[N, 17] scores of the checkpoint in dataset order (NaN where a GIF has no features)."""
    from gifemo.rank import rank_gifs

    res = rank_gifs(checkpoint, dataset_dir, cache_dir=cache_dir, run={"progress": False})
    return res.aligned(list(ds.ids), EMOTIONS)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    a = parse_args(argv)
    t0 = time.perf_counter()
    ds = load_dataset(a.dataset)
    split = make_split(ds, seed=a.seed)
    enc = SentenceTagEncoder(a.text_model)
    X = embed_tag_lists(enc, ds.tags, a.cache_dir).astype(np.float64)
    # (d): one ridge column per emotion on the training GIFs' text features; separable over
    # tasks, so emotion t's mix below never depends on t's own labels
    fit = fit_multitask_linear(X, np.nan_to_num(ds.y), split.train, RidgePenalty(1.0))
    heads = X @ fit.W.numpy() + fit.b.numpy()
    prompts = emotion_prompt_matrix(enc, EMOTIONS)
    S = supervised_scores(a.checkpoint, a.dataset, ds, a.cache_dir) if a.checkpoint else None
    replays = []
    for t, e in enumerate(EMOTIONS):
        pool = split.test[:, t] & (np.isfinite(S[:, t]) if S is not None else True)
        idx = np.flatnonzero(pool)
        labels = ds.positive[idx, t]
        if labels.sum() < a.k:
            print(f"{e}: only {int(labels.sum())} positives in the test pool (< Np = {a.k}); skipped")
            continue
        orders = cold_start_orders(X[idx], enc, e, labels, every=a.every, rho=a.rho,
                                   other_scores=other_emotions_scores(heads, prompts, t)[idx],
                                   supervised_scores=None if S is None else S[idx, t])
        replays.append(replay_emotion(e, labels, a.k, orders))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    table = format_table(replays)
    head = (f"Looks to reach Np = {a.k} positives in each emotion's test pool ({a.dataset}, split "
            f"seed {a.seed}; unsorted = the exact expectation over random orders; re-rank every "
            f"{a.every} looks, rho {a.rho}; supervised = {a.checkpoint or 'not given'}).")
    (out / "cold_start.md").write_text(head + "\n\n" + table + "\n", encoding="utf-8")
    plot_curves(replays, out / "cold_start.png",
                title=f"cold start on {Path(a.dataset).name}: looks vs positives found")
    (out / "cold_start.json").write_text(json.dumps(
        {"np": a.k, "every": a.every, "rho": a.rho, "checkpoint": a.checkpoint, "seed": a.seed,
         "emotions": [{"emotion": r.emotion, "pool": r.n, "positives": r.n_pos, "looks": r.looks}
                      for r in replays]}, indent=1), encoding="utf-8")
    print(head)
    print(table)
    print(f"wrote {out / 'cold_start.md'}, {out / 'cold_start.png'}, {out / 'cold_start.json'} "
          f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
