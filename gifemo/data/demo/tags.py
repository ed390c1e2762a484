"""The demo's tags (§3.4): Table 1 tags of the emotions a GIF expresses, generic and topic tags
at realistic rates, and a long Zipf tail of words below the vocabulary threshold."""
from __future__ import annotations

import numpy as np

from gifemo.data.demo.latents import _N, AROUSAL_LOADING, Latents, _sigmoid
from gifemo.data.emotions import EMOTIONS, GENERIC_TAGS, TABLE1_TAGS

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


