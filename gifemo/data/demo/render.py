"""The demo's GIF files: per-GIF specs (size, frames, delays, encodings, moving shapes whose
colour follows valence and whose motion follows arousal) and their rendering into palette GIFs."""
from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from gifemo.data.demo.latents import Latents, _sigmoid

GIF_DIR = "gifs"
_DELAY_CHOICES = np.array([0, 10, 20, 30, 40, 50, 60, 70, 80, 100, 120, 150, 200, 300])
_DELAY_WEIGHTS = np.array([2, 3, 8, 10, 15, 12, 12, 8, 10, 10, 4, 3, 2, 1], dtype=float)

# Palette layout (indices): 0 key/transparent colour, then two background ramps, then shapes.
_BG_LEVELS = 48
_BG_A, _BG_B = 1, 1 + _BG_LEVELS
_SHAPE_BASE = 1 + 2 * _BG_LEVELS
_SHAPE_LEVELS = 38
_MAX_SHAPES = 4          # palette room: 97 + 4 * 38 = 249 <= 256 (7 spare entries)



@dataclass
class GifSpec:
    """Everything needed to render one GIF, as primitives (sent to worker processes)."""

    index: int
    path: str
    width: int
    height: int
    delays_ms: list[int]
    loop: int | None
    encoding: str                 # "full" | "delta" | "sticker" | "restore"
    disposal: int
    interlace: bool
    cartoon: bool
    scene_cut: int | None         # first frame of the second scene
    palette: list[int]            # 768 ints
    shapes: list[dict] = field(default_factory=list)
    shapes_b: list[dict] = field(default_factory=list)
    background: dict = field(default_factory=dict)
    background_b: dict = field(default_factory=dict)
    motion: dict = field(default_factory=dict)
    seed: int = 0

    @property
    def n_frames(self) -> int:
        return len(self.delays_ms)


# --------------------------------------------------------------------------- GIF specs
def _frame_count(rng: np.random.Generator) -> int:
    """Fig. 9: long-tailed 2..~350, most 10..60 (log-normal, median 28, plus a heavy tail)."""
    if rng.random() < 0.04:
        return int(rng.integers(2, 8))
    if rng.random() < 0.02:
        return int(rng.integers(150, 351))
    return int(np.clip(round(rng.lognormal(math.log(28), 0.7)), 2, 350))


def _delays(rng: np.random.Generator, n_frames: int) -> list[int]:
    """Per-frame delays in ms (multiples of 10, as GIF stores centiseconds).

    A GIF never mixes 0 and non-zero delays: by the GIF89a reading of
    :mod:`gifemo.data.gif_format` a zero-delay image is drawn into the next frame, so such a
    file would have fewer frames than were drawn. All-zero GIFs are kept (each image a frame).
    """
    base = int(rng.choice(_DELAY_CHOICES, p=_DELAY_WEIGHTS / _DELAY_WEIGHTS.sum()))
    kind = rng.random()
    d = np.full(n_frames, base, dtype=int)
    if base == 0:
        return [0] * n_frames
    if kind < 0.2:      # jitter, as from screen recordings / re-encoders
        d = np.maximum(10, d + 10 * rng.integers(-1, 2, size=n_frames))
    elif kind < 0.3:    # hold the last frame
        d[-1] = base * int(rng.integers(5, 21))
    elif kind < 0.35:   # mixed: a slow intro
        d[: max(1, n_frames // 5)] = base + 100
    return [int(x) for x in d]


def _hsv_ramp(h: float, s: float, v_lo: float, v_hi: float, n: int) -> list[int]:
    out: list[int] = []
    for k in range(n):
        v = v_lo + (v_hi - v_lo) * k / (n - 1)
        r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
        out += [int(round(255 * r)), int(round(255 * g)), int(round(255 * b))]
    return out


def _shape(rng: np.random.Generator, w: int, h: int, arousal_drive: float) -> dict:
    side = min(w, h)
    return {
        "kind": "rect" if rng.random() < 0.25 else "ellipse",
        "cx": float(rng.uniform(0.25, 0.75) * w), "cy": float(rng.uniform(0.25, 0.75) * h),
        "rx": float(rng.uniform(0.08, 0.22) * side), "ry": float(rng.uniform(0.08, 0.22) * side),
        "amp": float((0.06 + 0.30 * arousal_drive) * side * rng.uniform(0.7, 1.3)),
        "freq": float((0.012 + 0.10 * arousal_drive) * rng.uniform(0.8, 1.25)),
        "phase": float(rng.uniform(0, 2 * math.pi)),
        "angle": float(rng.uniform(0, 2 * math.pi)),
        "drift": float(rng.normal(0, 0.3 + 1.2 * arousal_drive)),
        "pulse": float(0.25 * arousal_drive * rng.random()),
    }


def sample_gif_specs(latents: Latents, ids: list[str], rng: np.random.Generator) -> list[GifSpec]:
    """Sizes, timings, encodings, palettes and motion of every GIF (the pictures' signal)."""
    specs: list[GifSpec] = []
    seeds = np.random.SeedSequence(int(rng.integers(2**63))).spawn(len(ids))
    for i, gid in enumerate(ids):
        v, a = float(latents.valence[i]), float(latents.arousal[i])
        cartoon, multi = bool(latents.cartoon[i]), bool(latents.multi_scene[i])
        w = int(rng.integers(100, 321))
        h = int(np.clip(round(w * rng.uniform(0.5, 1.3)), 80, 320))
        n_frames = _frame_count(rng)
        delays = _delays(rng, n_frames)
        enc_u = rng.random()
        encoding = ("full" if enc_u < 0.55 else "delta" if enc_u < 0.75
                    else "sticker" if enc_u < 0.88 else "restore")
        disposal = {"full": int(rng.choice([0, 1])), "delta": 1, "sticker": 2, "restore": 2}[encoding]
        loop_u = rng.random()
        loop = 0 if loop_u < 0.85 else (None if loop_u < 0.95 else int(rng.integers(1, 4)))
        # Colour carries valence: warm/bright when positive, cold/dark when negative (plus noise).
        warm = float(_sigmoid(2.0 * v + rng.normal(0, 1.0)))
        shape_hue = 0.70 - 0.64 * warm + rng.normal(0, 0.03)   # violet/blue ... orange/red
        shape_val = 0.45 + 0.55 * float(_sigmoid(1.5 * v + rng.normal(0, 1.0)))
        bg_hue = (0.68 - 0.55 * warm + rng.normal(0, 0.06)) if rng.random() < 0.35 else rng.random()
        bg_val = 0.25 + 0.6 * float(_sigmoid(0.8 * v + rng.normal(0, 0.8)))
        palette = [0, 0, 0]
        palette += _hsv_ramp(bg_hue, rng.uniform(0.2, 0.7), 0.05, bg_val, _BG_LEVELS)
        palette += _hsv_ramp(rng.random(), rng.uniform(0.2, 0.7), 0.05,
                             0.25 + 0.6 * rng.random(), _BG_LEVELS)
        n_shapes = int(rng.integers(1, 4)) + int(multi)
        for k in range(_MAX_SHAPES):
            hue = shape_hue + rng.normal(0, 0.03) if k < n_shapes else rng.random()
            palette += _hsv_ramp(hue, rng.uniform(0.6, 1.0), 0.08, shape_val, _SHAPE_LEVELS)
        palette += [0, 0, 0] * (256 - len(palette) // 3)
        if encoding == "sticker":
            palette[0:3] = [255, 255, 255]  # key colour: what viewers show on a white page
        # Motion carries arousal: speed, amplitude, pan, shake and flicker.
        drive = float(_sigmoid(1.5 * a + rng.normal(0, 0.8)))
        shapes = [_shape(rng, w, h, drive) for _ in range(n_shapes)]
        shapes_b = [_shape(rng, w, h, drive) for _ in range(n_shapes)] if multi else []
        bg = {"angle": float(rng.uniform(0, 2 * math.pi)), "texture": float(rng.uniform(0.05, 0.25)),
              "grain": int(rng.integers(4, 12))}
        bg_b = {"angle": float(rng.uniform(0, 2 * math.pi)), "texture": float(rng.uniform(0.05, 0.25)),
                "grain": int(rng.integers(4, 12))}
        pans = rng.random() < 0.6
        motion = {"pan": float((0.2 + 2.5 * drive) * rng.uniform(0.5, 1.5)) if pans else 0.0,
                  "pan_angle": float(rng.uniform(0, 2 * math.pi)),
                  "shake": float(max(0.0, 3.0 * (drive - 0.6))),
                  "flicker": float(max(0.0, 0.15 * (drive - 0.5)))}
        scene_cut = int(round(n_frames * rng.uniform(0.3, 0.7))) if multi and n_frames >= 4 else None
        specs.append(GifSpec(
            index=i, path=f"{GIF_DIR}/{gid}.gif", width=w, height=h, delays_ms=delays, loop=loop,
            encoding=encoding, disposal=disposal, interlace=bool(rng.random() < 0.7),
            cartoon=cartoon, scene_cut=scene_cut, palette=palette, shapes=shapes,
            shapes_b=shapes_b, background=bg, background_b=bg_b, motion=motion,
            seed=int(seeds[i].generate_state(1)[0])))
    return specs


# --------------------------------------------------------------------------- rendering
def _texture(rng: np.random.Generator, w: int, h: int, grain: int, cartoon: bool) -> np.ndarray:
    """Smooth value noise in [-1, 1] (bilinear up-sampled), banded for cartoons."""
    small = rng.uniform(-1, 1, size=(grain, grain)).astype(np.float32)
    tex = np.asarray(Image.fromarray(small, mode="F").resize((w, h), Image.BILINEAR))
    if cartoon:
        tex = np.round(tex * 2) / 2
    return tex


def render_frames(spec: GifSpec) -> list[np.ndarray]:
    """Palette-index frames (uint8 [H, W]) of one GIF; consecutive frames always differ."""
    rng = np.random.default_rng(spec.seed)
    w, h, n = spec.width, spec.height, spec.n_frames
    pad = int(4 + spec.motion["pan"] * min(n, 64) / 2 + 8)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    scenes = []
    for bg, base, shapes in ((spec.background, _BG_A, spec.shapes),
                             (spec.background_b, _BG_B, spec.shapes_b)):
        ca, sa = math.cos(bg["angle"]), math.sin(bg["angle"])
        grad = ((xx * ca + yy * sa) / max(w, h)).astype(np.float32)
        tex = _texture(rng, w + 2 * pad, h + 2 * pad, bg["grain"], spec.cartoon)
        scenes.append((grad, tex, bg["texture"], base, shapes))
    frames: list[np.ndarray] = []
    prev = None
    for t in range(n):
        second = spec.scene_cut is not None and t >= spec.scene_cut
        grad, tex, tex_amp, base, shapes = scenes[1 if second else 0]
        m = spec.motion
        # Camera pan (a bounce so long GIFs stay inside the padded texture) and shake.
        phase = (t % (2 * 64)) if n > 64 else t
        travel = phase if phase <= 64 else 128 - phase
        ox = pad + int(round(math.cos(m["pan_angle"]) * m["pan"] * travel / 2))
        oy = pad + int(round(math.sin(m["pan_angle"]) * m["pan"] * travel / 2))
        if m["shake"] > 0:
            ox += int(round(rng.normal(0, m["shake"])))
            oy += int(round(rng.normal(0, m["shake"])))
        ox, oy = min(max(ox, 0), 2 * pad), min(max(oy, 0), 2 * pad)
        frame = np.zeros((h, w), dtype=np.uint8)
        if spec.encoding != "sticker":
            level = 0.25 + 0.5 * grad + tex_amp * tex[oy:oy + h, ox:ox + w]
            level += m["flicker"] * math.sin(1.7 * t)
            if spec.cartoon:
                level = np.round(level * 4) / 4
            frame[:] = base + np.clip(level * (_BG_LEVELS - 1), 0, _BG_LEVELS - 1).astype(np.uint8)
        for k, s in enumerate(shapes):
            ang = 2 * math.pi * s["freq"] * t + s["phase"]
            cx = s["cx"] + s["amp"] * math.cos(s["angle"]) * math.sin(ang) + s["drift"] * (t % 50)
            cy = s["cy"] + s["amp"] * math.sin(s["angle"]) * math.sin(ang)
            scale = 1.0 + s["pulse"] * math.sin(ang * 1.3)
            rx, ry = max(3.0, s["rx"] * scale), max(3.0, s["ry"] * scale)
            x0, x1 = max(0, int(cx - rx) - 2), min(w, int(cx + rx) + 3)
            y0, y1 = max(0, int(cy - ry) - 2), min(h, int(cy + ry) + 3)
            if x0 >= x1 or y0 >= y1:
                continue
            dx = (xx[y0:y1, x0:x1] - cx) / rx
            dy = (yy[y0:y1, x0:x1] - cy) / ry
            d2 = np.maximum(dx * dx, dy * dy) if s["kind"] == "rect" else dx * dx + dy * dy
            inside = d2 <= 1.0
            if spec.cartoon:
                lvl = np.where(d2 > 0.8, 0.0, 0.85)  # flat fill with a dark outline
            else:
                lvl = 0.35 + 0.65 * (1.0 - d2)       # shaded
            idx = _SHAPE_BASE + k * _SHAPE_LEVELS + np.clip(lvl * (_SHAPE_LEVELS - 1), 0,
                                                            _SHAPE_LEVELS - 1).astype(np.uint8)
            region = frame[y0:y1, x0:x1]
            region[inside] = idx[inside]
        if prev is not None and np.array_equal(frame, prev):
            # Pillow merges identical consecutive frames; keep the intended count.
            frame[0, 0] = _SHAPE_BASE + 3 * _SHAPE_LEVELS + (t % 2)
        frames.append(frame)
        prev = frame
    return frames


def write_gif(spec: GifSpec, root: Path) -> Path:
    """Render ``spec`` and write it under ``root`` with Pillow's GIF encoder."""
    frames = render_frames(spec)
    images = []
    for f in frames:
        im = Image.fromarray(f, mode="P")
        im.putpalette(spec.palette)
        images.append(im)
    kw: dict = {"save_all": True, "append_images": images[1:], "duration": spec.delays_ms,
                "disposal": spec.disposal, "interlace": spec.interlace, "optimize": False}
    if spec.loop is not None:
        kw["loop"] = spec.loop
    if spec.encoding == "sticker":
        kw["transparency"] = 0
    elif spec.encoding == "delta":
        kw["optimize"] = True  # unchanged pixels become transparent, palettes per frame
    path = root / spec.path
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, format="GIF", **kw)
    return path


def _write_gif_job(args: tuple[GifSpec, str]) -> int:
    spec, root = args
    write_gif(spec, Path(root))
    return spec.index


