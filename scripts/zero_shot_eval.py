"""Zero-shot PR-AUC per emotion on a dataset's test pools, beside Unsorted and trained models.

    python scripts/zero_shot_eval.py DATASET_DIR [--variants name,templates,synonyms]
        [--checkpoint NAME=PATH ...] [--cache-dir DIR] [--text-model default] [--seed 0]
        [--out table.md]

Every variant of the prompts (:mod:`gifemo.models.zero_shot`) scores every GIF from its tags
alone (no training); a checkpoint is scored through :func:`gifemo.rank.rank_gifs` on the same
GIFs (its visual features from ``--cache-dir``). All are judged on the test pools of the split
train.py uses (``data.split`` defaults, seed ``--seed``), as PR-AUC of the interpolated curve
(:func:`gifemo.eval.metrics.evaluate_rankings`). Prints a markdown table (and writes it).
"""
from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

import numpy as np

from gifemo.data.emotions import EMOTIONS
from gifemo.data.manifest import load_dataset
from gifemo.data.splits import make_split
from gifemo.eval.metrics import NoPositivesWarning, evaluate_rankings
from gifemo.features.text_cache import embed_tag_lists
from gifemo.models.text_encoder import SentenceTagEncoder
from gifemo.models.zero_shot import VARIANTS, tag_scores


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("dataset", help="dataset folder (manifest.csv + votes.csv or scores.csv)")
    p.add_argument("--variants", default=",".join(VARIANTS), help="prompt variants to compare")
    p.add_argument("--checkpoint", action="append", default=[], metavar="NAME=PATH",
                   help="a trained model to compare (repeatable)")
    p.add_argument("--cache-dir", default=None, help="feature cache (checkpoints, tag vectors)")
    p.add_argument("--text-model", default="default")
    p.add_argument("--seed", type=int, default=0, help="test-split seed (data.split.seed)")
    p.add_argument("--out", default=None, help="also write the table here")
    return p.parse_args(argv)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    a = parse_args(argv)
    ds = load_dataset(a.dataset)
    split = make_split(ds, seed=a.seed)
    enc = SentenceTagEncoder(a.text_model)
    rows = embed_tag_lists(enc, ds.tags, a.cache_dir)
    columns: dict[str, np.ndarray] = {}
    for v in [v for v in a.variants.split(",") if v]:
        columns[f"zero-shot ({v})"] = tag_scores(rows, enc, EMOTIONS, v)
    for spec in a.checkpoint:
        name, _, path = spec.partition("=")
        from gifemo.rank import rank_gifs

        res = rank_gifs(path, a.dataset, cache_dir=a.cache_dir, run={"progress": False})
        columns[name] = res.aligned(list(ds.ids), EMOTIONS)
    mask = split.test.copy()
    for S in columns.values():
        mask &= np.isfinite(S)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoPositivesWarning)
        summaries = {k: evaluate_rankings(ds.positive, np.nan_to_num(S), mask)
                     for k, S in columns.items()}
    first = next(iter(summaries.values()))
    names = list(summaries)
    lines = ["| emotion | test GIFs | positive rate (= Unsorted) | " + " | ".join(names) + " |",
             "|---|---:|---:|" + "---:|" * len(names)]
    for t, e in enumerate(EMOTIONS):
        if not first.included[t]:
            continue
        lines.append(f"| {e} | {int(mask[:, t].sum())} | {first.positive_rate[t]:.3f} | " +
                     " | ".join(f"{s.per_emotion_auc[t]:.3f}" for s in summaries.values()) + " |")
    lines.append(f"| **mean** | {int(mask.sum())} | {first.unsorted_pr_auc:.3f} | " +
                 " | ".join(f"**{s.pr_auc:.3f}**" for s in summaries.values()) + " |")
    lines.append(f"| Ñ (eq. 9) | | {first.unsorted_n_tilde:,.0f} | " +
                 " | ".join(f"{s.n_tilde:,.0f}" for s in summaries.values()) + " |")
    table = "\n".join(lines)
    print(table)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
