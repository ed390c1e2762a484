"""A synthetic dataset of the paper's shape, with cached features, for the full protocol.

GIFGIF+ (paper §3.1–3.4): 23,544 GIFs, 17 emotions; the first 6,113 are the GIFGIF ones,
rated on every emotion (TrueSkill µ, σ; positive when µ − 3σ > µ0 = 25, §3.2); the other
17,431 were collected per emotion and labelled for that one emotion. Features: 4,096 C3D
fc6 activations averaged over clips (non-negative) + tag counts over the ~139 tags on at
least 0.5 % of the training GIFs (§3.4), each row of each block L2-normalised.

No C3D runs: the folder holds the dataset in the gifemo manifest format (manifest.csv,
scores.csv, one tiny placeholder GIF that every row points to) and ``visual.npy``, the
visual features in manifest order, which ``data=paper_synthetic`` reads through
``data.visual_features`` instead of the feature cache::

    python benchmarks/paper_scale_data.py [--out data/paper_synthetic] [--n-gifs 23544]
    python scripts/reproduce.py --setting full data=paper_synthetic

The data (assumptions, not the paper's numbers): a 6-dimensional latent "content" per GIF
drives both the features and the 17 emotion intensities, the emotions in two valence
groups (so clustered MTL has structure to find); about 12 % of the GIFGIF ratings are
positive, and 40 % of the collected GIFs. The visual features are a sparse ReLU of a
random projection of the latent plus noise (weak, spread-out signal, as fc6 has); tags are
drawn from emotion-specific and generic word lists, ~140 of them frequent enough to enter
the vocabulary. ``params.json`` records the generator's arguments; the same arguments
write the same files.
"""
from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from gifemo.data.emotions import EMOTIONS


POSITIVE_VALENCE = {"amusement", "contentment", "excitement", "happiness", "pleasure", "pride",
                    "relief", "satisfaction", "surprise"}
GENERIC = ["tv", "movies", "anime", "cartoons & comics", "reaction", "funny", "movie", "cartoon",
           "cat", "love", "dancing", "disney", "dog", "lol", "omg", "yes", "no", "wow", "music",
           "sports"]


def _params(n_gifs: int, n_gifgif: int, d_visual: int, seed: int) -> dict:
    return {"n_gifs": n_gifs, "n_gifgif": n_gifgif, "d_visual": d_visual, "seed": seed,
            "version": 1}


def generate(out: str | Path, n_gifs: int = 23_544, n_gifgif: int = 6_113,
             d_visual: int = 4_096, seed: int = 0) -> Path:
    """Write the dataset folder ``out`` (see the module docstring); returns it."""
    if not 0 < n_gifgif <= n_gifs:
        raise ValueError(f"need 0 < n_gifgif <= n_gifs, got {n_gifgif}, {n_gifs}")
    out = Path(out)
    (out / "gifs").mkdir(parents=True, exist_ok=True)
    g = np.random.default_rng(seed)
    T, k = len(EMOTIONS), 6

    # latent content -> emotion intensities (two valence groups sharing directions)
    z = g.standard_normal((n_gifs, k))
    valence = np.array([1.0 if e in POSITIVE_VALENCE else -1.0 for e in EMOTIONS])
    A = 0.6 * g.standard_normal((k, T))
    A[0] += 1.2 * valence          # direction 0: valence, shared within each group
    A[1] += 0.8 * (valence > 0)    # direction 1: arousal-like, positive group only
    intensity = z @ A + 0.8 * g.standard_normal((n_gifs, T))

    # visual features: sparse ReLU of a random projection (weak signal, as fc6)
    B = g.standard_normal((k, d_visual)) * 0.35
    visual = np.empty((n_gifs, d_visual), dtype=np.float32)
    for i0 in range(0, n_gifs, 4096):
        i1 = min(n_gifs, i0 + 4096)
        v = z[i0:i1] @ B + g.standard_normal((i1 - i0, d_visual)) - 0.9
        v = np.maximum(v, 0.0)
        visual[i0:i1] = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    np.save(out / "visual.npy", visual)

    # tags: per-emotion word lists + generic ones (frequent), and a long rare tail
    words = {e: [f"{e}_{j}" for j in range(7)] for e in EMOTIONS}
    rare = [f"rare_{j}" for j in range(400)]
    top = intensity.argmax(1)

    # labels: GIFGIF GIFs on every emotion, collected GIFs on the emotion they were found for
    collected_for = g.integers(0, T, n_gifs)
    rows_manifest, rows_scores = [], []
    for i in range(n_gifs):
        gif_id = f"g{i:05d}"
        e_top = EMOTIONS[top[i]] if i < n_gifgif else EMOTIONS[collected_for[i]]
        tags = list(g.choice(words[e_top], size=g.integers(1, 4), replace=False))
        tags += list(g.choice(GENERIC, size=g.integers(0, 3), replace=False))
        tags += list(g.choice(rare, size=g.integers(0, 3), replace=False))
        rows_manifest.append((gif_id, "gifs/placeholder.gif", "|".join(tags),
                              int(g.random() < 0.2), int(g.random() < 0.15)))
        if i < n_gifgif:
            # µ − 3σ > 25 for ~12 % of the ratings
            sigma = g.uniform(1.2, 2.5, T)
            mu = 25.0 + 3.0 * (intensity[i] - 2.4) + 3.0 * sigma * (intensity[i] > 2.4)
            for t in range(T):
                rows_scores.append((gif_id, EMOTIONS[t], mu[t], sigma[t]))
        else:
            t = int(collected_for[i])
            positive = intensity[i, t] > 0.5 + 0.4 * g.standard_normal()
            sigma = g.uniform(1.2, 2.5)
            mu = 25.0 + 3.0 * sigma + g.uniform(0.5, 5.0) if positive else g.uniform(15, 25)
            rows_scores.append((gif_id, EMOTIONS[t], mu, sigma))

    from PIL import Image  # one grey 8 × 8 frame: every row's GIF (its features are cached)

    Image.new("L", (8, 8), 128).save(out / "gifs" / "placeholder.gif", format="GIF")
    with open(out / "manifest.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "path", "tags", "cartoon", "multi_scene"])
        w.writerows(rows_manifest)
    with open(out / "scores.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "emotion", "mu", "sigma"])
        w.writerows((i, e, f"{m:.4f}", f"{s:.4f}") for i, e, m, s in rows_scores)
    (out / "params.json").write_text(json.dumps(_params(n_gifs, n_gifgif, d_visual, seed)))
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="data/paper_synthetic")
    ap.add_argument("--n-gifs", type=int, default=23_544)
    ap.add_argument("--n-gifgif", type=int, default=6_113)
    ap.add_argument("--d-visual", type=int, default=4_096)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    out = generate(a.out, a.n_gifs, min(a.n_gifgif, a.n_gifs), a.d_visual, a.seed)
    print(f"wrote {out} in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
