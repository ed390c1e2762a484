"""Decode an animated GIF into RGB frames, per-frame delays and its loop count.

``decode(path, backend="pyav", limits=None) -> Frames`` is the one entry point; ``backend``
picks the library that decompresses each image's LZW data (``pyav``: FFmpeg via PyAV,
``pillow``: Pillow's C decoder, ``decord``: FFmpeg via decord2). Everything else is ours and
shared by all backends (:mod:`gifemo.data.gif_format`): the block parser (logical screen,
colour tables, graphic-control delay/disposal/transparency, image descriptors, NETSCAPE
loop count) and the numpy compositor (disposal none/keep/background/previous, transparency,
clipping to the screen, interlace, several image blocks per frame).

Why not let the libraries composite: measured on the shared conformance suites, raw PyAV
and Pillow each pass 72/84 pygif and 12/13 peterdn cases and raw decord2 15/84 (71/84 after
cutting its padded rows); they split sub-images that the spec draws as one frame, emit a
restore-previous first frame separately, reject (PyAV) or grow the canvas for (Pillow)
images outside the screen, and decord2 has no per-frame delays. Through our parser and
compositor every backend gives the same frames; the counts are in
``tests/test_decode_conformance.py``.

Default backend: ``pyav``. Conformance is identical for the three backends (the deliberate
exceptions are the XFAIL table of ``tests/test_decode_conformance.py``), so the choice is
throughput: ``python benchmarks/decode.py`` prints each backend's ratio to raw Pillow in one
run (pyav and pillow tie within noise; decord2 pays a demuxer and a full-canvas colour
conversion per image and is slowest; the README has the measured figures). ``pyav`` stays
the default because it is the contract others code against.

Bad input (design "Bad input"): every failure is a :class:`GifDecodeError` naming the file
and the reason. Limits (:class:`DecodeLimits`) are checked on the headers *before* any
pixel memory is allocated: screen and image pixels, image/frame count, output bytes (also
the bound on the file size), and a per-file wall-time limit checked between images. The
C decoders only ever see one pre-validated image's LZW data at a time, so each C call does
work bounded by ``max_pixels_per_frame``; a plain thread cannot interrupt C code, so for
files from an untrusted source ``isolate=True`` runs the decode in a persistent worker
process that is killed (and restarted) at the time limit or when it crashes — a segfault in
a C decoder then becomes a ``GifDecodeError`` instead of killing the caller. Its cost is the
copy of the frames through a pipe (``benchmarks/decode.py`` measures it), so it is
opt-in rather than the default; ``tests/test_decode_bad_input.py`` stops (SIGSTOP) and
segfaults the worker mid-request to show both are contained.
"""

from __future__ import annotations

import atexit
import os
import pickle
import select
import stat
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

import numpy as np

from gifemo.data.gif_format import GifFormatError, composite, frame_delays_ms, parse_gif

BACKENDS = ("pyav", "decord", "pillow")
DEFAULT_BACKEND = "pyav"


class GifDecodeError(Exception):
    """A GIF that cannot be decoded; ``.path`` names the file and ``.reason`` says why."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = str(reason)
        super().__init__(f"{self.path}: {self.reason}")

    def __reduce__(self):  # picklable across DataLoader workers and the isolation process
        return (type(self), (self.path, self.reason))


@dataclass(frozen=True)
class DecodeLimits:
    """Budgets that bound the time and memory one file may take.

    ``max_pixels_per_frame`` bounds the logical screen and every single image;
    ``max_frames`` bounds the frames and the image blocks; ``max_decoded_bytes`` bounds the
    decoded ``[T, H, W, 3]`` array and the file size; ``timeout_s`` is the wall-time limit
    per file.
    """

    max_pixels_per_frame: int = 4096 * 4096
    max_frames: int = 10_000
    max_decoded_bytes: int = 2**31
    timeout_s: float = 60.0

    def __post_init__(self):
        for name in ("max_pixels_per_frame", "max_frames", "max_decoded_bytes", "timeout_s"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"DecodeLimits.{name} must be > 0, got {value!r}")


@dataclass
class Frames:
    """Decoded GIF: ``rgb`` uint8 ``[T, H, W, 3]``, ``delays_ms`` int ``[T]``, ``loop``.

    ``loop`` is the NETSCAPE loop count (0 = forever) or ``None`` when the file has none.
    """

    rgb: np.ndarray
    delays_ms: np.ndarray
    loop: int | None


def _backend_module(backend: str):
    if backend == "pyav":
        from gifemo.data import gif_pyav as m
    elif backend == "pillow":
        from gifemo.data import gif_pillow as m
    elif backend == "decord":
        from gifemo.data import gif_decord as m
    else:
        raise ValueError(f"unknown GIF backend {backend!r}; known: {list(BACKENDS)}")
    return m


def read_gif_bytes(path, limits: DecodeLimits) -> bytes:
    """The file's bytes, or :class:`GifDecodeError` for anything but a readable regular file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        kind = "broken symbolic link" if os.path.islink(path) else "no such file"
        raise GifDecodeError(path, kind) from None
    except OSError as e:
        raise GifDecodeError(path, f"cannot stat: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise GifDecodeError(path, "is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):  # a FIFO would block open() forever
        raise GifDecodeError(path, "not a regular file (FIFO, socket or device)")
    if st.st_size == 0:
        raise GifDecodeError(path, "empty file (0 bytes)")
    if st.st_size > limits.max_decoded_bytes:
        raise GifDecodeError(path, f"file is {st.st_size} bytes, more than "
                                   f"max_decoded_bytes={limits.max_decoded_bytes}")
    try:
        with open(path, "rb") as f:
            return f.read(limits.max_decoded_bytes + 1)
    except PermissionError:
        raise GifDecodeError(path, "permission denied (file not readable)") from None
    except OSError as e:
        raise GifDecodeError(path, f"cannot read: {e.strerror or e}") from None


def decode_bytes(data: bytes, backend: str = DEFAULT_BACKEND, limits: DecodeLimits | None = None,
                 path: str = "<bytes>") -> Frames:
    """:func:`decode` for a GIF already in memory; ``path`` is used in error messages."""
    limits = limits or DecodeLimits()
    module = _backend_module(backend)
    deadline = time.monotonic() + limits.timeout_s
    try:
        layout = parse_gif(data, limits.max_pixels_per_frame, limits.max_frames)
        n_frames = len(layout.frame_groups())
        if n_frames > limits.max_frames:
            raise GifFormatError(f"{n_frames} frames exceeds max_frames={limits.max_frames}")
        n_bytes = n_frames * layout.height * layout.width * 3
        if n_bytes > limits.max_decoded_bytes:
            raise GifFormatError(f"{n_frames} frames of {layout.width}x{layout.height} need "
                                 f"{n_bytes} bytes, more than max_decoded_bytes={limits.max_decoded_bytes}")
        if time.monotonic() > deadline:
            raise TimeoutError("while reading the block structure")
        out = composite(layout, module.index_images(data, layout), deadline)
    except GifFormatError as e:
        raise GifDecodeError(path, str(e)) from None
    except TimeoutError as e:
        raise GifDecodeError(path, f"timed out after {limits.timeout_s:g} s ({e})") from None
    except MemoryError:
        raise GifDecodeError(path, "out of memory while decoding") from None
    except ImportError:
        raise
    except Exception as e:  # noqa: BLE001 - a library's own error on bad data, made typed
        raise GifDecodeError(path, f"{backend} backend failed: {type(e).__name__}: {e}") from None
    return Frames(out, frame_delays_ms(layout), layout.loop)


def decode(path, backend: str = DEFAULT_BACKEND, limits: DecodeLimits | None = None, *,
           isolate: bool = False) -> Frames:
    """Decode the GIF at ``path`` into RGB frames with the given LZW ``backend``.

    Parameters
    ----------
    path : str or Path
    backend : {"pyav", "decord", "pillow"}
        Library that decompresses the image data; all give the same frames.
    limits : DecodeLimits, optional
        Time and memory budget (defaults: :class:`DecodeLimits`).
    isolate : bool
        Decode in a separate worker process that is killed at the time limit or if a C
        decoder crashes (for untrusted files; costs one copy of the frames).

    Raises
    ------
    GifDecodeError
        Naming ``path`` and the reason, for every file that cannot be decoded.
    """
    limits = limits or DecodeLimits()
    if backend not in BACKENDS:
        raise ValueError(f"unknown GIF backend {backend!r}; known: {list(BACKENDS)}")
    if isolate:
        return _isolated().decode(str(path), backend, limits)
    return decode_bytes(read_gif_bytes(path, limits), backend, limits, str(path))


def decode_many(paths: Iterable, backend: str = DEFAULT_BACKEND, limits: DecodeLimits | None = None,
                *, bad_files, isolate: bool = False) -> Iterator[tuple[str, Frames]]:
    """Decode many GIFs, yielding ``(path, Frames)`` for the good ones.

    Every file that fails is added to ``bad_files`` (a
    :class:`~gifemo.data.bad_files.BadFileLog`) with its reason, and the batch goes on.
    """
    for path in paths:
        try:
            frames = decode(path, backend, limits, isolate=isolate)
        except GifDecodeError as e:
            bad_files.add(e.path, e.reason)
            continue
        yield str(path), frames


# --- isolation: a persistent worker process --------------------------------------------

_HEADER = struct.Struct("<Q")


def _read_exact(fd: int, n: int, deadline: float, into: memoryview | None = None) -> bytes | None:
    """Read ``n`` bytes from ``fd`` before ``deadline``; None on timeout; EOFError at EOF."""
    buf = into if into is not None else memoryview(bytearray(n))
    got = 0
    while got < n:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        k = os.readv(fd, [buf[got:]])
        if k == 0:
            raise EOFError
        got += k
    return buf.obj if into is None else b""


class _IsolatedDecoder:
    """A worker process (``python -m gifemo.data.decode``) that decodes one file per request."""

    def __init__(self):
        self.proc: subprocess.Popen | None = None
        self.pid = os.getpid()
        self.lock = threading.Lock()  # one request at a time on the pipe

    def _start(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "gifemo.data.decode", "--worker"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        if _read_exact(self.proc.stdout.fileno(), 1, time.monotonic() + 120) is None:
            self.close()
            raise RuntimeError("GIF decoder worker process did not start within 120 s")

    def close(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def decode(self, path: str, backend: str, limits: DecodeLimits) -> Frames:
        with self.lock:
            return self._decode(path, backend, limits)

    def _decode(self, path: str, backend: str, limits: DecodeLimits) -> Frames:
        if self.proc is None or self.proc.poll() is not None or self.pid != os.getpid():
            self.pid, self.proc = os.getpid(), None
            self._start()
        request = pickle.dumps((path, backend, asdict(limits)))
        deadline = time.monotonic() + limits.timeout_s + 1.0  # the worker checks timeout_s itself
        try:
            self.proc.stdin.write(_HEADER.pack(len(request)) + request)
            self.proc.stdin.flush()
            fd = self.proc.stdout.fileno()
            head = _read_exact(fd, _HEADER.size, deadline)
            if head is not None:
                meta = _read_exact(fd, _HEADER.unpack(head)[0], deadline)
            if head is None or meta is None:
                self.close()
                raise GifDecodeError(path, f"timed out after {limits.timeout_s:g} s "
                                           "(decoder process killed)")
            status, payload = pickle.loads(meta)
            if status == "error":
                raise GifDecodeError(path, payload)
            shape, delays, loop = payload
            rgb = np.empty(shape, np.uint8)
            if rgb.size and _read_exact(fd, rgb.size, deadline, memoryview(rgb.reshape(-1))) is None:
                self.close()
                raise GifDecodeError(path, f"timed out after {limits.timeout_s:g} s "
                                           "(decoder process killed)")
            return Frames(rgb, np.asarray(delays, np.int64), loop)
        except (EOFError, BrokenPipeError):
            code = self.proc.wait() if self.proc is not None else None
            self.proc = None
            how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            raise GifDecodeError(path, f"decoder process crashed ({how})") from None


_ISOLATED: _IsolatedDecoder | None = None


def _isolated() -> _IsolatedDecoder:
    global _ISOLATED
    if _ISOLATED is None:
        _ISOLATED = _IsolatedDecoder()
        atexit.register(_ISOLATED.close)
    return _ISOLATED


def _serve() -> None:
    """Worker loop: read (path, backend, limits) requests on stdin, answer on stdout."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    stdout.write(b"R")
    stdout.flush()
    while True:
        head = stdin.read(_HEADER.size)
        if len(head) < _HEADER.size:
            return
        path, backend, limits = pickle.loads(stdin.read(_HEADER.unpack(head)[0]))
        try:
            frames = decode(path, backend, DecodeLimits(**limits))
        except GifDecodeError as e:
            meta = pickle.dumps(("error", e.reason))
            stdout.write(_HEADER.pack(len(meta)) + meta)
        except Exception as e:  # noqa: BLE001 - any failure of one file is reported, not fatal
            meta = pickle.dumps(("error", f"{type(e).__name__}: {e}"))
            stdout.write(_HEADER.pack(len(meta)) + meta)
        else:
            meta = pickle.dumps(("ok", (frames.rgb.shape, frames.delays_ms.tolist(), frames.loop)))
            stdout.write(_HEADER.pack(len(meta)) + meta)
            stdout.write(memoryview(np.ascontiguousarray(frames.rgb)).cast("B"))
        stdout.flush()


if __name__ == "__main__" and "--worker" in sys.argv:
    from gifemo.data import decode as _module  # the importable module, not __main__

    _module._serve()
