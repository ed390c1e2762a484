"""Zero-shot emotion scores: prompts, cosine scoring checked by brute force, image-text through a
duck-typed stand-in backbone, the combination, and the real sentence model on obvious tags."""
from __future__ import annotations

import numpy as np
import pytest

from gifemo.data.emotions import EMOTIONS
from gifemo.models.zero_shot import (SYNONYMS, TEMPLATES, combine_scores, emotion_prompts,
                                     image_text_scores, is_image_text, prompt_vector, standardize,
                                     tag_scores)


class TableEmbedder:
    """encode_text from a fixed word -> vector table (unknown words: a fixed vector)."""

    def __init__(self, table: dict[str, list[float]], dim: int = 3):
        self.table, self.dim, self.calls = table, dim, []

    def encode_text(self, texts):
        self.calls.append(list(texts))
        rows = [np.asarray(self.table.get(t, [0.0] * (self.dim - 1) + [1.0]), float) for t in texts]
        return np.stack([r / np.linalg.norm(r) for r in rows])


class StandInImageTextBackbone(TableEmbedder):
    """What an open_clip backbone offers zero-shot: ``encode_text`` in its image space."""

    output_dim = 3


def test_prompts_for_known_and_unknown_emotions():
    assert emotion_prompts("Happiness", "name") == ["happiness"]
    assert emotion_prompts("awe", "templates") == [t.format("awe") for t in TEMPLATES]
    words = emotion_prompts("sadness", "words")
    assert words == ["sadness", *SYNONYMS["sadness"]]
    full = emotion_prompts("sadness")
    assert len(full) == len(TEMPLATES) * len(words) and "a GIF of heartbroken" in full
    assert emotion_prompts("nostalgia") == [t.format("nostalgia") for t in TEMPLATES]
    assert emotion_prompts("nostalgia", "words", synonyms={"nostalgia": ["wistful"]}) == \
        ["nostalgia", "wistful"]
    assert set(SYNONYMS) == set(EMOTIONS)
    with pytest.raises(ValueError, match="variant"):
        emotion_prompts("fear", "bogus")
    with pytest.raises(ValueError, match="empty"):
        emotion_prompts("  ")


def test_scores_are_cosines_with_the_mean_prompt_vector_brute_force():
    emb = TableEmbedder({"joy": [1, 0, 0], "glad": [0, 1, 0], "gloom": [0, 0, 1]})
    rows = np.array([[1.0, 0, 0], [0, 3.0, 4.0], [0, 0, 0], [1, 1, 0]])
    got = tag_scores(rows, emb, ["joy"], "words", synonyms={"joy": ["glad"]})
    p = np.array([1, 1, 0]) / np.sqrt(2)                   # mean of joy and glad, L2
    want = [rows[i] @ p / (np.linalg.norm(rows[i]) or 1.0) for i in range(4)]
    np.testing.assert_allclose(got[:, 0], want, atol=1e-12)
    assert got[2, 0] == 0.0                                # no tags -> 0
    np.testing.assert_allclose(prompt_vector(emb, "joy", "words", {"joy": ["glad"]}), p)
    with pytest.raises(ValueError, match="different models"):
        tag_scores(np.ones((2, 5)), emb, ["joy"])


def test_image_text_zero_shot_uses_the_backbones_text_tower_and_combines():
    bb = StandInImageTextBackbone({"fear": [0, 1, 0], "joy": [1, 0, 0]})
    assert is_image_text(bb) and not is_image_text(object())
    visual = np.array([[0.0, 1, 0], [1, 0, 0], [0.6, 0.8, 0]])
    s = image_text_scores(visual, bb, ["fear", "joy"], "name")
    np.testing.assert_allclose(s, [[1, 0], [0, 1], [0.8, 0.6]], atol=1e-12)
    assert bb.calls == [["fear", "joy"]]                   # one text-tower call
    with pytest.raises(TypeError, match="encode_text"):
        image_text_scores(visual, object(), ["fear"])
    tags = np.array([[0.1], [0.3], [0.2]])
    both = combine_scores(s[:, :1], tags)
    np.testing.assert_allclose(both[:, 0], (standardize(s[:, :1]) + standardize(tags))[:, 0] / 2)
    z = standardize(np.array([[1.0], [2.0], [3.0]]))
    np.testing.assert_allclose(z[:, 0], [-np.sqrt(1.5), 0, np.sqrt(1.5)])
    np.testing.assert_array_equal(standardize(np.ones((3, 1))), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="shapes"):
        combine_scores(np.ones((3, 1)), np.ones((2, 1)))


def test_real_model_prefers_the_matching_tags(sentence_encoder):
    rows = sentence_encoder.encode_numpy([["crying", "tears"], ["laughing", "lol"],
                                          ["screaming", "terrified"], ["old photos", "childhood"]])
    s = tag_scores(rows, sentence_encoder, ["sadness", "amusement", "fear", "nostalgia"])
    assert list(s.argmax(axis=0)) == [0, 1, 2, 3]


def test_prompt_matrix_equals_one_prompt_vector_per_emotion():
    from gifemo.models.zero_shot import prompt_matrix

    emb = TableEmbedder({"joy": [1, 0, 0], "glad": [0, 1, 0], "fear": [0, 2, 1]})
    syn = {"joy": ["glad"]}
    M = prompt_matrix(emb, ["joy", "fear", "awe"], "words", syn)
    for row, e in zip(M, ["joy", "fear", "awe"]):
        np.testing.assert_allclose(row, prompt_vector(emb, e, "words", syn), atol=1e-12)
