"""Test pools, held-out test sets and cross-validation folds per emotion (paper §3.6, Table 1).

The paper (§3.6): "For each emotion category, the human-labeled GIFs with the top 10 common
tags in Table 1 were chosen to resemble the distribution of the unlabeled GIF candidates.
From them, 33 % were randomly selected as test sets, and all the remaining labeled GIFs were
used for training the models." ρ is then chosen by 5-fold cross-validation on the training set.

Per emotion E (a column of every [N, 17] array):

- **top tags** (Table 1): the ``n`` tags carried by most of E's *positive* GIFs (y > 25), each
  GIF counting a tag once, generic tags (:data:`~gifemo.data.emotions.GENERIC_TAGS`: tv,
  movies, anime, …) left out as the paper struck them through; ties broken by name. They are
  counted on the whole labelled dataset, as Table 1 was (this only selects the test pool; no
  label of a test GIF reaches a model).
- **pool**: GIFs labelled for E that carry at least one of E's top tags;
- **test**: ``test_fraction`` of the pool (``ceil``, as scikit-learn rounds), drawn with
  :func:`sklearn.model_selection.train_test_split` stratified by E's positive label. When a
  class is too small to stratify (fewer than 2 members, or fewer test/train places than
  classes) the draw is unstratified and a warning is logged; a pool of one GIF goes to test;
- **train**: every GIF labelled for E that is not in E's test set (inside or outside the pool);
- **fold**: train split into ``n_folds`` with :class:`~sklearn.model_selection.StratifiedKFold`
  (shuffled). If no class has ``n_folds`` members it falls back to ``KFold``, and if train has
  fewer than ``n_folds`` GIFs they are dealt round-robin in shuffled order (some folds of that
  emotion are then empty); each fallback is logged as a warning.

Every draw for emotion ``j`` is seeded with ``SeedSequence([seed, j])``, so a split depends only
on the dataset and ``seed``, and emotions do not share random streams.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from gifemo.data.emotions import EMOTIONS, GENERIC_TAGS
from gifemo.data.tags import document_frequencies

_log = logging.getLogger(__name__)


@dataclass
class Split:
    """Per-emotion data split; every array has shape (N, 17), columns in ``EMOTIONS`` order.

    Attributes
    ----------
    pool : np.ndarray of bool
        Labelled GIFs carrying one of the emotion's top tags.
    test : np.ndarray of bool
        Held-out test GIFs (a subset of ``pool``).
    train : np.ndarray of bool
        Labelled GIFs not in ``test``.
    fold : np.ndarray of int8
        Cross-validation fold 0..n_folds-1 inside ``train``; -1 elsewhere.
    seed : int
        The seed that produced it.
    n_folds : int
        Number of folds.
    """

    pool: np.ndarray
    test: np.ndarray
    train: np.ndarray
    fold: np.ndarray
    seed: int
    n_folds: int = 5

    def val_mask(self, k: int) -> np.ndarray:
        """bool (N, 17): the training GIFs of fold ``k`` (validation in CV round ``k``)."""
        self._check_fold(k)
        return self.train & (self.fold == k)

    def fit_mask(self, k: int) -> np.ndarray:
        """bool (N, 17): the training GIFs outside fold ``k`` (fitted in CV round ``k``)."""
        self._check_fold(k)
        return self.train & (self.fold != k)

    def _check_fold(self, k: int) -> None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k < self.n_folds:
            raise ValueError(f"fold must be an integer in 0..{self.n_folds - 1}, got {k!r}")


def _positive_tag_counts(dataset) -> dict[str, Counter]:
    """Per emotion: how many of its positive GIFs carry each tag (each GIF counts a tag once)."""
    positive = dataset.positive
    return {e: document_frequencies([dataset.tags[i] for i in np.flatnonzero(positive[:, j])])
            for j, e in enumerate(EMOTIONS)}


def _ranked(counter: Counter) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda tc: (-tc[1], tc[0]))


def top_tags(dataset, n: int = 10, exclude: Collection[str] = GENERIC_TAGS) -> dict[str, list[tuple[str, int]]]:
    """The ``n`` most frequent tags among each emotion's positive GIFs (Table 1).

    Parameters
    ----------
    dataset : GifDataset
        Uses ``tags`` (normalised) and ``positive``.
    n : int, default=10
        Tags per emotion (fewer if the positives carry fewer).
    exclude : collection of str, default=GENERIC_TAGS
        Tags never listed.

    Returns
    -------
    dict of str to list of (tag, count)
        For every emotion in ``EMOTIONS`` order; ``count`` = positive GIFs carrying the tag;
        sorted by count descending, then tag.
    """
    excluded = set(exclude)
    return {e: [(t, c) for t, c in _ranked(counts) if t not in excluded][:n]
            for e, counts in _positive_tag_counts(dataset).items()}


def make_split(dataset, seed: int = 0, test_fraction: float = 0.33, n_folds: int = 5,
               n_top_tags: int = 10) -> Split:
    """Test pools, test sets, training sets and CV folds for every emotion (§3.6).

    Parameters
    ----------
    dataset : GifDataset
        Uses ``tags``, ``positive`` and ``mask``.
    seed : int, default=0
        Seeds every random draw (see the module docstring).
    test_fraction : float, default=0.33
        Share of each pool held out for test.
    n_folds : int, default=5
        Cross-validation folds on each training set.
    n_top_tags : int, default=10
        Top tags per emotion that define its pool.

    Returns
    -------
    Split
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise ValueError(f"n_folds must be an integer >= 2, got {n_folds!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    mask, positive = dataset.mask, dataset.positive
    n = len(dataset.tags)
    tops = top_tags(dataset, n=n_top_tags)
    pool = np.zeros((n, len(EMOTIONS)), dtype=bool)
    test = np.zeros_like(pool)
    fold = np.full((n, len(EMOTIONS)), -1, dtype=np.int8)
    for j, emotion in enumerate(EMOTIONS):
        wanted = {t for t, _ in tops[emotion]}
        carries = np.fromiter((not wanted.isdisjoint(tags) for tags in dataset.tags), dtype=bool, count=n)
        pool[:, j] = mask[:, j] & carries
        state_test, state_fold = np.random.SeedSequence([seed, j]).generate_state(2)
        idx = np.flatnonzero(pool[:, j])
        test[_held_out(idx, positive[idx, j], test_fraction, int(state_test), emotion), j] = True
        train_idx = np.flatnonzero(mask[:, j] & ~test[:, j])
        fold[train_idx, j] = _assign_folds(positive[train_idx, j], n_folds, int(state_fold), emotion)
    train = mask & ~test
    return Split(pool=pool, test=test, train=train, fold=fold, seed=int(seed), n_folds=int(n_folds))


def _held_out(idx: np.ndarray, labels: np.ndarray, fraction: float, state: int, emotion: str) -> np.ndarray:
    """The indices of ``idx`` held out for test: stratified if possible, else plain random."""
    if len(idx) == 0:
        return idx
    if len(idx) == 1:
        return idx
    try:
        _, held = train_test_split(idx, test_size=fraction, stratify=labels, random_state=state)
    except ValueError as e:
        _log.warning("%s: test pool of %d GIFs (%d positive) cannot be stratified (%s); drawing "
                     "the test set unstratified", emotion, len(idx), int(labels.sum()), e)
        n_test = math.ceil(fraction * len(idx))
        held = np.random.default_rng(state).permutation(idx)[:n_test]
    return np.sort(held)


def _assign_folds(labels: np.ndarray, n_folds: int, state: int, emotion: str) -> np.ndarray:
    """Fold number of each training GIF: StratifiedKFold, else KFold, else shuffled round-robin."""
    n = len(labels)
    out = np.full(n, -1, dtype=np.int8)
    if n == 0:
        return out
    if n < n_folds:
        _log.warning("%s: %d training GIFs for %d folds; dealing them round-robin (some folds empty)",
                     emotion, n, n_folds)
        out[np.random.default_rng(state).permutation(n)] = np.arange(n) % n_folds
        return out
    counts = np.bincount(labels.astype(int), minlength=2)
    if counts.max() >= n_folds:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            splits = list(StratifiedKFold(n_folds, shuffle=True, random_state=state).split(np.zeros(n), labels))
        if caught:
            _log.warning("%s: %d positives / %d negatives in training; some folds lack a class (%s)",
                         emotion, counts[1], counts[0], caught[0].message)
    else:
        _log.warning("%s: no class has %d training GIFs (%d positive, %d negative); using unstratified KFold",
                     emotion, n_folds, counts[1], counts[0])
        splits = list(KFold(n_folds, shuffle=True, random_state=state).split(np.zeros(n)))
    for k, (_, val) in enumerate(splits):
        out[val] = k
    return out


def format_table1(dataset, n: int = 10) -> str:
    """Table 1 of the paper as text: each emotion's most frequent tags among its positives.

    Tags are listed by frequency until ``n`` non-generic ones are shown; generic tags met on
    the way are shown as ``~tag~`` (struck through in the paper) and are not among the top
    ``n``. Each tag is followed by the number of positive GIFs carrying it.
    """
    counts = _positive_tag_counts(dataset)
    positive = dataset.positive
    width = max(len(e) for e in EMOTIONS)
    lines = [f"Top {n} tags among each emotion's positive GIFs (y = mu - 3 sigma > 25), by frequency",
             f"{'emotion':<{width}}  {'#pos':>5}  tags (positive GIFs carrying the tag)"]
    for j, emotion in enumerate(EMOTIONS):
        shown, kept = [], 0
        for tag, c in _ranked(counts[emotion]):
            if kept == n:
                break
            if tag in GENERIC_TAGS:
                shown.append(f"~{tag}~ ({c})")
            else:
                shown.append(f"{tag} ({c})")
                kept += 1
        lines.append(f"{emotion:<{width}}  {int(positive[:, j].sum()):>5}  {', '.join(shown) or '-'}")
    lines.append("~tag~ = generic tag (source, not emotion), left out of the top tags as in the paper")
    return "\n".join(lines)
