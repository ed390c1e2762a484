"""Write small GIF files byte by byte, for tests (no library involved).

``gif_bytes`` assembles a GIF from :class:`Img` blocks with exactly the header fields a test
wants (including malformed ones); pixel data is LZW-coded "uncompressed" (a clear code
before the code table would grow, so every code is a literal), which every decoder reads.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np


def lzw_literal(indices, min_size: int) -> bytes:
    """LZW data sub-blocks (ending with the terminator) coding ``indices`` as literals."""
    clear, eoi = 1 << min_size, (1 << min_size) + 1
    size = min_size + 1
    run = (1 << size) - clear - 3  # literals between clears: the table never reaches 2**size
    codes = []
    for k, v in enumerate(bytes(np.asarray(indices, np.uint8).reshape(-1))):
        if k % run == 0:
            codes.append(clear)
        codes.append(v)
    codes.append(eoi)
    acc, nbits, out = 0, 0, bytearray()
    for c in codes:
        acc |= c << nbits
        nbits += size
        while nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
    if nbits:
        out.append(acc & 0xFF)
    blocks = bytearray()
    for i in range(0, len(out), 255):
        chunk = out[i:i + 255]
        blocks += bytes((len(chunk),)) + chunk
    return bytes(blocks) + b"\x00"


def _table_bits(n_colours: int) -> int:
    return max(1, int(np.ceil(np.log2(max(n_colours, 2))))) - 1


@dataclass
class Img:
    """One image block: ``indices`` [h, w] uint8 at (left, top), with optional GCE fields."""

    indices: np.ndarray
    left: int = 0
    top: int = 0
    delay_cs: int | None = None  # None: no graphic-control extension
    disposal: int = 0
    transparent: int | None = None
    palette: np.ndarray | None = None  # local colour table
    interlace: bool = False


def gif_bytes(width: int, height: int, images: list[Img], palette=None, loop: int | None = None,
              background: int = 0, trailer: bool = True) -> bytes:
    """A GIF89a file as bytes."""
    body = b"".join(image_block(im) for im in images)
    return header(width, height, palette, loop, background) + body + (b";" if trailer else b"")


def header(width: int, height: int, palette=None, loop: int | None = None, background: int = 0) -> bytes:
    """Signature, logical screen, global colour table and (optionally) the NETSCAPE loop block."""
    out = bytearray(b"GIF89a")
    flags = 0
    if palette is not None:
        palette = np.asarray(palette, np.uint8)
        bits = _table_bits(len(palette))
        flags = 0x80 | 0x70 | bits
    out += struct.pack("<HHBBB", width, height, flags, background, 0)
    if palette is not None:
        out += _padded(palette, bits)
    if loop is not None:
        out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", loop) + b"\x00"
    return bytes(out)


def image_block(im: Img) -> bytes:
    """Graphic-control extension (if any fields are set), image descriptor and LZW data."""
    out = bytearray()
    if im.delay_cs is not None or im.transparent is not None:
        packed = (im.disposal & 7) << 2 | (im.transparent is not None)
        out += b"\x21\xf9\x04" + struct.pack("<BHB", packed, im.delay_cs or 0,
                                             im.transparent or 0) + b"\x00"
    idx = np.asarray(im.indices, np.uint8)
    h, w = idx.shape
    iflags = 0x40 if im.interlace else 0
    if im.palette is not None:
        lbits = _table_bits(len(im.palette))
        iflags |= 0x80 | lbits
    out += b"," + struct.pack("<HHHHB", im.left, im.top, w, h, iflags)
    if im.palette is not None:
        out += _padded(np.asarray(im.palette, np.uint8), lbits)
    if im.interlace:
        rows = np.concatenate([np.arange(h)[s::k] for s, k in ((0, 8), (4, 8), (2, 4), (1, 2))])
        idx = idx[rows]
    min_size = max(2, int(idx.max(initial=0)).bit_length())
    out += bytes((min_size,)) + lzw_literal(idx, min_size)
    return bytes(out)


def _padded(palette: np.ndarray, bits: int) -> bytes:
    table = np.zeros((2 << bits, 3), np.uint8)
    table[: len(palette)] = palette
    return table.tobytes()


def many_frames_gif(n_frames: int) -> bytes:
    """A 1x1 GIF with ``n_frames`` frames (1x1 images, 10 ms each), built by repetition."""
    frame = image_block(Img(np.ones((1, 1), np.uint8), delay_cs=1))
    return header(1, 1, [(0, 0, 0), (255, 255, 255)], loop=0) + frame * n_frames + b";"
