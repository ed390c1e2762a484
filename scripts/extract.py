"""Extract (or reuse) the per-GIF C3D features of a dataset into the feature cache.

Plain argparse (no Hydra): the flags map 1:1 to the fields of
``gifemo.features.{BackboneConfig, ClipConfig, DecodeConfig, RunConfig}``. Examples::

    python scripts/extract.py --manifest data/demo --weights random --max-clips 2 \
        --cache-dir outputs/features
    python scripts/extract.py --manifest /data/gifgif --weights c3d.pickle \
        --accelerator gpu --devices 4 --strategy ddp --clip-batch-size 128 --num-workers 8

A second run with the same inputs reuses the cache in seconds; an interrupted run resumes.
Weights are never downloaded: ``--weights`` is ``random`` (explicit) or a local file (the
Sports-1M ``c3d.pickle`` conversion, or a safetensors export of gifemo's C3D).
"""
from __future__ import annotations

import argparse
import logging
import sys
import time

from gifemo.features import (BackboneConfig, ClipConfig, DecodeConfig, RunConfig,
                             ensure_visual_features)


def _parse_devices(value: str):
    return int(value) if value.isdigit() else value


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--manifest", required=True, help="dataset folder or its manifest.csv")
    p.add_argument("--cache-dir", required=True, help="root of the feature cache")
    p.add_argument("--run-dir", default=None, help="where bad_files.csv goes (default: none)")
    g = p.add_argument_group("backbone")
    g.add_argument("--weights", required=True, help="'random' or a local weights file")
    g.add_argument("--width", type=float, default=1.0, help="C3D width factor (1 = paper)")
    g.add_argument("--seed", type=int, default=0, help="seed of random weights")
    g.add_argument("--convention", default=None, help="override the weights' input convention")
    g = p.add_argument_group("clips and decoding")
    g.add_argument("--max-clips", type=int, default=None, help="cap on clips per GIF (default: all)")
    g.add_argument("--backend", default="pyav", help="decoder: pyav, decord or pillow")
    g.add_argument("--max-frames", type=int, default=None)
    g.add_argument("--timeout-s", type=float, default=None, help="per-file decode time limit")
    g = p.add_argument_group("compute (not part of the cache key)")
    g.add_argument("--accelerator", default="auto")
    g.add_argument("--devices", type=_parse_devices, default=1)
    g.add_argument("--strategy", default="auto", help="e.g. ddp for several GPUs")
    g.add_argument("--precision", default=None, help="default: bf16-mixed on GPU, 32-true on CPU")
    g.add_argument("--channels-last", dest="channels_last", action=argparse.BooleanOptionalAction,
                   default=None, help="default: on for GPU")
    g.add_argument("--compile", action="store_true", help="torch.compile the backbone")
    g.add_argument("--clip-batch-size", type=int, default=8, help="clips (not GIFs) per batch")
    g.add_argument("--num-workers", type=int, default=0, help="decoding worker processes")
    g.add_argument("--shard-size", type=int, default=256, help="GIFs per cache shard")
    g.add_argument("--retry-bad", action="store_true", help="decode remembered bad files again")
    g.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    a = parse_args(argv)
    t0 = time.perf_counter()
    table = ensure_visual_features(
        a.manifest, a.cache_dir,
        BackboneConfig(a.weights, a.width, a.seed, a.convention),
        ClipConfig(a.max_clips),
        DecodeConfig(a.backend, max_frames=a.max_frames, timeout_s=a.timeout_s),
        run=RunConfig(accelerator=a.accelerator, devices=a.devices, strategy=a.strategy,
                      precision=a.precision, channels_last=a.channels_last, compile=a.compile,
                      clip_batch_size=a.clip_batch_size, num_workers=a.num_workers,
                      shard_size=a.shard_size, progress=not a.no_progress),
        run_dir=a.run_dir, retry_bad=a.retry_bad)
    dt = time.perf_counter() - t0
    print(f"{len(table.ids)} GIFs with features {table.visual.shape}, {len(table.bad)} bad, "
          f"{table.n_computed} computed now, {dt:.1f} s; cache {table.cache_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
