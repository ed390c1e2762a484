"""A small synthetic stand-in for GIFGIF+ with a known structure (for `make demo`, tests, benchmarks).

The real data cannot be shipped, so the demo generates a dataset folder in the manifest format
(``manifest.csv`` + ``votes.csv``, see :mod:`gifemo.data.manifest`) whose statistics follow the
paper where it reports them, and whose ground truth is written beside it (``demo_truth.json``):

* **GIF files** (``gifs/``): real animated GIFs written by Pillow's GIF encoder: 80–320 px per
  side, frame counts long-tailed from 2 to ~350 with most between 10 and 60 (Fig. 9), per-frame
  delays including 0 and 10 ms (never 0 mixed with non-zero in one GIF, see :func:`_delays`),
  variable delays and held last frames, looping or not,
  interlaced or not, and four encodings seen in the wild: full frames, transparent delta
  frames with per-frame palettes (``optimize``), transparent "stickers" restored to the
  background (disposal 2), and opaque frames with disposal 2.
* **Latent emotions** (§3.1): per GIF a valence ``v`` and an arousal ``a`` factor, two group
  factors ``f_pos = 0.8 v + 0.6 z_pos`` and ``f_neg = -0.8 v + 0.6 z_neg`` and one factor
  per emotion. Each of the 17 true scores is a noisy linear function of them,
  ``s_e = 0.7 f_group(e) + alpha_e a + 0.55 u_e + flag effects`` (standardised), so emotions of
  :data:`POSITIVE_GROUP` correlate with each other, those of :data:`NEGATIVE_GROUP` likewise,
  and the two groups anti-correlate: the k = 2 structure the paper's clustered model finds
  (Fig. 6).
* **Pictures** carry part of that signal: the hue and brightness of the moving shapes follow
  valence (warm and bright vs. cold and dark), their speed, amplitude, camera pan and shake
  follow arousal; sizes, counts, background hues, textures, scene cuts and the cartoon style
  are nuisance. The signal is coarse colour and motion on purpose, so that even a frozen
  random-weight C3D (mean-pooled fc6) keeps some of it.
* **Tags** (§3.4): each GIF draws tags from the Table 1 lists of the emotions it expresses
  (probability ``sigmoid(3 d - 3.5)`` with ``d`` the standardised ``s_e + 0.3 u_e``, so each
  emotion keeps some tags of its own inside its group; tags weighted by their printed
  frequency order), generic tags (tv, movies, cartoons & comics …)
  at realistic rates, neutral topic tags, and a long Zipf tail of random words that mostly stay
  under the 0.5 % vocabulary threshold; a few tags are capitalised, as users type them.
* **Votes** (§3.1): per emotion only part of the GIFs is ever compared (so masks matter);
  random pairs of those are judged "which GIF expresses E more" by a Bradley–Terry (logistic)
  choice on a saturating intensity ``t = 10 * sigmoid(2.5 (s - 0.15))`` of the true score,
  with "neither" more likely when both GIFs are weak. With ~28 comparisons per GIF and emotion
  (GIFGIF had 3.1 M votes for 6,119 GIFs × 17 emotions, ≈30) TrueSkill's ``y = mu - 3 sigma``
  exceeds 25 for roughly a quarter of the labelled GIFs, the paper's base rate.
* **Flags** (Fig. 10): ``cartoon`` (≈22 %, raises amusement, excitement, surprise) and
  ``multi_scene`` (≈35 %, a scene cut plus a second character; raises surprise and
  embarrassment).

Everything is a function of ``seed`` alone: the same seed gives byte-identical files whatever
the number of worker processes (each GIF is rendered from its own spec and its own
``SeedSequence`` child). GIFs are rendered straight into palette indices, so Pillow never
quantises; that and two worker processes keep 600 GIFs well under a minute on two cores.
"""

from __future__ import annotations

import colorsys
import json
import math
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path

import numpy as np
from PIL import Image

from gifemo.data.emotions import EMOTIONS, GENERIC_TAGS, NEGATIVE_GROUP, POSITIVE_GROUP, TABLE1_TAGS
from gifemo.data.labels import Vote
from gifemo.data.manifest import write_dataset

GENERATOR_VERSION = 3
TRUTH_FILE = "demo_truth.json"
GIF_DIR = "gifs"

_N = len(EMOTIONS)
_IS_POSITIVE = np.array([e in POSITIVE_GROUP for e in EMOTIONS])

# Arousal loading per emotion (Russell's circumplex, roughly): excited ones high, calm ones low.
AROUSAL_LOADING: dict[str, float] = {
    "amusement": 0.30, "anger": 0.35, "contempt": -0.10, "contentment": -0.30, "disgust": 0.10,
    "embarrassment": 0.10, "excitement": 0.45, "fear": 0.40, "guilt": -0.25, "happiness": 0.20,
    "pleasure": 0.00, "pride": 0.10, "relief": -0.35, "sadness": -0.35, "satisfaction": -0.20,
    "shame": -0.20, "surprise": 0.45,
}
CARTOON_RATE = 0.22
MULTI_SCENE_RATE = 0.35
# How much each flag shifts an emotion's (pre-standardisation) score.
CARTOON_EFFECT: dict[str, float] = {"amusement": 0.6, "excitement": 0.4, "surprise": 0.3, "fear": 0.2}
MULTI_SCENE_EFFECT: dict[str, float] = {"surprise": 0.4, "embarrassment": 0.4, "contempt": 0.2}

# Vote model: intensity t = _T_MAX * sigmoid(_T_SLOPE * (s - _T_SHIFT)); P(left) = sigmoid(t_l - t_r).
_T_MAX, _T_SLOPE, _T_SHIFT = 10.0, 2.5, 0.15

# Generic (source) tags: rate for live-action GIFs, rate for cartoons.
_GENERIC_RATES: dict[str, tuple[float, float]] = {
    "tv": (0.30, 0.08), "movies": (0.25, 0.08), "movie": (0.05, 0.02), "reaction": (0.10, 0.10),
    "giphytrending": (0.03, 0.03), "animals": (0.06, 0.10), "cartoons & comics": (0.02, 0.70),
    "cartoon": (0.01, 0.25), "anime": (0.01, 0.15),
}
# Topic tags unrelated to emotion, with their rates.
_TOPIC_TAGS: dict[str, float] = {
    "celebrity": 0.06, "music": 0.05, "dog": 0.04, "cat": 0.04, "snl": 0.03, "the office": 0.03,
    "friends": 0.03, "simpsons": 0.02, "football": 0.02, "basketball": 0.02, "food": 0.03,
    "fashion": 0.02, "game of thrones": 0.02, "harry potter": 0.02, "star wars": 0.02,
    "nba": 0.015, "kids": 0.02, "party": 0.03, "news": 0.015, "art": 0.02, "reality tv": 0.02,
    "vintage": 0.015, "nature": 0.015, "comedy": 0.03, "drama": 0.02,
}
_N_TAIL_WORDS = 3000
_TAIL_EXPONENT = 1.1     # Zipf-Mandelbrot: p(rank k) ~ (k + 20)^-1.1, the commonest word on ~2 %
_TAIL_OFFSET = 20
_TAG_SLOPE, _TAG_SHIFT, _TAG_OWN_WEIGHT = 3.0, 3.5, 0.3
_TAIL_TAGS_PER_GIF = 2.0

_DELAY_CHOICES = np.array([0, 10, 20, 30, 40, 50, 60, 70, 80, 100, 120, 150, 200, 300])
_DELAY_WEIGHTS = np.array([2, 3, 8, 10, 15, 12, 12, 8, 10, 10, 4, 3, 2, 1], dtype=float)

# Palette layout (indices): 0 key/transparent colour, then two background ramps, then shapes.
_BG_LEVELS = 48
_BG_A, _BG_B = 1, 1 + _BG_LEVELS
_SHAPE_BASE = 1 + 2 * _BG_LEVELS
_SHAPE_LEVELS = 38
_MAX_SHAPES = 4          # palette room: 97 + 4 * 38 = 249 <= 256 (7 spare entries)


class DemoExistsError(FileExistsError):
    """The output folder exists and is not a demo dataset, so it is never overwritten."""


@dataclass
class Latents:
    """The per-GIF ground truth of the demo (§3.1's hidden emotion intensities).

    Attributes
    ----------
    valence, arousal : float64 [N]
        The two factors the pictures depend on.
    group_factors : float64 [N, 2]
        Columns: positive-group factor, negative-group factor.
    scores : float64 [N, 17]
        True emotion scores (standardised per emotion), columns in :data:`EMOTIONS` order.
    intensity : float64 [N, 17]
        What voters compare: ``10 * sigmoid(2.5 (scores - 0.15))``.
    own : float64 [N, 17]
        The emotion-specific factors ``u_e`` (what tells emotions of one group apart).
    cartoon, multi_scene : bool [N]
    """

    valence: np.ndarray
    arousal: np.ndarray
    group_factors: np.ndarray
    scores: np.ndarray
    intensity: np.ndarray
    own: np.ndarray
    cartoon: np.ndarray
    multi_scene: np.ndarray


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


# --------------------------------------------------------------------------- latents
def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def sample_latents(n: int, rng: np.random.Generator) -> Latents:
    """Draw valence, arousal, group and emotion factors, flags and the 17 true scores."""
    valence = rng.standard_normal(n)
    arousal = rng.standard_normal(n)
    z = rng.standard_normal((n, 2))
    f_pos = 0.8 * valence + 0.6 * z[:, 0]
    f_neg = -0.8 * valence + 0.6 * z[:, 1]
    cartoon = rng.random(n) < CARTOON_RATE
    multi_scene = rng.random(n) < MULTI_SCENE_RATE
    own = rng.standard_normal((n, _N))
    alpha = np.array([AROUSAL_LOADING[e] for e in EMOTIONS])
    raw = (0.7 * np.where(_IS_POSITIVE, f_pos[:, None], f_neg[:, None])
           + alpha * arousal[:, None] + 0.55 * own)
    for name, eff in CARTOON_EFFECT.items():
        raw[:, EMOTIONS.index(name)] += eff * (cartoon - CARTOON_RATE)
    for name, eff in MULTI_SCENE_EFFECT.items():
        raw[:, EMOTIONS.index(name)] += eff * (multi_scene - MULTI_SCENE_RATE)
    # Standardise with the population (not sample) moments, so n does not change the meaning.
    sd = np.sqrt(0.49 + alpha ** 2 + 0.55 ** 2)
    scores = raw / sd
    intensity = _T_MAX * _sigmoid(_T_SLOPE * (scores - _T_SHIFT))
    return Latents(valence, arousal, np.stack([f_pos, f_neg], 1), scores, intensity, own,
                   cartoon, multi_scene)


# --------------------------------------------------------------------------- tags
def _tail_words() -> list[str]:
    """A fixed long tail of made-up tag words (the same for every seed)."""
    rng = np.random.default_rng(20170501)
    onsets = list("bdfghjklmnprstvwz") + ["br", "ch", "gl", "kr", "pl", "sh", "st", "tr"]
    vowels = ["a", "e", "i", "o", "u", "ai", "ou", "ee"]
    codas = ["", "", "", "n", "r", "s", "l", "x", "m", "ck"]
    words: list[str] = []
    seen = set(GENERIC_TAGS) | set(_TOPIC_TAGS) | {t for ts in TABLE1_TAGS.values() for t in ts}
    while len(words) < _N_TAIL_WORDS:
        k = int(rng.integers(2, 4))
        w = "".join(onsets[rng.integers(len(onsets))] + vowels[rng.integers(len(vowels))]
                    for _ in range(k)) + codas[rng.integers(len(codas))]
        if rng.random() < 0.12:  # some two-word tags
            w += " " + onsets[rng.integers(len(onsets))] + vowels[rng.integers(len(vowels))] + "n"
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


def sample_tags(latents: Latents, rng: np.random.Generator) -> list[list[str]]:
    """Tags per GIF: Table 1 tags of expressed emotions, generic, topic and long-tail noise tags."""
    n = len(latents.valence)
    tail = _tail_words()
    tail_p = 1.0 / (np.arange(1, len(tail) + 1) + _TAIL_OFFSET) ** _TAIL_EXPONENT
    tail_p /= tail_p.sum()
    emotion_tags = {e: [t for t in TABLE1_TAGS[e] if t not in GENERIC_TAGS] for e in EMOTIONS}
    emotion_p = {}
    for e, ts in emotion_tags.items():
        w = 1.0 / np.arange(1, len(ts) + 1) ** 0.8
        emotion_p[e] = w / w.sum()
    # Propensity to carry emotion e's tags rises steeply with the true score and leans on the
    # emotion's own factor, so each emotion has its own top tags (Table 1) within a group.
    alpha = np.array([AROUSAL_LOADING[e] for e in EMOTIONS])
    cov = 0.55 / np.sqrt(0.49 + alpha ** 2 + 0.55 ** 2)       # cov(score_e, own_e)
    w = _TAG_OWN_WEIGHT
    driver = (latents.scores + w * latents.own) / np.sqrt(1.0 + w * w + 2 * w * cov)
    propensity = _sigmoid(_TAG_SLOPE * driver - _TAG_SHIFT)
    out: list[list[str]] = []
    for i in range(n):
        tags: list[str] = []
        for j, e in enumerate(EMOTIONS):
            if rng.random() < propensity[i, j]:
                k = 1 + int(rng.random() < 0.4)
                tags += list(rng.choice(emotion_tags[e], size=k, replace=False, p=emotion_p[e]))
        if rng.random() < 0.08:  # an off-target emotion tag (uploaders are not consistent)
            e = EMOTIONS[int(rng.integers(_N))]
            tags.append(str(rng.choice(emotion_tags[e], p=emotion_p[e])))
        for t, (live, toon) in _GENERIC_RATES.items():
            if rng.random() < (toon if latents.cartoon[i] else live):
                tags.append(t)
        for t, r in _TOPIC_TAGS.items():
            if rng.random() < r:
                tags.append(t)
        for k in rng.choice(len(tail), size=int(rng.poisson(_TAIL_TAGS_PER_GIF)), p=tail_p):
            tags.append(tail[k])
        seen, uniq = set(), []
        for t in tags:
            if t not in seen:
                seen.add(t)
                uniq.append(t)
        order = rng.permutation(len(uniq))
        uniq = [uniq[k] for k in order]
        # Users type tags in any case; the loader normalises them.
        uniq = [t.title() if rng.random() < 0.03 else (t.upper() if rng.random() < 0.01 else t)
                for t in uniq]
        out.append(uniq)
    return out


# --------------------------------------------------------------------------- votes
def sample_votes(intensity: np.ndarray, ids: list[str], rng: np.random.Generator,
                 votes_per_gif: float = 28.0, coverage: tuple[float, float] = (0.6, 0.9),
                 ) -> list[tuple[str, str, str, str]]:
    """Pairwise votes ``(emotion, left, right, choice)`` in the order they were cast.

    For each emotion a random fraction (``coverage``, drawn per emotion) of the GIFs enters the
    comparison pool; the others are never compared for it (no label, §3.1). Pairs are uniform
    among the pool, ``votes_per_gif * len(pool) / 2`` of them, so a GIF is compared
    ``votes_per_gif`` times on average. ``neither`` has probability ``0.03 + 0.15 (1 - t_max/10)``,
    otherwise ``left`` wins with probability ``sigmoid(t_left - t_right)``.
    """
    n = intensity.shape[0]
    votes: list[tuple[str, str, str, str]] = []
    for j, e in enumerate(EMOTIONS):
        c = rng.uniform(*coverage)
        pool = np.flatnonzero(rng.random(n) < c)
        if len(pool) < 2:
            continue
        m = int(round(votes_per_gif * len(pool) / 2))
        left = pool[rng.integers(len(pool), size=m)]
        right = pool[(np.searchsorted(pool, left) + rng.integers(1, len(pool), size=m)) % len(pool)]
        tl, tr = intensity[left, j], intensity[right, j]
        p_neither = 0.03 + 0.15 * (1.0 - np.maximum(tl, tr) / _T_MAX)
        p_left = _sigmoid(tl - tr)
        u = rng.random(m)
        w = rng.random(m)
        for a, b, un, nu, wl, pl in zip(left, right, u, p_neither, w, p_left):
            choice = "neither" if un < nu else ("left" if wl < pl else "right")
            votes.append((e, ids[a], ids[b], choice))
    return votes


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


# --------------------------------------------------------------------------- dataset
def demo_params(n_gifs: int, seed: int, votes_per_gif: float) -> dict:
    """What determines a demo's content (stored in the truth file, compared to skip regeneration)."""
    return {"generator_version": GENERATOR_VERSION, "n_gifs": int(n_gifs), "seed": int(seed),
            "votes_per_gif": float(votes_per_gif)}


def read_truth(folder: str | os.PathLike) -> dict:
    """The ground truth written beside a demo dataset (``demo_truth.json``)."""
    with open(Path(folder) / TRUTH_FILE, encoding="utf-8") as fh:
        return json.load(fh)


def demo_is_current(folder: str | os.PathLike, n_gifs: int, seed: int,
                    votes_per_gif: float = 28.0) -> bool:
    """True when ``folder`` holds a complete demo made with these parameters."""
    folder = Path(folder)
    try:
        truth = read_truth(folder)
    except (OSError, ValueError):
        return False
    if truth.get("params") != demo_params(n_gifs, seed, votes_per_gif):
        return False
    return (folder / "manifest.csv").is_file() and all(
        (folder / p).is_file() for p in truth.get("paths", [None]))


def _truth(ids, specs: list[GifSpec], latents: Latents, params: dict) -> dict:
    r = lambda a: np.round(np.asarray(a, dtype=float), 6).tolist()  # noqa: E731
    return {
        "params": params,
        "emotions": list(EMOTIONS),
        "groups": {"positive": list(POSITIVE_GROUP), "negative": list(NEGATIVE_GROUP)},
        "vote_model": {"intensity": "t_max * sigmoid(slope * (score - shift))",
                       "t_max": _T_MAX, "slope": _T_SLOPE, "shift": _T_SHIFT},
        "ids": list(ids),
        "paths": [s.path for s in specs],
        "n_frames": [s.n_frames for s in specs],
        "delays_ms": [s.delays_ms for s in specs],
        "size_wh": [[s.width, s.height] for s in specs],
        "encoding": [s.encoding for s in specs],
        "loop": [s.loop for s in specs],
        "valence": r(latents.valence),
        "arousal": r(latents.arousal),
        "group_factors": r(latents.group_factors),
        "scores": r(latents.scores),
        "intensity": r(latents.intensity),
        "emotion_factors": r(latents.own),
        "cartoon": [bool(x) for x in latents.cartoon],
        "multi_scene": [bool(x) for x in latents.multi_scene],
    }


def generate_demo(out_dir: str | os.PathLike, n_gifs: int = 600, seed: int = 0, *,
                  votes_per_gif: float = 28.0, workers: int | None = None,
                  progress: bool = True, overwrite: bool = True) -> Path:
    """Write a synthetic GIFGIF+-like dataset folder and return its path.

    Parameters
    ----------
    out_dir : path
        Dataset folder to create: ``manifest.csv``, ``votes.csv``, ``gifs/*.gif``,
        ``demo_truth.json``. It is built in a temporary sibling and moved into place, so a
        crash never leaves half a dataset. An existing folder is replaced only if it is a
        demo (has ``demo_truth.json``) and ``overwrite``; anything else raises
        :class:`DemoExistsError`.
    n_gifs : int, default=600
    seed : int, default=0
        Everything is a deterministic function of (n_gifs, seed, votes_per_gif).
    votes_per_gif : float, default=28
        Mean comparisons per GIF and emotion among the GIFs compared for that emotion.
    workers : int or None
        Processes that render GIFs (None: ``min(os.cpu_count(), 8)``; 1: in this process).
    progress : bool, default=True
        Show a tqdm progress bar while writing GIFs.
    """
    if n_gifs < 2:
        raise ValueError(f"n_gifs must be at least 2, got {n_gifs}")
    if votes_per_gif <= 0:
        raise ValueError(f"votes_per_gif must be positive, got {votes_per_gif}")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not (out / TRUTH_FILE).is_file():
            raise DemoExistsError(f"{out}: exists and is not a demo dataset (no {TRUTH_FILE}); "
                                  "refusing to overwrite it")
        if not overwrite:
            raise DemoExistsError(f"{out}: a demo dataset already exists (overwrite=False)")

    ss = np.random.SeedSequence([int(seed), GENERATOR_VERSION])
    rng_lat, rng_tags, rng_votes, rng_specs = (np.random.default_rng(s) for s in ss.spawn(4))
    width = max(5, len(str(n_gifs - 1)))
    ids = [f"demo_{i:0{width}d}" for i in range(n_gifs)]
    latents = sample_latents(n_gifs, rng_lat)
    tags = sample_tags(latents, rng_tags)
    votes = sample_votes(latents.intensity, ids, rng_votes, votes_per_gif=votes_per_gif)
    specs = sample_gif_specs(latents, ids, rng_specs)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (tmp / GIF_DIR).mkdir()
        _render_all(specs, tmp, workers, progress)
        flags = {"cartoon": latents.cartoon.copy(), "multi_scene": latents.multi_scene.copy()}
        write_dataset(tmp, ids, [s.path for s in specs], tags, flags=flags,
                      votes=[Vote(*v) for v in votes])
        with open(tmp / TRUTH_FILE, "w", encoding="utf-8") as fh:
            json.dump(_truth(ids, specs, latents, demo_params(n_gifs, seed, votes_per_gif)), fh)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _render_all(specs: list[GifSpec], root: Path, workers: int | None, progress: bool) -> None:
    from tqdm.auto import tqdm

    if workers is None:
        workers = min(os.cpu_count() or 1, 8)
    # Longest GIFs first, so one slow file does not finish last on its own.
    order = sorted(specs, key=lambda s: -s.n_frames * s.width * s.height)
    if workers <= 1 or len(specs) < 8:
        with tqdm(total=len(specs), desc="writing GIFs", unit="gif", disable=not progress) as bar:
            for s in order:
                write_gif(s, root)
                bar.update()
        return
    # Workers only run numpy and Pillow. fork (where it exists) needs no `if __name__ ==
    # "__main__"` guard in the caller's script, which spawn does; the pool is started before
    # the progress bar so no tqdm thread exists yet when it forks.
    method = "fork" if "fork" in get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context(method)) as ex:
        jobs = ex.map(_write_gif_job, [(s, str(root)) for s in order], chunksize=4)
        with tqdm(total=len(specs), desc="writing GIFs", unit="gif", disable=not progress) as bar:
            for _ in jobs:
                bar.update()


def truth_scores(folder: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """ids and the true score matrix float64 [N, 17] of a demo folder."""
    t = read_truth(folder)
    return t["ids"], np.asarray(t["scores"], dtype=float)


__all__ = [
    "DemoExistsError", "GifSpec", "Latents", "demo_is_current", "demo_params", "generate_demo",
    "read_truth", "render_frames", "sample_gif_specs", "sample_latents", "sample_tags",
    "sample_votes", "truth_scores", "write_gif",
]
