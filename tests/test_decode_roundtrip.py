"""GIFs written by Pillow (an independent encoder) decode exactly with every backend.

The frames are drawn from a few known colours; the expected output of each frame is worked
out here from the GIF rules directly (keep / restore-background / restore-previous,
transparent pixels show what is below, never-painted pixels are black), not by our decoder.
Pillow also delta-codes later frames (unchanged pixels become transparent), which the
compositor must undo exactly.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from gifemo.data.decode import BACKENDS, decode

H, W = 24, 32
COLOURS = np.array([(0, 0, 0), (250, 20, 30), (10, 240, 60), (40, 50, 230),
                    (255, 255, 255), (130, 90, 10), (7, 200, 199), (90, 90, 90)], np.uint8)
T = 7  # palette index used as transparent


def _indices(n: int, seed: int, transparent: bool) -> list[np.ndarray]:
    """Distinct frames: a moving rectangle over a background; optional transparent holes."""
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n):
        idx = np.full((H, W), k % 2, np.uint8)
        y, x = 2 + 3 * k, 3 + 4 * k
        idx[y:y + 8, x:x + 10] = 2 + k % 5
        if transparent:
            holes = rng.random((H, W)) < 0.3
            holes[y:y + 8, x:x + 10] = False
            idx[holes] = T
        frames.append(idx)
    return frames


def _save(indices, durations, disposal, transparent, interlace=True) -> bytes:
    palette = np.zeros((256, 3), np.uint8)
    palette[: len(COLOURS)] = COLOURS
    images = []
    for idx in indices:
        im = Image.fromarray(idx, "P")
        im.putpalette(palette.tobytes())
        images.append(im)
    kw = {"transparency": T} if transparent else {}
    buf = io.BytesIO()
    images[0].save(buf, "GIF", save_all=True, append_images=images[1:], duration=durations,
                   disposal=disposal, loop=0, interlace=interlace, optimize=False, **kw)
    return buf.getvalue()


def _expected(indices, disposal, transparent) -> np.ndarray:
    """Reference compositing of full-screen frames, pixel rules only."""
    canvas = np.zeros((H, W, 3), np.uint8)
    out = []
    for idx, dispose in zip(indices, disposal):
        before = canvas.copy()
        opaque = (idx != T) if transparent else np.ones_like(idx, bool)
        canvas[opaque] = COLOURS[idx[opaque]]
        out.append(canvas.copy())
        if dispose == 2:
            canvas[:] = 0
        elif dispose == 3:
            canvas = before
    return np.stack(out)


CASES = {
    # name: (n frames, durations ms, disposal per frame, transparency, interlace)
    "opaque-keep": (5, [100, 40, 70, 200, 30], [1] * 5, False, True),
    "opaque-not-interlaced": (4, [50, 60, 70, 80], [0] * 4, False, False),
    "transparent-keep": (5, [100, 20, 30, 40, 50], [1] * 5, True, True),
    "transparent-background": (4, [80, 80, 80, 80], [2] * 4, True, False),
    "transparent-previous": (5, [60, 70, 80, 90, 100], [1, 3, 3, 3, 3], True, True),
    "mixed-disposal": (6, [10, 20, 30, 40, 50, 60], [1, 2, 1, 3, 2, 1], True, False),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", list(CASES))
def test_pillow_written_gif_roundtrips(tmp_path, backend, case):
    n, durations, disposal, transparent, interlace = CASES[case]
    indices = _indices(n, seed=len(case), transparent=transparent)
    path = tmp_path / f"{case}.gif"
    path.write_bytes(_save(indices, durations, disposal, transparent, interlace))
    frames = decode(path, backend)
    assert frames.rgb.dtype == np.uint8 and frames.rgb.shape == (n, H, W, 3)
    expected = _expected(indices, disposal, transparent)
    for k in range(n):
        assert np.array_equal(frames.rgb[k], expected[k]), f"frame {k}"
    assert frames.delays_ms.tolist() == durations
    assert frames.loop == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_delays_are_kept_as_zero(tmp_path, backend):
    """An animation with all delays 0 keeps every frame and reports 0 ms (not a default)."""
    indices = _indices(3, seed=1, transparent=False)
    path = tmp_path / "zero.gif"
    path.write_bytes(_save(indices, [0, 0, 0], [1, 1, 1], False))
    frames = decode(path, backend)
    assert frames.delays_ms.tolist() == [0, 0, 0]
    assert np.array_equal(frames.rgb, _expected(indices, [1, 1, 1], False))


def test_backends_agree_on_a_larger_gif(tmp_path):
    rng = np.random.default_rng(3)
    base = rng.integers(0, 200, (90, 120, 3), dtype=np.uint8)
    images = [Image.fromarray(np.roll(base, 7 * k, axis=1)).quantize(64, dither=Image.Dither.NONE)
              for k in range(6)]
    buf = io.BytesIO()
    images[0].save(buf, "GIF", save_all=True, append_images=images[1:], duration=50, loop=3)
    path = tmp_path / "big.gif"
    path.write_bytes(buf.getvalue())
    results = [decode(path, b) for b in BACKENDS]
    for r in results:
        assert r.loop == 3 and r.delays_ms.tolist() == [50] * 6
        assert np.array_equal(r.rgb, results[0].rgb)
    ref = np.asarray(images[0].convert("RGB"))
    assert np.array_equal(results[0].rgb[0], ref)  # first frame = Pillow's own first frame


def test_fast_rgb_store_equals_plain_copy(tmp_path, monkeypatch):
    """The overlapping-store RGBX->RGB fast path gives the same bytes as numpy's plain copy."""
    from gifemo.data import gif_format

    indices = _indices(4, seed=5, transparent=True)
    path = tmp_path / "fast.gif"
    path.write_bytes(_save(indices, [10, 20, 30, 40], [1, 2, 3, 1], True))
    assert gif_format._OVERLAP_OK  # numpy stores in ascending order on this machine
    fast = decode(path, "pillow").rgb
    monkeypatch.setattr(gif_format, "_OVERLAP_OK", False)
    assert np.array_equal(decode(path, "pillow").rgb, fast)
    assert np.array_equal(fast, _expected(indices, [1, 2, 3, 1], True))
