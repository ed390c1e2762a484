"""Bad input to the GIF decoder: a typed error naming the file, in bounded time, never a crash.

Each bad file is generated on the fly. "Unreadable": tests run as root here, where
``chmod 000`` does not stop reading, so unreadability is also simulated by what an
unreadable path looks like to a reader — a FIFO (``open`` would block forever), a broken
symbolic link and ``open`` raising ``PermissionError`` (monkeypatched) — besides the real
``chmod 000`` check when not root.
"""

from __future__ import annotations

import builtins
import csv
import io
import os
import signal
import threading
import time

import numpy as np
import pytest

from gifemo.data.bad_files import BadFileLog
from gifemo.data.decode import BACKENDS, DecodeLimits, GifDecodeError, decode, decode_many
from gifgen import Img, gif_bytes, header, image_block, many_frames_gif

PALETTE = [(0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255)]
# Time budgets, not speed claims: they tell "rejected early" from "decoded in full or hung"
# (a FIFO blocks forever, 100k frames take minutes to decode), with ample slack for a loaded
# shared 2-core box (each case takes well under a second there). The suite-wide
# pytest-timeout catches a real hang.
WALL_S = 20.0


def _good_gif(n=3, h=8, w=10) -> bytes:
    rng = np.random.default_rng(n)
    return gif_bytes(w, h, [Img(rng.integers(0, 4, (h, w)), delay_cs=5) for _ in range(n)],
                     palette=PALETTE, loop=0)


def _png_bytes() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (9, 9, 9)).save(buf, "PNG")
    return buf.getvalue()


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _bad_files(tmp_path) -> dict[str, tuple[object, str]]:
    """name -> (path, a word the reason must contain)."""
    good = _good_gif()
    rng = np.random.default_rng(0)
    random_bytes = b"\x00" + rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    huge = header(65535, 65535, PALETTE) + image_block(Img(np.zeros((1, 1)))) + b";"
    files = {
        "empty": (_write(tmp_path / "empty.gif", b""), "empty"),
        "truncated": (_write(tmp_path / "truncated.gif", good[: len(good) // 2]), "truncated"),
        "png": (_write(tmp_path / "png.gif", _png_bytes()), "not a GIF"),
        "random": (_write(tmp_path / "random.gif", random_bytes), "not a GIF"),
        "huge_canvas": (_write(tmp_path / "huge.gif", huge), "max_pixels_per_frame"),
        "100k_frames": (_write(tmp_path / "frames.gif", many_frames_gif(100_000)), "max_frames"),
        "directory": ((tmp_path / "dir.gif"), "directory"),
        "fifo": ((tmp_path / "fifo.gif"), "not a regular file"),
        "broken_symlink": ((tmp_path / "link.gif"), "broken symbolic link"),
        "missing": ((tmp_path / "missing.gif"), "no such file"),
    }
    (tmp_path / "dir.gif").mkdir()
    os.mkfifo(tmp_path / "fifo.gif")
    os.symlink(tmp_path / "nowhere.gif", tmp_path / "link.gif")
    return files


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_bad_file_gives_a_typed_error_naming_it_quickly(tmp_path, backend):
    for name, (path, word) in _bad_files(tmp_path).items():
        t0 = time.monotonic()
        with pytest.raises(GifDecodeError) as info:
            decode(path, backend)
        elapsed = time.monotonic() - t0
        assert info.value.path == str(path), name
        assert str(path) in str(info.value), name
        assert word in info.value.reason, (name, info.value.reason)
        assert elapsed < WALL_S, (name, elapsed)


def test_limits_are_checked_before_allocating(tmp_path):
    """A GIF whose output would exceed max_decoded_bytes is refused from its headers."""
    path = _write(tmp_path / "ten.gif", _good_gif(n=10, h=8, w=10))
    need = 10 * 8 * 10 * 3
    assert decode(path, limits=DecodeLimits(max_decoded_bytes=need)).rgb.nbytes == need
    with pytest.raises(GifDecodeError, match="max_decoded_bytes"):
        decode(path, limits=DecodeLimits(max_decoded_bytes=need - 1))
    with pytest.raises(GifDecodeError, match="max_frames"):
        decode(path, limits=DecodeLimits(max_frames=9))
    with pytest.raises(GifDecodeError, match="max_pixels_per_frame"):
        decode(path, limits=DecodeLimits(max_pixels_per_frame=79))


@pytest.mark.parametrize("backend", BACKENDS)
def test_time_limit_stops_a_slow_decode(tmp_path, backend):
    path = _write(tmp_path / "slow.gif", _good_gif(n=50, h=64, w=64))
    with pytest.raises(GifDecodeError, match="timed out"):
        decode(path, backend, DecodeLimits(timeout_s=1e-9))


def test_permission_denied_is_a_typed_error(tmp_path, monkeypatch):
    path = _write(tmp_path / "locked.gif", _good_gif())
    os.chmod(path, 0)
    if os.geteuid() != 0:  # root reads a chmod-000 file anyway
        with pytest.raises(GifDecodeError, match="permission denied"):
            decode(path)
    real_open = builtins.open

    def refusing_open(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing_open)
    with pytest.raises(GifDecodeError, match="permission denied") as info:
        decode(path)
    assert str(path) in str(info.value)


def test_batch_keeps_good_files_and_lists_bad_ones(tmp_path):
    bad = _bad_files(tmp_path)
    goods = [_write(tmp_path / f"good{i}.gif", _good_gif(n=i + 1)) for i in range(3)]
    paths = [goods[0], *[p for p, _ in bad.values()][:5], goods[1], *[p for p, _ in bad.values()][5:], goods[2]]
    log = BadFileLog()
    t0 = time.monotonic()
    decoded = dict(decode_many(paths, "pyav", bad_files=log))
    assert time.monotonic() - t0 < 4 * WALL_S
    assert list(decoded) == [str(p) for p in goods]
    assert [len(f.rgb) for f in decoded.values()] == [1, 2, 3]
    out = log.write_csv(tmp_path / "run")
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["path", "reason"]
    assert [r[0] for r in rows[1:]] == [str(p) for p, _ in bad.values()]
    for (path, word), (_, reason) in zip(bad.values(), rows[1:]):
        assert word in reason


def test_gif_decode_error_survives_pickling():
    import pickle

    e = pickle.loads(pickle.dumps(GifDecodeError("/x/a.gif", "truncated")))
    assert (e.path, e.reason, str(e)) == ("/x/a.gif", "truncated", "/x/a.gif: truncated")


def test_isolated_worker_matches_in_process_and_survives_hang_and_crash(tmp_path):
    """The worker process gives the same frames; a hung or crashed worker becomes a
    GifDecodeError (killed at the time limit / signal reported) and is replaced."""
    from gifemo.data import decode as decode_module

    path = _write(tmp_path / "ok.gif", _good_gif(n=4, h=16, w=20))
    direct = decode(path, "pillow")
    isolated = decode(path, "pillow", isolate=True)
    assert np.array_equal(direct.rgb, isolated.rgb)
    assert direct.delays_ms.tolist() == isolated.delays_ms.tolist() and isolated.loop == 0
    with pytest.raises(GifDecodeError, match="truncated"):
        decode(_write(tmp_path / "t.gif", _good_gif()[:40]), isolate=True)

    worker = decode_module._isolated().proc
    os.kill(worker.pid, signal.SIGSTOP)  # a decoder stuck in C code
    t0 = time.monotonic()
    with pytest.raises(GifDecodeError, match="timed out") as info:
        decode(path, limits=DecodeLimits(timeout_s=0.3), isolate=True)
    assert time.monotonic() - t0 < 0.3 + WALL_S and str(path) in str(info.value)  # not the hang
    assert worker.poll() is not None  # it was killed

    assert np.array_equal(decode(path, "pillow", isolate=True).rgb, direct.rgb)  # restarted
    worker = decode_module._isolated().proc
    os.kill(worker.pid, signal.SIGSTOP)
    threading.Timer(0.2, lambda: (os.kill(worker.pid, signal.SIGSEGV),
                                  os.kill(worker.pid, signal.SIGCONT))).start()
    with pytest.raises(GifDecodeError, match=r"crashed \(signal 11\)"):
        decode(path, isolate=True)  # the worker segfaults while handling the request
    assert np.array_equal(decode(path, "pillow", isolate=True).rgb, direct.rgb)
