"""atomic_write: the target holds the old or the new content, never a mix; no temp file left."""
from __future__ import annotations

import pytest

from gifemo.atomic_file import TMP_SUFFIX, atomic_write


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(TMP_SUFFIX))


def test_writes_new_content_and_creates_folder(tmp_path):
    target = tmp_path / "sub" / "out.csv"
    with atomic_write(target, "w", encoding="utf-8", newline="") as f:
        f.write("a,b\n")
    assert target.read_text() == "a,b\n"
    with atomic_write(target) as f:
        f.write(b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert _leftovers(target.parent) == []


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
def test_error_keeps_old_content_and_removes_temp(tmp_path, exc):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(type(exc)):
        with atomic_write(target) as f:
            f.write(b"half of the new")
            raise exc
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_error_before_first_write_leaves_no_target(tmp_path):
    target = tmp_path / "never.json"
    with pytest.raises(ValueError):
        with atomic_write(target, "w", encoding="utf-8"):
            raise ValueError("nothing written")
    assert not target.exists() and _leftovers(tmp_path) == []


def test_rejects_append_and_read_modes(tmp_path):
    for mode in ("a", "r+", "ab"):
        with pytest.raises(ValueError, match="mode"):
            with atomic_write(tmp_path / "x", mode):
                pass
