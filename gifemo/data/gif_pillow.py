"""Pillow backend: one image block's LZW stream -> colour indices, via Pillow's C GIF decoder.

Pillow's own ``GifImagePlugin`` composites frames itself (and grows the canvas for images
outside it); we bypass it and feed each image's data sub-blocks straight to the ``"gif"``
decoder that the plugin uses, which writes the raw indices into a mode-"P" image. This skips
file-object and plugin overhead, so it is also the cheapest backend per file.
"""

from __future__ import annotations

import numpy as np

from gifemo.data.gif_format import GifFormatError, GifLayout


def _pillow():
    try:
        from PIL import Image
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the 'pillow' GIF backend needs Pillow: pip install pillow") from e
    return Image


def index_images(data: bytes, layout: GifLayout):
    """Yield each image's uint8 ``[h, w]`` colour indices in stored row order."""
    Image = _pillow()
    view = memoryview(data)
    for i, im in enumerate(layout.images):
        if im.width == 0 or im.height == 0:
            yield np.zeros((im.height, im.width), np.uint8)
            continue
        if not 1 <= im.lzw_min_size <= 11:
            raise GifFormatError(f"image {i}: invalid LZW minimum code size {im.lzw_min_size}")
        decoder = Image._getdecoder("P", "gif", (im.lzw_min_size, False, -1))
        core = Image.core.new("P", (im.width, im.height))
        decoder.setimage(core, (0, 0, im.width, im.height))
        _, err = decoder.decode(bytes(view[im.data_start:im.data_end]))
        if err < 0:
            raise GifFormatError(f"image {i}: LZW data invalid (Pillow decoder error {err})")
        yield np.frombuffer(Image.Image()._new(core).tobytes(), np.uint8).reshape(im.height, im.width)
