"""How many labels of a dataset change between the two rating rules (``data.labels``).

    python scripts/compare_labels.py DATASET_DIR

Rates the folder's ``votes.csv`` with the ``trueskill`` package's defaults and with GIFGIF's
variant (``gifemo.data.labels``), and prints the labelled (GIF, emotion) pairs, the positives
under each rule (y = µ − 3σ > 25, paper §3.2), how many labels flip and which way, the
smallest and median per-emotion Kendall τ of the label scores, and the largest |Δy|.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
from scipy.stats import kendalltau

from gifemo.data.labels import label_targets
from gifemo.data.manifest import ManifestError, load_dataset


def rule_difference(folder: str) -> dict:
    """The two rules' labels side by side (see the module docstring); counts as ints."""
    (ya, pa, mask), (yb, pb, _) = (
        label_targets(ds.mu, ds.sigma)
        for ds in (load_dataset(folder, labels=rule) for rule in ("trueskill", "gifgif")))
    taus = [kendalltau(ya[mask[:, j], j], yb[mask[:, j], j]).statistic
            for j in range(mask.shape[1]) if mask[:, j].sum() > 1]
    return {"labelled": int(mask.sum()),
            "positive_trueskill": int(pa.sum()), "positive_gifgif": int(pb.sum()),
            "to_positive": int((~pa & pb & mask).sum()),
            "to_negative": int((pa & ~pb & mask).sum()),
            "tau_min": float(np.min(taus)) if taus else float("nan"),
            "tau_median": float(np.median(taus)) if taus else float("nan"),
            "max_abs_dy": float(np.max(np.abs(ya - yb)[mask])) if mask.any() else 0.0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", help="dataset folder with manifest.csv and votes.csv")
    args = ap.parse_args(argv)
    try:
        d = rule_difference(args.dataset)
    except ManifestError as e:
        print(e, file=sys.stderr)
        return 2
    changed = d["to_positive"] + d["to_negative"]
    print(f"labelled (GIF, emotion) pairs: {d['labelled']:,}")
    print(f"positives: trueskill {d['positive_trueskill']:,}, gifgif {d['positive_gifgif']:,}")
    print(f"labels that change: {changed:,} ({changed / max(d['labelled'], 1):.1%}): "
          f"{d['to_positive']:,} negative -> positive, {d['to_negative']:,} positive -> negative")
    print(f"Kendall tau of the label scores per emotion: min {d['tau_min']:.3f}, "
          f"median {d['tau_median']:.3f}; max |change of y = mu - 3 sigma| {d['max_abs_dy']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
