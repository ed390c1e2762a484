"""Rank candidate GIFs by emotion with a trained checkpoint.

    python scripts/rank.py CHECKPOINT GIF_DIR_OR_MANIFEST [--emotion E] [--top 20]
                           [--out ranked.csv] [--weights PATH] [--cache-dir DIR]

Features are computed with the checkpoint's backbone (its weights are hash-checked: a
different file is refused), clip settings and tag vocabulary; every emotion is scored.
Undecodable GIFs are skipped and listed in bad_files.csv beside the output CSV.
"""
from __future__ import annotations

import argparse
import logging
import sys

from gifemo.checkpoint import CheckpointError
from gifemo.rank import RankError, format_top, rank_gifs


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoint", help="checkpoint.pt written by train.py")
    p.add_argument("source", help="folder of GIFs (recursive), or dataset folder / manifest.csv")
    p.add_argument("--emotion", default=None, help="sort by this emotion (default: print all)")
    p.add_argument("--top", type=int, default=20, help="how many to print (default: 20)")
    p.add_argument("--out", default="ranked.csv", help="ranked CSV (default: ranked.csv)")
    p.add_argument("--weights", default=None,
                   help="backbone weights file (default: the checkpoint's); its identity is checked")
    p.add_argument("--cache-dir", default=None, help="feature cache to reuse (default: temporary)")
    p.add_argument("--accelerator", default="auto", help="feature extraction device")
    p.add_argument("--clip-batch-size", type=int, default=8)
    p.add_argument("--num-workers", type=int, default=0, help="decoding worker processes")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    a = parse_args(argv)
    run = {"accelerator": a.accelerator, "clip_batch_size": a.clip_batch_size,
           "num_workers": a.num_workers, "progress": not a.no_progress}
    try:
        result = rank_gifs(a.checkpoint, a.source, weights=a.weights, out_csv=a.out,
                           emotion=a.emotion, cache_dir=a.cache_dir, run=run)
    except (RankError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_top(result, a.emotion, a.top))
    print(f"{len(result.ids)} of {result.n_candidates} GIFs ranked -> {result.csv_path}")
    if result.bad:
        print(f"{len(result.bad)} bad GIF(s) skipped; see "
              f"{result.csv_path.parent / 'bad_files.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
