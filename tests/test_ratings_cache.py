"""The TrueSkill ratings cache returns exactly what a fresh computation gives, and only then."""

import numpy as np

from gifemo.data.manifest import load_dataset, write_dataset
from gifemo.data.labels import Vote, trueskill_scores
from gifemo.data.ratings_cache import CACHE_DIR, cached_ratings, ratings_key


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


def test_reordered_manifest_with_the_same_votes_keeps_each_gifs_ratings(tmp_path):
    """Same votes file, rows of manifest.csv in another order: every GIF keeps its own rating
    (a key that ignored the ids or their order would hand back the old rows' ratings)."""
    votes = [Vote("anger", "a", "b", "left"), Vote("anger", "a", "c", "left"),
             Vote("fear", "c", "b", "right"), Vote("shame", "b", "a", "neither")]
    _dataset(tmp_path, votes)
    first = load_dataset(tmp_path)
    votes_bytes = (tmp_path / "votes.csv").read_bytes()
    order = ["c", "a", "b"]
    write_dataset(tmp_path, order, [f"{i}.gif" for i in order], [["y"], ["x"], []], votes=votes)
    assert (tmp_path / "votes.csv").read_bytes() == votes_bytes  # only the manifest moved
    second = load_dataset(tmp_path)
    assert second.ids == order
    for row, gif in enumerate(order):
        old = first.ids.index(gif)
        np.testing.assert_array_equal(second.mu[row], first.mu[old], err_msg=gif)
        np.testing.assert_array_equal(second.sigma[row], first.sigma[old], err_msg=gif)
    assert not np.array_equal(second.mu, first.mu, equal_nan=True)  # the rows really moved
    # and the reordered load equals a computation that never saw a cache
    fresh_mu, _ = trueskill_scores(votes, order)
    np.testing.assert_array_equal(second.mu, fresh_mu)


def test_key_depends_on_the_ids_their_order_and_the_votes(tmp_path):
    votes = tmp_path / "votes.csv"
    votes.write_bytes(b"emotion,left,right,choice\nanger,a,b,left\n")
    k = ratings_key(votes, ["a", "b"])
    assert k == ratings_key(votes, ["a", "b"])
    assert k != ratings_key(votes, ["b", "a"])
    assert k != ratings_key(votes, ["a", "b", "c"])
    votes.write_bytes(b"emotion,left,right,choice\nanger,a,b,right\n")
    assert k != ratings_key(votes, ["a", "b"])


def test_key_depends_on_the_trueskill_parameters(tmp_path, monkeypatch):
    from gifemo.data import ratings_cache

    votes = tmp_path / "votes.csv"
    votes.write_bytes(b"emotion,left,right,choice\nanger,a,b,left\n")
    k = ratings_key(votes, ["a", "b"])
    monkeypatch.setattr(ratings_cache, "TRUESKILL_PARAMS",
                        {**ratings_cache.TRUESKILL_PARAMS, "draw_probability": 0.2})
    assert ratings_key(votes, ["a", "b"]) != k


def test_cache_file_with_another_key_is_not_used(tmp_path):
    """A cache file at the right name whose stored key differs (a 32-hex-digit name clash)
    is recomputed, even when its arrays have the right shape."""
    _dataset(tmp_path, [Vote("anger", "a", "b", "left")])
    fresh = load_dataset(tmp_path)
    (cache,) = (tmp_path / CACHE_DIR).glob("trueskill-*.npz")
    np.savez(cache, key=np.array("0" * 64), mu=np.zeros_like(fresh.mu), sigma=np.ones_like(fresh.sigma))
    calls = []

    def compute():
        calls.append(1)
        return fresh.mu, fresh.sigma

    mu, _ = cached_ratings(tmp_path / "votes.csv", fresh.ids, compute)
    assert calls == [1]
    np.testing.assert_array_equal(mu, fresh.mu)
