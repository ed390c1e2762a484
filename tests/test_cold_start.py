"""Cold-start replay: looks-to-Np by hand and by brute force, the re-ranking loop against the
app's refit done by hand, the other-emotions mix, and the script end to end on the tiny demo."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from gifemo.collect.cold_start import (format_table, looks_to_reach, order_by,
                                       other_emotions_scores, replay_emotion, rerank_order,
                                       unsorted_looks)
from gifemo.collect.scoring import refit_scores


def test_looks_to_reach_by_hand():
    assert looks_to_reach([0, 1, 0, 1, 1], 2) == 4
    assert looks_to_reach([1, 0], 1) == 1
    assert looks_to_reach([0, 0, 1], 2) is None


@pytest.mark.parametrize("n,n_pos,k", [(5, 2, 1), (5, 2, 2), (6, 3, 2), (4, 4, 3)])
def test_unsorted_expectation_equals_the_mean_over_every_order(n, n_pos, k):
    labels = [1] * n_pos + [0] * (n - n_pos)
    brute = np.mean([looks_to_reach(p, k) for p in itertools.permutations(labels)])
    assert unsorted_looks(n, n_pos, k) == pytest.approx(brute)
    assert unsorted_looks(n, n_pos, n_pos + 1) is None


def test_rerank_order_is_the_apps_refit_loop_by_hand():
    rng = np.random.default_rng(3)
    n, d, every = 30, 4, 7
    X = rng.standard_normal((n, d))
    base = 25 + rng.standard_normal(n)
    labels = rng.random(n) < 0.3
    got = rerank_order(X, base, labels, every)
    looked, scores = [], base.copy()
    while len(looked) < n:                                # the campaign, step by step
        rest = [i for i in np.argsort(-scores, kind="stable") if i not in looked]
        looked += rest[:every]
        rows = np.array(looked)
        scores = refit_scores(X, base, rows, labels[rows]).scores
    np.testing.assert_array_equal(got, looked)
    assert not np.array_equal(got, order_by(base))          # the labels changed the order
    np.testing.assert_array_equal(rerank_order(X, base, labels, n), order_by(base))
    with pytest.raises(ValueError):
        rerank_order(X, base, labels, 0)


def test_other_emotions_mix_uses_only_the_other_columns():
    S = np.array([[1.0, 5.0, 0.0], [2.0, 4.0, 1.0], [3.0, 3.0, 5.0]])
    P = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])      # emotion 1's prompt = emotion 0's
    mix = other_emotions_scores(S, P, t=1, temperature=1e-3)
    z0 = (S[:, 0] - S[:, 0].mean()) / S[:, 0].std()
    np.testing.assert_allclose(mix, z0, atol=1e-9)          # column 1 itself never enters
    even = other_emotions_scores(S, np.ones((3, 2)) / np.sqrt(2), t=0)
    z = (S - S.mean(0)) / S.std(0)
    np.testing.assert_allclose(even, (z[:, 1] + z[:, 2]) / 2, atol=1e-9)


def test_replay_and_table():
    labels = np.array([0, 1, 1, 0, 1, 0], bool)
    r = replay_emotion("fear", labels, 2, {"good": np.array([1, 2, 4, 0, 3, 5]),
                                           "bad": np.array([0, 3, 5, 1, 2, 4])})
    assert r.looks == {"unsorted": pytest.approx(2 * 7 / 4), "good": 2, "bad": 5}
    np.testing.assert_array_equal(r.curves["good"], [1, 2, 3, 3, 3, 3])
    table = format_table([r])
    assert "| fear | 6 | 3 | 2 | 3.5 | 2 | 5 |" in table and "**mean**" in table
    with pytest.raises(ValueError, match="permutation"):
        replay_emotion("fear", labels, 2, {"x": np.array([0, 0, 1, 2, 3, 4])})


@pytest.mark.slow
def test_script_writes_table_plot_and_json(demo_dir, tmp_path, sentence_encoder):
    from test_rank import _load_script

    cold = _load_script("cold_start")
    out = tmp_path / "cs"
    assert cold.main([str(demo_dir), "--np", "2", "--every", "3", "--out", str(out),
                      "--cache-dir", str(tmp_path / "cache")]) == 0
    rows = json.loads((out / "cold_start.json").read_text())["emotions"]
    assert rows and all(set(r["looks"]) == {"unsorted", "zero-shot", "zero-shot + re-rank every 3",
                                            "other emotions"} for r in rows)
    assert all(2 <= r["looks"]["zero-shot"] <= r["pool"] for r in rows)
    assert (out / "cold_start.png").stat().st_size > 10_000
    assert "| **mean**" in (out / "cold_start.md").read_text()
