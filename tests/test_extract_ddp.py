"""Multi-process extraction writes each GIF exactly once (2 CPU processes, gloo backend).

The real sharding (PackedClipBatches -> shard_for_rank) and writing (ShardBuffer, FeatureCache)
run in two processes joined by a gloo process group; the features come from a stand-in
"network" (a fixed function of the clip) so that the test is about who writes what.
A second pass feeds the writer through torch's DistributedSampler, which pads by repeating
samples: with 7 GIFs on 2 ranks the repeated GIF lands on the *other* rank, so that pass shows
the ownership rule (a rank drops GIFs it does not own). The "first time only" rule -- the
same GIF handed twice to ONE rank is written once -- is tested on its own, in one process,
by :func:`test_same_gif_twice_on_one_rank_is_written_once`.
"""
import json
from collections import Counter

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data.distributed import DistributedSampler

from gifemo.features.clip_batches import ClipBatch, PackedClipBatches
from gifemo.data.decode import GifDecodeError
from gifemo.features.cache import FeatureCache
from gifemo.models.pooling import mean_l2
from gifemo.features.shard_buffer import ShardBuffer

N_CLIPS = [1, 3, 1, 2, 5, 1, 1, 4, 2]  # GIF i has N_CLIPS[i] clips
BAD = {5}
WORK = [0, 1, 2, 3, 4, 5, 6, 8]  # GIF 7 is not part of this run (e.g. already cached)
WORK_ODD = WORK[:-1]
D = 4


class _FakeGifs:
    """GifClipDataset stand-in: GIF i -> N_CLIPS[i] tiny clips whose values encode (i, clip)."""

    def __getitem__(self, i):
        if i in BAD:
            raise GifDecodeError(f"gif{i}.gif", "truncated")
        clips = torch.zeros((N_CLIPS[i], 3, 1, 2, 2), dtype=torch.uint8)
        for c in range(N_CLIPS[i]):
            clips[c] = 10 * i + c
        return i, clips


def _features(clips):
    """Stand-in network: a fixed function of each clip -> [b, D]."""
    v = clips.float().flatten(1)[:, :1]
    return torch.cat([v, v ** 2, torch.ones_like(v), -v], dim=1) + 1.0


def _expected(i):
    clips = _FakeGifs()[i][1]
    return mean_l2(_features(clips).numpy())


def _describe():
    return {i: {"sha256": f"sha-{i}", "id": f"g{i}", "path": f"gif{i}.gif"} for i in range(len(N_CLIPS))}


def _settings(name):
    return {"kind": name, "test": True}


def _bad_batch(gif, reason):
    empty = torch.zeros(0, dtype=torch.long)
    return ClipBatch(torch.zeros((0, 3, 1, 2, 2), dtype=torch.uint8), empty, empty, empty, [(gif, reason)])


def _write_through_padding_sampler(cache, work, rank, world, root):
    """One GIF per batch in DistributedSampler order (with its padding repeats) -> writer."""
    writer = ShardBuffer(cache, work, _describe(), shard_size=3)
    writer.bind(rank, world)
    got = []
    for pos in DistributedSampler(work, num_replicas=world, rank=rank, shuffle=False):
        gif = work[pos]
        got.append(gif)
        try:
            _, clips = _FakeGifs()[gif]
        except GifDecodeError as e:
            writer.consume(_bad_batch(gif, e.reason), torch.zeros((0, D)))
            continue
        n = clips.shape[0]
        writer.consume(ClipBatch(clips, torch.full((n,), gif), torch.arange(n), torch.full((n,), n), []),
                       _features(clips))
    writer.flush()
    with open(f"{root}/sampler-{rank}.json", "w") as f:
        json.dump({"sampler": got, "dropped": writer.n_dropped}, f)


def _worker(rank, world, root):
    dist.init_process_group("gloo", init_method=f"file://{root}/pg", rank=rank, world_size=world)
    try:
        # 1) The extraction path: this rank's packed batches -> writer.
        cache = FeatureCache(root, _settings("packed")).create()
        writer = ShardBuffer(cache, WORK, _describe(), shard_size=2)
        writer.bind(dist.get_rank(), dist.get_world_size())
        for batch in PackedClipBatches(_FakeGifs(), WORK, clip_batch_size=3,
                                       rank=dist.get_rank(), world_size=dist.get_world_size()):
            writer.consume(batch, _features(batch.clips))
        writer.flush()

        # 2) A padding sampler: DistributedSampler repeats items so ranks get equal counts
        #    (7 GIFs -> 4 per rank, one handed out twice).
        _write_through_padding_sampler(FeatureCache(root, _settings("padded")).create(), WORK_ODD,
                                       dist.get_rank(), dist.get_world_size(), root)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _entries(cache):
    """Every (id, feature) row and bad entry in every done shard (duplicates kept)."""
    rows, bad = [], []
    for meta_path in sorted(cache.shard_dir.glob("[0-9]*.json")):
        meta = json.loads(meta_path.read_text())
        arr = np.load(meta_path.with_suffix(".npy"))
        rows += [(e["id"], arr[k]) for k, e in enumerate(meta["entries"])]
        bad += [e["id"] for e in meta["bad"]]
    return rows, bad


@pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()), reason="needs torch.distributed gloo")
def test_two_gloo_ranks_write_each_gif_exactly_once(tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    for name, work in (("packed", WORK), ("padded", WORK_ODD)):
        cache = FeatureCache(tmp_path, _settings(name))
        rows, bad = _entries(cache)
        counts = Counter(i for i, _ in rows)
        assert sorted(counts) == sorted(f"g{i}" for i in work if i not in BAD), name
        assert set(counts.values()) == {1} and bad == ["g5"], (name, counts, bad)
        for gif_id, feat in rows:
            np.testing.assert_allclose(feat, _expected(int(gif_id[1:])), rtol=1e-6)
        assert sorted(cache.scan().features) == sorted(f"sha-{i}" for i in work if i not in BAD)
        # Both ranks wrote shards: the work really was split.
        ranks = {json.loads(p.read_text())["provenance"]["rank"] for p in cache.shard_dir.glob("[0-9]*.json")}
        assert ranks == {0, 1}
    seen = [json.loads((tmp_path / f"sampler-{r}.json").read_text()) for r in range(2)]
    handed_out = seen[0]["sampler"] + seen[1]["sampler"]
    assert len(handed_out) == 8 and len(set(handed_out)) == 7  # the sampler repeated one GIF
    repeated = [g for g in set(handed_out) if handed_out.count(g) == 2]
    assert all(seen[r]["sampler"].count(g) <= 1 for r in range(2) for g in repeated)  # on two ranks
    assert seen[0]["dropped"] + seen[1]["dropped"] >= 1  # ... and the non-owner dropped it


def _one_gif_batch(gif):
    _, clips = _FakeGifs()[gif]
    n = clips.shape[0]
    return ClipBatch(clips, torch.full((n,), gif), torch.arange(n), torch.full((n,), n), []), \
        _features(clips)


def test_same_gif_twice_on_one_rank_is_written_once(tmp_path):
    """A padding sampler may hand one rank the same GIF again (good or bad): it is written once,
    with the features of its first pass."""
    cache = FeatureCache(tmp_path, _settings("repeat")).create()
    writer = ShardBuffer(cache, WORK, _describe(), shard_size=100)
    writer.bind(0, 1)  # one rank owns every GIF of the work
    for gif in (1, 3, 1, 3):
        writer.consume(*_one_gif_batch(gif))
    writer.consume(_bad_batch(5, "truncated"), torch.zeros((0, D)))
    writer.consume(_bad_batch(5, "truncated"), torch.zeros((0, D)))
    writer.flush()
    rows, bad = _entries(cache)
    assert [i for i, _ in rows] == ["g1", "g3"] and bad == ["g5"]
    for gif_id, feat in rows:
        np.testing.assert_allclose(feat, _expected(int(gif_id[1:])), rtol=1e-6)
    assert writer.n_gifs == 2 and writer.n_bad == 1
    assert writer.n_dropped == N_CLIPS[1] + N_CLIPS[3] + 1  # the repeats' clips and bad entry
