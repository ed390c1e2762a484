"""The paper's Figures 6–10 for a reproduction report, one function per figure.

Each function takes plain arrays (or a :class:`~gifemo.paper.reproduce.Reproduction`'s
parts), writes one PNG and returns its path. matplotlib's ``Agg`` canvas is used through an
explicit ``Figure`` (no pyplot state), as in :mod:`gifemo.eval.pr_plot`.

- Fig. 6: (a) mean silhouette against k for k-means on the columns of the trace-norm W;
  (b) the emotion models on the first two principal components of W, coloured by cluster.
- Fig. 7: averaged PR curves of all methods in one plot; per-emotion curves in a grid.
- Fig. 8: correlation coefficients between the learned emotion models, side by side.
- Fig. 9: histograms of frame counts and of average frame delay per GIF.
- Fig. 10: (a) overlap rates between emotions; (b)(c) shares of flagged GIFs.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _figure(w: float, h: float) -> Figure:
    fig = Figure(figsize=(w, h), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    return path


def pca_2d(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Columns of W [d, T] on their first two principal components: ([T, 2], explained
    variance ratio [2])."""
    P = np.asarray(W, dtype=np.float64).T
    P = P - P.mean(0)
    _, s, vt = np.linalg.svd(P, full_matrices=False)
    coords = P @ vt[:2].T
    if coords.shape[1] < 2:
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    var = s ** 2
    ratio = var[:2] / var.sum() if var.sum() > 0 else np.zeros(2)
    return coords, np.pad(ratio, (0, 2 - ratio.size))


def cluster_order(labels: Sequence[int]) -> np.ndarray:
    """Indices sorted by cluster label (stable), the emotion order of Figs. 6, 8 and 10."""
    return np.argsort(np.asarray(labels), kind="stable")


def figure6(W: np.ndarray, silhouettes: Mapping[int, float], labels: Sequence[int],
            emotions: Sequence[str], path, *, source: str = "trace norm") -> Path:
    """Fig. 6: (a) silhouette against k, (b) the emotion models on W's first two PCs."""
    fig = _figure(11.5, 4.8)
    ax = fig.add_subplot(1, 2, 1)
    ks = sorted(silhouettes)
    vals = [silhouettes[k] for k in ks]
    best = max(ks, key=lambda k: (silhouettes[k], -k))
    ax.plot(ks, vals, "o-", color="C0", label="mean silhouette")
    ax.plot([best], [silhouettes[best]], "o", ms=12, mfc="none", mec="C3", mew=2,
            label=f"best: k = {best}")
    ax.set_xlabel("number of clusters k")
    ax.set_ylabel("mean silhouette value")
    ax.set_title(f"(a) k-means on the columns of W\n({source})", fontsize=10)
    ax.set_xticks(ks)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)

    ax = fig.add_subplot(1, 2, 2)
    coords, ratio = pca_2d(W)
    labels = np.asarray(labels)
    for c in np.unique(labels):
        sel = labels == c
        ax.scatter(coords[sel, 0], coords[sel, 1], s=40, color=f"C{int(c) % 10}",
                   label=f"cluster {int(c) + 1} ({int(sel.sum())} emotions)")
    for (x, y), e in zip(coords, emotions):
        ax.annotate(e, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(f"PC 1 ({100 * ratio[0]:.0f} % of variance)")
    ax.set_ylabel(f"PC 2 ({100 * ratio[1]:.0f} % of variance)")
    ax.set_title(f"(b) emotion models on the first two PCs of W\ncoloured by cluster "
                 f"(k = {len(np.unique(labels))})", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle(f"Figure 6: clusters of the {len(emotions)} emotion models", fontsize=11)
    return _save(fig, path)


def figure7_averaged(curves: Mapping[str, tuple[np.ndarray, np.ndarray, float, float]], path,
                     *, n_pos: float | None = None, n_all: float | None = None,
                     subtitle: str = "") -> Path:
    """Fig. 7: the PR curves averaged over emotions, one line per method.

    curves : label -> (recall [R], precision [R], PR-AUC, Ñ).
    """
    fig = _figure(7.2, 5.4)
    ax = fig.add_subplot(1, 1, 1)
    for i, (label, (r, p, auc, nt)) in enumerate(curves.items()):
        ls = "--" if label.lower().startswith("unsorted") else "-"
        ax.plot(r, p, ls=ls, lw=1.8, color=f"C{i % 10}",
                label=f"{label}: PR-AUC {auc:.3f}, Ñ {nt:,.0f}")
    if n_pos is not None and n_all is not None:
        ax.axvline(n_pos / n_all, color="0.4", lw=0.8, ls=":",
                   label=f"Ñ read at recall Np/Nall = {n_pos / n_all:.3g}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision (interpolated, averaged over emotions)")
    ax.set_title("Figure 7: averaged precision-recall curves" + (f"\n{subtitle}" if subtitle else ""))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize=7)
    return _save(fig, path)


def figure7_per_emotion(recall: np.ndarray, per_method: Mapping[str, np.ndarray],
                        emotions: Sequence[str], path, *, subtitle: str = "") -> Path:
    """Fig. 7, per emotion: a grid with one panel per emotion, one line per method.

    per_method : label -> [T, R] precision (NaN rows where an emotion had no test positive).
    """
    T = len(emotions)
    ncol = 6
    nrow = int(np.ceil((T + 1) / ncol))
    fig = _figure(2.6 * ncol, 2.3 * nrow)
    handles = []
    for t, e in enumerate(emotions):
        ax = fig.add_subplot(nrow, ncol, t + 1)
        for i, (label, P) in enumerate(per_method.items()):
            if np.all(np.isnan(P[t])):
                continue
            ls = "--" if label.lower().startswith("unsorted") else "-"
            (h,) = ax.plot(recall, P[t], ls=ls, lw=1.2, color=f"C{i % 10}", label=label)
            if t == 0 or len(handles) < len(per_method):
                if label not in [x.get_label() for x in handles]:
                    handles.append(h)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_title(e, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
        if t % ncol == 0:
            ax.set_ylabel("Precision", fontsize=8)
        if t >= T - ncol:
            ax.set_xlabel("Recall", fontsize=8)
    lax = fig.add_subplot(nrow, ncol, nrow * ncol)
    lax.axis("off")
    lax.legend(handles=handles, loc="center", fontsize=7, title="method", title_fontsize=8)
    fig.suptitle("Figure 7 (per emotion): precision-recall curves on the test pools"
                 + (f" — {subtitle}" if subtitle else ""), fontsize=11)
    return _save(fig, path)


def _label_emotion_matrix(ax, names: Sequence[str], xlabel: str, ylabel: str) -> None:
    """Tick every row and column of a 17×17 emotion heat map with its emotion's name."""
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def figure8(models: Mapping[str, np.ndarray], emotions: Sequence[str], path,
            order: Sequence[int] | None = None) -> Path:
    """Fig. 8: correlation coefficients between the learned emotion models (columns of each
    W [d, T]), one heat map per method, emotions in ``order``."""
    order = np.arange(len(emotions)) if order is None else np.asarray(order)
    names = [emotions[i] for i in order]
    n = len(models)
    fig = Figure(figsize=(6.2 * n + 1.0, 6.4), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    im = None
    for i, (label, W) in enumerate(models.items()):
        ax = fig.add_subplot(1, n, i + 1)
        Wo = np.asarray(W, dtype=np.float64)[:, order]
        with np.errstate(invalid="ignore", divide="ignore"):
            C = np.corrcoef(Wo.T)
        im = ax.imshow(np.nan_to_num(C), vmin=-1, vmax=1, cmap="RdBu_r")
        _label_emotion_matrix(ax, names, "emotion model", "emotion model")
        ax.set_title(f"({'abcdefgh'[i]}) " + label.replace(" — ", "\n"), fontsize=9)
    if im is not None:
        fig.colorbar(im, ax=fig.axes, shrink=0.8, label="correlation coefficient")
    fig.suptitle("Figure 8: correlation between the learned emotion models", fontsize=11)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)  # no tight_layout: the shared colour bar
    return path


def figure9(frame_counts: np.ndarray, avg_delays_ms: np.ndarray, path) -> Path:
    """Fig. 9: histograms of frames per GIF and of average frame delay per GIF."""
    f = np.asarray(frame_counts, dtype=float)
    d = np.asarray(avg_delays_ms, dtype=float)
    fig = _figure(11, 4.2)
    ax = fig.add_subplot(1, 2, 1)
    ax.hist(f, bins=30, color="C0", edgecolor="white",
            label=f"{f.size} GIFs (min {f.min():.0f}, median {np.median(f):.0f}, max {f.max():.0f})")
    ax.set_xlabel("number of frames")
    ax.set_ylabel("number of GIFs")
    ax.set_title("(a) frames per GIF")
    ax.legend(fontsize=8)
    ax = fig.add_subplot(1, 2, 2)
    ax.hist(d, bins=30, color="C1", edgecolor="white",
            label=f"{d.size} GIFs (min {d.min():.0f}, median {np.median(d):.0f}, "
                  f"max {d.max():.0f} ms)")
    ax.set_xlabel("average frame delay (ms)")
    ax.set_ylabel("number of GIFs")
    ax.set_title("(b) average frame delay per GIF")
    ax.legend(fontsize=8)
    fig.suptitle("Figure 9: GIF lengths and frame delays", fontsize=11)
    return _save(fig, path)


def overlap_rates(positive: np.ndarray) -> np.ndarray:
    """[T, T]: share of the row emotion's positive GIFs that are also positive for the column
    emotion (NaN rows for emotions without positives)."""
    P = np.asarray(positive, dtype=float)
    both = P.T @ P
    n = P.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n[:, None] > 0, both / n[:, None], np.nan)


def figure10(overlap: np.ndarray, emotions: Sequence[str], flags: Mapping[str, np.ndarray],
             path, order: Sequence[int] | None = None) -> Path:
    """Fig. 10: (a) overlap rates heat map, then one pie chart per flag (share flagged)."""
    order = np.arange(len(emotions)) if order is None else np.asarray(order)
    names = [emotions[i] for i in order]
    n_pies = len(flags)
    fig = _figure(6.4 + 3.6 * max(n_pies, 1), 5.8)
    ax = fig.add_axes([0.06, 0.22, 0.42 if n_pies else 0.8, 0.68])
    O = np.asarray(overlap)[np.ix_(order, order)]
    im = ax.imshow(np.nan_to_num(100 * O), vmin=0, vmax=100, cmap="viridis")
    _label_emotion_matrix(ax, names, "column emotion", "row emotion")
    ax.set_title("(a) % of the row emotion's positive GIFs\nthat are also positive for the column",
                 fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8, label="overlap rate (%)")
    letters = "bcdefg"
    width = 0.45 / max(n_pies, 1)
    for i, (name, values) in enumerate(flags.items()):
        v = np.asarray(values, dtype=bool)
        pax = fig.add_axes([0.53 + i * width, 0.25, width * 0.95, 0.6])
        yes = int(v.sum())
        wedges, _, _ = pax.pie([yes, v.size - yes], autopct="%1.0f%%", colors=["C1", "C0"],
                               startangle=90, textprops={"fontsize": 8})
        pax.legend(wedges, [name.replace("_", " "), f"not {name.replace('_', ' ')}"],
                   loc="upper center", bbox_to_anchor=(0.5, 0.02), fontsize=8)
        pax.set_title(f"({letters[i]}) GIFs flagged {name} ({yes} of {v.size})", fontsize=9)
    if not n_pies:
        fig.text(0.6, 0.5, "(b)(c): the manifest has no cartoon / multi_scene flags", fontsize=9)
    fig.suptitle("Figure 10: emotion overlap and GIF flags", fontsize=11)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
