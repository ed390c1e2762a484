"""The demo's hidden emotion structure (§3.1): valence, arousal, two anti-correlated groups of
emotions, per-emotion factors and the cartoon / multi-scene flags (Fig. 10)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gifemo.data.emotions import EMOTIONS, POSITIVE_GROUP

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


