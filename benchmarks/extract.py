"""Speed of feature extraction for any ``conf/backbone``: the backbone alone per lever, and
decode + clips + backbone end to end, all in ONE run so the ratios compare like with like.

Measured on the current device (CUDA if available, else CPU):

* ``decode+clips``: GIF files -> clips (the data side alone), clips/s and GIFs/s;
* ``backbone``: the network alone on ready clips, one line per lever, clips/s and the ratio
  to the fp32 eager baseline, plus how far its features move (max |cos - 1| of the clip
  features against fp32 eager: what decides whether a lever changes the cached features).
  CPU levers: bf16 autocast, channels_last_3d, torch.compile, oneDNN (TorchScript
  ``freeze`` + ``optimize_for_inference``), and their useful combinations. GPU: fp32, bf16,
  bf16 + channels_last_3d, bf16 + channels_last_3d + compile;
* ``end-to-end``: the stage-1 loader (``ClipDataModule.predict_dataloader``) feeding the
  backbone, with 0 workers (decoding in the main process) and with ``--workers`` decoding
  processes overlapped with the backbone, for fp32 and bf16 (+compile on GPU); clips/s,
  GIFs/s, the ratio to the fp32 eager backbone, and the fraction of the wall time the
  backbone is busy (CUDA events on a GPU, wall time around the forward on CPU) — 100 % means
  the data side is hidden;
* ``clips per GIF``: end to end with ``--max-clips`` and with 1 clip per GIF (GIFs/s ratio).

Usage::

    python benchmarks/extract.py --gifs 8 --max-clips 2 --batch 8 --threads 2   # CPU, C3D
    python benchmarks/extract.py --backbone r3d_18 --gifs 8
    python benchmarks/extract.py --manifest /data/gifgif --gifs 2000 --batch 128 \\
        --workers 14 --repeats 5                                                 # GPU

Random weights (the speed does not depend on them). Without ``--manifest`` a small
synthetic demo set is generated in a temporary folder.
"""
from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf

from gifemo.features.clip_datamodule import ClipDataModule
from gifemo.features.visual_features import clip_cap
from gifemo.models.backbone import Backbone

CONF = Path(__file__).resolve().parents[1] / "conf" / "backbone"


def load_backbone(name: str, weights: str = "random", overrides=()) -> Backbone:
    """``conf/backbone/<name>.yaml`` with ``weights`` and ``key=value`` overrides."""
    node = OmegaConf.load(CONF / f"{name}.yaml")
    node.weights = weights
    for item in overrides:
        key, _, value = item.partition("=")
        OmegaConf.update(node, key, OmegaConf.create(f"v: {value}").v if value else None)
    return instantiate(node)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _autocast(device, bf16: bool):
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


class Variant:
    """One way to run the network: precision, memory layout, compiler."""

    def __init__(self, label, bf16=False, channels_last=False, compiled=False, frozen=False):
        self.label, self.bf16, self.channels_last = label, bf16, channels_last
        self.compiled, self.frozen = compiled, frozen

    def prepare(self, backbone: Backbone, device, example: torch.Tensor):
        """A callable ``clips (RGB 0..255 on device) -> features [n, d] float32``."""
        net = backbone.network
        net.to(memory_format=torch.channels_last_3d if self.channels_last else torch.contiguous_format)
        fwd = net
        if self.compiled:
            torch._dynamo.reset()
            fwd = torch.compile(net)
        if self.frozen:
            with torch.no_grad(), _autocast(device, self.bf16):
                traced = torch.jit.trace(net, self._input(backbone, example))
            fwd = torch.jit.optimize_for_inference(torch.jit.freeze(traced))

        def run(clips):
            with torch.inference_mode(), _autocast(device, self.bf16):
                return fwd(self._input(backbone, clips)).float()
        return run

    def _input(self, backbone, clips):
        x = backbone.preprocess(clips.float())
        return x.contiguous(memory_format=torch.channels_last_3d) if self.channels_last else x

    def restore(self, backbone: Backbone):
        backbone.network.to(memory_format=torch.contiguous_format)


def variants_for(device, compile_too: bool, cpu_levers: bool = True) -> list[Variant]:
    if device.type == "cuda":
        out = [Variant("fp32 eager (baseline)"), Variant("bf16 autocast", bf16=True),
               Variant("bf16 + channels_last_3d", bf16=True, channels_last=True)]
        if compile_too:
            out.append(Variant("bf16 + channels_last_3d + compile", bf16=True, channels_last=True,
                               compiled=True))
        return out
    out = [Variant("fp32 eager (baseline)"), Variant("bf16 autocast", bf16=True)]
    if cpu_levers:
        out += [Variant("channels_last_3d", channels_last=True),
                Variant("bf16 + channels_last_3d", bf16=True, channels_last=True),
                Variant("oneDNN freeze (TorchScript)", frozen=True)]
        if compile_too:
            out += [Variant("compile", compiled=True), Variant("bf16 + compile", bf16=True, compiled=True)]
    return out


def time_variant(backbone, variant: Variant, clips, device, batch, repeats=1):
    """(clips/s, features of the first batch) on ready clips; one warm-up batch not counted."""
    run = variant.prepare(backbone, device, clips[:batch].to(device))
    first = run(clips[:batch].to(device))  # warm-up (and compile)
    _sync(device)
    t0 = time.perf_counter()
    n = 0
    for _ in range(repeats):
        for i in range(0, clips.shape[0], batch):
            run(clips[i:i + batch].to(device, non_blocking=True))
            n += min(batch, clips.shape[0] - i)
    _sync(device)
    rate = n / (time.perf_counter() - t0)
    variant.restore(backbone)
    return rate, first


def feature_drift(a: torch.Tensor, b: torch.Tensor) -> float:
    """max over rows of |cos(a_i, b_i) - 1|."""
    return float((F.cosine_similarity(a.double().cpu(), b.double().cpu(), dim=1) - 1).abs().max())


def end_to_end(backbone, variant: Variant, dm: ClipDataModule, device, workers: int,
               example: torch.Tensor):
    """(clips, GIFs, wall s, backbone-busy s) over the stage-1 loader with ``workers``; the
    variant is prepared and warmed up (compiled) on ``example`` clips before the clock starts."""
    dm.num_workers = workers
    dm.pin_memory = device.type == "cuda"
    run = variant.prepare(backbone, device, example.to(device))
    run(example.to(device))
    _sync(device)
    busy, events, n, n_gifs = 0.0, [], 0, 0
    t_start = time.perf_counter()
    for batch in dm.predict_dataloader():
        if batch.clips.shape[0] == 0:
            continue
        clips = batch.clips.to(device, non_blocking=True)
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            run(clips)
            end.record()
            events.append((start, end))
        else:
            t0 = time.perf_counter()
            run(clips)
            busy += time.perf_counter() - t0
        n += clips.shape[0]
        n_gifs += int((batch.clip_pos == batch.n_clips - 1).sum())
    _sync(device)
    wall = time.perf_counter() - t_start
    if events:
        busy = sum(s.elapsed_time(e) for s, e in events) / 1000.0
    variant.restore(backbone)
    return n, n_gifs, wall, busy


def main(argv=None):
    p = argparse.ArgumentParser(description="feature extraction speed (see the module docstring)")
    p.add_argument("--backbone", default="c3d", help="a conf/backbone name (default c3d)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="backbone overrides, e.g. width=0.5 clip_length=16")
    p.add_argument("--manifest", default=None, help="dataset folder (default: a generated demo)")
    p.add_argument("--gifs", type=int, default=8, help="GIFs of the generated demo / first N")
    p.add_argument("--max-clips", type=int, default=2, help="clips per GIF (the demo's cap: 2)")
    p.add_argument("--batch", type=int, default=8, help="clips per batch")
    p.add_argument("--workers", type=int, default=2, help="decoding processes of the overlapped run")
    p.add_argument("--repeats", type=int, default=1, help="passes over the clips per lever")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--backend", default="pyav")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile levers")
    p.add_argument("--only-e2e", action="store_true", help="skip the per-lever backbone table")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    backbone = load_backbone(a.backbone, overrides=a.set)
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}; backbone {backbone!r} (dim "
          f"{backbone.output_dim}, clips {backbone.clip_spec}); batch {a.batch} clips")
    backbone.network.to(device)

    with tempfile.TemporaryDirectory() as tmp:
        manifest = a.manifest
        if manifest is None:
            from gifemo.data.demo import generate_demo
            manifest = generate_demo(Path(tmp) / "demo", n_gifs=max(a.gifs, 2), seed=0, workers=1,
                                     progress=False)

        def datamodule(max_clips):
            dm = ClipDataModule(str(manifest), backend=a.backend, clip_spec=backbone.clip_spec,
                                max_clips_per_gif=clip_cap(max_clips, backbone.max_clips),
                                clip_batch_size=a.batch)
            dm.setup("predict")
            dm.select_for_predict(range(min(a.gifs, len(dm.dataset.ids))))
            return dm

        dm = datamodule(a.max_clips)
        # 1) data side alone
        t0 = time.perf_counter()
        batches = list(dm.predict_packer())
        t_data = time.perf_counter() - t0
        clips = torch.cat([b.clips for b in batches])
        n_gifs = sum(int((b.clip_pos == b.n_clips - 1).sum()) for b in batches)
        print(f"decode+clips: {n_gifs} GIFs, {clips.shape[0]} clips in {t_data:.2f} s -> "
              f"{clips.shape[0] / t_data:.1f} clips/s, {n_gifs / t_data:.1f} GIFs/s")

        # 2) backbone alone, levers against the fp32 eager baseline
        base_rate = base_feat = None
        if not a.only_e2e:
            for v in variants_for(device, not a.no_compile):
                try:
                    rate, feat = time_variant(backbone, v, clips, device, a.batch, a.repeats)
                except Exception as e:  # a lever this build cannot run is reported, not fatal
                    print(f"backbone {v.label:36s} FAILED: {type(e).__name__}: {str(e)[:120]}")
                    continue
                if base_rate is None:
                    base_rate, base_feat = rate, feat
                print(f"backbone {v.label:36s} {rate:9.2f} clips/s  x{rate / base_rate:.2f}  "
                      f"feature drift {feature_drift(feat, base_feat):.1e}")

        example = clips[:a.batch]
        # 3) end to end: the stage-1 loader -> backbone, 0 workers and overlapped workers
        e2e = [Variant("fp32"), Variant("bf16", bf16=True)]
        if device.type == "cuda":
            e2e = [Variant("fp32"), Variant("bf16", bf16=True, channels_last=True)]
            if not a.no_compile:
                e2e.append(Variant("bf16+compile", bf16=True, channels_last=True, compiled=True))
        for v in e2e:
            for workers in sorted({0, a.workers}):
                n, g, wall, busy = end_to_end(backbone, v, dm, device, workers, example)
                ratio = f"x{n / wall / base_rate:.2f}" if base_rate else ""
                print(f"end-to-end {v.label:13s} {workers:2d} workers: {n} clips, {g} GIFs in "
                      f"{wall:.2f} s -> {n / wall:9.2f} clips/s {g / wall:7.2f} GIFs/s {ratio}; "
                      f"backbone busy {100 * busy / wall:5.1f} %")
        # 4) clips per GIF: the demo's cap against 1 clip per GIF (GIFs/s is what a run waits for)
        if a.max_clips != 1:
            best = e2e[1]
            rates = {}
            for cap in (a.max_clips, 1):
                n, g, wall, _ = end_to_end(backbone, best, datamodule(cap), device, a.workers, example)
                rates[cap] = g / wall
                print(f"clips per GIF {cap}: {best.label}, {a.workers} workers: {n} clips, {g} GIFs "
                      f"in {wall:.2f} s -> {g / wall:.2f} GIFs/s")
            print(f"1 clip per GIF instead of {a.max_clips}: GIFs/s x{rates[1] / rates[a.max_clips]:.2f}")
        if base_rate is not None:  # how much the machine's load drifted during the run
            again, _ = time_variant(backbone, Variant("fp32 eager"), clips, device, a.batch, a.repeats)
            print(f"backbone {'fp32 eager (baseline, again)':36s} {again:9.2f} clips/s  x{again / base_rate:.2f}")


if __name__ == "__main__":
    main()
