"""Zero-shot emotion scores: rank GIFs for an emotion nobody has labelled (beyond the paper).

The paper's collection loop (§3.2) needs a trained recognizer before the first look. Here a
GIF's score for an emotion is the cosine between an embedding of the GIF and the embedding of
the emotion's prompts, with no training at all:

* **tags** (:func:`tag_scores`): the GIF's pooled tag embedding
  (:class:`~gifemo.models.text_encoder.SentenceTagEncoder`) against the prompts embedded by the
  same sentence model;
* **image-text** (:func:`image_text_scores`): when the visual backbone is an image-text model
  (it has ``encode_text(list[str]) -> [n, D]`` L2-normalised rows in the space of its image
  features), the GIF's visual feature (mean over clips, L2) against the prompts embedded by the
  backbone's text tower;
* **both** (:func:`combine_scores`): the mean of the two, each standardised over the pool (the
  two cosines live on different scales).

Prompts (:func:`emotion_prompts`): every template of :data:`TEMPLATES` filled with the emotion's
name and its synonyms (:data:`SYNONYMS`, written for the 17 GIFGIF emotions from ordinary English
usage: the adjective and two or three near-synonyms), the prompt vector being the L2-normalised
mean of their unit embeddings. Any other name ("nostalgia", "awe") uses the templates with the
name alone, or with synonyms the caller gives. Variants, for measuring the choice: ``"name"``
(the bare word), ``"templates"`` (templates, name only), ``"words"`` (name and synonyms, bare),
``"synonyms"`` (templates x name and synonyms; the default).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

TEMPLATES: tuple[str, ...] = ("{}", "a GIF of {}", "a reaction GIF expressing {}", "feeling {}")
"""Prompt templates; ``{}`` is the emotion word."""

SYNONYMS: dict[str, tuple[str, ...]] = {
    "amusement": ("amused", "funny", "hilarious"),
    "anger": ("angry", "furious", "rage"),
    "contempt": ("contemptuous", "disdain", "scorn"),
    "contentment": ("content", "calm", "at peace"),
    "disgust": ("disgusted", "gross", "revolted"),
    "embarrassment": ("embarrassed", "awkward", "cringe"),
    "excitement": ("excited", "thrilled", "hyped"),
    "fear": ("afraid", "scared", "terrified"),
    "guilt": ("guilty", "remorse", "regret"),
    "happiness": ("happy", "joy", "cheerful"),
    "pleasure": ("pleased", "enjoyment", "delight"),
    "pride": ("proud", "triumphant", "accomplished"),
    "relief": ("relieved", "phew", "reassured"),
    "sadness": ("sad", "sorrow", "heartbroken"),
    "satisfaction": ("satisfied", "fulfilled", "gratified"),
    "shame": ("ashamed", "humiliated", "disgrace"),
    "surprise": ("surprised", "astonished", "amazed"),
}
"""Near-synonyms per GIFGIF emotion (the adjective first)."""

VARIANTS = ("name", "templates", "words", "synonyms")


class TextEmbedder(Protocol):
    """Anything that embeds texts: the tag encoder, or an image-text backbone's text tower."""

    def encode_text(self, texts: list[str]) -> np.ndarray: ...


def emotion_name(emotion: object) -> str:
    """An emotion name as prompts use it: lower case, whitespace collapsed ("" if blank)."""
    return " ".join(str(emotion).split()).lower()


def emotion_prompts(emotion: str, variant: str = "synonyms",
                    synonyms: Mapping[str, Sequence[str]] | None = None) -> list[str]:
    """The prompt texts of ``emotion`` for ``variant`` (module docstring); ``synonyms``
    overrides or extends :data:`SYNONYMS`."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown prompt variant {variant!r}; choose one of {VARIANTS}")
    name = emotion_name(emotion)
    if not name:
        raise ValueError("the emotion name is empty")
    if variant == "name":
        return [name]
    words = [name]
    if variant in ("words", "synonyms"):
        table = {**SYNONYMS, **{k.lower(): tuple(v) for k, v in (synonyms or {}).items()}}
        words += [w for w in table.get(name, ()) if w != name]
    if variant == "words":
        return words
    return [t.format(w) for w in words for t in TEMPLATES]


def prompt_vector(embedder: TextEmbedder, emotion: str, variant: str = "synonyms",
                  synonyms: Mapping[str, Sequence[str]] | None = None) -> np.ndarray:
    """float64 [D]: the L2-normalised mean of the unit embeddings of the emotion's prompts."""
    e = np.asarray(embedder.encode_text(emotion_prompts(emotion, variant, synonyms)), np.float64)
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    m = e.mean(axis=0)
    return m / max(float(np.linalg.norm(m)), 1e-12)


def prompt_matrix(embedder: TextEmbedder, emotions: Sequence[str], variant: str = "synonyms",
                  synonyms: Mapping[str, Sequence[str]] | None = None) -> np.ndarray:
    """float64 [T, D]: :func:`prompt_vector` of each emotion, all prompts embedded in one call."""
    prompts = [emotion_prompts(e, variant, synonyms) for e in emotions]
    flat = [p for ps in prompts for p in ps]
    E = np.asarray(embedder.encode_text(flat), np.float64)
    E = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
    out, i = [], 0
    for ps in prompts:
        m = E[i:i + len(ps)].mean(axis=0)
        out.append(m / max(float(np.linalg.norm(m)), 1e-12))
        i += len(ps)
    return np.stack(out)


def cosine_scores(rows: np.ndarray, embedder: TextEmbedder, emotions: Sequence[str],
                  variant: str = "synonyms",
                  synonyms: Mapping[str, Sequence[str]] | None = None) -> np.ndarray:
    """float64 [N, T]: cosine of each row (unit or zero: a zero row scores 0) with each
    emotion's prompt vector."""
    rows = np.asarray(rows, dtype=np.float64)
    if rows.ndim != 2:
        raise ValueError(f"rows must be [N, D], got {rows.shape}")
    P = prompt_matrix(embedder, emotions, variant, synonyms).T
    if P.shape[0] != rows.shape[1]:
        raise ValueError(f"rows have {rows.shape[1]} dims, the prompt embeddings {P.shape[0]}: "
                         f"they come from different models")
    n = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.where(n > 0, n, 1.0)) @ P


def tag_scores(tag_rows: np.ndarray, encoder: TextEmbedder, emotions: Sequence[str],
               variant: str = "synonyms", synonyms=None) -> np.ndarray:
    """Zero-shot from tags: pooled tag embeddings [N, D] (the encoder's) vs prompts [N, T]."""
    return cosine_scores(tag_rows, encoder, emotions, variant, synonyms)


def is_image_text(backbone: object) -> bool:
    """Whether a backbone can embed text in its image space (has ``encode_text``)."""
    return callable(getattr(backbone, "encode_text", None))


def image_text_scores(visual: np.ndarray, backbone: object, emotions: Sequence[str],
                      variant: str = "synonyms", synonyms=None) -> np.ndarray:
    """Zero-shot from pixels: visual features [N, D] (image embeddings, mean over clips, L2)
    vs the emotion prompts embedded by the backbone's text tower [N, T]."""
    if not is_image_text(backbone):
        raise TypeError(f"{type(backbone).__name__} is not an image-text backbone (it has no "
                        f"encode_text): image-text zero-shot needs one (e.g. an open_clip model)")
    return cosine_scores(visual, backbone, emotions, variant, synonyms)


def standardize(scores: np.ndarray) -> np.ndarray:
    """Each column minus its mean, over its standard deviation (a constant column -> 0)."""
    s = np.asarray(scores, dtype=np.float64)
    sd = s.std(axis=0, keepdims=True)
    return (s - s.mean(axis=0, keepdims=True)) / np.where(sd > 0, sd, 1.0)


def combine_scores(*scores: np.ndarray) -> np.ndarray:
    """The mean of the standardised score matrices (same shape [N, T])."""
    if not scores:
        raise ValueError("nothing to combine")
    shapes = {np.shape(s) for s in scores}
    if len(shapes) != 1:
        raise ValueError(f"score matrices of different shapes {sorted(shapes)}")
    return np.mean([standardize(s) for s in scores], axis=0)
