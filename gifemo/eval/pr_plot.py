"""Figures of the evaluation: the averaged precision-recall curve (paper Fig. 7).

Plain functions over a :class:`gifemo.eval.metrics.PRSummary`; matplotlib's non-interactive
``Agg`` backend is used through an explicit ``Figure`` (no pyplot state, no display needed,
safe in worker processes and under multirun).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gifemo.eval.metrics import PRSummary


def plot_pr_curves(summary: PRSummary, path: str | os.PathLike, *, title: str = "Precision-recall",
                   emotions: list[str] | None = None, label: str = "model",
                   n_pos: float | None = None, n_all: float | None = None,
                   per_emotion: bool = True) -> Path:
    """Save a PNG of the averaged interpolated PR curve, the Unsorted baseline and (faintly)
    the per-emotion curves.

    Parameters
    ----------
    summary : PRSummary
        From :func:`gifemo.eval.metrics.evaluate_rankings`.
    path : path
        Output file (``.png``); parent folders are created.
    title : str
        Figure title (the PR-AUC and Ñ of the averaged curve are appended).
    emotions : list of str, optional
        Names of the per-emotion curves (for the legend of the best and worst).
    label : str
        Legend name of the model's averaged curve.
    n_pos, n_all : float, optional
        When given, a dotted line marks the recall Np/Nall at which Ñ is read (eq. 9).
    per_emotion : bool
        Draw the per-emotion curves in light grey.

    Returns
    -------
    Path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(6.4, 4.8), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    r = summary.recall
    if per_emotion:
        first = True
        for t in np.flatnonzero(summary.included):
            ax.plot(r, summary.per_emotion_precision[t], color="0.8", lw=0.7,
                    label="per emotion" if first else None, zorder=1)
            first = False
    ax.plot(r, summary.precision, color="C0", lw=2.2, zorder=3,
            label=f"{label} (PR-AUC {summary.pr_auc:.3f}, Ñ {summary.n_tilde:,.0f})")
    base = float(np.nanmean(summary.positive_rate[summary.included]))
    ax.plot([0, 1], [base, base], color="C3", lw=1.6, ls="--", zorder=2,
            label=f"Unsorted (PR-AUC {summary.unsorted_pr_auc:.3f}, "
                  f"Ñ {summary.unsorted_n_tilde:,.0f})")
    if n_pos is not None and n_all is not None:
        ax.axvline(n_pos / n_all, color="0.4", lw=0.8, ls=":", zorder=2,
                   label=f"recall Np/Nall = {n_pos / n_all:.3g}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision (interpolated, averaged over emotions)")
    n_inc = int(summary.included.sum())
    ax.set_title(f"{title}\n{n_inc} emotion(s) averaged")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return path
