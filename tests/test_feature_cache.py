"""Feature cache: mean-L2 features, reuse, invalidation rules, resume, bad files."""
import csv
import hashlib
import os

import numpy as np
import pytest
import torch
from PIL import Image

from gifemo.data.clips import make_clips
from gifemo.data.decode import decode
from gifemo.data.manifest import load_dataset, write_dataset
from gifemo.features import visual_features as extract_mod
from gifemo.features import ensure_visual_features
from gifemo.features.cache import FeatureCache, canonical_json, fingerprint_files, settings_key
from gifemo.file_hash import file_sha256
from gifemo.models.pooling import ClipMeanAccumulator, mean_l2
from gifemo.features.writer import ShardWriter
from gifemo.models.c3d import build_backbone

WIDTH = 0.0625  # C3D at 1/16 width: same architecture, a few ms per clip
BACKBONE = {"weights": "random", "width": WIDTH, "seed": 0}
RUN = {"accelerator": "cpu", "clip_batch_size": 2, "progress": False}
FRAMES = [2, 17, 30, 5, 9, 2]  # -> 1, 2, 3, 1, 1, 1 clips


def _write_gif(path, n_frames, seed, size=(40, 32)):
    rng = np.random.default_rng(seed)
    frames = [Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
              for _ in range(n_frames)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)


def _make_dataset(root, frames=FRAMES, extra=()):
    (root / "gifs").mkdir(parents=True, exist_ok=True)
    ids, rels = [], []
    for i, n in enumerate(frames):
        _write_gif(root / "gifs" / f"g{i}.gif", n, seed=i)
        ids.append(f"g{i}")
        rels.append(f"gifs/g{i}.gif")
    for gif_id, rel in extra:
        ids.append(gif_id)
        rels.append(rel)
    write_dataset(root, ids, rels, [["tag"]] * len(ids))
    return root


def _reference_features(paths, width=WIDTH, seed=0, max_clips=None):
    """Independent path: decode -> clips -> C3D.embed -> numpy mean -> numpy L2."""
    model, _ = build_backbone("random", width=width, seed=seed)
    out = []
    for p in paths:
        clips = make_clips(decode(p).rgb, max_clips=max_clips)
        with torch.no_grad():
            fc6 = model.embed(clips).double().numpy()
        m = fc6.mean(axis=0)
        out.append(m / np.sqrt((m ** 2).sum()))
    return np.stack(out)


def test_mean_l2_and_accumulator_match_numpy():
    rng = np.random.default_rng(0)
    x = rng.random((5, 7))
    m = x.mean(0)
    np.testing.assert_allclose(mean_l2(x), m / np.linalg.norm(m), rtol=1e-6)
    acc = ClipMeanAccumulator()
    # GIF 3 split over two calls, GIF 4 complete in the first.
    assert [g for g, _, _ in acc.add(np.array([3, 3, 4]), np.array([5, 5, 1]), x[[0, 1, 4]])] == [4]
    done = acc.add(np.array([3, 3, 3]), np.array([5, 5, 5]), x[[2, 3, 4]])
    assert [(g, n) for g, _, n in done] == [(3, 5)] and len(acc) == 0
    np.testing.assert_allclose(done[0][1], mean_l2(x), rtol=1e-6)
    np.testing.assert_array_equal(mean_l2(np.zeros((2, 3))), 0.0)  # no NaN for zero fc6


def test_settings_key_is_canonical_and_changes_with_any_setting(tmp_path):
    a = {"b": 1, "a": [1, 2], "c": {"y": None, "x": 0.5}, "name": "d\u00e9mo"}
    text = '{"a":[1,2],"b":1,"c":{"x":0.5,"y":null},"name":"d\\u00e9mo"}'  # by hand
    assert canonical_json(a) == text
    assert settings_key(a) == hashlib.sha256(text.encode("ascii")).hexdigest()
    assert settings_key(dict(reversed(list(a.items())))) == settings_key(a)  # key order
    for changed in ({**a, "b": 2}, {**a, "a": [2, 1]}, {**a, "c": {"y": None, "x": 0.25}},
                    {**a, "d": 0}, {k: v for k, v in a.items() if k != "b"}):
        assert settings_key(changed) != settings_key(a), changed
    cache = FeatureCache(tmp_path, {**a, "kind": "c3d"})
    assert cache.dir == tmp_path / f"c3d-{settings_key({**a, 'kind': 'c3d'})[:16]}"
    assert FeatureCache(tmp_path, a).dir.name.startswith("features-")


def test_features_are_l2_normalised_means_over_clips(tmp_path):
    root = _make_dataset(tmp_path / "data")
    table = ensure_visual_features(root, tmp_path / "cache", BACKBONE, None, None, run=RUN)
    assert table.ids == [f"g{i}" for i in range(len(FRAMES))]
    assert table.visual.dtype == np.float32 and table.visual.shape == (6, 256)
    np.testing.assert_allclose(np.linalg.norm(table.visual, axis=1), 1.0, rtol=1e-5)
    paths = [root / "gifs" / f"g{i}.gif" for i in range(len(FRAMES))]
    np.testing.assert_allclose(table.visual, _reference_features(paths), rtol=1e-4, atol=1e-6)
    assert table.backbone["weights_id"] == f"random:seed=0:width={WIDTH:g}"
    assert table.n_computed == 6 and table.bad == []
    index = FeatureCache(tmp_path / "cache", table.settings).load_index()
    assert [g["id"] for g in index["gifs"]] == table.ids
    assert all(len(g["sha256"]) == 64 for g in index["gifs"])
    assert index["settings"]["decode_backend"] == "pyav" and index["backbone"] == table.backbone


def test_finished_cache_is_reused_without_computing(tmp_path, monkeypatch):
    root = _make_dataset(tmp_path / "data")
    first = ensure_visual_features(root, tmp_path / "cache", BACKBONE, run=RUN)

    def no_extraction(*a, **k):
        raise AssertionError("the cache should have been reused")

    monkeypatch.setattr(extract_mod, "extract_features", no_extraction)
    again = ensure_visual_features(root, tmp_path / "cache", BACKBONE,
                                   run={**RUN, "clip_batch_size": 5})  # compute detail: same key
    assert again.n_computed == 0 and again.ids == first.ids
    np.testing.assert_array_equal(again.visual, first.visual)


def test_touched_file_is_not_rehashed_into_a_recompute(tmp_path):
    root = _make_dataset(tmp_path / "data")
    ensure_visual_features(root, tmp_path / "cache", BACKBONE, run=RUN)
    p = root / "gifs" / "g1.gif"
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # same bytes, new mtime
    table = ensure_visual_features(root, tmp_path / "cache", BACKBONE, run=RUN)
    assert table.n_computed == 0


def _same_size_edit(path):
    """Change a GIF's pixels without changing its size: invert its global colour table."""
    data = bytearray(path.read_bytes())
    flags = data[10]
    assert flags & 0x80, "the test GIF needs a global colour table"
    n = 3 * 2 ** ((flags & 7) + 1)
    data[13:13 + n] = bytes(255 - b for b in data[13:13 + n])
    st = path.stat()
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # an edit moves the mtime
    return st.st_size


def test_fingerprint_rehashes_a_same_size_edit_and_trusts_unchanged_stat(tmp_path):
    p = tmp_path / "a.gif"
    _write_gif(p, 3, seed=0)
    (before,), n = fingerprint_files([p])
    assert n == 1
    known = {str(p): {"size": before.size, "mtime_ns": before.mtime_ns, "sha256": "stale"}}
    (same,), n = fingerprint_files([p], known)
    assert n == 0 and same.sha256 == "stale"  # unchanged (size, mtime): not re-read
    size = _same_size_edit(p)
    assert p.stat().st_size == size == before.size
    (after,), n = fingerprint_files([p], known)
    assert n == 1 and after.sha256 == file_sha256(p) != before.sha256
    assert (after.path, after.size, after.mtime_ns) == (str(p), size, p.stat().st_mtime_ns)


def test_fingerprint_counts_every_hash_and_keeps_going_after_a_missing_file(tmp_path):
    a, b = tmp_path / "a.gif", tmp_path / "b.gif"
    _write_gif(a, 2, seed=0)
    _write_gif(b, 2, seed=1)
    fps, n = fingerprint_files([tmp_path / "missing.gif", a, b])
    assert n == 2 and fps[0] is None
    assert [fp.path for fp in fps[1:]] == [str(a), str(b)]
    assert [fp.sha256 for fp in fps[1:]] == [file_sha256(a), file_sha256(b)]


def test_same_size_edit_is_recomputed(tmp_path):
    """A GIF edited in place to the same byte size (new mtime) gets new features."""
    root = _make_dataset(tmp_path / "data")
    first = ensure_visual_features(root, tmp_path / "cache", BACKBONE, run=RUN)
    p = root / "gifs" / "g2.gif"
    size = _same_size_edit(p)
    assert p.stat().st_size == size
    second = ensure_visual_features(root, tmp_path / "cache", BACKBONE, run=RUN)
    assert second.n_computed == 1
    assert not np.allclose(second.visual[2], first.visual[2])
    np.testing.assert_allclose(second.visual[2], _reference_features([p])[0], rtol=1e-4, atol=1e-6)


def test_changed_gif_recomputes_only_that_gif(tmp_path):
    root = _make_dataset(tmp_path / "data")
    first = ensure_visual_features(root, tmp_path / "cache", BACKBONE, run=RUN)
    _write_gif(root / "gifs" / "g2.gif", 12, seed=99)  # new content, same path
    second = ensure_visual_features(root, tmp_path / "cache", BACKBONE, run=RUN)
    assert second.n_computed == 1
    same = [i for i in range(6) if i != 2]
    np.testing.assert_array_equal(second.visual[same], first.visual[same])
    assert not np.allclose(second.visual[2], first.visual[2])
    np.testing.assert_allclose(second.visual[2], _reference_features([root / "gifs" / "g2.gif"])[0],
                               rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("change", [{"backbone": {**BACKBONE, "seed": 1}},
                                    {"clips": {"max_clips_per_gif": 1}},
                                    {"decode": {"backend": "pillow"}}])
def test_settings_change_invalidates_every_gif(tmp_path, change):
    root = _make_dataset(tmp_path / "data", frames=[2, 30])
    first = ensure_visual_features(root, tmp_path / "cache", BACKBONE, run=RUN)
    kw = {"backbone": BACKBONE, **change}
    second = ensure_visual_features(root, tmp_path / "cache", run=RUN, **kw)
    assert second.n_computed == 2 and second.cache_dir != first.cache_dir
    back = ensure_visual_features(root, tmp_path / "cache", BACKBONE, run=RUN)
    assert back.n_computed == 0  # the old settings' folder is still there


def test_fp32_and_bf16_features_are_separate_cache_entries(tmp_path):
    """bf16 autocast changes the features (a little): its own folder, both reused afterwards;
    the memory layout is a compute detail (same folder, nothing recomputed)."""
    assert [extract_mod.compute_dtype(p) for p in (None, "32-true", "bf16-mixed", "bf16-true",
                                                  "16-mixed")] == \
        ["float32", "float32", "bfloat16", "bfloat16", "float16"]
    root = _make_dataset(tmp_path / "data", frames=[2, 30])
    fp32 = ensure_visual_features(root, tmp_path / "cache", BACKBONE, run=RUN)
    bf16 = ensure_visual_features(root, tmp_path / "cache", BACKBONE,
                                  run={**RUN, "precision": "bf16-mixed"})
    assert bf16.n_computed == 2 and bf16.cache_dir != fp32.cache_dir
    assert fp32.settings["compute_dtype"] == "float32" and bf16.settings["compute_dtype"] == "bfloat16"
    assert bf16.precision == "bf16-mixed" and fp32.precision == "32-true"
    assert not np.array_equal(bf16.visual, fp32.visual)
    assert (bf16.visual * fp32.visual).sum(axis=1).min() > 0.99  # close: the same features, rounded
    for run in ({**RUN, "precision": "bf16-mixed"}, {**RUN, "precision": "32-true"},
                {**RUN, "channels_last": True}):
        assert ensure_visual_features(root, tmp_path / "cache", BACKBONE, run=run).n_computed == 0


def test_identical_files_are_computed_once(tmp_path):
    root = _make_dataset(tmp_path / "data", frames=[3, 4])
    (root / "gifs" / "copy.gif").write_bytes((root / "gifs" / "g0.gif").read_bytes())
    write_dataset(root, ["g0", "g1", "copy"], ["gifs/g0.gif", "gifs/g1.gif", "gifs/copy.gif"],
                  [[], [], []])
    table = ensure_visual_features(root, tmp_path / "cache", BACKBONE, run=RUN)
    assert table.n_computed == 2 and table.ids == ["g0", "g1", "copy"]
    np.testing.assert_array_equal(table.visual[0], table.visual[2])


class _Killed(RuntimeError):
    pass


class _DiesAfter3(ShardWriter):
    """Dies like a killed process after its 3rd GIF: no flush of the open buffer."""

    def _on_gif_done(self, gif_index):
        super()._on_gif_done(gif_index)
        if self.n_gifs == 3:
            raise _Killed("simulated kill")

    def on_exception(self, trainer, pl_module, exception):
        pass


def test_interrupted_extraction_resumes_with_only_the_rest(tmp_path, monkeypatch):
    root = _make_dataset(tmp_path / "data")
    run = {**RUN, "shard_size": 2}
    with monkeypatch.context() as m:
        m.setattr(extract_mod, "ShardWriter", _DiesAfter3)
        with pytest.raises(_Killed):
            ensure_visual_features(root, tmp_path / "cache", BACKBONE, run=run)
    cache_dirs = list((tmp_path / "cache").iterdir())
    assert len(cache_dirs) == 1 and not (cache_dirs[0] / "index.json").exists()
    assert len(list((cache_dirs[0] / "shards").glob("*.json"))) == 1  # one done shard of 2 GIFs
    # A shard whose done-marker never got written counts as not done.
    np.save(cache_dirs[0] / "shards" / "99999999999999999999-dead-r0.npy", np.zeros((1, 256), np.float32))
    resumed = ensure_visual_features(root, tmp_path / "cache", BACKBONE, run=run)
    assert resumed.n_computed == 4
    fresh = ensure_visual_features(root, tmp_path / "fresh", BACKBONE, run=run)
    np.testing.assert_allclose(resumed.visual, fresh.visual, rtol=1e-5, atol=1e-7)


def test_bad_files_are_skipped_listed_and_remembered(tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "gifs").mkdir(parents=True)
    (data / "gifs" / "junk.gif").write_bytes(b"GIF89a but not really" * 3)
    (data / "gifs" / "gone.gif").write_bytes(b"")
    root = _make_dataset(data, frames=[2, 3], extra=[("junk", "gifs/junk.gif"),
                                                     ("gone", "gifs/gone.gif")])
    dataset = load_dataset(root)
    (data / "gifs" / "gone.gif").unlink()  # vanishes after the manifest was read
    run_dir = tmp_path / "run"
    table = ensure_visual_features(dataset, tmp_path / "cache", BACKBONE, run=RUN, run_dir=run_dir)
    assert table.ids == ["g0", "g1"] and table.rows.tolist() == [0, 1]
    assert [os.path.basename(p) for p, _ in table.bad] == ["junk.gif", "gone.gif"]
    with open(run_dir / "bad_files.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["path", "reason"] and len(rows) == 3
    assert all(r[1] for r in rows[1:])
    monkeypatch.setattr(extract_mod, "extract_features",
                        lambda *a, **k: pytest.fail("known bad file was decoded again"))
    again = ensure_visual_features(dataset, tmp_path / "cache", BACKBONE, run=RUN, run_dir=run_dir)
    assert len(again.bad) == 2 and again.n_computed == 0


def test_known_bad_file_is_retried_under_other_limits_or_retry_bad(tmp_path, monkeypatch):
    """A file over the decode limits is remembered with those limits: the same limits skip it,
    raised limits retry (and succeed), ``retry_bad`` retries under the same limits."""
    root = _make_dataset(tmp_path / "data", frames=[2, 30])
    tight = {"backend": "pyav", "max_frames": 10}
    first = ensure_visual_features(root, tmp_path / "cache", BACKBONE, decode=tight, run=RUN)
    assert first.ids == ["g0"] and [os.path.basename(p) for p, _ in first.bad] == ["g1.gif"]

    calls = []
    real = extract_mod.extract_features

    def counting(dataset, work, *a, **k):
        calls.append([dataset.ids[i] for i in work])
        return real(dataset, work, *a, **k)

    monkeypatch.setattr(extract_mod, "extract_features", counting)
    again = ensure_visual_features(root, tmp_path / "cache", BACKBONE, decode=tight, run=RUN)
    assert calls == [] and len(again.bad) == 1  # same limits: not decoded again

    retried = ensure_visual_features(root, tmp_path / "cache", BACKBONE, decode=tight,
                                     run={**RUN, "retry_bad": True})
    assert calls == [["g1"]] and len(retried.bad) == 1  # retried, still over the limit

    raised = ensure_visual_features(root, tmp_path / "cache", BACKBONE,
                                    decode={**tight, "max_frames": 100}, run=RUN)
    assert calls[-1] == ["g1"] and raised.n_computed == 1
    assert raised.ids == ["g0", "g1"] and raised.bad == []
    np.testing.assert_allclose(raised.visual[1], _reference_features([root / "gifs" / "g1.gif"])[0],
                               rtol=1e-4, atol=1e-6)
