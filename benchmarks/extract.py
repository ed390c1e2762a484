"""Speed of feature extraction: decode + clips + C3D end to end, and C3D alone.

Measures on the current device (CUDA if available, else CPU), all in one run so the ratios
compare like with like:

* ``decode+clips``: GIF files -> clips (the data side alone), clips/s and GIFs/s;
* ``c3d``: the backbone alone on ready clips, per variant (baseline fp32 eager; bf16
  autocast; on GPU also channels_last_3d and torch.compile), clips/s and ratio to baseline;
* ``end-to-end``: the packed predict iterator feeding the backbone in one process (no
  workers), clips/s and the fraction of the time spent decoding (what workers must hide).

Usage (a few dozen clips is enough on a 2-core CPU)::

    python benchmarks/extract.py --gifs 16 --max-clips 2 --batch 8 --threads 2
    python benchmarks/extract.py --manifest /data/gifgif --batch 128 --compile   # GPU

Without ``--manifest`` a small synthetic demo set is generated in a temporary folder.
"""
from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

import torch

from gifemo.features.clip_datamodule import ClipDataModule
from gifemo.models.c3d import build_backbone


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _autocast(device, bf16: bool):
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def time_c3d(model, clips, device, batch, bf16=False, channels_last=False, compiled=False, repeats=1):
    """clips/s of the backbone on ready uint8 clips (one warm-up batch not counted)."""
    fwd = torch.compile(model) if compiled else model
    if channels_last:
        model.to(memory_format=torch.channels_last_3d)

    def run(x):
        x = model.preprocess(x.to(device, non_blocking=True).float())
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        with torch.inference_mode(), _autocast(device, bf16):
            return fwd(x)

    run(clips[:batch])  # warm-up (and compile)
    _sync(device)
    t0 = time.perf_counter()
    n = 0
    for _ in range(repeats):
        for i in range(0, clips.shape[0], batch):
            run(clips[i:i + batch])
            n += min(batch, clips.shape[0] - i)
    _sync(device)
    if channels_last:
        model.to(memory_format=torch.contiguous_format)
    return n / (time.perf_counter() - t0)


def main(argv=None):
    p = argparse.ArgumentParser(description="feature extraction speed")
    p.add_argument("--manifest", default=None, help="dataset folder (default: a generated demo)")
    p.add_argument("--gifs", type=int, default=16, help="GIFs of the generated demo / first N")
    p.add_argument("--max-clips", type=int, default=2)
    p.add_argument("--batch", type=int, default=8, help="clips per batch")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--backend", default="pyav")
    p.add_argument("--compile", action="store_true", help="also time torch.compile (GPU)")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}; C3D width {a.width:g}; batch {a.batch} clips")

    with tempfile.TemporaryDirectory() as tmp:
        manifest = a.manifest
        if manifest is None:
            from gifemo.data.demo import generate_demo
            manifest = generate_demo(Path(tmp) / "demo", n_gifs=max(a.gifs, 2), seed=0, workers=1,
                                     progress=False)
        dm = ClipDataModule(str(manifest), backend=a.backend, max_clips_per_gif=a.max_clips,
                            clip_batch_size=a.batch)
        dm.setup("predict")
        dm.select_for_predict(range(min(a.gifs, len(dm.dataset.ids))))

        # 1) data side alone
        t0 = time.perf_counter()
        batches = list(dm.predict_packer())
        t_data = time.perf_counter() - t0
        clips = torch.cat([b.clips for b in batches])
        n_gifs = sum(int((b.clip_pos == b.n_clips - 1).sum()) for b in batches)
        print(f"decode+clips: {n_gifs} GIFs, {clips.shape[0]} clips in {t_data:.2f} s -> "
              f"{clips.shape[0] / t_data:.1f} clips/s, {n_gifs / t_data:.1f} GIFs/s")

        # 2) backbone alone, variants against the fp32 eager baseline
        model, _ = build_backbone("random", width=a.width, seed=0)
        model.to(device)
        variants = [("fp32 eager (baseline)", {}), ("bf16 autocast", {"bf16": True})]
        if device.type == "cuda":
            variants += [("bf16 + channels_last_3d", {"bf16": True, "channels_last": True})]
            if a.compile:
                variants += [("bf16 + channels_last_3d + compile",
                              {"bf16": True, "channels_last": True, "compiled": True})]
        base = None
        for label, kw in variants:
            rate = time_c3d(model, clips, device, a.batch, **kw)
            base = base or rate
            print(f"c3d {label:34s} {rate:8.2f} clips/s  x{rate / base:.2f}")

        # 3) end to end in one process: packed iterator -> backbone (fp32 baseline settings)
        t_dec = t_model = 0.0
        n = 0
        it = iter(dm.predict_packer())
        while True:
            t0 = time.perf_counter()
            batch = next(it, None)
            t_dec += time.perf_counter() - t0
            if batch is None:
                break
            t0 = time.perf_counter()
            with torch.inference_mode():
                model.embed(batch.clips.to(device).float())
            _sync(device)
            t_model += time.perf_counter() - t0
            n += batch.clips.shape[0]
        total = t_dec + t_model
        print(f"end-to-end fp32, 0 workers: {n} clips in {total:.2f} s -> {n / total:.2f} clips/s "
              f"x{n / total / base:.2f}; decoding {100 * t_dec / total:.1f} % of the time")
        # The baseline again: how much the machine's load drifted during the run.
        again = time_c3d(model, clips, device, a.batch)
        print(f"c3d {'fp32 eager (baseline, again)':34s} {again:8.2f} clips/s  x{again / base:.2f}")


if __name__ == "__main__":
    main()
