"""Lightning callback: PR curves, PR-AUC and Ñ at validation end and test end (paper §3.6).

:class:`PRMetricsCallback` collects the ``{"scores", "y", "mask"}`` dicts that the
recognizers' ``validation_step``/``test_step`` return, and at the end of the epoch

- evaluates them with :func:`gifemo.eval.metrics.evaluate_rankings`: per-emotion
  interpolated PR curves on that split's per-emotion masks (for the test split, the
  emotion's held-out part of its test pool), the curve averaged over emotions, PR-AUC and
  Ñ = Np / P(Np/Nall) (eq. 9), and the Unsorted baseline on the same entries;
- logs scalars ``<stage>/pr_auc``, ``<stage>/n_tilde``, ``<stage>/unsorted_pr_auc``,
  ``<stage>/unsorted_n_tilde``, ``<stage>/n_emotions`` and per emotion
  ``<stage>/pr_auc/<emotion>``, ``<stage>/n_tilde/<emotion>`` (emotions without a positive are
  left out of the average, warned about and not logged);
- writes ``<out_dir>/<stage>_pr_curve.png`` (:func:`gifemo.eval.pr_plot.plot_pr_curves`) and
  the per-emotion table ``<out_dir>/<stage>_pr_table.csv`` and ``.md``;
- sends the image and the table to wandb when a logger is a ``WandbLogger``;
- computes any ``extra_metrics`` (name -> ``f(y_true, score) -> float`` on one emotion's
  labelled entries, e.g. scikit-learn's ``average_precision_score``) per emotion and as their
  mean over the emotions with a positive: ``<stage>/<name>`` and ``<stage>/<name>/<emotion>``.
  Adding a metric is one function plus one line in ``conf/callbacks/default.yaml``.

A GIF is positive for an emotion iff its label y = µ − 3σ exceeds µ₀ = 25 (§3.2).
The last summary per stage is kept in :attr:`PRMetricsCallback.summaries` and its scalars,
in float64 (Lightning's logged values are float32), in :attr:`PRMetricsCallback.metrics`.
"""
from __future__ import annotations

import csv
import logging
import math
import os
from pathlib import Path

import numpy as np
import torch
from pytorch_lightning.callbacks import Callback

from gifemo.data.emotions import EMOTIONS
from gifemo.data.labels import is_positive
from gifemo.eval.metrics import PR_AUC_NOTE, PRSummary, evaluate_rankings
from gifemo.eval.pr_plot import plot_pr_curves

_log = logging.getLogger(__name__)

TABLE_COLUMNS = ("emotion", "n_labelled", "n_positive", "positive_rate", "pr_auc", "n_tilde",
                 "unsorted_pr_auc", "unsorted_n_tilde")


def summary_rows(summary: PRSummary, positive: np.ndarray, mask: np.ndarray,
                 emotions: list[str], n_pos: float, n_all: float) -> list[dict]:
    """Per-emotion rows of the table plus a final ``averaged`` row (NaN where undefined)."""
    rows = []
    for t, e in enumerate(emotions):
        n_lab = int(mask[:, t].sum())
        n_p = int((positive[:, t] & mask[:, t]).sum())
        rate = n_p / n_lab if n_lab else math.nan
        rows.append({"emotion": e, "n_labelled": n_lab, "n_positive": n_p, "positive_rate": rate,
                     "pr_auc": float(summary.per_emotion_auc[t]),
                     "n_tilde": float(summary.per_emotion_n_tilde[t]),
                     "unsorted_pr_auc": rate if n_p else math.nan,
                     "unsorted_n_tilde": n_pos / rate if n_p else math.nan})
    inc = summary.included
    rows.append({"emotion": "averaged", "n_labelled": int(mask.sum()),
                 "n_positive": int((positive & mask).sum()),
                 "positive_rate": float(np.nanmean(summary.positive_rate[inc])),
                 "pr_auc": summary.pr_auc, "n_tilde": summary.n_tilde,
                 "unsorted_pr_auc": summary.unsorted_pr_auc,
                 "unsorted_n_tilde": summary.unsorted_n_tilde})
    return rows


def _fmt(v) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3f}"
    return str(v)


def write_table(rows: list[dict], out_dir: str | os.PathLike, stem: str) -> tuple[Path, Path]:
    """``<stem>.csv`` (full precision, empty cells for NaN) and ``<stem>.md`` (rounded)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out_dir / f"{stem}.csv", out_dir / f"{stem}.md"
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(TABLE_COLUMNS)
        for r in rows:
            w.writerow(["" if isinstance(r[c], float) and math.isnan(r[c]) else r[c]
                        for c in TABLE_COLUMNS])
    lines = ["| " + " | ".join(TABLE_COLUMNS) + " |",
             "|" + "|".join("---" if c == "emotion" else "---:" for c in TABLE_COLUMNS) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r[c]) for c in TABLE_COLUMNS) + " |")
    lines += ["", PR_AUC_NOTE]
    md_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return csv_path, md_path


class PRMetricsCallback(Callback):
    """PR-AUC and Ñ of the validation and test rankings, with plots and tables.

    Parameters
    ----------
    n_pos, n_all : float, default=3000, 50000
        Ñ's Np and Nall (eq. 9).
    out_dir : path, optional
        Where the PNG and tables go (default: the trainer's ``default_root_dir``).
    plot : bool, default=True
        Write the PR-curve PNG.
    table : bool, default=True
        Write the per-emotion CSV and markdown table.
    emotions : list of str, optional
        Score column names (default: the 17 GIFGIF emotions).
    extra_metrics : dict of str -> callable, optional
        More per-emotion ranking metrics ``f(y_true bool [n], score [n]) -> float``.
    """

    def __init__(self, n_pos: float = 3000, n_all: float = 50000, out_dir: str | None = None,
                 plot: bool = True, table: bool = True, emotions: list[str] | None = None,
                 extra_metrics: dict | None = None):
        super().__init__()
        if not (0 < float(n_pos) <= float(n_all)):
            raise ValueError(f"need 0 < n_pos <= n_all, got n_pos={n_pos!r}, n_all={n_all!r}")
        self.n_pos, self.n_all = float(n_pos), float(n_all)
        self.out_dir = None if out_dir is None else str(out_dir)
        self.plot, self.table = bool(plot), bool(table)
        self.emotions = list(emotions or EMOTIONS)
        self.extra_metrics = dict(extra_metrics or {})
        for name, fn in self.extra_metrics.items():
            if not callable(fn):
                raise TypeError(f"extra_metrics[{name!r}] must be callable (y_true, score) -> float")
        self.summaries: dict[str, PRSummary] = {}
        self.metrics: dict[str, dict[str, float]] = {}  # per stage, float64 (logs hold float32)
        self.files: dict[str, list[Path]] = {}
        self._outputs: dict[str, list] = {"val": [], "test": []}

    # ------------------------------------------------------------------ collection
    def _collect(self, stage: str, outputs) -> None:
        if not isinstance(outputs, dict) or not {"scores", "y", "mask"} <= set(outputs):
            raise TypeError(f"{stage} step must return a dict with scores, y and mask for "
                            f"PRMetricsCallback, got {type(outputs).__name__}")
        self._outputs[stage].append(tuple(outputs[k].detach().float().cpu()
                                          if k != "mask" else outputs[k].detach().bool().cpu()
                                          for k in ("scores", "y", "mask")))

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._outputs["val"] = []

    def on_test_epoch_start(self, trainer, pl_module) -> None:
        self._outputs["test"] = []

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx,
                                dataloader_idx=0) -> None:
        self._collect("val", outputs)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx,
                          dataloader_idx=0) -> None:
        self._collect("test", outputs)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._finish("val", trainer, pl_module)

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        self._finish("test", trainer, pl_module)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, scores: np.ndarray, y: np.ndarray, mask: np.ndarray) -> PRSummary:
        """The summary of one split (positives: :func:`~gifemo.data.labels.is_positive`)."""
        return evaluate_rankings(is_positive(y, mask), scores, mask, n_pos=self.n_pos,
                                 n_all=self.n_all)

    def _finish(self, stage: str, trainer, pl_module) -> None:
        parts = self._outputs[stage]
        if not parts:
            return
        scores, y, mask = (torch.cat([p[i] for p in parts]).numpy() for i in range(3))
        self._outputs[stage] = []
        if trainer.world_size > 1:
            _log.warning("PRMetricsCallback evaluates the rows of this rank only (world size %d)",
                         trainer.world_size)
        try:
            metrics = self.stage_metrics(stage, scores, y, mask)
        except ValueError as e:  # e.g. no emotion has a positive in this split
            _log.warning("%s: no PR evaluation (%s)", stage, e)
            return
        for k, v in metrics.items():
            pl_module.log(k, v, on_step=False, on_epoch=True)
        self._write(stage, self.summaries[stage], y, mask, self._emotions(scores.shape[1]),
                    trainer, pl_module)

    def _emotions(self, n: int) -> list[str]:
        return self.emotions if len(self.emotions) == n else [str(t) for t in range(n)]

    def stage_metrics(self, stage: str, scores: np.ndarray, y: np.ndarray,
                      mask: np.ndarray) -> dict[str, float]:
        """The scalars of one split (``<stage>/pr_auc`` … and per emotion) from whole arrays
        ``[N, T]``; also kept in :attr:`metrics` and :attr:`summaries`."""
        summary = self.evaluate(scores, y, mask)
        self.summaries[stage] = summary
        emotions = self._emotions(scores.shape[1])
        metrics = {f"{stage}/pr_auc": summary.pr_auc, f"{stage}/n_tilde": summary.n_tilde,
                   f"{stage}/unsorted_pr_auc": summary.unsorted_pr_auc,
                   f"{stage}/unsorted_n_tilde": summary.unsorted_n_tilde,
                   f"{stage}/n_emotions": float(summary.included.sum())}
        for t in np.flatnonzero(summary.included):
            metrics[f"{stage}/pr_auc/{emotions[t]}"] = float(summary.per_emotion_auc[t])
            metrics[f"{stage}/n_tilde/{emotions[t]}"] = float(summary.per_emotion_n_tilde[t])
        metrics.update(self._extra(stage, scores, is_positive(y, mask), mask, summary.included,
                                   emotions))
        metrics = {k: float(v) for k, v in metrics.items() if math.isfinite(v)}
        self.metrics[stage] = metrics
        return metrics

    def _extra(self, stage, scores, positive, mask, included, emotions) -> dict:
        out = {}
        for name, fn in self.extra_metrics.items():
            values = []
            for t in np.flatnonzero(included):
                m = mask[:, t]
                v = float(fn(positive[m, t], scores[m, t]))
                out[f"{stage}/{name}/{emotions[t]}"] = v
                values.append(v)
            if values:
                out[f"{stage}/{name}"] = float(np.mean(values))
        return out

    def _write(self, stage, summary, y, mask, emotions, trainer, pl_module) -> None:
        if not trainer.is_global_zero or not (self.plot or self.table):
            return
        out_dir = Path(self.out_dir or trainer.default_root_dir)
        files = []
        title = f"{stage}: {type(pl_module).__name__}"
        penalty = getattr(pl_module, "penalty", None)
        if penalty is not None:
            title += f" ({penalty!r})"
        png = None
        if self.plot:
            png = plot_pr_curves(summary, out_dir / f"{stage}_pr_curve.png", title=title,
                                 emotions=emotions, n_pos=self.n_pos, n_all=self.n_all)
            files.append(png)
        rows = summary_rows(summary, is_positive(y, mask), mask, emotions, self.n_pos, self.n_all)
        if self.table:
            files.extend(write_table(rows, out_dir, f"{stage}_pr_table"))
        self.files[stage] = files
        self._to_wandb(stage, trainer, png, rows)

    @staticmethod
    def _to_wandb(stage, trainer, png, rows) -> None:
        try:
            from pytorch_lightning.loggers import WandbLogger
        except ImportError:  # pragma: no cover - wandb is a dependency
            return
        for logger in trainer.loggers:
            if not isinstance(logger, WandbLogger):
                continue
            if png is not None:
                logger.log_image(key=f"{stage}/pr_curve", images=[str(png)])
            data = [[None if isinstance(r[c], float) and math.isnan(r[c]) else r[c]
                     for c in TABLE_COLUMNS] for r in rows]
            logger.log_table(key=f"{stage}/pr_table", columns=list(TABLE_COLUMNS), data=data)
