"""ClipDataModule (stage 1: packed clip batches) and FeatureDataModule (stage 2: feature batches)."""
import csv
import math

import numpy as np
import pytest
import torch
from PIL import Image

from gifemo.data.clips import make_clips
from gifemo.data.feature_datamodule import FeatureDataModule
from gifemo.features.clip_batches import PackedClipBatches, shard_for_rank
from gifemo.features.clip_datamodule import ClipDataModule
from gifemo.data.decode import GifDecodeError, decode
from gifemo.data.manifest import write_dataset

FRAMES = [2, 30, 17, 3]  # -> 1, 3, 2, 1 clips


def _write_gif(path, n_frames, seed):
    rng = np.random.default_rng(seed)
    frames = [Image.fromarray(rng.integers(0, 256, (24, 36, 3), dtype=np.uint8)) for _ in range(n_frames)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=40, loop=0)


@pytest.fixture
def dataset_dir(tmp_path):
    (tmp_path / "gifs").mkdir()
    for i, n in enumerate(FRAMES):
        _write_gif(tmp_path / "gifs" / f"g{i}.gif", n, seed=i)
    (tmp_path / "gifs" / "bad.gif").write_bytes(b"not a gif at all")
    ids = [f"g{i}" for i in range(len(FRAMES))] + ["bad"]
    rels = [f"gifs/g{i}.gif" for i in range(len(FRAMES))] + ["gifs/bad.gif"]
    write_dataset(tmp_path, ids, rels, [["x"]] * len(ids))
    return tmp_path


@pytest.mark.parametrize("n,world", [(0, 2), (7, 1), (7, 2), (8, 3), (2, 4)])
def test_shard_for_rank_partitions_without_padding(n, world):
    items = list(range(100, 100 + n))
    shares = [shard_for_rank(items, r, world) for r in range(world)]
    assert sorted(sum(shares, [])) == items  # every item exactly once
    assert max(map(len, shares)) - min(map(len, shares)) <= 1
    with pytest.raises(ValueError, match="rank=2, world_size=2"):
        shard_for_rank(items, 2, 2)


class _Fake:
    def __init__(self, n_clips, bad=()):
        self.n_clips, self.bad = n_clips, set(bad)

    def __getitem__(self, i):
        if i in self.bad:
            raise GifDecodeError(f"g{i}.gif", "broken")
        return i, torch.full((self.n_clips[i], 3, 1, 1, 1), float(i))


@pytest.mark.parametrize("batch", [1, 3, 4, 64])
def test_packing_fills_batches_and_keeps_every_clip_once(batch):
    n_clips = [1, 5, 1, 1, 2, 7, 1]
    packer = PackedClipBatches(_Fake(n_clips, bad={3}), range(len(n_clips)), clip_batch_size=batch)
    batches = list(packer)
    sizes = [b.clips.shape[0] for b in batches]
    total = sum(n_clips) - n_clips[3]
    assert sum(sizes) == total and all(s == batch for s in sizes[:-1])  # only the last is short
    assert len(batches) == math.ceil(total / batch)
    got = [(int(g), int(p), int(n)) for b in batches for g, p, n in zip(b.gif_index, b.clip_pos, b.n_clips)]
    expected = [(g, p, n_clips[g]) for g in range(len(n_clips)) if g != 3 for p in range(n_clips[g])]
    assert got == expected  # deterministic order, each clip once
    for b in batches:
        np.testing.assert_array_equal(b.clips.flatten(1)[:, 0].numpy(), b.gif_index.numpy())
        assert b.clips.dtype == torch.uint8  # whole numbers 0..255 travel as uint8
    assert [bad for b in batches for bad in b.bad] == [(3, "broken")]


def test_packing_splits_work_across_ranks_and_workers(dataset_dir):
    dm = ClipDataModule(str(dataset_dir), clip_batch_size=2, num_workers=2)
    dm.setup("predict")
    dm.select_for_predict([0, 1, 2, 3, 4])
    seen = []
    for rank in range(2):
        dm._rank_world = lambda rank=rank: (rank, 2)
        for b in dm.predict_dataloader():
            seen += [(int(g), int(p)) for g, p in zip(b.gif_index, b.clip_pos)]
    n_clips = [1, 3, 2, 1]
    assert sorted(seen) == [(g, p) for g in range(4) for p in range(n_clips[g])]


def test_predict_batches_hold_the_gif_clips_and_bad_files_are_logged(dataset_dir, tmp_path):
    run_dir = tmp_path / "run"
    dm = ClipDataModule(str(dataset_dir), clip_batch_size=4, run_dir=str(run_dir))
    dm.setup("predict")
    clips_by_gif = {}
    for b in dm.predict_dataloader():
        b = dm.on_before_batch_transfer(b, 0)
        for k, g in enumerate(b.gif_index.tolist()):
            clips_by_gif.setdefault(g, []).append(b.clips[k].float())
    for g, n in enumerate(FRAMES):  # the same clips as make_clips on the decoded GIF
        ref = make_clips(decode(dm.dataset.paths[g]).rgb)
        torch.testing.assert_close(torch.stack(clips_by_gif[g]), ref, rtol=0, atol=0)
    dm.teardown("predict")
    with open(run_dir / "bad_files.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["path", "reason"] and len(rows) == 2 and rows[1][0].endswith("bad.gif")


def test_unknown_decode_limit_and_backend_are_refused(dataset_dir):
    with pytest.raises(TypeError, match="max_frame"):
        ClipDataModule(str(dataset_dir), max_frame=3)
    with pytest.raises(ValueError, match="'ffmpeg'"):
        ClipDataModule(str(dataset_dir), backend="ffmpeg")
    dm = ClipDataModule(str(dataset_dir), max_frames=3)
    assert dm.limits.max_frames == 3


def _features(n=10, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, d), dtype=np.float32)
    Y = rng.normal(25, 5, (n, 17))
    Y[rng.random((n, 17)) < 0.3] = np.nan
    finite = ~np.isnan(Y)
    train = finite & (np.arange(n)[:, None] < 6)
    test = finite & (np.arange(n)[:, None] >= 8)
    return X, Y, {"train": train, "test": test}


def test_features_stage_batches_and_full_batch():
    X, Y, masks = _features()
    dm = FeatureDataModule(batch_size=4, seed=3)
    dm.set_features(X, Y, masks)
    Xt, Yt, Mt = dm.full_batch("train")
    rows = masks["train"].any(1)
    np.testing.assert_array_equal(Xt.numpy(), X[rows])
    np.testing.assert_array_equal(Mt.numpy(), masks["train"][rows])
    np.testing.assert_allclose(Yt.numpy(), np.where(masks["train"], Y, 0)[rows], rtol=1e-6)
    assert torch.isfinite(Yt).all()
    batches = list(dm.train_dataloader())
    assert [b[0].shape[0] for b in batches] == [4, 2]
    order = torch.cat([b[0] for b in batches])
    assert sorted(map(tuple, order.tolist())) == sorted(map(tuple, Xt.tolist()))
    dm2 = FeatureDataModule(batch_size=4, seed=3)
    dm2.set_features(X, Y, masks)
    torch.testing.assert_close(torch.cat([b[0] for b in dm2.train_dataloader()]), order)  # seeded
    test_batches = list(dm.test_dataloader())
    assert torch.equal(torch.cat([b[0] for b in test_batches]), dm.full_batch("test")[0])
    with pytest.raises(KeyError, match="'val'"):
        dm.full_batch("val")


def test_features_stage_validates_inputs():
    X, Y, masks = _features()
    dm = FeatureDataModule()
    with pytest.raises(RuntimeError, match="set_features"):
        dm.setup("fit")
    with pytest.raises(ValueError, match="Y must be"):
        dm.set_features(X, Y[:, :3], masks)
    with pytest.raises(ValueError, match="unknown split"):
        dm.set_features(X, Y, {"dev": masks["train"]})
    bad = {"train": masks["train"] | np.isnan(Y)}
    with pytest.raises(ValueError, match="not finite inside the mask in rows"):
        dm.set_features(X, Y, bad)
