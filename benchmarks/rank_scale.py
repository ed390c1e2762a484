"""Ranking at scale: memory of the streaming job vs candidate count, and a cost model.

Two measurements (``all`` runs both and can write the README table)::

    python benchmarks/rank_scale.py memory --sizes 2000 20000 200000
    python benchmarks/rank_scale.py cost --gifs 8 --batches 2
    python benchmarks/rank_scale.py all --readme README.md
    python benchmarks/rank_scale.py table --from-json mem.json cost.json --readme README.md

``memory``: for each size N a paths file lists 24 generated 32x24 GIFs N times over under
distinct ids; ``scripts/rank.py``'s job (:func:`gifemo.ranking.run_rank_job`, one process,
shards of 1,000, top-100 for all 17 emotions) ranks them with the stand-in
:class:`~gifemo.models.tiny_backbone.TinyBackbone` in a fresh child process, which reports its
peak RSS (``resource.getrusage``) and GIFs/s. Every candidate is really decoded, cut into
clips, embedded, pooled and scored; only the network is tiny. Flat memory = the same peak RSS
at every N.

``cost``: on generated real-size GIFs (320x240, 40 frames, moving shapes, adaptive palette)
it measures decoding GIFs/s on one core (decode alone and decode + the paper's clips), clips
per GIF (all clips, and the demo's cap of 2), and backbone clips/s on this CPU at batch 8
(C3D full width and r2plus1d_18, fp32, random weights: the speed does not depend on the
values). From them: hours and machines to rank 1 M / 10 M / 150 M candidates per backbone.
GPU rows use the H200 anchors quoted in issue 13 (C3D fp32 ≈2,200, bf16 ≈3,100,
bf16+compile 4,022 clips/s), labelled as quoted, not measured here.

The model (per machine): a CPU machine decodes and embeds on the same cores, so
GIFs/s = 1 / (1 / (decode GIFs/s per core x cores) + clips per GIF / backbone clips/s);
a GPU machine decodes on its CPU cores in parallel with the GPU, so
GIFs/s = min(GPU clips/s / clips per GIF, decode GIFs/s per core x decode cores).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
GPU_ANCHORS = [("C3D fp32", 2200.0), ("C3D bf16", 3100.0), ("C3D bf16+compile", 4022.0)]
GPU_DECODE_CORES = 15  # the H200 machine has 16 cores; one drives the GPU
SIZES_M = (1e6, 1e7, 1.5e8)


def _hardware() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


# --------------------------------------------------------------------------- generated GIFs

def real_size_gifs(folder: Path, n: int, seed: int = 0, size=(320, 240), frames: int = 40) -> list[Path]:
    """GIFs of realistic size: a smooth background, moving ellipses, adaptive 256 colours."""
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for i in range(n):
        base = np.stack([(xx * rng.uniform(0.3, 0.8) + yy * rng.uniform(0.1, 0.5)) % 256
                         for _ in range(3)], -1).astype(np.uint8)
        shapes = [(rng.uniform(0, w), rng.uniform(0, h), rng.uniform(-6, 6), rng.uniform(-6, 6),
                   rng.uniform(15, 60), tuple(int(c) for c in rng.integers(0, 256, 3)))
                  for _ in range(5)]
        imgs = []
        for f in range(frames):
            im = Image.fromarray(base)
            d = ImageDraw.Draw(im)
            for x, y, vx, vy, r, col in shapes:
                cx, cy = (x + vx * f) % w, (y + vy * f) % h
                d.ellipse([cx - r, cy - r * 0.7, cx + r, cy + r * 0.7], fill=col)
            imgs.append(im.quantize(256, method=Image.Quantize.MEDIANCUT))
        p = folder / f"r{i:03d}.gif"
        imgs[0].save(p, save_all=True, append_images=imgs[1:], duration=60, loop=0)
        out.append(p)
    return out


# --------------------------------------------------------------------------- memory

def _child_job(paths: str, out: str, ckpt: str, shard_size: int) -> None:
    """Run one job in this (fresh) process; print its time and peak RSS as JSON."""
    import logging

    import torch

    from gifemo.ranking import run_rank_job

    logging.disable(logging.WARNING)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    res = run_rank_job(ckpt, out, paths=paths, top_k=100, shard_size=shard_size,
                       run={"accelerator": "cpu", "progress": False})
    dt = time.perf_counter() - t0
    print("RESULT " + json.dumps({"n": res.n_candidates, "seconds": dt,
                                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                                  "scored": res.merged.n_scored, "bad": res.merged.n_bad}))


def _tiny_checkpoint(path: Path) -> Path:
    import torch

    from gifemo.checkpoint import save_checkpoint
    from gifemo.models.layout import FeatureLayout
    from gifemo.models.linear_recognizer import LinearRecognizer
    from gifemo.models.penalties import RidgePenalty
    from gifemo.models.tiny_backbone import TinyBackbone

    bb = TinyBackbone(dim=32, seed=0)
    m = LinearRecognizer(RidgePenalty(1.0), layout=FeatureLayout("visual", 32, 0))
    g = torch.Generator().manual_seed(1)
    m.load_head_state({"W": torch.randn(32, 17, generator=g), "b": torch.zeros(17)})
    m.backbone_info = bb.identity()
    return save_checkpoint(m, path, clips={"max_clips_per_gif": 2},
                           backbone_config={"_target_": "gifemo.models.tiny_backbone.TinyBackbone",
                                            "dim": 32, "seed": 0})


def memory(sizes: list[int], shard_size: int, work: Path) -> list[dict]:
    from gifemo.models.tiny_backbone import tiny_gifs

    gifs = [p.resolve() for p in tiny_gifs(work / "gifs", 24, prefix="t")]
    ckpt = _tiny_checkpoint(work / "ckpt.pt")
    rows = []
    for n in sizes:
        paths = work / f"paths_{n}.txt"
        with open(paths, "w") as f:
            for i in range(n):
                f.write(f"c{i:09d}\t{gifs[i % len(gifs)]}\n")
        load0 = _load()
        p = subprocess.run([sys.executable, __file__, "_job", str(paths), str(work / f"job_{n}"),
                            str(ckpt), str(shard_size)], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
        line = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
        if p.returncode != 0 or not line:
            raise SystemExit(f"job of {n} failed:\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}")
        r = json.loads(line[0][7:])
        if r["scored"] != n:
            raise SystemExit(f"job of {n}: only {r['scored']} scored ({r['bad']} bad; see "
                             f"{work / f'job_{n}' / 'bad_files.csv'})")
        r.update(gifs_s=n / r["seconds"], load=f"{load0} -> {_load()}")
        rows.append(r)
        print(f"  {n:>9,} candidates: {r['seconds']:8.1f} s  {r['gifs_s']:7.1f} GIFs/s  peak RSS "
              f"{r['maxrss_mb']:7.1f} MB  (load {r['load']})", flush=True)
    return rows


# --------------------------------------------------------------------------- cost model

def _time_backbone(backbone, batch: int, batches: int) -> float:
    import torch

    clips = torch.randint(0, 256, (batch, 3, backbone.clip_spec.length, backbone.clip_spec.crop,
                                   backbone.clip_spec.crop), dtype=torch.uint8)
    net = backbone.network
    with torch.inference_mode():
        net(backbone.preprocess(clips.float()))  # warm-up
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(batches):
            net(backbone.preprocess(clips.float()))
    n = batch * batches
    return n / (time.perf_counter() - t0), n / (time.process_time() - c0)


def cost(n_gifs: int, batches: int, work: Path) -> dict:
    import torch

    from gifemo.data.clips import PAPER_CLIPS, clip_starts, make_clips
    from gifemo.data.decode import decode
    from gifemo.models.c3d import C3DBackbone
    from gifemo.models.torchvision_video import TorchvisionVideoBackbone

    gifs = real_size_gifs(work / "real", n_gifs)
    sizes = [p.stat().st_size for p in gifs]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    make_clips(decode(gifs[0]).rgb, spec=PAPER_CLIPS)  # warm-up (imports, first allocations)
    load0 = _load()
    t0, c0 = time.perf_counter(), time.process_time()
    frames = [decode(p) for p in gifs]
    t_dec, c_dec = time.perf_counter() - t0, time.process_time() - c0
    n_clips = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for p in gifs:
        n_clips += make_clips(decode(p).rgb, spec=PAPER_CLIPS).shape[0]
    t_all, c_all = time.perf_counter() - t0, time.process_time() - c0
    torch.set_num_threads(threads)
    # Rates per CPU-second (process time) do not depend on how busy the shared machine is;
    # the wall-clock rates are printed beside them.
    res = {"gif_kb": float(np.mean(sizes)) / 1024, "frames": int(frames[0].rgb.shape[0]),
           "hw": list(frames[0].rgb.shape[1:3]),
           "decode_gifs_s_core": n_gifs / c_dec, "decode_clips_gifs_s_core": n_gifs / c_all,
           "decode_gifs_s_wall": n_gifs / t_dec, "decode_clips_gifs_s_wall": n_gifs / t_all,
           "clips_per_gif_all": n_clips / n_gifs,
           "clips_per_gif_cap2": float(np.mean([len(clip_starts(f.rgb.shape[0], 2)) for f in frames])),
           "decode_load": f"{load0} -> {_load()}", "threads": threads}
    print(f"  decode {res['decode_gifs_s_core']:.1f} GIFs per CPU-s (wall {res['decode_gifs_s_wall']:.1f}/s), "
          f"decode+clips {res['decode_clips_gifs_s_core']:.1f} per CPU-s (wall "
          f"{res['decode_clips_gifs_s_wall']:.1f}/s) ({res['gif_kb']:.0f} KB, "
          f"{res['frames']} frames {res['hw']}), clips/GIF all {res['clips_per_gif_all']:.1f}, "
          f"cap 2: {res['clips_per_gif_cap2']:.1f}  (load {res['decode_load']})", flush=True)
    res["backbones"] = {}
    for name, bb in (("C3D", C3DBackbone(weights="random", width=1.0)),
                     ("r2plus1d_18", TorchvisionVideoBackbone(arch="r2plus1d_18", weights="random"))):
        load0 = _load()
        wall, per_cpu_s = _time_backbone(bb, 8, batches)
        cores = os.cpu_count() or 1
        # idle-machine estimate: clips per CPU-second x cores (the threads use every core)
        res["backbones"][name] = {"clips_s": per_cpu_s * min(threads, cores), "clips_s_wall": wall,
                                  "clips_per_cpu_s": per_cpu_s, "load": f"{load0} -> {_load()}"}
        print(f"  {name}: {per_cpu_s:.2f} clips per CPU-s -> {per_cpu_s * min(threads, cores):.2f} "
              f"clips/s on {min(threads, cores)} idle cores (wall, shared: {wall:.2f} clips/s; "
              f"batch 8, fp32; load {res['backbones'][name]['load']})", flush=True)
    return res


def cost_table(c: dict, hardware: str) -> list[dict]:
    """Rows: backbone, machine, clips/GIF -> GIFs/s per machine and hours / machines."""
    rows = []
    cores = os.cpu_count() or 1
    dec = c["decode_clips_gifs_s_core"]
    for cap, cpg in (("2 (demo cap)", c["clips_per_gif_cap2"]), ("all", c["clips_per_gif_all"])):
        for name, b in c["backbones"].items():
            gps = 1.0 / (1.0 / (dec * cores) + cpg / b["clips_s"])
            rows.append({"backbone": f"{name} fp32", "machine": f"this CPU ({cores} cores), measured",
                         "clips": cap, "gifs_s": gps, "backbone_gifs_s": b["clips_s"] / cpg,
                         "bound": "backbone" if cpg / b["clips_s"] > 1 / (dec * cores) else "decode"})
        for name, cps in GPU_ANCHORS:
            gps = min(cps / cpg, dec * GPU_DECODE_CORES)
            rows.append({"backbone": name, "machine": f"1 H200 (issue 13 anchor, quoted) + "
                                                      f"{GPU_DECODE_CORES} decode cores at this CPU's rate",
                         "clips": cap, "gifs_s": gps, "backbone_gifs_s": cps / cpg,
                         "bound": "GPU" if cps / cpg < dec * GPU_DECODE_CORES else "decode"})
    for r in rows:
        r["hours"] = [n / r["gifs_s"] / 3600 for n in SIZES_M]
        r["decode_cores_needed"] = r.pop("backbone_gifs_s") / dec
        r["machines_150m_24h"] = math.ceil(r["hours"][-1] / 24)
    return rows


def _fmt_h(h: float) -> str:
    return f"{h:,.1f}" if h < 100 else f"{h:,.0f}"


def markdown(mem: list[dict] | None, c: dict | None, hardware: str) -> str:
    out = []
    if mem:
        out += [f"Memory of the streaming job (`python benchmarks/rank_scale.py memory`; {hardware}; "
                "one process, 1 torch thread, stand-in `TinyBackbone`, shards of 1,000, top-100 "
                "for 17 emotions; each size in a fresh process; time and GIFs/s are wall-clock on the "
                "shared machine, run at `nice -n 10`; the point is the peak RSS):", "",
                "| candidates | scored | time (s) | GIFs/s | peak RSS (MB) | load (1/5/15 min, before -> after) |",
                "|---:|---:|---:|---:|---:|---|"]
        out += [f"| {r['n']:,} | {r['scored']:,} | {r['seconds']:.1f} | {r['gifs_s']:.0f} | {r['maxrss_mb']:.0f} | {r['load']} |"
                for r in mem]
        out.append("")
    if c:
        bb = c["backbones"]
        out += [f"Cost model (`python benchmarks/rank_scale.py cost`; {hardware}). Rates are per "
                "CPU-second (process time), which the load of the shared machine does not change; "
                "the wall-clock rates measured at that load are given in brackets. Decoding a "
                f"{c['hw'][1]}x{c['hw'][0]}, {c['frames']}-frame GIF ({c['gif_kb']:.0f} KB, generated): "
                f"{c['decode_gifs_s_core']:.1f} GIFs per CPU-s ({c['decode_gifs_s_wall']:.1f}/s), with "
                f"the paper's clips {c['decode_clips_gifs_s_core']:.1f} GIFs per CPU-s "
                f"({c['decode_clips_gifs_s_wall']:.1f}/s; load {c['decode_load']}); "
                f"{c['clips_per_gif_all']:.0f} clips per GIF (all) or {c['clips_per_gif_cap2']:.0f} "
                f"(demo cap); backbone fp32, batch 8, {c['threads']} threads: "
                + ", ".join(f"{k} {v['clips_per_cpu_s']:.2f} clips per CPU-s = {v['clips_s']:.2f} "
                            f"clips/s on the idle cores ({v['clips_s_wall']:.2f}/s; load {v['load']})"
                            for k, v in bb.items())
                + ". GPU rows use issue 13's H200 anchors (quoted, not measured here) and this "
                "CPU's decoding rate for 15 cores.", "",
                "| backbone | machine | clips/GIF | GIFs/s per machine | bound by | decode cores to "
                "feed the backbone | hours, 1 M | hours, 10 M | hours, 150 M | machines for 150 M in 24 h |",
                "|---|---|---|---:|---|---:|---:|---:|---:|---:|"]
        for r in cost_table(c, hardware):
            out.append(f"| {r['backbone']} | {r['machine']} | {r['clips']} | {r['gifs_s']:.2f} | {r['bound']} | "
                       f"{r['decode_cores_needed']:.1f} | "
                       + " | ".join(_fmt_h(h) for h in r["hours"]) + f" | {r['machines_150m_24h']:,} |")
    return "\n".join(out)


BEGIN, END = "<!-- rank_scale:begin -->", "<!-- rank_scale:end -->"


def write_readme(path: Path, text: str) -> None:
    s = path.read_text(encoding="utf-8")
    if BEGIN not in s or END not in s:
        raise SystemExit(f"{path}: no {BEGIN} ... {END} block to fill")
    head, rest = s.split(BEGIN, 1)
    path.write_text(head + BEGIN + "\n" + text + "\n" + END + rest.split(END, 1)[1], encoding="utf-8")


def main(argv=None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "_job":
        _child_job(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("what", choices=["memory", "cost", "all", "table"],
                   help="table: only print/write the tables of earlier --json files (--from-json)")
    p.add_argument("--from-json", nargs="+", default=[], help="figures written by earlier --json runs")
    p.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000, 200000])
    p.add_argument("--shard-size", type=int, default=1000)
    p.add_argument("--gifs", type=int, default=8, help="real-size GIFs for the decoding rate")
    p.add_argument("--batches", type=int, default=2, help="timed backbone batches (after 1 warm-up)")
    p.add_argument("--work", default=None, help="working folder (default: a temporary one)")
    p.add_argument("--json", default=None, help="also write the figures here")
    p.add_argument("--readme", default=None, help="fill the rank_scale block of this README")
    a = p.parse_args(argv)
    hardware = _hardware()
    if a.what == "table":
        runs = [json.loads(Path(f).read_text()) for f in a.from_json]
        mem = next((r["memory"] for r in runs if r.get("memory")), None)
        c = next((r["cost"] for r in runs if r.get("cost")), None)
        text = markdown(mem, c, runs[0]["hardware"] if runs else hardware)
        print(text)
        if a.readme:
            write_readme(Path(a.readme), text)
        return 0
    with tempfile.TemporaryDirectory(prefix="rank_scale-") as tmp:
        work = Path(a.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        print(f"{hardware}; load {_load()}")
        mem = memory(a.sizes, a.shard_size, work) if a.what in ("memory", "all") else None
        c = cost(a.gifs, a.batches, work) if a.what in ("cost", "all") else None
    text = markdown(mem, c, hardware)
    print(text)
    if a.json:
        Path(a.json).write_text(json.dumps({"hardware": hardware, "memory": mem, "cost": c}, indent=1))
    if a.readme:
        write_readme(Path(a.readme), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
