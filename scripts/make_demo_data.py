"""Generate the synthetic demo dataset (if missing) and print its summary.

    python scripts/make_demo_data.py [--out data/demo] [--n-gifs 600] [--seed 0] [--force]

The dataset is regenerated only when the folder is missing, was made with other parameters,
or ``--force`` is given. See :mod:`gifemo.data.demo` for what it contains.
"""

from __future__ import annotations

import argparse
import sys
import time

from gifemo.data.demo import DemoExistsError, demo_is_current, generate_demo
from gifemo.data.manifest import load_dataset
from gifemo.data.summary import summarize_dataset


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="data/demo", help="dataset folder (default: data/demo)")
    ap.add_argument("--n-gifs", type=int, default=600, help="number of GIFs (default: 600)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    ap.add_argument("--votes-per-gif", type=float, default=28.0,
                    help="mean comparisons per GIF and emotion (default: 28)")
    ap.add_argument("--workers", type=int, default=None,
                    help="processes writing GIFs (default: one per CPU core, at most 8)")
    ap.add_argument("--force", action="store_true", help="regenerate even if the folder is current")
    ap.add_argument("--no-summary", action="store_true", help="skip the summary")
    args = ap.parse_args(argv)

    if not args.force and demo_is_current(args.out, args.n_gifs, args.seed, args.votes_per_gif):
        print(f"{args.out}: demo dataset present (n_gifs={args.n_gifs}, seed={args.seed}); "
              "use --force to regenerate")
    else:
        t0 = time.perf_counter()
        try:
            generate_demo(args.out, args.n_gifs, args.seed, votes_per_gif=args.votes_per_gif,
                          workers=args.workers)
        except (DemoExistsError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"wrote {args.out} ({args.n_gifs} GIFs, seed {args.seed}) "
              f"in {time.perf_counter() - t0:.1f} s")
    if not args.no_summary:
        t0 = time.perf_counter()
        dataset = load_dataset(args.out)
        print(f"loaded in {time.perf_counter() - t0:.1f} s (TrueSkill over votes.csv)\n")
        print(summarize_dataset(dataset))
    return 0


if __name__ == "__main__":
    sys.exit(main())
