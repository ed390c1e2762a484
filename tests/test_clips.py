"""Clip cutting (paper §3.3) against a brute-force loop and an independent PIL resize."""

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from gifemo.data import clips
from gifemo.data.clips import PAPER_CLIPS, ClipSpec, clip_starts, make_clips, padded_length

CLIP_LEN, CROP, RESIZE_HW = PAPER_CLIPS.length, PAPER_CLIPS.crop, PAPER_CLIPS.resize_hw


def _brute_force(n_frames):
    """Loop-pad frame ids one at a time, then slide a 16-frame window by 8: (padded ids, starts)."""
    ids = list(range(n_frames))
    while len(ids) < 16 or len(ids) % 8 != 0:
        ids.append(ids[len(ids) - n_frames])
    starts, s = [], 0
    while s + 16 <= len(ids):
        starts.append(s)
        s += 8
    return ids, starts


def _id_frames(n_frames, hw=RESIZE_HW):
    """Frames already at 128×171 (no resize happens) whose pixels all equal their frame id."""
    values = (np.arange(n_frames) % 256).astype(np.uint8)
    return np.broadcast_to(values[:, None, None, None], (n_frames, *hw, 3)).copy()


@pytest.mark.parametrize("n, expected_len, expected_clips", [
    (1, 16, 1), (2, 16, 1), (15, 16, 1), (16, 16, 1), (17, 24, 2), (24, 24, 2),
    (25, 32, 3), (347, 352, 43),
])
def test_worked_examples(n, expected_len, expected_clips):
    assert padded_length(n) == expected_len
    assert len(clip_starts(n)) == expected_clips


@pytest.mark.parametrize("n", list(range(1, 80)) + [127, 128, 129, 200, 346, 347, 348, 1000])
def test_lengths_and_starts_match_brute_force(n):
    ids, starts = _brute_force(n)
    assert padded_length(n) == len(ids)
    assert clip_starts(n) == starts


@pytest.mark.parametrize("n", [1, 2, 3, 7, 16, 17, 23, 30])
def test_padded_frames_are_the_first_frames_in_order(n):
    out = make_clips(_id_frames(n))
    ids, starts = _brute_force(n)
    assert out.shape == (len(starts), 3, CLIP_LEN, CROP, CROP)
    assert out.dtype == torch.float32
    for c, s in enumerate(starts):
        expected = np.asarray(ids[s:s + 16], dtype=np.float32)
        # every pixel of every channel of frame t equals the source frame's id
        got = out[c].amin(dim=(0, 2, 3)).numpy()
        assert np.array_equal(got, expected), (c, got, expected)
        assert np.array_equal(out[c].amax(dim=(0, 2, 3)).numpy(), expected)


def test_resize_and_crop_match_pil():
    rng = np.random.default_rng(0)
    # A smooth image plus noise, odd size, downscaled on one axis and upscaled on the other.
    yy, xx = np.mgrid[0:90, 0:400]
    base = np.stack([(yy * 2) % 256, (xx // 2) % 256, (yy + xx) % 256], axis=-1)
    frame = np.clip(base + rng.integers(-20, 20, base.shape), 0, 255).astype(np.uint8)
    rgb = np.stack([frame, frame[::-1].copy()])
    out = make_clips(rgb)
    assert out.shape == (1, 3, 16, 112, 112)
    for t in (0, 1):
        pil = Image.fromarray(rgb[t]).resize((RESIZE_HW[1], RESIZE_HW[0]), Image.BILINEAR)
        ref = np.asarray(pil, dtype=np.float32)[8:120, 29:141]          # C3D crop offsets
        got = out[0, :, t].permute(1, 2, 0).numpy()
        assert np.abs(got - ref).max() <= 1.0
        # and the output is RGB, not BGR: channel 1 follows the x ramp
        assert np.abs(got[..., 1] - ref[..., 1]).mean() < np.abs(got[..., 1] - ref[..., 0]).mean()


def test_frames_already_128x171_are_cropped_exactly():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (3, *RESIZE_HW, 3), dtype=np.uint8)
    out = make_clips(rgb)
    for t in range(16):
        ref = rgb[t % 3, 8:120, 29:141].astype(np.float32)
        assert np.array_equal(out[0, :, t].permute(1, 2, 0).numpy(), ref)


def test_values_stay_in_0_255_without_normalisation():
    rgb = np.zeros((2, 60, 80, 3), np.uint8)
    rgb[1] = 255
    out = make_clips(rgb)
    assert out.min().item() == 0.0 and out.max().item() == 255.0


@pytest.mark.parametrize("n, k", [(347, 1), (347, 2), (347, 4), (347, 7), (100, 3), (40, 4), (64, 5)])
def test_cap_picks_evenly_spaced_clips(n, k):
    full = clip_starts(n)
    capped = clip_starts(n, max_clips=k)
    assert len(capped) == k
    assert capped == sorted(set(capped)) and set(capped) <= set(full)
    idx = np.array([full.index(s) for s in capped])
    n_total = len(full)
    # Clip j spans [j, j+1) on the clip axis; the i-th pick is the clip holding the centre of
    # the i-th of k equal segments of [0, n_total).
    for i, j in enumerate(idx):
        centre = (i + 0.5) * n_total / k
        assert j <= centre < j + 1
    gaps = np.diff(idx)
    if len(gaps):
        assert gaps.max() - gaps.min() <= 1


def test_cap_larger_than_clip_count_keeps_all(caplog):
    assert clip_starts(40, max_clips=10) == clip_starts(40)
    with caplog.at_level(logging.DEBUG, logger="gifemo.data.clips"):
        assert clip_starts(40, max_clips=len(clip_starts(40))) == clip_starts(40)
    assert not caplog.records  # nothing was dropped, so the cap is not reported


def test_capped_clips_are_the_same_clips(caplog, monkeypatch):
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (50, 40, 60, 3), dtype=np.uint8)
    full = make_clips(rgb)
    monkeypatch.setattr(clips, "_cap_reported", False)  # restored after the test
    with caplog.at_level(logging.DEBUG, logger="gifemo.data.clips"):
        capped = make_clips(rgb, max_clips=2)
        make_clips(rgb, max_clips=2)
    # said once at INFO, then at DEBUG
    assert [r.levelno for r in caplog.records if "clip cap" in r.message] == [logging.INFO, logging.DEBUG]
    idx = [clip_starts(50).index(s) for s in clip_starts(50, 2)]
    assert torch.equal(capped, full[idx])


@pytest.mark.parametrize("bad", [
    np.zeros((0, 10, 10, 3), np.uint8),
    np.zeros((2, 10, 10, 3), np.float32),
    np.zeros((2, 10, 10), np.uint8),
    np.zeros((2, 10, 10, 4), np.uint8),
    [[1, 2, 3]],
])
def test_bad_frames_raise(bad):
    with pytest.raises(ValueError):
        make_clips(bad)


@pytest.mark.parametrize("bad,words", [
    (np.zeros((2, 10, 10, 3), np.float32), ["ndarray", "float32", "(2, 10, 10, 3)"]),
    ([[1, 2, 3]], ["list"]),
    (np.zeros((2, 0, 10, 3), np.uint8), ["no pixels", "(2, 0, 10, 3)"]),
    (np.zeros((2, 10, 0, 3), np.uint8), ["no pixels", "(2, 10, 0, 3)"]),
])
def test_bad_frames_are_described_in_the_error(bad, words):
    with pytest.raises(ValueError) as info:
        make_clips(bad)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_a_one_pixel_gif_makes_a_clip():
    out = make_clips(np.full((1, 1, 1, 3), 7, np.uint8))
    assert out.shape == (1, 3, 16, 112, 112) and bool((out == 7).all())


@pytest.mark.parametrize("n", [0, -1, 2.5, True, None])
def test_bad_frame_count_raises(n):
    with pytest.raises(ValueError, match="n_frames must be a positive integer"):
        padded_length(n)


@pytest.mark.parametrize("k", [0, -2, 1.5])
def test_bad_cap_raises(k):
    with pytest.raises(ValueError, match="max_clips"):
        clip_starts(20, max_clips=k)


def test_other_clip_spec_pads_cuts_and_crops_by_its_own_numbers():
    """A backbone's own geometry: 8-frame clips every 4 frames, 64x80 resize, 56 crop."""
    spec = ClipSpec(length=8, stride=4, resize_hw=(64, 80), crop=56)
    assert padded_length(3, spec) == 8 and padded_length(9, spec) == 12
    assert clip_starts(9, spec=spec) == [0, 4]
    rgb = np.zeros((9, 30, 40, 3), dtype=np.uint8)
    rgb[:, :, :, 0] = np.arange(9)[:, None, None]  # frame index in the red channel
    out = make_clips(rgb, spec=spec)
    assert out.shape == (2, 3, 8, 56, 56)
    # loop-padded to 12 frames: the second clip shows frames 4..8, then 0..2
    assert out[1, 0, :, 0, 0].tolist() == [4, 5, 6, 7, 8, 0, 1, 2]
    assert ClipSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize("bad", [dict(length=0), dict(stride=-1), dict(crop=200),
                                 dict(resize_hw=(10,))])
def test_clip_spec_rejects_bad_geometry(bad):
    with pytest.raises(ValueError, match="ClipSpec"):
        ClipSpec(**bad)
