"""decord2 backend: all image blocks' LZW streams -> colour indices, in one decord call.

decord opens whole files only, so the images are re-muxed into one synthetic GIF: every
image at (0, 0) of a screen as large as the largest image (width rounded up to a multiple of
64, which sidesteps decord2's row-stride bug on narrow frames), an identity grey colour
table, no transparency, and a constant 100 ms delay (decord indexes frames by time). Each
output frame's top-left ``h x w`` corner then holds that image's indices in the red byte.
decord2 itself reports no per-frame delays; ours come from the block parser.
"""

from __future__ import annotations

import io
import struct

import numpy as np

from gifemo.data.gif_format import GifFormatError, GifLayout
from gifemo.data.gif_pyav import _GREY

_GCE = b"\x21\xf9\x04\x04\x0a\x00\x00\x00"  # disposal 1, delay 10 cs, no transparency


def _decord():
    try:
        import decord
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the 'decord' GIF backend needs decord2: pip install decord2") from e
    return decord


def remux(data: bytes, layout: GifLayout, which: list[int]) -> tuple[bytes, int, int]:
    """Synthetic GIF holding images ``which`` of ``layout``; returns (bytes, width, height)."""
    w = max(layout.images[i].width for i in which)
    W = min(-(-w // 64) * 64, 65535)
    H = max(layout.images[i].height for i in which)
    view = memoryview(data)
    parts = [b"GIF89a", struct.pack("<HHBBB", W, H, 0xF7, 0, 0), _GREY]
    for i in which:
        im = layout.images[i]
        parts += [_GCE, b",", struct.pack("<HHHHB", 0, 0, im.width, im.height, 0),
                  bytes((im.lzw_min_size,)), view[im.data_start:im.data_end]]
    parts.append(b";")
    return b"".join(parts), W, H


def index_images(data: bytes, layout: GifLayout):
    """Yield each image's uint8 ``[h, w]`` colour indices in stored row order."""
    decord = _decord()
    which = [i for i, im in enumerate(layout.images) if im.width and im.height]
    batch = None
    if which:
        gif, _, _ = remux(data, layout, which)
        try:
            vr = decord.VideoReader(io.BytesIO(gif), num_threads=1)
            if len(vr) != len(which):
                raise GifFormatError(f"decord decoded {len(vr)} of {len(which)} images")
            batch = vr.get_batch(list(range(len(which)))).asnumpy()
        except (RuntimeError, decord.DECORDError) as e:
            raise GifFormatError(f"LZW data invalid (decord: {str(e).splitlines()[0]})") from e
    k = 0
    for im in layout.images:
        if im.width and im.height:
            yield np.ascontiguousarray(batch[k, :im.height, :im.width, 0])
            k += 1
        else:
            yield np.zeros((im.height, im.width), np.uint8)
