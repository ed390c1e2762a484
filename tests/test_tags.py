"""Tag vocabulary and bag-of-tags features (paper §3.4) on hand-worked examples."""

import json
import math

import numpy as np
import pytest

from gifemo.data.tags import TagVocabulary, document_frequencies, normalize_tag


@pytest.mark.parametrize("raw, expected", [
    ("Happy", "happy"),
    ("  Cartoons &   Comics\t", "cartoons & comics"),
    ("EYE\nROLL", "eye roll"),
    ("   ", ""),
    ("ünïcode  Ä", "ünïcode ä"),
])
def test_normalize_tag(raw, expected):
    assert normalize_tag(raw) == expected


def test_normalize_tag_rejects_non_strings():
    with pytest.raises(TypeError):
        normalize_tag(3)


# Hand-worked corpus: 4 GIFs.
#   document frequencies: happy 3 (GIF 0 lists it twice, counted once), tv 2, sad 2, cat 1
CORPUS = [
    ["Happy", "happy ", "TV"],
    ["happy", "sad"],
    ["sad", " tv", "happy", "cat"],
    [],
]


def test_document_frequency_counts_each_tag_once_per_gif():
    assert document_frequencies(CORPUS) == {"happy": 3, "tv": 2, "sad": 2, "cat": 1}


def test_build_threshold_and_order():
    # 0.5 → tags in >= 2 of 4 GIFs; order by frequency desc, then name: happy, sad, tv
    vocab = TagVocabulary.build(CORPUS, min_fraction=0.5)
    assert vocab.tags == ["happy", "sad", "tv"]
    assert vocab.document_frequency == [3, 2, 2]
    assert vocab.n_gifs == 4 and len(vocab) == 3
    assert TagVocabulary.build(CORPUS, min_fraction=0.51).tags == ["happy"]
    assert TagVocabulary.build(CORPUS, min_fraction=0.0).tags == ["happy", "sad", "tv", "cat"]


def test_build_default_threshold_is_half_a_percent_inclusive():
    # 200 GIFs: a tag on exactly 1 GIF is at 0.5 % (kept); 1000 GIFs: 4 GIFs = 0.4 % (dropped), 5 kept
    lists = [["rare"]] + [["common"]] * 199
    assert TagVocabulary.build(lists).tags == ["common", "rare"]
    lists = [["four"]] * 4 + [["five"]] * 5 + [[]] * 991
    assert TagVocabulary.build(lists).tags == ["five"]


def test_build_is_independent_of_input_order():
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(CORPUS))
    shuffled = [list(reversed(CORPUS[i])) for i in perm]
    assert TagVocabulary.build(shuffled, 0.25).tags == TagVocabulary.build(CORPUS, 0.25).tags


def test_encode_hand_worked():
    vocab = TagVocabulary(["happy", "sad", "tv"])
    x = vocab.encode([
        ["happy", "Happy", "tv"],     # counts (2, 0, 1) → /sqrt(5)
        ["sad"],                      # (0, 1, 0)
        ["cat", "dog"],               # no vocabulary tags → zero row
        [],                           # no tags → zero row
    ])
    assert x.dtype == np.float32 and x.shape == (4, 3)
    s5 = math.sqrt(5)
    np.testing.assert_allclose(x, [[2 / s5, 0, 1 / s5], [0, 1, 0], [0, 0, 0], [0, 0, 0]], rtol=1e-6)
    assert not np.isnan(x).any()


def test_encode_empty_vocabulary_and_empty_input():
    assert TagVocabulary([]).encode([["a"], []]).shape == (2, 0)
    assert TagVocabulary(["a"]).encode([]).shape == (0, 1)


def test_encode_rejects_a_bare_string():
    with pytest.raises(TypeError, match="GIF 1"):
        TagVocabulary(["a"]).encode([["a"], "abc"])


def test_round_trip_json_and_dict(tmp_path):
    vocab = TagVocabulary.build(CORPUS, min_fraction=0.25)
    d = vocab.to_dict()
    assert json.loads(json.dumps(d)) == d          # primitives only
    again = TagVocabulary.from_dict(d)
    assert again.tags == vocab.tags and again.document_frequency == vocab.document_frequency
    path = vocab.save(tmp_path / "vocab.json")
    loaded = TagVocabulary.load(path)
    assert loaded == vocab
    np.testing.assert_array_equal(loaded.encode(CORPUS), vocab.encode(CORPUS))


def test_load_rejects_garbage_naming_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        TagVocabulary.load(bad)
    bad.write_text(json.dumps({"tags": "happy"}))
    with pytest.raises(ValueError, match="bad.json"):
        TagVocabulary.load(bad)
    bad.write_text(json.dumps({"tags": ["happy", "happy"]}))
    with pytest.raises(ValueError, match="duplicated"):
        TagVocabulary.load(bad)


@pytest.mark.parametrize("tags", [["Happy"], ["a  b"], [""], [" x"]])
def test_constructor_rejects_unnormalised_tags(tags):
    with pytest.raises(ValueError):
        TagVocabulary(tags)


@pytest.mark.parametrize("frac", [-0.1, 1.5, float("nan"), "0.5", True])
def test_build_rejects_bad_min_fraction(frac):
    with pytest.raises(ValueError, match="min_fraction"):
        TagVocabulary.build(CORPUS, min_fraction=frac)


def test_build_rejects_zero_gifs():
    with pytest.raises(ValueError):
        TagVocabulary.build([])
