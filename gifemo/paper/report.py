"""Assemble the reproduction report folder from a :class:`~gifemo.paper.reproduce.Reproduction`.

``write_report(rep, out_dir, settings)`` writes, next to the runs:

- ``table2.csv`` / ``table2.md``: PR-AUC and Ñ per method, mean ± std over the test-split
  seeds, beside the paper's values; ``table2_per_seed.csv``; ``table2_test_counts.csv``
  (test GIFs and test positives per emotion, mean over seeds);
- ``table1.csv`` / ``table1.md``: top tags of each emotion's positives, generic tags marked;
- ``table4.csv`` / ``table4.md``: the C3D + linear SVM binary-relevance baseline;
- ``fig6_clusters.png``, ``fig7_pr_averaged.png``, ``fig7_pr_per_emotion.png``,
  ``fig8_correlations.png``, ``fig9_timing.png``, ``fig10_overlap_flags.png``;
- ``report.md`` linking all of it, with the settings, the composed configs
  (``configs/<method>.yaml``) and the software versions.

A figure whose inputs are missing (e.g. no trace-norm row was run) is skipped and the
report says so; nothing is silently dropped.
"""
from __future__ import annotations

import csv
import logging
import math
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from omegaconf import OmegaConf

from gifemo.data.emotions import EMOTIONS, GENERIC_TAGS
from gifemo.data.splits import top_tags
from gifemo.data.summary import dataset_timing
from gifemo.eval.metrics import PR_AUC_NOTE
from gifemo.paper import figures
from gifemo.paper.reproduce import (PAPER_TABLE2, TAG_FEATURE_ROWS, Reproduction, row_label,
                                    run_overrides, run_table2)
from gifemo.models.selection import choose_k_silhouette
from gifemo.paper.svm_baseline import PAPER_TABLE4, svm_binary_relevance

_log = logging.getLogger(__name__)

TABLE2_COLUMNS = ("method", "label", "n_seeds", "pr_auc_mean", "pr_auc_std", "n_tilde_mean",
                  "n_tilde_std", "paper_pr_auc", "paper_n_tilde")
TABLE4_COLUMNS = ("emotion", "n_test", "n_test_pos", "precision", "recall", "f1")
PACKAGES = ("gifemo", "torch", "pytorch-lightning", "hydra-core", "omegaconf", "numpy", "scipy",
            "scikit-learn", "matplotlib", "av", "Pillow")


# --------------------------------------------------------------------------- small writers

def _fmt(v: Any, digits: int = 3) -> str:
    if isinstance(v, float):
        if not math.isfinite(v):
            return "–"
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.{digits}f}"
    return str(v)


def write_csv(rows: Sequence[Mapping], columns: Sequence[str], path: Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(columns))
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in columns})
    return path


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


# --------------------------------------------------------------------------- Table 2

GP_SCORE_FORMS = {"printed": "eq. 5 as the paper prints it, exp(−({t:g} − µ)/(2V))",
                  "squared": "the squared form of eq. 5, exp(−({t:g} − µ)²/(2V))"}


def gp_score_lines(cfgs: Mapping[str, Any]) -> list[str]:
    """Which form of eq. 5 each GP row ranked by (§3.5.2): the paper's text has no square, the
    Gaussian-density reading has one, and the two rank differently; read from the composed
    config (``model.score_form``, ``model.target_max``) of the method's first run."""
    lines = []
    for method, cfg in cfgs.items():
        form = OmegaConf.select(cfg, "model.score_form")
        if form is not None:
            t = float(OmegaConf.select(cfg, "model.target_max", default=50.0))
            text = GP_SCORE_FORMS[form].format(t=t) if form in GP_SCORE_FORMS else repr(form)
            lines.append(f"- {row_label(method)} ranks by {text} (`model.score_form={form}`).")
    return lines


def table2_rows(rep: Reproduction) -> list[dict]:
    """One row per method run: mean ± std (sample std, ddof=1) over the seeds."""
    rows = []
    for m in [m for m in rep.methods if m in PAPER_TABLE2]:
        runs = rep.of(m)
        auc_m, auc_s = _mean_std([r.pr_auc for r in runs])
        nt_m, nt_s = _mean_std([r.n_tilde for r in runs])
        _, label, p_auc, p_nt = PAPER_TABLE2[m]
        rows.append({"method": m, "label": label, "n_seeds": len(runs), "pr_auc_mean": auc_m,
                     "pr_auc_std": auc_s, "n_tilde_mean": nt_m, "n_tilde_std": nt_s,
                     "paper_pr_auc": p_auc, "paper_n_tilde": float(p_nt)})
    return rows


def table2_markdown(rows: Sequence[dict]) -> str:
    out = []
    for r in rows:
        out.append([r["label"],
                    f"{r['pr_auc_mean']:.3f} ± {r['pr_auc_std']:.3f}",
                    f"{r['n_tilde_mean']:,.0f} ± {r['n_tilde_std']:,.0f}",
                    f"{r['paper_pr_auc']:.3f}", f"{r['paper_n_tilde']:,.0f}", r["n_seeds"]])
    return markdown_table(["method", "PR-AUC (ours)", "Ñ (ours)", "PR-AUC (paper)",
                           "Ñ (paper)", "seeds"], out)


def tag_feature_rows(rep: Reproduction) -> list[dict]:
    """Beyond the paper: per model (lasso, trace norm, clustered MTL), PR-AUC and Ñ mean ± std
    over the seeds with bag-of-tags (the paper's row), text-embedded tags, and both."""
    out = []
    for base in dict.fromkeys(b for m, (b, _, _) in TAG_FEATURE_ROWS.items() if rep.of(m)):
        row = {"model": base}
        for key, m in (("tags", base), *[(g.removeprefix("visual_"), m2)
                                         for m2, (b, g, _) in TAG_FEATURE_ROWS.items() if b == base]):
            runs = rep.of(m)
            (row[f"{key}_pr_auc_mean"], row[f"{key}_pr_auc_std"]) = _mean_std([r.pr_auc for r in runs])
            (row[f"{key}_n_tilde_mean"], row[f"{key}_n_tilde_std"]) = _mean_std([r.n_tilde for r in runs])
            row[f"{key}_n_seeds"] = len(runs)
        out.append(row)
    return out


def tag_feature_markdown(rows: Sequence[dict]) -> str:
    """The beyond-the-paper table: PR-AUC (Ñ) mean ± std per model and tag feature."""
    names = {"visual_tag_lasso": "Lasso", "trace_norm": "Trace norm", "clustered_mtl": "Clustered MTL"}

    def cell(r, key):
        if not r.get(f"{key}_n_seeds"):
            return "–"
        return (f"{r[f'{key}_pr_auc_mean']:.3f} ± {r[f'{key}_pr_auc_std']:.3f} "
                f"(Ñ {r[f'{key}_n_tilde_mean']:,.0f} ± {r[f'{key}_n_tilde_std']:,.0f})")

    return markdown_table(["model (visual + …)", "bag of tags (paper)", "text-embedded tags",
                           "both"],
                          [[names.get(r["model"], r["model"]), cell(r, "tags"), cell(r, "text"),
                            cell(r, "tags_text")] for r in rows])


def orderings(rows: Sequence[dict]) -> list[tuple[str, str, bool, bool]]:
    """For every pair of methods the paper ranks apart by PR-AUC: (better, worse, ours agrees,
    ours agrees beyond one pooled std)."""
    out = []
    for i, a in enumerate(rows):
        for b in rows[i + 1:]:
            hi, lo = (a, b) if a["paper_pr_auc"] > b["paper_pr_auc"] else (b, a)
            if hi["paper_pr_auc"] == lo["paper_pr_auc"]:
                continue
            diff = hi["pr_auc_mean"] - lo["pr_auc_mean"]
            spread = math.hypot(hi["pr_auc_std"], lo["pr_auc_std"])
            out.append((hi["label"], lo["label"], diff > 0, diff > spread))
    return out


def test_count_rows(rep: Reproduction) -> list[dict]:
    """Test GIFs and test positives per emotion, mean (min–max) over the seeds."""
    runs = rep.of(rep.methods[0])
    n = np.stack([r.n_test for r in runs])
    p = np.stack([r.n_test_pos for r in runs])
    return [{"emotion": e, "n_test_mean": float(n[:, t].mean()), "n_test_min": int(n[:, t].min()),
             "n_test_max": int(n[:, t].max()), "n_test_pos_mean": float(p[:, t].mean())}
            for t, e in enumerate(EMOTIONS)]


# --------------------------------------------------------------------------- Table 1, 4

def table1_rows(dataset, n: int = 10) -> list[dict]:
    """Each emotion's tags by frequency among its positives until ``n`` non-generic ones;
    generic tags met on the way are listed with ``generic=1`` (struck through in the paper)."""
    ranked = top_tags(dataset, n=10 ** 9, exclude=())
    rows = []
    for e in EMOTIONS:
        kept = 0
        for tag, c in ranked[e]:
            if kept == n:
                break
            generic = tag in GENERIC_TAGS
            kept += not generic
            rows.append({"emotion": e, "rank": kept if not generic else "", "tag": tag,
                         "n_positive_gifs": c, "generic": int(generic)})
    return rows


def table1_markdown(rows: Sequence[dict], dataset) -> str:
    n_pos = dataset.positive.sum(0)
    out = []
    for t, e in enumerate(EMOTIONS):
        tags = [f"~~{r['tag']}~~ ({r['n_positive_gifs']})" if r["generic"]
                else f"{r['tag']} ({r['n_positive_gifs']})" for r in rows if r["emotion"] == e]
        out.append([e, int(n_pos[t]), ", ".join(tags) or "–"])
    return (markdown_table(["emotion", "positive GIFs", "top tags (positive GIFs carrying it)"], out)
            + "\n\n~~tag~~ = generic tag (a source, not an emotion), not counted among the top tags.")


def table4(rep: Reproduction, seeds: Sequence[int], **svm_kw) -> tuple[list[dict], dict] | None:
    """The SVM baseline for every seed; per-emotion means over seeds, and the summary
    (mean ± std over emotions, as the paper reports)."""
    if rep.visual is None:
        return None
    r = rep.visual_rows
    res = [svm_binary_relevance(rep.visual, rep.dataset.positive[r], rep.dataset.mask[r],
                                seed=int(s), **svm_kw) for s in seeds]
    stack = {k: np.stack([getattr(x, k) for x in res]) for k in ("precision", "recall", "f1")}
    with np.errstate(all="ignore"):
        per = {k: np.nanmean(v, 0) if np.isfinite(v).any() else v[0] for k, v in stack.items()}
    rows = [{"emotion": e, "n_test": int(res[0].n_test[t]), "n_test_pos": int(res[0].n_test_pos[t]),
             **{k: float(per[k][t]) for k in per}} for t, e in enumerate(EMOTIONS)]
    summary = {}
    for k in per:
        v = per[k][np.isfinite(per[k])]
        summary[k] = (float(v.mean()), float(v.std())) if v.size else (math.nan, math.nan)
    return rows, summary


# --------------------------------------------------------------------------- figures


def make_figures(rep: Reproduction, out: Path, n_pos: float, n_all: float,
                 ks: Sequence[int] = range(2, 11)) -> tuple[dict[str, Path], list[str]]:
    """Every figure that the runs allow: {name: png}, and notes on what was skipped."""
    pngs: dict[str, Path] = {}
    notes: list[str] = []
    emotions = list(EMOTIONS)
    n_seeds = len(rep.of(rep.methods[0]))
    sub = f"test pools, mean over {n_seeds} test-split seed(s)"

    # Fig. 7: curves averaged over seeds
    avg, per = {}, {}
    for m in [m for m in rep.methods if m in PAPER_TABLE2]:
        runs = rep.of(m)
        r = runs[0].summary.recall
        p = np.mean([x.summary.precision for x in runs], 0)
        label = PAPER_TABLE2[m][1]
        avg[label] = (r, p, float(np.mean([x.pr_auc for x in runs])),
                      float(np.mean([x.n_tilde for x in runs])))
        with np.errstate(all="ignore"):
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                per[label] = np.nanmean(np.stack([x.summary.per_emotion_precision for x in runs]), 0)
    pngs["fig7_averaged"] = figures.figure7_averaged(avg, out / "fig7_pr_averaged.png",
                                                     n_pos=n_pos, n_all=n_all, subtitle=sub)
    pngs["fig7_per_emotion"] = figures.figure7_per_emotion(
        rep.runs[0].summary.recall, per, emotions, out / "fig7_pr_per_emotion.png", subtitle=sub)

    # Fig. 6 and 8: the W of the first seed
    order = None
    tn = rep.of("trace_norm")
    if tn and tn[0].W is not None:
        W = tn[0].W
        T = W.shape[1]
        ks = [k for k in ks if 2 <= k <= T - 1]
        k, sil = choose_k_silhouette(W, ks)
        from sklearn.cluster import KMeans

        labels = KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(W.T)
        order = figures.cluster_order(labels)
        pngs["fig6"] = figures.figure6(W, sil, labels, emotions, out / "fig6_clusters.png",
                                       source=f"trace-norm ({tn[0].penalty}, seed {tn[0].seed})")
    else:
        notes.append("Figure 6 skipped: no trace-norm run.")
    models = {f"{PAPER_TABLE2[m][1]} — {rep.of(m)[0].penalty}": rep.of(m)[0].W
              for m in ("trace_norm", "clustered_mtl") if rep.of(m) and rep.of(m)[0].W is not None}
    if models:
        pngs["fig8"] = figures.figure8(models, emotions, out / "fig8_correlations.png", order)
    else:
        notes.append("Figure 8 skipped: no trace-norm or clustered-MTL run.")

    # Fig. 9 and 10: the dataset
    frames, delays, bad = dataset_timing(rep.dataset)
    if frames.size:
        pngs["fig9"] = figures.figure9(frames, delays, out / "fig9_timing.png")
    if bad:
        notes.append(f"Figure 9: {len(bad)} GIF(s) unreadable for timing: " + "; ".join(bad[:10]))
    flags = {k: v for k, v in rep.dataset.flags.items() if k in ("cartoon", "multi_scene")}
    if len(flags) < 2:
        notes.append("Figure 10 (b)(c): the manifest lacks flag(s) "
                     + ", ".join(sorted({"cartoon", "multi_scene"} - set(flags))))
    pngs["fig10"] = figures.figure10(figures.overlap_rates(rep.dataset.positive), emotions, flags,
                                     out / "fig10_overlap_flags.png", order)
    return pngs, notes


# --------------------------------------------------------------------------- report.md

def software_versions() -> dict[str, str]:
    v = {"python": sys.version.split()[0], "platform": platform.platform()}
    for p in PACKAGES:
        try:
            v[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            v[p] = "not installed"
    try:
        root = Path(__file__).resolve().parents[2]
        v["git commit"] = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                                         capture_output=True, text=True, timeout=10).stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        v["git commit"] = "?"
    return v


def write_report(rep: Reproduction, out_dir: str | Path, settings: Mapping[str, Any],
                 *, n_pos: float = 3000, n_all: float = 50000) -> Path:
    """Write every table, figure and ``report.md`` into ``out_dir``; returns report.md."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seeds = sorted({r.seed for r in rep.runs})

    t2 = table2_rows(rep)
    write_csv(t2, TABLE2_COLUMNS, out / "table2.csv")
    t2_md = table2_markdown(t2)
    (out / "table2.md").write_text(t2_md + "\n\n" + PR_AUC_NOTE + "\n", encoding="utf-8")
    write_csv([{"method": r.method, "seed": r.seed, "pr_auc": r.pr_auc, "n_tilde": r.n_tilde,
                "unsorted_pr_auc": r.summary.unsorted_pr_auc, "penalty": r.penalty, "k": r.k,
                "seconds": round(r.seconds, 2)} for r in rep.runs],
              ("method", "seed", "pr_auc", "n_tilde", "unsorted_pr_auc", "penalty", "k", "seconds"),
              out / "table2_per_seed.csv")
    counts = test_count_rows(rep)
    write_csv(counts, tuple(counts[0]), out / "table2_test_counts.csv")

    beyond = tag_feature_rows(rep)
    if beyond:
        write_csv(beyond, tuple(beyond[0]), out / "table2_tag_features.csv")
        beyond_md = tag_feature_markdown(beyond)
        (out / "table2_tag_features.md").write_text(beyond_md + "\n\n" + PR_AUC_NOTE + "\n",
                                                    encoding="utf-8")

    t1 = table1_rows(rep.dataset)
    write_csv(t1, ("emotion", "rank", "tag", "n_positive_gifs", "generic"), out / "table1.csv")
    t1_md = table1_markdown(t1, rep.dataset)
    (out / "table1.md").write_text(t1_md + "\n", encoding="utf-8")

    t4 = table4(rep, seeds, **dict(settings.get("svm", {}) or {}))
    if t4 is not None:
        rows4, summ4 = t4
        write_csv(rows4, TABLE4_COLUMNS, out / "table4.csv")
        t4_md = markdown_table(
            ["", "Precision", "Recall", "F1"],
            [["C3D + linear SVM (ours)", *[f"{summ4[k][0]:.2f} ± {summ4[k][1]:.2f}"
                                           for k in ("precision", "recall", "f1")]],
             ["C3D + linear SVM (paper)", *[f"{PAPER_TABLE4[k][0]:.2f} ± {PAPER_TABLE4[k][1]:.2f}"
                                            for k in ("precision", "recall", "f1")]]])
    else:
        t4_md = "(skipped: no method used visual features, so there are no C3D features)"
    (out / "table4.md").write_text(t4_md + "\n", encoding="utf-8")

    pngs, notes = make_figures(rep, out, n_pos, n_all)

    cfg_dir = out / "configs"
    cfg_dir.mkdir(exist_ok=True)
    for m, cfg in rep.cfgs.items():
        try:
            text = OmegaConf.to_yaml(cfg, resolve=True)
        except Exception:  # an interpolation that only resolves inside a Hydra run
            text = OmegaConf.to_yaml(cfg, resolve=False)
        (cfg_dir / f"{m}.yaml").write_text(text, encoding="utf-8")

    order_lines = [f"- {hi} > {lo}: " + ("reproduced" + (" (beyond one std)" if strong else
                                                          " (within one std: not conclusive)")
                                         if ok else "**not reproduced**")
                   for hi, lo, ok, strong in orderings(t2)]
    gp_lines = gp_score_lines(rep.cfgs)
    sel = [f"- {r.method} seed {r.seed}: {r.penalty}" + (f", k = {r.k:g}" if math.isfinite(r.k) else "")
           for r in rep.runs]
    fig_lines = {
        "fig6": "Figure 6: (a) silhouette against k for k-means on the columns of the trace-norm "
                "W (first seed); (b) the emotion models on W's first two principal components, "
                "coloured by the best-silhouette clusters",
        "fig7_averaged": "Figure 7: PR curves averaged over the emotions, all methods (mean over seeds)",
        "fig7_per_emotion": "Figure 7, per emotion",
        "fig8": "Figure 8: correlations between the learned emotion models (first seed; "
                "emotions in Fig. 6's cluster order)",
        "fig9": "Figure 9: frames per GIF and average frame delay per GIF",
        "fig10": "Figure 10: (a) overlap rates between emotions (positives), (b)(c) flagged GIFs",
    }
    vers = software_versions()
    md = [
        "# Reproduction of GIFGIF+ Tables 1, 2, 4 and Figures 6–10",
        "",
        f"Dataset: `{rep.dataset.root}` ({len(rep.dataset)} GIFs, "
        f"{int(rep.dataset.mask.sum())} labelled (GIF, emotion) pairs). Setting: "
        f"**{settings.get('name', '?')}**; test-split seeds {seeds}; "
        f"this process {rep.seconds:.0f} s; the runs' own wall times sum to "
        f"{sum(r.seconds for r in rep.runs):,.0f} s (a run resumed with --resume counts the "
        f"time its first process took; per run in [table2_per_seed.csv](table2_per_seed.csv)).",
        "",
        "## Table 2: ranking quality on the test pools",
        "",
        f"PR-AUC of the PR curve averaged over the emotions, and Ñ (GIFs to look at to find "
        f"Np = {n_pos:,.0f} positives among Nall = {n_all:,.0f} candidates); mean ± std over "
        f"{len(seeds)} test split(s). [CSV](table2.csv), [per seed](table2_per_seed.csv), "
        f"[test GIFs per emotion](table2_test_counts.csv). {PR_AUC_NOTE}",
        "",
        t2_md,
        "",
        *gp_lines, *([""] if gp_lines else []),
        "Orderings of the paper's methods (by PR-AUC):",
        "",
        *order_lines,
        "",
        *(["## Beyond the paper: Table 2 with the tags as sentence embeddings", "",
           "Not in the paper. The same rows, runs and seeds with the tag block replaced by the "
           "GIF's tags embedded by a sentence-transformers model (mean of the per-tag unit "
           "embeddings, L2; `features=visual_text`) or added to it (`visual_tags_text`); PR-AUC "
           "(Ñ), mean ± std over the test-split seeds. [CSV](table2_tag_features.csv) "
           + PR_AUC_NOTE, "",
           beyond_md, ""] if beyond else []),
        "Regularisation per run (chosen by K-fold CV on the training part where the method's "
        "config has select_rho; clustered MTL's k by silhouette; see the configs below):",
        "",
        *sel,
        "",
        "Test GIFs per emotion (mean over seeds; positives in brackets):",
        "",
        markdown_table(["emotion", "test GIFs", "test positives"],
                       [[c["emotion"], f"{c['n_test_mean']:.1f} ({c['n_test_min']}–{c['n_test_max']})",
                         f"{c['n_test_pos_mean']:.1f}"] for c in counts]),
        "",
        "## Figures",
        "",
    ]
    for key, text in fig_lines.items():
        if key in pngs:
            md += [f"### {text}", "", f"![{key}]({pngs[key].name})", ""]
    if notes:
        md += ["Notes:", "", *[f"- {n}" for n in notes], ""]
    md += ["## Table 1: top tags of each emotion's positive GIFs", "", "[CSV](table1.csv)", "",
           t1_md, "",
           "## Table 4: binary-relevance baseline (C3D + linear SVM)", "",
           "One LinearSVC per emotion (balanced class weights, C = 1) on the emotion's labelled "
           "GIFs, 20 % stratified hold-out, positive = y > 25; mean ± std over the emotions "
           f"(per-emotion values averaged over seeds {seeds}). [CSV](table4.csv)", "",
           t4_md, "",
           "## Settings and software", "",
           "Reproduction settings:", "", "```yaml",
           OmegaConf.to_yaml(OmegaConf.create(dict(settings))).rstrip(), "```", "",
           "Composed configs of each method's first run: "
           + ", ".join(f"[{m}](configs/{m}.yaml)" for m in rep.cfgs), "",
           markdown_table(["software", "version"], [[k, v] for k, v in vers.items()]), ""]
    path = out / "report.md"
    path.write_text("\n".join(md), encoding="utf-8")
    return path


def reproduce(compose, settings: dict, out_dir: str | Path, overrides: Sequence[str] = (),
              seeds: Sequence[int] | None = None, resume: bool = False
              ) -> tuple[Reproduction, Path]:
    """Run every Table 2 row for every seed and write the report; returns (runs, report.md).

    ``overrides`` (the command line's) come after the setting's; the setting's
    ``demo_overrides`` apply only when the composed data config generates a demo set.
    ``resume``: reuse the finished runs found in ``out_dir`` (:func:`~gifemo.paper.
    reproduce.run_table2`).
    """
    out_dir = Path(out_dir)
    base = [*settings.get("overrides", []), *overrides]
    seeds = list(settings["seeds"] if seeds is None else seeds)
    methods = [*settings["methods"], *(settings.get("tag_feature_rows") or [])]
    if settings.get("demo_overrides") and methods:
        probe = compose(run_overrides(methods[0], 0, out_dir / "probe", base))
        if probe.data.get("generate", False):
            base = [*settings.get("overrides", []), *settings["demo_overrides"], *overrides]
    rep = run_table2(compose, methods, seeds, out_dir, base,
                     settings.get("method_overrides") or {}, resume=resume)
    report = write_report(rep, out_dir, {**settings, "seeds": seeds,
                                         "command_line_overrides": list(overrides)},
                          n_pos=float(settings.get("n_pos", 3000)),
                          n_all=float(settings.get("n_all", 50000)))
    return rep, report
