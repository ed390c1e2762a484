"""Speed of GIF decoding: our decoder per backend vs the raw libraries, in one run.

Rows (all single-threaded, files read from disk each time, one warm-up pass not counted):

* ``ours <backend>``: :func:`gifemo.data.decode.decode` (our parser + compositor, the
  backend only decompresses LZW);
* ``ours <backend> isolated``: the same through the worker process (``isolate=True``);
* ``raw pillow`` / ``raw pyav`` / ``raw decord``: the library alone, compositing its own way
  (Pillow: ``ImageSequence`` + ``convert("RGB")``; PyAV: container decode to rgb24; decord2:
  ``get_batch`` of all frames) — not conformant (see ``gifemo.data.decode``), for reference;
* ``decode+clips``: our default backend then :func:`gifemo.data.clips.make_clips`.

Every rate is also printed as a ratio to ``raw pillow`` measured in the same run. Two sets:
realistic GIFs (the demo set's GIFs if ``data/demo/manifest.csv`` exists, else ~100
generated GIFs of 40–120 frames, 200–400 px, smooth content, Pillow-encoded with delta
frames) and small GIFs (1–4 frames, 100×100), where per-file cost dominates.

    python benchmarks/decode.py [--manifest data/demo/manifest.csv] [--n 100] [--repeats 1]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")


def _smooth_gif(rng, n_frames: int, h: int, w: int) -> bytes:
    """A GIF with natural-looking content: gradient background, moving blobs, noise grain."""
    from PIL import Image

    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = (yy / h * 90 + xx / w * 60 + 10 * np.sin(xx / 17) * np.cos(yy / 23))
    blobs = [(rng.uniform(0, h), rng.uniform(0, w), rng.uniform(15, 50), rng.uniform(-4, 4),
              rng.uniform(-4, 4), rng.uniform(100, 250)) for _ in range(4)]
    palette = np.clip(rng.normal(128, 70, (256, 3)), 0, 255).astype(np.uint8)
    palette[:256] = np.sort(palette, axis=0)
    images = []
    for t in range(n_frames):
        img = base.copy()
        for cy, cx, r, vy, vx, level in blobs:
            d2 = (yy - cy - vy * t) ** 2 + (xx - cx - vx * t) ** 2
            img = np.where(d2 < r * r, level - np.sqrt(d2) * 0.5, img)
        img += rng.integers(0, 3, (h, w))  # grain: realistic, not perfectly flat
        im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "P")
        im.putpalette(palette.tobytes())
        images.append(im)
    buf = io.BytesIO()
    durations = [int(d) for d in rng.choice([40, 60, 80, 100], n_frames)]
    images[0].save(buf, "GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)
    return buf.getvalue()


def _make_set(folder: Path, n: int, frames: tuple[int, int], size: tuple[int, int], seed: int):
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        t = int(rng.integers(frames[0], frames[1] + 1))
        h, w = (int(rng.integers(size[0], size[1] + 1)) for _ in range(2))
        p = folder / f"g{seed}_{i:04d}.gif"
        p.write_bytes(_smooth_gif(rng, t, h, w))
        paths.append(p)
    return paths


def raw_pillow(path):
    from PIL import Image, ImageSequence

    with Image.open(path) as im:
        return np.stack([np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)])


def raw_pyav(path):
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "NONE"
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(s)])


def raw_decord(path):
    import decord

    vr = decord.VideoReader(str(path), num_threads=1)
    return vr.get_batch(list(range(len(vr)))).asnumpy()


def _time(fn, paths, repeats: int) -> tuple[float, int]:
    for p in paths[: max(1, len(paths) // 10)]:
        fn(p)  # warm-up
    best, frames = float("inf"), 0
    for _ in range(repeats):
        t0, frames = time.perf_counter(), 0
        for p in paths:
            frames += len(fn(p))
        best = min(best, time.perf_counter() - t0)
    return best, frames


def run(paths, label: str, repeats: int, with_clips: bool, with_isolated: bool):
    from gifemo.data.decode import BACKENDS, decode

    rows = [("raw pillow", raw_pillow), ("raw pyav", raw_pyav), ("raw decord", raw_decord)]
    rows += [(f"ours {b}", (lambda b: lambda p: decode(p, b).rgb)(b)) for b in BACKENDS]
    if with_isolated:
        rows += [(f"ours {b} isolated", (lambda b: lambda p: decode(p, b, isolate=True).rgb)(b))
                 for b in ("pillow", "pyav")]
    if with_clips:
        try:
            import torch

            from gifemo.data.clips import make_clips
            torch.set_num_threads(1)
            rows.append(("decode+clips (pillow)", lambda p: make_clips(decode(p, "pillow").rgb)))
            rows.append(("decode+clips (pyav)", lambda p: make_clips(decode(p, "pyav").rgb)))
        except ImportError:
            pass
    print(f"\n== {label}: {len(paths)} GIFs, best of {repeats} ==")
    print(f"{'':26s} {'GIFs/s':>9s} {'frames/s':>10s} {'x raw pillow':>13s}")
    base = None
    for name, fn in rows:
        try:
            seconds, frames = _time(fn, paths, repeats)
        except Exception as e:  # noqa: BLE001 - a raw library failing on a file is a result
            print(f"{name:26s} failed: {type(e).__name__}: {str(e)[:60]}")
            continue
        gps = len(paths) / seconds
        base = base or gps
        unit = "clips/s" if name.startswith("decode+clips") else "frames/s"
        print(f"{name:26s} {gps:9.1f} {frames / seconds:10.0f} {gps / base:12.2f}x"
              + ("  (frames column = clips/s)" if unit == "clips/s" else ""))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", default="data/demo/manifest.csv")
    ap.add_argument("--n", type=int, default=100, help="generated realistic GIFs (no manifest)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--no-clips", action="store_true")
    ap.add_argument("--no-isolated", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        manifest = Path(args.manifest)
        if manifest.is_file():
            with open(manifest, newline="") as f:
                paths = [manifest.parent / r["path"] for r in csv.DictReader(f)]
            label = f"demo set {manifest}"
        else:
            t0 = time.perf_counter()
            paths = _make_set(tmp, args.n, (40, 120), (200, 400), seed=0)
            label = (f"generated realistic GIFs (40-120 frames, 200-400 px; made in "
                     f"{time.perf_counter() - t0:.0f} s)")
        run(paths, label, args.repeats, not args.no_clips, not args.no_isolated)
        small = _make_set(tmp, 200, (1, 4), (100, 100), seed=1)
        run(small, "small GIFs (1-4 frames, 100x100)", args.repeats, False, False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
