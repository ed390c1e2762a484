"""Test pools, test sets and folds (paper §3.6, Table 1) checked by brute force."""

import logging
import math
from collections import Counter

import numpy as np
import pytest

from gifemo.data.emotions import EMOTIONS, GENERIC_TAGS, emotion_index
from gifemo.data.manifest import GifDataset
from gifemo.data.splits import Split, format_table1, make_split, top_tags

POS, NEG = (40.0, 1.0), (20.0, 1.0)       # y = 37 (positive) and 17 (negative)


def _dataset(tags, labels):
    """labels: list (per GIF) of dict emotion -> True/False (positive/negative); absent = unlabelled."""
    n = len(tags)
    mu = np.full((n, 17), np.nan)
    sigma = np.full((n, 17), np.nan)
    for i, lab in enumerate(labels):
        for e, pos in lab.items():
            mu[i, emotion_index(e)], sigma[i, emotion_index(e)] = POS if pos else NEG
    ids = [f"g{i}" for i in range(n)]
    return GifDataset(root=None, ids=ids, paths=[None] * n, tags=[list(t) for t in tags], mu=mu, sigma=sigma)


def _random_dataset(n=600, seed=0):
    rng = np.random.default_rng(seed)
    vocab = [f"t{k}" for k in range(30)] + ["tv", "movies", "anime"]
    tags = [list(rng.choice(vocab, size=rng.integers(0, 5), replace=True)) for _ in range(n)]
    labels = []
    for i in range(n):
        lab = {}
        for j, e in enumerate(EMOTIONS):
            if rng.random() < 0.7:
                # positives more likely for GIFs carrying tag t{j}
                p = 0.6 if f"t{j}" in tags[i] else 0.2
                lab[e] = bool(rng.random() < p)
        labels.append(lab)
    return _dataset(tags, labels)


@pytest.fixture(scope="module")
def data():
    return _random_dataset()


def test_top_tags_hand_worked():
    ds = _dataset(
        tags=[["happy", "happy", "tv"], ["happy", "smile"], ["smile", "tv"], ["sad"], ["happy", "zebra"]],
        labels=[{"happiness": True}, {"happiness": True}, {"happiness": True}, {"happiness": False},
                {"sadness": True}],
    )
    top = top_tags(ds, n=10)
    # among happiness positives (GIFs 0-2): happy 2 (counted once per GIF), smile 2, tv 2 (generic, left out)
    assert top["happiness"] == [("happy", 2), ("smile", 2)]
    assert top["sadness"] == [("happy", 1), ("zebra", 1)]        # tie → by name
    assert top["anger"] == []
    assert top_tags(ds, n=1)["happiness"] == [("happy", 2)]
    assert top_tags(ds, n=10, exclude=())["happiness"] == [("happy", 2), ("smile", 2), ("tv", 2)]


def test_top_tags_on_random_data_match_brute_force(data):
    top = top_tags(data)
    positive = data.positive
    for j, e in enumerate(EMOTIONS):
        counts = Counter()
        for i in range(len(data)):
            if positive[i, j]:
                counts.update(set(data.tags[i]) - GENERIC_TAGS)
        expected = sorted(counts.items(), key=lambda tc: (-tc[1], tc[0]))[:10]
        assert top[e] == expected


def test_pool_is_exactly_the_labelled_gifs_with_a_top_tag(data):
    split = make_split(data, seed=0)
    top = top_tags(data)
    mask = data.mask
    for j, e in enumerate(EMOTIONS):
        wanted = {t for t, _ in top[e]}
        expected = [bool(mask[i, j] and wanted & set(data.tags[i])) for i in range(len(data))]
        assert split.pool[:, j].tolist() == expected
        assert 0 < split.pool[:, j].sum() < mask[:, j].sum()


def test_test_train_relations(data):
    split = make_split(data, seed=3)
    assert isinstance(split, Split) and split.seed == 3
    for a in (split.pool, split.test, split.train):
        assert a.shape == (len(data), 17) and a.dtype == bool
    assert not (split.test & ~split.pool).any()              # test ⊂ pool
    assert not (split.test & split.train).any()              # test ∩ train = ∅
    assert np.array_equal(split.test | split.train, data.mask)   # all the other labelled GIFs train


def test_test_fraction_and_stratification(data):
    split = make_split(data, seed=1)
    pos = data.positive
    for j in range(17):
        n_pool = split.pool[:, j].sum()
        assert split.test[:, j].sum() == math.ceil(0.33 * n_pool)
        pool_pos = (pos[:, j] & split.pool[:, j]).sum()
        test_pos = (pos[:, j] & split.test[:, j]).sum()
        assert abs(test_pos - 0.33 * pool_pos) <= 1.0


def test_determinism_per_seed(data):
    a, b, c = make_split(data, seed=7), make_split(data, seed=7), make_split(data, seed=8)
    for name in ("pool", "test", "train", "fold"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert np.array_equal(a.pool, c.pool)
    assert not np.array_equal(a.test, c.test) and not np.array_equal(a.fold, c.fold)


def test_folds_partition_train_and_are_stratified(data):
    split = make_split(data, seed=2, n_folds=5)
    assert split.fold.dtype == np.int8
    assert np.array_equal(split.fold >= 0, split.train)
    assert split.fold.max() == 4
    for j in range(17):
        f = split.fold[split.train[:, j], j]
        sizes = np.bincount(f, minlength=5)
        assert sizes.max() - sizes.min() <= 1
        pos = data.positive[split.train[:, j], j]
        pos_sizes = np.bincount(f[pos], minlength=5)
        assert pos_sizes.max() - pos_sizes.min() <= 1
    union = np.zeros_like(split.train)
    for k in range(5):
        val, fit = split.val_mask(k), split.fit_mask(k)
        assert not (val & fit).any() and np.array_equal(val | fit, split.train)
        assert not (union & val).any()
        union |= val
    assert np.array_equal(union, split.train)
    for bad in (5, -1, 1.0, True, "1"):
        with pytest.raises(ValueError, match=r"fold must be an integer in 0\.\.4"):
            split.val_mask(bad)
    split.fit_mask(np.int64(4))  # numpy integers are integers


def test_tiny_classes_fall_back_and_say_so(caplog):
    # fear: pool of 4 with a single positive (cannot stratify); 3 training GIFs (< 5 folds)
    tags = [["scared"], ["scared"], ["scared"], ["scared"], ["x"], ["y"]]
    labels = [{"fear": True}, {"fear": False}, {"fear": False}, {"fear": False}, {"fear": False}, {}]
    ds = _dataset(tags, labels)
    with caplog.at_level(logging.WARNING, logger="gifemo.data.splits"):
        split = make_split(ds, seed=0)
    j = emotion_index("fear")
    assert split.pool[:, j].tolist() == [True, True, True, True, False, False]
    assert split.test[:, j].sum() == 2                       # ceil(0.33 * 4)
    assert np.array_equal(split.train[:, j], ds.mask[:, j] & ~split.test[:, j])
    assert split.train[:, j].sum() == 3
    assert sorted(split.fold[split.train[:, j], j]) == [0, 1, 2]    # round-robin, folds 3-4 empty
    assert "cannot be stratified" in caplog.text and "round-robin" in caplog.text
    # emotions nobody labelled stay empty
    k = emotion_index("anger")
    assert not split.pool[:, k].any() and not split.train[:, k].any() and (split.fold[:, k] == -1).all()


def test_a_pool_of_one_goes_to_test():
    ds = _dataset([["scared"]] + [["x"]] * 6, [{"fear": True}] + [{"fear": False}] * 6)
    split = make_split(ds)
    j = emotion_index("fear")
    assert split.test[:, j].tolist() == [True] + [False] * 6 and split.train[:, j].sum() == 6


@pytest.mark.parametrize("kwargs", [dict(test_fraction=0), dict(test_fraction=1.2), dict(n_folds=1),
                                    dict(seed=-1), dict(seed=1.5)])
def test_bad_arguments(data, kwargs):
    with pytest.raises(ValueError):
        make_split(data, **kwargs)


def test_format_table1_marks_generic_tags():
    ds = _dataset(
        tags=[["tv", "happy"], ["tv", "smile"], ["tv", "happy"], ["movies"]],
        labels=[{"happiness": True}] * 4,
    )
    text = format_table1(ds, n=2)
    line = next(l for l in text.splitlines() if l.startswith("happiness"))
    # tv (3 GIFs) comes first but is generic; then happy (2); ties (1) by name until 2 non-generic
    assert line.split()[1] == "4"
    assert "~tv~ (3), happy (2), ~movies~ (1), smile (1)" in line
    assert "~tag~ = generic" in text
    assert sum(l.split()[0] in EMOTIONS for l in text.splitlines()[2:]) == 17
    one = next(l for l in format_table1(ds, n=1).splitlines() if l.startswith("happiness"))
    assert one.split("4", 1)[1].strip() == "~tv~ (3), happy (2)"  # stops after 1 non-generic
    default = format_table1(ds)
    assert default.startswith("Top 10 tags") and "emotion" in default.splitlines()[1]
    anger = next(l for l in default.splitlines() if l.startswith("anger"))
    assert anger.split() == ["anger", "0", "-"]


def test_defaults_are_seed_0_and_five_folds_and_two_folds_are_allowed(data):
    default = make_split(data)
    explicit = make_split(data, seed=0, test_fraction=0.33, n_folds=5)
    np.testing.assert_array_equal(default.fold, explicit.fold)
    np.testing.assert_array_equal(default.test, explicit.test)
    assert default.n_folds == 5 and default.fold.max() == 4
    two = make_split(data, n_folds=2)
    assert two.fold.max() == 1 and np.array_equal(two.fold >= 0, two.train)
    for bad in (1.5, True, 0):
        with pytest.raises(ValueError, match="n_folds"):
            make_split(data, n_folds=bad)


def test_unstratified_fallback_deals_balanced_seeded_folds(caplog):
    """6 training GIFs, 3 positive and 3 negative, 5 folds: no class fills every fold, so plain
    KFold (shuffled by the seed) deals sizes 2,1,1,1,1; the same seed gives the same folds."""
    tags = [["scared"]] * 9
    labels = [{"fear": i % 2 == 0} for i in range(9)]
    ds = _dataset(tags, labels)
    j = emotion_index("fear")
    with caplog.at_level(logging.WARNING, logger="gifemo.data.splits"):
        folds = {seed: make_split(ds, seed=seed, test_fraction=0.33).fold[:, j] for seed in range(6)}
    assert "unstratified KFold" in caplog.text
    for f in folds.values():
        assert sorted(np.bincount(f[f >= 0], minlength=5)) == [1, 1, 1, 1, 2]
    np.testing.assert_array_equal(make_split(ds, seed=3).fold[:, j], folds[3])
    assert len({f.tobytes() for f in folds.values()}) > 1  # the seed shuffles
