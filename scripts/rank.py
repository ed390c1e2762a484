"""Rank candidate GIFs by emotion with a trained checkpoint, or zero-shot without one.

    python scripts/rank.py CHECKPOINT GIF_DIR_OR_MANIFEST [--emotion E] [--top 20]
                           [--out ranked.csv] [--weights PATH] [--cache-dir DIR]
    python scripts/rank.py --zero-shot EMOTION DATASET_DIR_OR_MANIFEST [--top 20] [--out ...]

Features are computed with the checkpoint's backbone (its weights are hash-checked: a
different file is refused), clip settings, tag vocabulary and text model; every emotion is
scored. Undecodable GIFs are skipped and listed in bad_files.csv beside the output CSV.
With ``--zero-shot`` no checkpoint is read: the candidates' tags are embedded by a sentence
model and compared with the emotion's prompts (any emotion name; gifemo.models.zero_shot).
"""
from __future__ import annotations

import argparse
import logging
import sys

from gifemo.checkpoint import CheckpointError
from gifemo.rank import RankError, format_top, rank_gifs, rank_zero_shot


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("paths", nargs="+", metavar="[CHECKPOINT] SOURCE",
                   help="checkpoint.pt written by train.py (not with --zero-shot), then a folder "
                        "of GIFs (recursive) or a dataset folder / manifest.csv")
    p.add_argument("--emotion", default=None, help="sort by this emotion (default: print all)")
    p.add_argument("--zero-shot", default=None, metavar="EMOTION",
                   help="rank for this emotion (any name) from the tags alone, no checkpoint")
    p.add_argument("--text-model", default=None,
                   help="sentence model for text tag features / zero-shot (default: the "
                        "checkpoint's; for --zero-shot the packaged all-MiniLM-L6-v2)")
    p.add_argument("--top", type=int, default=20, help="how many to print (default: 20)")
    p.add_argument("--out", default="ranked.csv", help="ranked CSV (default: ranked.csv)")
    p.add_argument("--weights", default=None,
                   help="backbone weights file (default: the checkpoint's); its identity is checked")
    p.add_argument("--cache-dir", default=None, help="feature cache to reuse (default: temporary)")
    p.add_argument("--accelerator", default="auto", help="feature extraction device")
    p.add_argument("--clip-batch-size", type=int, default=8)
    p.add_argument("--num-workers", type=int, default=0, help="decoding worker processes")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    want = 1 if a.zero_shot else 2
    if len(a.paths) != want:
        p.error("give SOURCE only with --zero-shot" if a.zero_shot else "give CHECKPOINT SOURCE")
    a.checkpoint, a.source = (None, a.paths[0]) if a.zero_shot else a.paths
    return a


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    a = parse_args(argv)
    run = {"accelerator": a.accelerator, "clip_batch_size": a.clip_batch_size,
           "num_workers": a.num_workers, "progress": not a.no_progress}
    try:
        if a.zero_shot:
            result = rank_zero_shot(a.source, a.zero_shot, text_model=a.text_model or "default",
                                    out_csv=a.out, cache_dir=a.cache_dir)
        else:
            result = rank_gifs(a.checkpoint, a.source, weights=a.weights, out_csv=a.out,
                               emotion=a.emotion, cache_dir=a.cache_dir, run=run,
                               text_model=a.text_model)
    except (RankError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if a.zero_shot:
        print(f"zero-shot (tags vs prompts for {result.emotions[0]!r}; no checkpoint)")
    print(format_top(result, result.emotions[0] if a.zero_shot else a.emotion, a.top))
    print(f"{len(result.ids)} of {result.n_candidates} GIFs ranked -> {result.csv_path}")
    if result.bad:
        print(f"{len(result.bad)} bad GIF(s) skipped; see "
              f"{result.csv_path.parent / 'bad_files.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
