"""Run the paper's Table 2 rows (methods × test-split seeds) through ``run_train``.

Each row is an experiment config (``conf/experiment/table2_*.yaml``); each (row, seed) run is
composed exactly as ``python train.py experiment=<row> seed=<seed> <overrides>`` would be,
with its run directory under the report folder. The seed moves the test split (``data.split
.seed`` follows ``seed``), so the spread over seeds is the spread over test splits. Visual
features come from the shared feature cache: C3D runs once for all rows and seeds.

What the report needs from a run is kept in a small :class:`RunResult` (the scalar results,
the averaged and per-emotion PR curves, the learned W of linear models, test-set counts);
the dataset and the visual features of the first run that has them are kept once
(:class:`Reproduction`) for the dataset figures and the SVM baseline.

Resuming (``resume=True``): each finished run leaves its :class:`RunResult` in its run
directory (:data:`RESULT_FILE`, with the overrides it ran with); a resumed reproduction
reads those instead of running them again, so the paper-scale protocol (hours on 2 cores)
can be run in parts and interrupted without losing finished rows. A result file whose
overrides differ from the run's, or that cannot be read, is run again (logged). The
cross-validation results (``selection.CV_MEMO``) are kept in the report folder too
(:data:`CV_MEMO_DIR`), so clustered MTL resumed in a new process still takes k from the
trace-norm row's cross-validation instead of repeating it.
"""
from __future__ import annotations

import logging
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from omegaconf import DictConfig

from gifemo.atomic_file import atomic_write
from gifemo.data.manifest import GifDataset
from gifemo.eval.metrics import PRSummary
from gifemo.plain_config import to_plain

_log = logging.getLogger(__name__)

# Table 2 of the paper: row -> (experiment config, label, PR-AUC, Ñ)
PAPER_TABLE2: dict[str, tuple[str, str, float, float]] = {
    "unsorted": ("table2_unsorted", "Unsorted", 0.250, 11996),
    "visual_lasso": ("table2_visual_lasso", "Lasso (visual)", 0.336, 7196),
    "tag_lasso": ("table2_tag_lasso", "Lasso (tags)", 0.504, 4486),
    "visual_tag_lasso": ("table2_visual_tag_lasso", "Lasso (visual + tags)", 0.511, 4302),
    "gp": ("table2_gp", "GP (visual + tags)", 0.497, 4550),
    "trace_norm": ("table2_trace_norm", "Trace norm (visual + tags)", 0.530, 4247),
    "clustered_mtl": ("table2_clustered_mtl", "Clustered MTL (visual + tags)", 0.555, 4033),
}

# Beyond the paper: Table 2's lasso, trace-norm and clustered-MTL rows with the tags as
# sentence embeddings (features=visual_text) and with both tag features (visual_tags_text);
# row -> (the paper row it re-runs, feature group, label)
TAG_FEATURE_ROWS: dict[str, tuple[str, str, str]] = {
    "text_lasso": ("visual_tag_lasso", "visual_text", "Lasso (visual + text tags)"),
    "tags_text_lasso": ("visual_tag_lasso", "visual_tags_text", "Lasso (visual + tags + text tags)"),
    "text_trace_norm": ("trace_norm", "visual_text", "Trace norm (visual + text tags)"),
    "tags_text_trace_norm": ("trace_norm", "visual_tags_text",
                             "Trace norm (visual + tags + text tags)"),
    "text_clustered_mtl": ("clustered_mtl", "visual_text", "Clustered MTL (visual + text tags)"),
    "tags_text_clustered_mtl": ("clustered_mtl", "visual_tags_text",
                                "Clustered MTL (visual + tags + text tags)"),
}


def row_label(method: str) -> str:
    """The printed name of a Table 2 row (the paper's, or a tag-feature row's)."""
    return TAG_FEATURE_ROWS[method][2] if method in TAG_FEATURE_ROWS else PAPER_TABLE2[method][1]


@dataclass
class RunResult:
    """What the report keeps of one (method, seed) run.

    summary : the test PRSummary; W : [d, T] learned weights (linear models) or None;
    n_test, n_test_pos : [T] test GIFs and test positives per emotion; penalty : the chosen
    penalty (repr) or model name; k : clustered MTL's k (NaN otherwise); seconds : wall time.
    """

    method: str
    seed: int
    summary: PRSummary
    W: np.ndarray | None
    n_test: np.ndarray
    n_test_pos: np.ndarray
    penalty: str
    k: float
    seconds: float
    run_dir: Path

    @property
    def pr_auc(self) -> float:
        return float(self.summary.pr_auc)

    @property
    def n_tilde(self) -> float:
        return float(self.summary.n_tilde)


@dataclass
class Reproduction:
    """All runs, plus the dataset and visual features for the dataset figures and Table 4.

    visual : [n, dv] visual features of ``visual_rows`` (dataset rows), or None when no
    method used visual features; cfgs : the composed config of each method's first run.
    """

    runs: list[RunResult]
    dataset: GifDataset
    visual: np.ndarray | None = None
    visual_rows: np.ndarray | None = None
    cfgs: dict[str, DictConfig] = field(default_factory=dict)
    seconds: float = 0.0

    def of(self, method: str) -> list[RunResult]:
        return [r for r in self.runs if r.method == method]

    @property
    def methods(self) -> list[str]:
        return list(dict.fromkeys(r.method for r in self.runs))


def run_overrides(method: str, seed: int, run_dir: Path, overrides: Sequence[str],
                  method_overrides: Sequence[str] = ()) -> list[str]:
    """The train.py overrides of one (method, seed) run (user overrides naming the output
    dir or the seed are replaced); a :data:`TAG_FEATURE_ROWS` row is its paper row with its
    feature group."""
    features = []
    if method in TAG_FEATURE_ROWS:
        method, group, _ = TAG_FEATURE_ROWS[method]
        features = [f"features={group}"]
    if method not in PAPER_TABLE2:
        raise ValueError(f"unknown Table 2 method {method!r}; choose from "
                         f"{list(PAPER_TABLE2) + list(TAG_FEATURE_ROWS)}")
    own = ("paths.output_dir=", "seed=", "experiment=")
    kept = [o for o in overrides if not o.lstrip("+~").startswith(own)]
    return [f"experiment={PAPER_TABLE2[method][0]}", *kept, *method_overrides, *features,
            f"seed={int(seed)}", f"paths.output_dir={run_dir}"]


def _result(method: str, seed: int, metrics: dict, objects: dict, seconds: float) -> RunResult:
    pr_cb = objects["pr_callback"]
    if pr_cb is None or "test" not in pr_cb.summaries:
        raise RuntimeError(f"{method} seed {seed}: the run produced no test PR summary "
                           f"(see {objects['run_dir']})")
    rows = objects["features"].rows
    ds = objects["dataset"]
    test = objects["split"].test[rows]
    model = objects["model"]
    head = getattr(model, "head", None)
    W = None if head is None else head.W.detach().cpu().numpy().astype(np.float64).copy()
    penalty = repr(model.penalty) if hasattr(model, "penalty") else type(model).__name__
    return RunResult(method=method, seed=int(seed), summary=pr_cb.summaries["test"], W=W,
                     n_test=test.sum(0), n_test_pos=(test & ds.positive[rows]).sum(0),
                     penalty=penalty, k=float(metrics.get("cv/k", np.nan)), seconds=seconds,
                     run_dir=Path(objects["run_dir"]))


RESULT_FILE = "table2_result.pkl"  # a finished run's RunResult and overrides (resume)


def save_result(res: RunResult, run_overrides: Sequence[str]) -> Path:
    """Keep a finished run's result in its run directory (atomically)."""
    path = Path(res.run_dir) / RESULT_FILE
    with atomic_write(path) as f:
        pickle.dump({"overrides": list(run_overrides), "result": res}, f)
    return path


def load_result(run_dir: Path, run_overrides: Sequence[str]) -> RunResult | None:
    """The result a previous reproduction left in ``run_dir`` for exactly these overrides;
    None (logged) when there is none, it cannot be read, or it ran with other overrides.
    Only files this module wrote are read (pickle runs code: do not resume from folders
    of unknown origin)."""
    path = Path(run_dir) / RESULT_FILE
    if not path.exists():
        return None
    try:
        with open(path, "rb") as f:
            saved = pickle.load(f)
        res, ran_with = saved["result"], saved["overrides"]
    except Exception as e:  # a torn or foreign file: run again rather than stop
        _log.warning("resume: %s cannot be read (%s: %s); running it again", path,
                     type(e).__name__, e)
        return None
    if list(ran_with) != list(run_overrides):
        _log.warning("resume: %s ran with other overrides (%s); running it again", path,
                     " ".join(ran_with))
        return None
    return res


def run_table2(compose, methods: Sequence[str], seeds: Sequence[int], out_dir: Path,
               overrides: Sequence[str] = (),
               method_overrides: dict[str, Sequence[str]] | None = None,
               resume: bool = False) -> Reproduction:
    """Run every method for every seed.

    Parameters
    ----------
    compose : callable (overrides: list[str]) -> DictConfig
        Composes ``conf/train.yaml`` (e.g. Hydra's ``compose("train", overrides)``).
    methods : keys of :data:`PAPER_TABLE2` or :data:`TAG_FEATURE_ROWS`.
    seeds : test-split seeds.
    out_dir : the report folder; runs go to ``out_dir/runs/<method>/seed<seed>``.
    overrides : train.py overrides applied to every run (data, backbone, grids …).
    method_overrides : extra overrides per method (e.g. a smaller ``model.cv_grid``); a
        tag-feature row takes its paper row's.
    resume : reuse the results that finished runs left in their run directories (see the
        module docstring); every run's result is kept either way.
    """
    from gifemo.models.selection import CV_MEMO

    if not methods or not seeds:
        raise ValueError(f"need at least one method and one seed, got {methods!r}, {seeds!r}")
    method_overrides = method_overrides or {}
    t_all = time.perf_counter()
    # seeds outer: one test split's rows run back to back, so the rows that share features
    # and folds share their work (the eigenbases of gifemo.models.shared_basis.BASIS_MEMO,
    # the trace-norm CV that clustered MTL's k reuses through selection.CV_MEMO, which is
    # kept in out_dir/cv_memo too, for a resumed reproduction)
    with CV_MEMO.persisted_in(Path(out_dir) / CV_MEMO_DIR):
        rep = _run_rows(compose, methods, seeds, out_dir, overrides, method_overrides, resume)
    rep.seconds = time.perf_counter() - t_all
    return rep


CV_MEMO_DIR = "cv_memo"  # in the report folder: select_rho_cv results (selection.CV_MEMO)


def _run_rows(compose, methods, seeds, out_dir, overrides, method_overrides,
              resume) -> Reproduction:
    from gifemo.training import load_data, run_train

    runs: list[RunResult] = []
    rep: Reproduction | None = None
    for seed in seeds:
        for method in methods:
            run_dir = Path(out_dir) / "runs" / method / f"seed{seed}"
            own = method_overrides.get(method, method_overrides.get(
                TAG_FEATURE_ROWS.get(method, (method,))[0], ()))
            ov = run_overrides(method, seed, run_dir, overrides, own)
            cfg = compose(ov)
            res = load_result(run_dir, ov) if resume else None
            objects = None
            if res is None:
                _log.info("Table 2: %s, seed %d -> %s", method, seed, run_dir)
                t0 = time.perf_counter()
                metrics, objects = run_train(cfg)
                res = _result(method, seed, metrics, objects, time.perf_counter() - t0)
                save_result(res, ov)
            runs.append(res)
            print(f"[reproduce] {method:<17} seed {seed}: PR-AUC {res.pr_auc:.3f}  "
                  f"Ñ {res.n_tilde:,.0f}  ({res.seconds:.1f} s"
                  f"{'' if objects is not None else ', resumed from ' + RESULT_FILE})",
                  flush=True)
            if rep is None:
                rep = Reproduction(runs=runs, dataset=None)
            rep.cfgs.setdefault(method, cfg)
            wants_visual = rep.visual is None and "visual" in str(cfg.features.group)
            if rep.dataset is None or wants_visual:
                if objects is None:  # resumed: the data alone (features from the cache)
                    objects = load_data(cfg, run_dir)
                rep.dataset = rep.dataset if rep.dataset is not None else objects["dataset"]
                feats = objects["features"]
                if rep.visual is None and feats.layout.uses_visual:
                    rep.visual = np.asarray(feats.X[:, :feats.layout.visual_dim],
                                            dtype=np.float64)
                    rep.visual_rows = np.asarray(feats.rows)
    return rep


# --------------------------------------------------------------------------- settings

def load_settings(path: str | Path, setting: str) -> dict:
    """``conf/reproduce.yaml`` with the chosen setting (``quick`` / ``full``) merged in:
    {name, methods, seeds, overrides, demo_overrides, method_overrides, n_pos, n_all, svm}.
    Override strings are kept verbatim (a ``${...}`` in them is resolved by the train config)."""
    from omegaconf import OmegaConf

    raw = to_plain(OmegaConf.load(path), resolve=False)
    settings = raw.pop("settings", {})
    if setting not in settings:
        raise ValueError(f"unknown setting {setting!r}; {path} has {sorted(settings)}")
    out = {"name": setting, **raw, **settings[setting]}
    unknown = [m for m in out["methods"] if m not in PAPER_TABLE2]
    if unknown:
        raise ValueError(f"{path}: unknown method(s) {unknown}; choose from {list(PAPER_TABLE2)}")
    unknown = [m for m in out.get("tag_feature_rows") or [] if m not in TAG_FEATURE_ROWS]
    if unknown:
        raise ValueError(f"{path}: unknown tag-feature row(s) {unknown}; choose from "
                         f"{list(TAG_FEATURE_ROWS)}")
    return out


def only_rows(settings: dict, rows: Sequence[str]) -> dict:
    """``settings`` restricted to the Table 2 rows ``rows`` (paper rows or tag-feature rows),
    run in the setting's order whatever the order given: one reproduction split over
    processes (e.g. ``--methods visual_lasso,tag_lasso`` beside ``--methods
    trace_norm,clustered_mtl`` on the same ``--out``; keep trace norm and clustered MTL
    together, the latter reuses the former's cross-validation), then one ``--resume`` without
    it writes the whole report."""
    rows = [r.strip() for r in rows if r.strip()]
    known = [*settings["methods"], *(m for m in TAG_FEATURE_ROWS if m not in settings["methods"])]
    unknown = [r for r in rows if r not in known]
    if not rows or unknown:
        what = f"unknown Table 2 row(s) {unknown!r}" if unknown else "no Table 2 row given"
        raise ValueError(f"{what}; rows: {', '.join(known)}")
    return {**settings, "methods": [m for m in settings["methods"] if m in rows],
            "tag_feature_rows": [m for m in TAG_FEATURE_ROWS if m in rows]}


def hydra_composer(conf_dir: str | Path):
    """``compose(overrides) -> DictConfig`` of ``conf_dir/train.yaml``, as train.py composes
    it (outside a Hydra app)."""
    from hydra import compose, initialize_config_dir

    def _compose(overrides: Sequence[str]) -> DictConfig:
        with initialize_config_dir(config_dir=str(Path(conf_dir).resolve()), version_base="1.3"):
            return compose("train", overrides=list(overrides))

    return _compose
