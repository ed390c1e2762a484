"""PyAV backend: one image block's LZW stream -> colour indices, via FFmpeg's GIF decoder.

Each image is wrapped in a minimal GIF (screen = the image, an identity grey colour table,
the original LZW data copied verbatim) and sent as one packet to a bare ``gif`` codec
context — no demuxer, no file object. FFmpeg composites in BGRA; with the identity table
the blue byte of every pixel is the colour index.
"""

from __future__ import annotations

import struct

import numpy as np

from gifemo.data.gif_format import GifFormatError, GifLayout

_GREY = bytes(np.repeat(np.arange(256, dtype=np.uint8), 3))


def _av():
    try:
        import av
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the 'pyav' GIF backend needs PyAV: pip install av") from e
    return av


def single_image_gif(width: int, height: int, lzw_min_size: int, sub_blocks) -> bytes:
    """A one-image GIF89a with an identity grey colour table around ``sub_blocks``."""
    return b"".join((b"GIF89a", struct.pack("<HHBBB", width, height, 0xF7, 0, 0), _GREY,
                     b",", struct.pack("<HHHHB", 0, 0, width, height, 0),
                     bytes((lzw_min_size,)), sub_blocks, b";"))


def index_images(data: bytes, layout: GifLayout):
    """Yield each image's uint8 ``[h, w]`` colour indices in stored row order."""
    av = _av()
    ctx = av.CodecContext.create("gif", "r")
    ctx.thread_count = 1
    view = memoryview(data)
    for i, im in enumerate(layout.images):
        w, h = im.width, im.height
        if w == 0 or h == 0:
            yield np.zeros((h, w), np.uint8)
            continue
        packet = av.Packet(single_image_gif(w, h, im.lzw_min_size, view[im.data_start:im.data_end]))
        try:
            frames = ctx.decode(packet)
        except av.FFmpegError as e:
            raise GifFormatError(f"image {i}: LZW data invalid (FFmpeg: {e})") from e
        if not frames:
            raise GifFormatError(f"image {i}: FFmpeg returned no picture")
        plane = frames[0].planes[0]
        rows = np.frombuffer(plane, np.uint8).reshape(h, plane.line_size)
        yield np.ascontiguousarray(rows[:, 0:4 * w:4])
