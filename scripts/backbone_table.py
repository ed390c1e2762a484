"""One table of visual backbones on the demo: each runs end to end through ``train.py``.

Runs ONE Hydra multirun over the backbones (the demo's weights are ``random``)::

    python train.py -m backbone=c3d,r3d_18,... features=visual data.n_gifs=N \\
        data.max_clips_per_gif=1 ...

then reads each job's checkpoint (backbone identity, feature dimension, test PR-AUC and Ñ,
extraction time) and its feature-cache folder (size on disk), and writes
``<out>/backbone_table.md``. Usage::

    python scripts/backbone_table.py --gifs 12 --out outputs/backbone_table
    python scripts/backbone_table.py --backbones c3d,r3d_18 --gifs 600 -- data.backbone_weights=...

With random weights the table shows that each backbone runs, its feature size, its speed
(clips/s of stage 1 on this machine, one clip per GIF) and its cache size; the quality
columns (PR-AUC, Ñ) mean nothing until real weights are given (the README shows how).
Extra arguments after ``--`` go to ``train.py``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
BACKBONES = ["c3d", "r3d_18", "mc3_18", "r2plus1d_18", "s3d", "mvit_v2_s", "swin3d_t", "open_clip"]


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def cache_folder_of(cache_root: Path, identity: dict) -> Path | None:
    """The settings folder whose backbone identity is ``identity`` (one clip per GIF)."""
    for settings in sorted(cache_root.glob("*/settings.json")):
        s = json.loads(settings.read_text())["settings"]
        if s.get("backbone") == identity:
            return settings.parent
    return None


def table_rows(sweep_dir: Path, cache_root: Path) -> list[dict]:
    rows = []
    for ckpt_path in sorted(sweep_dir.glob("*/checkpoint.pt"), key=lambda p: int(p.parent.name)):
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        ident, m = ckpt["backbone"]["identity"], ckpt["metrics"]
        folder = cache_folder_of(cache_root, ident)
        label = ident["name"] + (f" {ident['settings']['model']}" if ident["name"] == "open_clip" else "")
        n, secs = m.get("data/n_extracted", 0.0), m.get("data/extract_s", 0.0)
        rows.append({"backbone": label, "weights": ident["weights_id"], "dim": ident["output_dim"],
                     "clip": ident["clip_spec"], "gifs": int(m.get("data/n_gifs", 0)),
                     "clips_per_s": n / secs if secs else float("nan"),
                     "cache_mb": folder_bytes(folder) / 2**20 if folder else float("nan"),
                     "pr_auc": m.get("test/pr_auc", float("nan")),
                     "n_tilde": m.get("test/n_tilde", float("nan"))})
    return rows


def format_table(rows: list[dict]) -> str:
    lines = ["| backbone | weights | feature dim | clip (frames × crop²) | GIFs | clips/s | cache MiB | PR-AUC | Ñ |",
             "|---|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        clip = f"{r['clip']['length']} × {r['clip']['crop']}²"
        lines.append(f"| {r['backbone']} | {r['weights']} | {r['dim']} | {clip} | {r['gifs']} | "
                     f"{r['clips_per_s']:.2f} | {r['cache_mb']:.2f} | {r['pr_auc']:.3f} | {r['n_tilde']:,.0f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbones", default=",".join(BACKBONES))
    p.add_argument("--gifs", type=int, default=12, help="demo GIFs (600 = the full demo)")
    p.add_argument("--out", default="outputs/backbone_table")
    a = p.parse_args(argv)
    out = Path(a.out).resolve()
    sweep, cache = out / "multirun", out / "feature_cache"
    cmd = [sys.executable, str(REPO / "train.py"), "-m", f"backbone={a.backbones}", "features=visual",
           f"data.n_gifs={a.gifs}", f"data.manifest={out / 'demo'}", "data.max_clips_per_gif=1",
           f"paths.cache_dir={cache}", f"hydra.sweep.dir={sweep}", "logger=csv",
           "extract.progress=false", "task_name=backbone_table", *extra]
    print("running:", " ".join(cmd[1:]), flush=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    code = subprocess.call(cmd, cwd=REPO, env=env)
    rows = table_rows(sweep, cache)
    text = format_table(rows)
    out.mkdir(parents=True, exist_ok=True)
    (out / "backbone_table.md").write_text(text + "\n")
    print(text)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
