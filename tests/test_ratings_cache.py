"""The TrueSkill ratings cache returns exactly what a fresh computation gives, and only then."""

import numpy as np

from gifemo.data.manifest import load_dataset, write_dataset
from gifemo.data.labels import Vote
from gifemo.data.ratings_cache import CACHE_DIR, cached_ratings


def _dataset(tmp_path, votes):
    (tmp_path / "a.gif").write_bytes(b"GIF89a")
    (tmp_path / "b.gif").write_bytes(b"GIF89a")
    (tmp_path / "c.gif").write_bytes(b"GIF89a")
    write_dataset(tmp_path, ["a", "b", "c"], ["a.gif", "b.gif", "c.gif"], [["x"], [], ["y"]], votes=votes)


def test_cache_hit_equals_fresh_and_votes_change_invalidates(tmp_path):
    _dataset(tmp_path, [Vote("anger", "a", "b", "left"), Vote("fear", "b", "c", "neither")])
    first = load_dataset(tmp_path)
    assert len(list((tmp_path / CACHE_DIR).glob("trueskill-*.npz"))) == 1
    calls = []
    mu, sigma = cached_ratings(tmp_path / "votes.csv", first.ids, lambda: calls.append(1))
    assert not calls, "a cache hit must not recompute"
    np.testing.assert_array_equal(mu, first.mu)
    np.testing.assert_array_equal(sigma, first.sigma)

    (tmp_path / "votes.csv").unlink()
    _dataset(tmp_path, [Vote("anger", "a", "b", "right")])
    second = load_dataset(tmp_path)
    a, b = 0, 1
    anger = 1
    assert second.mu[b, anger] > second.mu[a, anger]  # the new vote, not the cached one
    assert len(list((tmp_path / CACHE_DIR).glob("trueskill-*.npz"))) == 2


def test_damaged_cache_is_recomputed(tmp_path):
    _dataset(tmp_path, [Vote("anger", "a", "b", "left")])
    fresh = load_dataset(tmp_path)
    (cache,) = (tmp_path / CACHE_DIR).glob("trueskill-*.npz")
    cache.write_bytes(b"garbage")
    again = load_dataset(tmp_path)
    np.testing.assert_array_equal(again.mu, fresh.mu)
