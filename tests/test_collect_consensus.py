"""Consensus rule, agreement statistics and the replay of the original order, against hand-worked
examples, scikit-learn and brute-force enumeration."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from gifemo.collect.consensus import agreement, decide, judgements_needed
from gifemo.collect.replay import replay


@pytest.mark.parametrize("n_yes,n_no,expected", [
    (0, 0, None), (1, 0, None), (0, 1, None), (2, 0, 1), (0, 2, 0),
    (1, 1, None), (2, 1, 1), (1, 2, 0),
])
def test_decide_two_agree_or_majority_of_three(n_yes, n_no, expected):
    assert decide(n_yes, n_no) == expected
    assert judgements_needed(n_yes, n_no) == (3 if n_yes and n_no else 2)


def test_decide_rejects_negative_counts():
    with pytest.raises(ValueError, match="negative"):
        decide(-1, 2)


def test_agreement_matches_sklearn_and_hand_counts():
    rng = np.random.default_rng(0)
    people = ["ann", "bo", "cy", "di"]
    judgements, decisions, firsts = [], {}, []
    for g in range(60):
        gif = f"g{g}"
        who = list(rng.permutation(people))
        a = [str(rng.choice(["yes", "no"], p=[0.4, 0.6])) for _ in range(3)]
        if rng.random() < 0.2:  # a skip before the real answers is ignored
            judgements.append((gif, who[3], "skip"))
        judgements += [(gif, who[0], a[0]), (gif, who[1], a[1])]
        firsts.append((a[0], a[1]))
        if a[0] != a[1]:
            judgements.append((gif, who[2], a[2]))
        votes = a[:2] if a[0] == a[1] else a
        decisions[gif] = int(votes.count("yes") > votes.count("no"))
    out = agreement(judgements, decisions)
    assert out["n_pairs"] == 60
    assert out["pair_agreement"] == pytest.approx(sum(x == y for x, y in firsts) / 60)
    assert out["kappa"] == pytest.approx(cohen_kappa_score([f[0] for f in firsts], [f[1] for f in firsts]))
    assert out["n_third"] == sum(x != y for x, y in firsts)
    for p in people:
        mine = [(g, a) for g, w, a in judgements if w == p and a != "skip"]
        agree = sum((a == "yes") == bool(decisions[g]) for g, a in mine)
        assert out["per_labeller"][p] == {"n": len(mine), "agree_with_consensus": pytest.approx(agree / len(mine))}


def test_agreement_empty_and_degenerate():
    out = agreement([], {})
    assert out["n_pairs"] == 0 and math.isnan(out["pair_agreement"]) and math.isnan(out["kappa"])
    out = agreement([("a", "x", "yes"), ("a", "y", "yes")], {"a": 1})
    assert out["pair_agreement"] == 1.0 and math.isnan(out["kappa"])  # one class only: κ undefined


def _looks_in_order(order, truth, k):
    hits = 0
    for i, g in enumerate(order, 1):
        hits += truth[g]
        if hits >= k:
            return i
    return None


def test_replay_fully_labelled_equals_direct_walk():
    rng = np.random.default_rng(1)
    n = 30
    truth = (rng.random(n) < 0.35).astype(float)
    original = rng.permutation(n)
    used = rng.permutation(n)                     # the (re-ranked) order actually followed
    looks = np.empty(n)
    looks[used] = np.arange(1, n + 1)
    r = replay(original, truth, looks)
    k = int(truth.sum())
    assert r.k == k
    assert r.actual == _looks_in_order(used, truth, k)
    assert r.lower == r.upper == r.estimate == _looks_in_order(original, truth, k)
    assert r.saved_estimate == r.estimate - r.actual


def test_replay_bounds_bracket_every_completion():
    rng = np.random.default_rng(2)
    for trial in range(20):
        n = 9
        truth = (rng.random(n) < 0.5).astype(float)
        if truth.sum() == 0:
            truth[0] = 1
        original = rng.permutation(n)
        used = rng.permutation(n)
        # decided: a prefix of the order used, up to the last positive seen so far
        m = int(rng.integers(1, n + 1))
        labels = np.full(n, np.nan)
        labels[used[:m]] = truth[used[:m]]
        if np.nansum(labels) == 0:
            continue
        looks = np.full(n, np.nan)
        looks[used[:m]] = np.arange(1, m + 1)
        r = replay(original, labels, looks)
        unknown = np.flatnonzero(np.isnan(labels))
        outcomes = []
        for bits in itertools.product([0.0, 1.0], repeat=len(unknown)):
            full = labels.copy()
            full[unknown] = bits
            outcomes.append(_looks_in_order(original, full, r.k))
        assert r.lower == min(o for o in outcomes if o is not None)
        if r.upper is None:
            assert None in outcomes
        else:
            assert None not in outcomes and r.upper == max(outcomes)
            assert r.lower <= r.estimate <= r.upper


def test_replay_without_positives_is_zero():
    r = replay(np.arange(3), np.array([0.0, np.nan, 0.0]), np.array([1.0, np.nan, 2.0]))
    assert (r.k, r.actual, r.lower, r.upper) == (0, 0, 0, 0)
