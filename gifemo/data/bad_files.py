"""A per-run record of input files that could not be used (design "Bad input").

A bad GIF never stops a run: it is skipped, listed with its reason in
``run_dir/bad_files.csv`` (columns ``path,reason``) and counted in the log.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from gifemo.atomic_file import atomic_write
_log = logging.getLogger(__name__)

FILENAME = "bad_files.csv"


class BadFileLog:
    """Collects ``(path, reason)`` rows; :meth:`write_csv` writes them and logs the count."""

    def __init__(self):
        self._rows: list[tuple[str, str]] = []

    def add(self, path, reason: str) -> None:
        """Record one bad file (logged at DEBUG; the count is logged by :meth:`write_csv`)."""
        self._rows.append((str(path), str(reason)))
        _log.debug("bad file %s: %s", path, reason)

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def rows(self) -> list[tuple[str, str]]:
        """The recorded ``(path, reason)`` rows, in the order they were added."""
        return list(self._rows)

    def write_csv(self, run_dir) -> Path:
        """Write ``run_dir/bad_files.csv`` (header ``path,reason``, even when empty).

        Written to a temporary file and renamed, so a crash never leaves a half-written list.
        Logs the count at WARNING when there are bad files, else at INFO.
        """
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        target = run_dir / FILENAME
        with atomic_write(target, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["path", "reason"])
            writer.writerows(self._rows)
        level = logging.WARNING if self._rows else logging.INFO
        _log.log(level, "%d bad file(s) skipped; listed in %s", len(self._rows), target)
        return target
