"""A text report on a dataset folder: GIF timing statistics (Fig. 9), label balance, Table 1.

Frame counts and delays come from the decoder's block parser and frame grouping
(:func:`gif_timing`), without decompressing any pixels, so they agree with the frames the
clips are cut from.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gifemo.data.decode import DecodeLimits
from gifemo.data.emotions import EMOTIONS
from gifemo.data.gif_format import GifFormatError, frame_delays_ms, parse_gif

# Fig. 9's axes, coarsened: frame counts 2..~350, average delays 0..~400 ms.
FRAME_EDGES: tuple[int, ...] = (1, 10, 20, 30, 40, 60, 100, 150, 200, 350)
DELAY_EDGES_MS: tuple[int, ...] = (0, 20, 40, 60, 80, 100, 150, 200, 400)


class GifTimingError(ValueError):
    """A file's GIF block structure could not be walked; names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


def gif_timing(path: str | os.PathLike, limits: DecodeLimits | None = None) -> tuple[int, list[int]]:
    """Number of frames and their delays in ms, as the decoder composes them (no pixels).

    The block structure is read by the decoder's own parser (:func:`~gifemo.data.gif_format.
    parse_gif`) and grouped into frames by its rule (several images can make one frame), so
    Fig. 9 counts exactly the frames the clips are cut from; a file the decoder rejects
    (truncated inside a block, over a limit, not a GIF) is rejected here too.

    Raises
    ------
    GifTimingError
        Names the file and the decoder's reason.
    """
    limits = limits or DecodeLimits()
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise GifTimingError(path, f"cannot read ({e.strerror or e})") from None
    try:
        layout = parse_gif(data, limits.max_pixels_per_frame, limits.max_frames)
    except GifFormatError as e:
        raise GifTimingError(path, str(e)) from None
    delays = frame_delays_ms(layout).tolist()
    if not delays:
        raise GifTimingError(path, "no image")
    return len(delays), delays


def text_histogram(values: Sequence[float], edges: Sequence[float], width: int = 40,
                   unit: str = "") -> str:
    """Rows ``[lo, hi)  count  ####`` for each bin; the last bin is closed and values above it
    are counted in an extra ``>= hi`` row, so nothing is dropped."""
    values = np.asarray(values, dtype=float)
    edges = list(edges)
    counts = [int(np.sum((values >= lo) & (values < hi))) for lo, hi in zip(edges[:-1], edges[1:])]
    counts[-1] += int(np.sum(values == edges[-1]))
    labels = [f"{lo:g}-{hi:g}{unit}" for lo, hi in zip(edges[:-1], edges[1:])]
    over = int(np.sum(values > edges[-1]))
    under = int(np.sum(values < edges[0]))
    if under:
        counts.insert(0, under)
        labels.insert(0, f"<{edges[0]:g}{unit}")
    if over:
        counts.append(over)
        labels.append(f">{edges[-1]:g}{unit}")
    top = max(counts) if counts and max(counts) > 0 else 1
    lw = max(len(s) for s in labels)
    cw = max(len(str(c)) for c in counts)
    return "\n".join(f"  {lab:>{lw}}  {c:>{cw}}  {'#' * round(width * c / top)}"
                     for lab, c in zip(labels, counts))


def label_balance(mask: np.ndarray, positive: np.ndarray) -> list[tuple[str, int, int, float]]:
    """Per emotion: (name, labelled GIFs, positive GIFs, positive rate among labelled)."""
    rows = []
    for j, e in enumerate(EMOTIONS):
        lab = int(mask[:, j].sum())
        pos = int((positive[:, j] & mask[:, j]).sum())
        rows.append((e, lab, pos, pos / lab if lab else float("nan")))
    return rows


def format_label_balance(mask: np.ndarray, positive: np.ndarray) -> str:
    """:func:`label_balance` as a text table with a total row."""
    rows = label_balance(mask, positive)
    lines = [f"  {'emotion':<14} {'labelled':>8} {'positive':>8} {'rate':>6}"]
    lines += [f"  {e:<14} {lab:>8} {pos:>8} {rate:>6.1%}" for e, lab, pos, rate in rows]
    tl, tp = sum(r[1] for r in rows), sum(r[2] for r in rows)
    lines.append(f"  {'all':<14} {tl:>8} {tp:>8} {tp / tl if tl else float('nan'):>6.1%}")
    return "\n".join(lines)


def dataset_timing(dataset) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Frame count and average delay (ms) of every readable GIF (paper Fig. 9), read from
    the block headers only; ``bad`` holds ``"id: reason"`` for the unreadable ones."""
    frames, delays, bad = [], [], []
    for gid, path in zip(dataset.ids, dataset.paths):
        try:
            nf, d = gif_timing(path)
        except GifTimingError as e:
            bad.append(f"{gid}: {e}")
            continue
        frames.append(nf)
        delays.append(float(np.mean(d)) if len(d) else 0.0)
    return np.asarray(frames, dtype=int), np.asarray(delays, dtype=float), bad


def summarize_dataset(dataset, *, table1: bool = True, n_tags: int = 10) -> str:
    """A text report on a :class:`~gifemo.data.manifest.GifDataset`.

    GIF count, flag rates, histograms of frame counts and average frame delays (the paper's
    Fig. 9), per-emotion label balance (labelled / positive / rate; positive = y > 25, §3.2)
    and, when ``table1``, the dataset's Table 1 (top tags of each emotion's positives, via
    :func:`gifemo.data.splits.format_table1`). Files whose blocks cannot be walked are listed,
    not skipped silently.
    """
    n = len(dataset.ids)
    out = [f"GIFs: {n}  (folder {dataset.root})"]
    for name, values in dataset.flags.items():
        out.append(f"  flag {name}: {int(np.sum(values))} ({np.mean(values):.1%})")
    f, d, bad = dataset_timing(dataset)
    if len(f):
        out.append(f"\nFrames per GIF (min {f.min()}, median {np.median(f):g}, "
                   f"max {f.max()}, mean {f.mean():.1f}):")
        out.append(text_histogram(f, FRAME_EDGES))
        out.append(f"\nAverage frame delay per GIF, ms (min {d.min():.0f}, median {np.median(d):.0f}, "
                   f"max {d.max():.0f}):")
        out.append(text_histogram(d, DELAY_EDGES_MS))
    if bad:
        out.append(f"\nUnreadable GIFs ({len(bad)}):")
        out += [f"  {b}" for b in bad]
    labelled = bool(np.any(dataset.mask))
    if labelled:
        out.append("\nLabel balance (positive: y = mu - 3 sigma > 25):")
        out.append(format_label_balance(dataset.mask, dataset.positive))
    else:
        out.append("\nNo labels (no votes.csv or scores.csv).")
    if table1 and labelled:
        try:
            from gifemo.data.splits import format_table1
        except ImportError:
            out.append("\n(Table 1 unavailable: gifemo.data.splits is not importable.)")
        else:
            out.append(f"\nTable 1 of this dataset (top {n_tags} tags of each emotion's positives):")
            out.append(format_table1(dataset, n=n_tags))
    return "\n".join(out)
