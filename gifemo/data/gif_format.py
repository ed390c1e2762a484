"""GIF block structure and frame compositing, shared by every decoder backend.

The GIF libraries we use (PyAV/FFmpeg, Pillow, decord2) disagree with the GIF89a
specification and with each other on how image blocks become frames (see
``gifemo.data.decode``). So we read the block structure ourselves — it is only headers:
logical screen, colour tables, graphic-control extensions (delay, disposal, transparency),
image descriptors, the NETSCAPE2.0/ANIMEXTS1.0 loop count — and composite in numpy. A
backend only turns one image block's LZW stream into an ``[h, w]`` array of colour indices,
the one thing the libraries do fast and well.

Rules (GIF89a spec §23–§26, plus the behaviour the pygif conformance suite expects):

* Frames. An image whose graphic-control delay is > 0 ends a frame; images with no delay
  (no graphic-control block, or delay 0) are drawn into the same frame as the images after
  them ("render immediately"), so several sub-images can build one picture. If *no* image
  has a delay, the file is still an animation (every image a frame, delays 0) when it says
  so with a NETSCAPE/ANIMEXTS loop block or graphic-control blocks; a file with neither is
  one composed still picture.
* Disposal (of an image, applied before the next image is drawn): 0/1 keep; 2 restore the
  image's rectangle to background, which — like browsers and the conformance suites — we
  treat as transparent; 3 restore the rectangle to what it was just before the image was
  drawn. Values 4–7 are treated as keep.
* Transparency: pixels with the transparent index leave the canvas unchanged. Transparent
  (never painted) canvas pixels are black ``(0, 0, 0)`` in the RGB output.
* Images partly or wholly outside the logical screen are clipped to it (the screen size is
  never changed by an image). Colour indices beyond the colour table, or an image with no
  colour table at all, give opaque black.
* Delays: ``10 * delay_cs`` milliseconds of the image that ends the frame (0 kept as 0).
* Loop: the NETSCAPE2.0 (or ANIMEXTS1.0) loop count, 0 = forever; ``None`` when absent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

DISPOSE_BACKGROUND = 2
DISPOSE_PREVIOUS = 3


class GifFormatError(ValueError):
    """The bytes are not a usable GIF, or exceed a limit; ``str(e)`` is the reason."""


@dataclass(frozen=True)
class ImageBlock:
    """One image descriptor with its graphic-control settings and where its LZW data lies.

    ``data_start``/``data_end`` delimit the data sub-blocks (length-prefixed, ending with the
    zero-length terminator) that follow the LZW minimum code size byte.
    """

    left: int
    top: int
    width: int
    height: int
    interlace: bool
    palette: np.ndarray | None  # local colour table, uint8 [n, 3]
    lzw_min_size: int
    data_start: int
    data_end: int
    delay_cs: int = 0
    disposal: int = 0
    transparent: int | None = None
    has_gce: bool = False


@dataclass
class GifLayout:
    """The parsed block structure of a GIF file (no pixel data decoded)."""

    version: str
    width: int
    height: int
    palette: np.ndarray | None  # global colour table, uint8 [n, 3]
    background: int
    loop: int | None
    images: list[ImageBlock] = field(default_factory=list)

    def frame_groups(self) -> list[tuple[int, int]]:
        """Frames as ``[start, stop)`` ranges of :attr:`images` (rules in the module docstring)."""
        n = len(self.images)
        if n == 0:
            return []
        ends = [i for i, im in enumerate(self.images) if im.delay_cs > 0]
        if not ends:
            animated = self.loop is not None or any(im.has_gce for im in self.images)
            if animated:
                return [(i, i + 1) for i in range(n)]
            return [(0, n)]
        groups, start = [], 0
        for e in ends:
            groups.append((start, e + 1))
            start = e + 1
        if start < n:
            groups.append((start, n))
        return groups


def _u16(data, p: int) -> int:
    return data[p] | (data[p + 1] << 8)


def _skip_sub_blocks(data, p: int, n: int) -> int:
    """Offset just past the zero-length terminator of the sub-blocks starting at ``p``."""
    while p < n:
        size = data[p]
        if size == 0:
            return p + 1
        p += size + 1
    raise GifFormatError(f"truncated: data ends inside a block (file is {n} bytes)")


def _palette(data, p: int, flags: int, n: int) -> tuple[np.ndarray, int]:
    entries = 2 << (flags & 7)
    end = p + 3 * entries
    if end > n:
        raise GifFormatError(f"truncated: colour table of {entries} entries runs past the end")
    return np.frombuffer(data, np.uint8, 3 * entries, p).reshape(entries, 3), end


def parse_gif(data: bytes, max_pixels: int, max_images: int) -> GifLayout:
    """Read the block structure of a GIF held in ``data``.

    Parameters
    ----------
    data : bytes
        The whole file.
    max_pixels : int
        Largest logical screen, and largest single image, in pixels (checked before any pixel
        is decoded).
    max_images : int
        Most image blocks accepted; parsing stops with an error at the first one beyond.

    Raises
    ------
    GifFormatError
        Not a GIF, a zero-size screen, a limit exceeded, no image, or the data ends inside a
        block (a file that ends cleanly between blocks without the trailer byte is accepted).
    """
    n = len(data)
    if n < 6 or data[:3] != b"GIF":
        raise GifFormatError(f"not a GIF file (starts with {bytes(data[:8])!r})")
    if n < 13:
        raise GifFormatError(f"truncated: {n} bytes, shorter than the GIF header")
    version = bytes(data[3:6]).decode("latin-1")
    width, height, flags, background = _u16(data, 6), _u16(data, 8), data[10], data[11]
    if width == 0 or height == 0:
        raise GifFormatError(f"zero-size logical screen ({width}x{height})")
    if width * height > max_pixels:
        raise GifFormatError(f"logical screen {width}x{height} = {width * height} pixels "
                             f"exceeds max_pixels_per_frame={max_pixels}")
    p = 13
    palette = None
    if flags & 0x80:
        palette, p = _palette(data, p, flags, n)
    layout = GifLayout(version, width, height, palette, background, None)
    gce: tuple[int, int, int | None] | None = None  # (delay_cs, disposal, transparent)
    while p < n:
        tag = data[p]
        if tag == 0x3B:  # trailer
            break
        if tag == 0x21:  # extension
            if p + 2 > n:
                raise GifFormatError("truncated: data ends inside an extension")
            label = data[p + 1]
            q = p + 2
            end = _skip_sub_blocks(data, q, n)
            if label == 0xF9 and data[q] >= 4:
                packed = data[q + 1]
                transparent = data[q + 4] if packed & 1 else None
                gce = (_u16(data, q + 2), (packed >> 2) & 7, transparent)
            elif label == 0xFF and data[q] == 11 and bytes(data[q + 1:q + 12]) in (
                    b"NETSCAPE2.0", b"ANIMEXTS1.0"):
                r = q + 12
                while r < end - 1:
                    size = data[r]
                    if size >= 3 and data[r + 1] == 1:
                        layout.loop = _u16(data, r + 2)
                    r += size + 1
            p = end
        elif tag == 0x2C:  # image descriptor
            if p + 10 > n:
                raise GifFormatError("truncated: data ends inside an image descriptor")
            left, top, w, h = _u16(data, p + 1), _u16(data, p + 3), _u16(data, p + 5), _u16(data, p + 7)
            iflags = data[p + 9]
            p += 10
            local = None
            if iflags & 0x80:
                local, p = _palette(data, p, iflags, n)
            if p >= n:
                raise GifFormatError("truncated: data ends before an image's LZW data")
            if w * h > max_pixels:
                raise GifFormatError(f"image {len(layout.images)} is {w}x{h} = {w * h} pixels, "
                                     f"exceeds max_pixels_per_frame={max_pixels}")
            if len(layout.images) >= max_images:
                raise GifFormatError(f"more than {max_images} image blocks (max_frames)")
            min_size = data[p]
            if not 1 <= min_size <= 11:  # codes are at most 12 bits (GIF89a §22)
                raise GifFormatError(f"image {len(layout.images)}: invalid LZW minimum code size {min_size}")
            start = p + 1
            p = _skip_sub_blocks(data, start, n)
            delay, disposal, transparent = gce if gce is not None else (0, 0, None)
            layout.images.append(ImageBlock(left, top, w, h, bool(iflags & 0x40), local, min_size,
                                            start, p, delay, disposal, transparent, gce is not None))
            gce = None
        else:  # garbage after the last block: decoders stop here
            break
    if not layout.images:
        raise GifFormatError("no image in the file")
    return layout


def interlace_rows(height: int) -> np.ndarray:
    """Row numbers in the order an interlaced image stores them (GIF89a Appendix E)."""
    r = np.arange(height)
    return np.concatenate([r[0::8], r[4::8], r[2::4], r[1::2]])


def _palette32(palette: np.ndarray | None) -> np.ndarray:
    """256-entry RGBA colour table packed in uint32 (alpha 255); missing entries opaque black."""
    rgba = np.zeros((256, 4), np.uint8)
    rgba[:, 3] = 255
    if palette is not None:
        k = min(len(palette), 256)
        rgba[:k, :3] = palette[:k]
    return rgba.view("<u4").reshape(256)


def _rgbx_to_rgb_exact(src: np.ndarray, flat: np.ndarray, offset: int) -> None:
    """Copy packed RGBX pixels ``src`` (uint32 [N]) as RGB bytes into ``flat[offset:offset+3N]``.

    Fast path: one uint32 store per pixel at a 3-byte stride, each store's 4th byte being
    overwritten by the next (``flat`` has one spare byte at the end); 30x faster than numpy's
    copy of a ``[..., :3]`` view. Used only if :data:`_OVERLAP_OK` (checked at import).
    """
    if _OVERLAP_OK:
        np.ndarray((src.size,), "<u4", flat, offset, (3,))[...] = src
    else:
        flat[offset:offset + 3 * src.size].reshape(-1, 3)[...] = src.view(np.uint8).reshape(-1, 4)[:, :3]


def _overlap_store_works() -> bool:
    src = np.arange(1, 1 + 4 * 1000, dtype=np.uint8).view("<u4")
    flat = np.zeros(3 * 1000 + 1, np.uint8)
    np.ndarray((1000,), "<u4", flat, 0, (3,))[...] = src
    return bool(np.array_equal(flat[:-1].reshape(-1, 3), src.view(np.uint8).reshape(-1, 4)[:, :3]))


_OVERLAP_OK = False
_OVERLAP_OK = _overlap_store_works()


def composite(layout: GifLayout, indices, deadline: float | None = None) -> np.ndarray:
    """Draw the images of ``layout`` into RGB frames (rules in the module docstring).

    Parameters
    ----------
    layout : GifLayout
    indices : iterable of np.ndarray
        One uint8 ``[h, w]`` array of colour indices per image block, in file order, in stored
        row order (interlaced images are re-ordered here); an array with fewer rows is a
        partially decoded image (the missing rows leave the canvas unchanged).
    deadline : float, optional
        ``time.monotonic()`` value after which :class:`TimeoutError` is raised (checked
        between images).

    Returns
    -------
    np.ndarray
        uint8 ``[T, H, W, 3]``, ``T = len(layout.frame_groups())``.
    """
    H, W = layout.height, layout.width
    groups = layout.frame_groups()
    frame_bytes = H * W * 3
    flat = np.empty(len(groups) * frame_bytes + 1, np.uint8)  # +1: see _rgbx_to_rgb_exact
    canvas = np.zeros((H, W), "<u4")  # packed RGBA, 0 = transparent (black in the output)
    canvas_flat = canvas.reshape(-1)
    global32 = _palette32(layout.palette)
    end_of_frame = {stop - 1: f for f, (_, stop) in enumerate(groups)}
    pending = None  # (disposal, y0, y1, x0, x1, saved) of the previous image
    for i, (im, idx) in enumerate(zip(layout.images, indices)):
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"time limit reached after {i} of {len(layout.images)} images")
        if pending is not None:
            disposal, y0, y1, x0, x1, saved = pending
            if disposal == DISPOSE_BACKGROUND:
                canvas[y0:y1, x0:x1] = 0
            elif disposal == DISPOSE_PREVIOUS:
                canvas[y0:y1, x0:x1] = saved
        y0, x0 = min(im.top, H), min(im.left, W)
        y1, x1 = min(im.top + im.height, H), min(im.left + im.width, W)
        saved = canvas[y0:y1, x0:x1].copy() if im.disposal == DISPOSE_PREVIOUS else None
        pending = (im.disposal, y0, y1, x0, x1, saved)
        if y1 > y0 and x1 > x0 and idx is not None and idx.size:
            _draw(canvas, im, idx, y0, y1, x0, x1, global32)
        f = end_of_frame.get(i)
        if f is not None:
            _rgbx_to_rgb_exact(canvas_flat, flat, f * frame_bytes)
    return flat[:-1].reshape(len(groups), H, W, 3)


def _draw(canvas, im: ImageBlock, idx: np.ndarray, y0, y1, x0, x1, global32) -> None:
    """Paint one image's indices onto the canvas rectangle ``[y0:y1, x0:x1]``."""
    row_ok = None
    if im.interlace and idx.shape[0] > 1:
        rows = interlace_rows(im.height)[: idx.shape[0]]
        full = np.empty((im.height, idx.shape[1]), np.uint8)
        full[rows] = idx
        if idx.shape[0] < im.height:  # partly decoded: only the rows that arrived
            row_ok = np.zeros(im.height, bool)
            row_ok[rows] = True
        idx = full
    elif idx.shape[0] < y1 - y0:  # partly decoded, not interlaced: the rows that arrived
        y1 = y0 + idx.shape[0]
    sub = idx[: y1 - y0, : x1 - x0]
    pal = global32 if im.palette is None else _palette32(im.palette)
    colours = np.take(pal, sub)
    region = canvas[y0:y1, x0:x1]
    if im.transparent is None and row_ok is None:
        region[...] = colours
        return
    mask = sub != im.transparent if im.transparent is not None else np.ones(sub.shape, bool)
    if row_ok is not None:
        mask &= row_ok[: y1 - y0, None]
    np.copyto(region, colours, where=mask)


def frame_delays_ms(layout: GifLayout) -> np.ndarray:
    """Delay of each frame in ms: that of the image ending it (0 kept as 0)."""
    return np.array([10 * layout.images[stop - 1].delay_cs for _, stop in layout.frame_groups()],
                    dtype=np.int64)
