"""One training run from a composed Hydra config: ``run_train(cfg) -> (metrics, objects)``.

The steps (each a small function below, so tests and notebooks can reuse them):

1. seed everything; the run directory is ``cfg.paths.output_dir``;
2. :func:`prepare_dataset`: load the manifest (the demo is generated first when missing or
   made with other parameters) -> TrueSkill labels y = µ − 3σ, positives and masks;
3. ``make_split``: per-emotion test pools, 33 % test, K folds on the rest (paper §3.6);
4. :func:`build_features`: visual features from the feature cache
   (``gifemo.features.ensure_visual_features`` computes what is missing or stale), tag
   features over a vocabulary built on the TRAINING GIFs only, concatenated [visual | tags];
   GIFs without a visual feature (bad files) leave every mask;
5. the data module gets the features and the train / val / test masks;
6. the recognizer is instantiated from ``cfg.model`` with the runtime layout and vocabulary;
7. optionally clustered MTL's k is chosen by silhouette of the trace-norm W
   (``select_k=true``) and ρ by K-fold CV on the training part (``select_rho=true``);
8. the head is fitted (exact full-batch solve, or minibatch through ``trainer.fit``);
9. ``trainer.validate`` (when ``data.val_fold`` is set) and ``trainer.test`` run the
   :class:`~gifemo.eval.callbacks.PRMetricsCallback` (PR-AUC, Ñ, plots, tables);
10. the checkpoint is written and a short result table printed; wandb runs are finished.
"""
from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationToMissingValueError, MissingMandatoryValue

from gifemo.data.manifest import GifDataset, load_dataset
from gifemo.data.splits import Split, make_split
from gifemo.data.tags import TagVocabulary
from gifemo.eval.callbacks import PRMetricsCallback
from gifemo.models.recognizer import FEATURE_GROUPS, FeatureLayout, RecognizerBase

_log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"


class ConfigError(ValueError):
    """The composed config cannot run; the message names the key and how to fix it."""


@dataclass
class FeatureData:
    """Features of the GIFs that have them.

    rows : int64 [n] dataset rows kept (manifest order); X : float32 [n, d];
    layout; vocabulary (None without tags); backbone_info (WeightsInfo dict, None without
    visual features); bad : list of (path, reason); n_computed : GIFs extracted by this run.
    """

    rows: np.ndarray
    X: np.ndarray
    layout: FeatureLayout
    vocabulary: TagVocabulary | None
    backbone_info: dict | None
    bad: list
    n_computed: int = 0


# --------------------------------------------------------------------------- config helpers

def _plain(node: Any) -> Any:
    if isinstance(node, DictConfig) or OmegaConf.is_list(node):
        return OmegaConf.to_container(node, resolve=True)
    return node


def backbone_settings(cfg: DictConfig) -> dict:
    """``cfg.model.backbone`` resolved to a dict (weights, width, seed, convention)."""
    node = cfg.model.get("backbone")
    if node is None:
        raise ConfigError("visual features need model.backbone (weights, width, seed, "
                          "convention); see conf/backbone/c3d.yaml")
    try:
        d = _plain(node)
    except (MissingMandatoryValue, InterpolationToMissingValueError):
        raise ConfigError(
            "no C3D weights given: pass model.backbone.weights=/path/to/c3d.pickle (the "
            "Sports-1M conversion or a gifemo safetensors export), or model.backbone.weights="
            "random to run with random weights explicitly (nothing is downloaded)") from None
    return {k: v for k, v in d.items() if k != "_target_"}


def decode_settings(cfg: DictConfig) -> dict:
    return dict(_plain(cfg.data.get("decode")) or {"backend": "pyav"})


# --------------------------------------------------------------------------- steps

def prepare_dataset(data_cfg: DictConfig) -> GifDataset:
    """Load ``data_cfg.manifest``; with ``generate: true`` first (re)generate the demo there
    when it is missing or was made with other parameters."""
    manifest = Path(str(data_cfg.manifest))
    if data_cfg.get("generate", False):
        from gifemo.data.demo import demo_is_current, generate_demo

        n, seed = int(data_cfg.n_gifs), int(data_cfg.demo_seed)
        votes = float(data_cfg.get("votes_per_gif", 28.0))
        if not demo_is_current(manifest, n, seed, votes):
            _log.info("generating the demo dataset in %s (n_gifs=%d, seed=%d)", manifest, n, seed)
            t0 = time.perf_counter()
            generate_demo(manifest, n, seed, votes_per_gif=votes)
            _log.info("demo dataset written in %.1f s", time.perf_counter() - t0)
    t0 = time.perf_counter()
    dataset = load_dataset(manifest, labels=str(data_cfg.get("labels", "trueskill")))
    _log.info("dataset %s: %d GIFs, %d labelled (GIF, emotion) pairs, %.1f %% positive "
              "(loaded in %.1f s)", dataset.root, len(dataset), int(dataset.mask.sum()),
              100.0 * dataset.positive.sum() / max(dataset.mask.sum(), 1),
              time.perf_counter() - t0)
    return dataset


def fit_and_val_masks(split: Split, val_fold: int | None) -> tuple[np.ndarray, np.ndarray | None]:
    """(mask the head is fitted on, validation mask or None) for ``data.val_fold``."""
    if val_fold is None:
        return split.train, None
    return split.fit_mask(int(val_fold)), split.val_mask(int(val_fold))


def build_features(cfg: DictConfig, dataset: GifDataset, fit_mask: np.ndarray,
                   run_dir: Path) -> FeatureData:
    """[visual | tags] features of the GIFs that have them (see the module docstring)."""
    group = str(cfg.features.group)
    if group not in FEATURE_GROUPS:
        raise ConfigError(f"features.group={group!r}; choose one of {sorted(FEATURE_GROUPS)}")
    blocks = FEATURE_GROUPS[group]
    rows = np.arange(len(dataset), dtype=np.int64)
    visual, info, bad, n_computed = None, None, [], 0
    if "visual" in blocks:
        from gifemo.features import ensure_visual_features
        from gifemo.models.c3d import weights_info

        bb = backbone_settings(cfg)
        winfo = weights_info(bb["weights"], bb.get("width", 1.0), bb.get("seed", 0),
                             bb.get("convention"))
        info = {**winfo.to_dict(), "weights_id": winfo.weights_id}
        if winfo.is_random:
            msg = (f"C3D backbone: RANDOM weights (seed={winfo.seed}, width={winfo.width:g}); "
                   "visual features are NOT the paper's Sports-1M features")
            _log.warning(msg)
            print(f"*** {msg} ***", flush=True)
        table = ensure_visual_features(
            dataset, str(cfg.features.cache_dir), bb,
            {"max_clips_per_gif": cfg.data.get("max_clips_per_gif")}, decode_settings(cfg),
            run=_plain(cfg.features.get("run")), run_dir=run_dir)
        rows = np.asarray(table.rows, dtype=np.int64)
        visual, bad, n_computed = table.visual, list(table.bad), int(table.n_computed)
        if bad:
            _log.warning("%d GIF(s) have no visual feature and are left out (see %s)", len(bad),
                         run_dir / "bad_files.csv")
    vocab, tags = None, None
    if "tags" in blocks:
        train_rows = rows[fit_mask[rows].any(axis=1)]
        vocab = TagVocabulary.build([dataset.tags[i] for i in train_rows],
                                    float(cfg.features.get("tag_min_fraction", 0.005)))
        if len(vocab) == 0:
            raise ConfigError(f"no tag is on >= {cfg.features.tag_min_fraction} of the "
                              f"{len(train_rows)} training GIFs: the tag vocabulary is empty")
        tags = vocab.encode([dataset.tags[i] for i in rows])
        _log.info("tag vocabulary: %d tags on >= %.2g %% of %d training GIFs", len(vocab),
                  100 * vocab.min_fraction, len(train_rows))
    layout = FeatureLayout(group, 0 if visual is None else int(visual.shape[1]),
                           0 if vocab is None else len(vocab))
    X = layout.concat(visual, tags)
    return FeatureData(rows=rows, X=X, layout=layout, vocabulary=vocab, backbone_info=info,
                       bad=bad, n_computed=n_computed)


def build_model(cfg: DictConfig, feats: FeatureData) -> RecognizerBase:
    """Instantiate ``cfg.model`` with the runtime layout, vocabulary and backbone settings.

    The runtime objects are passed to the partial (not merged into the config: Hydra would
    turn the dataclasses into configs); ``backbone`` is resolved only when visual features
    are used, so a tags-only run needs no weights.
    """
    bb = backbone_settings(cfg) if feats.layout.uses_visual else None
    factory = instantiate(cfg.model, _partial_=True, _convert_="all", backbone=bb)
    model = factory(layout=feats.layout, vocabulary=feats.vocabulary)
    if not isinstance(model, RecognizerBase):
        raise ConfigError(f"model._target_ must build a gifemo recognizer, got "
                          f"{type(model).__name__}")
    model.backbone_info = feats.backbone_info
    return model


def select_clusters(model: RecognizerBase, feats: FeatureData, dataset: GifDataset,
                    fit_mask: np.ndarray, trace_rho: float, ks=range(2, 11)) -> dict:
    """Clustered MTL's k as in the paper (§3.6, Fig. 6): k-means on the columns of the
    trace-norm W (fitted on the training part), the k with the best mean silhouette."""
    from gifemo.eval.selection import choose_k_silhouette
    from gifemo.models.penalties import ClusteredMTLPenalty, TraceNormPenalty
    from gifemo.models.solvers import fit_multitask_linear

    penalty = getattr(model, "penalty", None)
    if not isinstance(penalty, ClusteredMTLPenalty):
        _log.info("select_k: only clustered_mtl has a k; skipped for %s", type(model).__name__)
        return {}
    r = feats.rows
    res = fit_multitask_linear(feats.X, dataset.y[r], fit_mask[r], TraceNormPenalty(trace_rho),
                               tol=model.tol, max_iter=model.max_iter)
    ks = [k for k in ks if 2 <= k <= model.n_tasks - 1]
    k, sil = choose_k_silhouette(res.W, ks)
    model.set_penalty(ClusteredMTLPenalty(penalty.rho1, penalty.rho2, k=k))
    _log.info("k by silhouette of the trace-norm (rho=%g) W's columns: %s -> k=%d", trace_rho,
              {kk: round(v, 3) for kk, v in sil.items()}, k)
    return {"cv/k": float(k), "cv/silhouette": float(sil[k])}


def select_regularisation(model: RecognizerBase, feats: FeatureData, dataset: GifDataset,
                          split: Split, metric: str) -> dict:
    """Choose the penalty strength by K-fold CV on the training part (paper §3.6)."""
    from gifemo.eval.selection import select_rho_cv

    grid = getattr(model, "cv_grid", None)
    if not grid:
        _log.info("select_rho: %s has no cv_grid; keeping its configured strength",
                  type(model).__name__)
        return {}
    r = feats.rows
    t0 = time.perf_counter()
    sel = select_rho_cv(feats.X, dataset.y[r], dataset.positive[r], split.train[r], split.fold[r],
                        model.penalty_for, grid, metric=metric, tol=model.tol,
                        max_iter=model.max_iter)
    model.set_penalty(model.penalty_for(sel.best))
    _log.info("cross-validation (%s, %d folds) over %s: scores %s -> %r (%.1f s)", metric,
              sel.fold_scores.shape[1], grid, np.round(sel.scores, 4).tolist(), model.penalty,
              time.perf_counter() - t0)
    return {"cv/best_score": float(sel.scores[sel.best_index]),
            "cv/best_index": float(sel.best_index)}


def _instantiate_all(node: DictConfig | None) -> list:
    if not node:
        return []
    return [instantiate(v) for v in node.values() if isinstance(v, DictConfig) and "_target_" in v]


def _finish_wandb() -> None:
    try:
        import wandb
    except ImportError:  # pragma: no cover
        return
    if wandb.run is not None:
        wandb.finish()


def format_result_table(metrics: dict, model: RecognizerBase, stage: str = "test") -> str:
    """The short table printed at the end of a run (averaged curve, Unsorted baseline)."""
    def g(key: str) -> float:
        v = metrics.get(f"{stage}/{key}")
        return math.nan if v is None else float(v)

    name = repr(getattr(model, "penalty", None)) if hasattr(model, "penalty") else "GP (eq. 5)"
    n_emo = g("n_emotions")
    w = max(len(name), 10) + 2
    lines = [f"{stage} set, averaged PR curve over {int(n_emo) if math.isfinite(n_emo) else '?'} "
             f"emotions (features: {model.layout.group}, d={model.layout.dim})",
             f"  {'':<{w}}{'PR-AUC':>8}{'Ñ':>10}",
             f"  {name:<{w}}{g('pr_auc'):>8.3f}{g('n_tilde'):>10,.0f}",
             f"  {'Unsorted':<{w}}{g('unsorted_pr_auc'):>8.3f}{g('unsorted_n_tilde'):>10,.0f}"]
    return "\n".join(lines)


# --------------------------------------------------------------------------- the run

def run_train(cfg: DictConfig) -> tuple[dict, dict]:
    """Train and evaluate one recognizer as configured; see the module docstring.

    Returns
    -------
    metrics : dict of str -> float
        Everything logged (``test/pr_auc``, ``test/n_tilde``, per emotion, ``cv/*``, fit info).
    objects : dict
        ``cfg, dataset, split, features, datamodule, model, trainer, callbacks, loggers,
        pr_callback, checkpoint_path, run_dir``.
    """
    try:
        return _run(cfg)
    finally:
        _finish_wandb()


def _run(cfg: DictConfig) -> tuple[dict, dict]:
    pl.seed_everything(int(cfg.seed), workers=True)
    run_dir = Path(str(cfg.paths.output_dir))
    run_dir.mkdir(parents=True, exist_ok=True)
    _log.info("run directory: %s", run_dir)

    dataset = prepare_dataset(cfg.data)
    split = make_split(dataset, **_plain(cfg.data.split))
    fit_mask, val_mask = fit_and_val_masks(split, cfg.data.get("val_fold"))
    feats = build_features(cfg, dataset, fit_mask, run_dir)
    r = feats.rows
    masks = {"train": fit_mask[r], "test": split.test[r]}
    if val_mask is not None:
        masks["val"] = val_mask[r]

    datamodule = instantiate(cfg.data.datamodule)
    datamodule.set_features(feats.X, dataset.y[r], masks)
    model = build_model(cfg, feats)
    _log.info("model: %r", model)

    metrics: dict[str, float] = {"data/n_gifs": float(len(r)), "data/n_bad": float(len(feats.bad)),
                                 "data/feature_dim": float(feats.layout.dim)}
    if cfg.get("select_k", False):
        metrics.update(select_clusters(model, feats, dataset, fit_mask,
                                       float(cfg.get("select_k_trace_rho", 1.0))))
    if cfg.get("select_rho", False):
        metrics.update(select_regularisation(model, feats, dataset, split,
                                             str(cfg.get("selection_metric", "pr_auc"))))

    callbacks = _instantiate_all(cfg.get("callbacks"))
    pr_cb = next((c for c in callbacks if isinstance(c, PRMetricsCallback)), None)
    if pr_cb is None:
        pr_cb = PRMetricsCallback(out_dir=str(run_dir))
        callbacks.append(pr_cb)
    loggers = _instantiate_all(cfg.get("logger"))
    extra = {} if val_mask is not None else {"limit_val_batches": 0}
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False,
                                      **extra)
    for lg in loggers:
        lg.log_hyperparams(_loggable_config(cfg))

    t0 = time.perf_counter()
    if getattr(model, "fit_mode", "exact") == "exact":
        res = model.fit_exact(*datamodule.full_batch("train"))
        if hasattr(res, "rel_gap"):
            metrics.update({"fit/objective": float(res.objective), "fit/rel_gap": float(res.rel_gap),
                            "fit/n_iter": float(res.n_iter)})
    else:
        trainer.fit(model, datamodule=datamodule)
        if model.rel_gap_to_optimum is not None:
            metrics["fit/rel_gap_to_optimum"] = model.rel_gap_to_optimum
    metrics["fit/seconds"] = time.perf_counter() - t0
    for lg in loggers:
        lg.log_metrics({k: v for k, v in metrics.items() if math.isfinite(v)})

    with warnings.catch_warnings():
        # one batch per split by construction; Lightning's hint about workers does not apply
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        if val_mask is not None:
            trainer.validate(model, datamodule=datamodule, verbose=False)
            metrics.update(_floats(trainer.callback_metrics))
            metrics.update(pr_cb.metrics.get("val", {}))
        if cfg.get("evaluate_test", True):
            trainer.test(model, datamodule=datamodule, verbose=False)
            metrics.update(_floats(trainer.callback_metrics))
            metrics.update(pr_cb.metrics.get("test", {}))

    ckpt_path = None
    if cfg.get("save_checkpoint", True):
        from gifemo.checkpoint import clip_settings, finite_metrics, save_checkpoint

        ckpt_path = save_checkpoint(
            model, run_dir / CHECKPOINT_NAME, clips=clip_settings(cfg.data.get("max_clips_per_gif")),
            decode=decode_settings(cfg), metrics=finite_metrics(metrics),
            extra={"config": _loggable_config(cfg), "dataset": str(dataset.root)})

    stage = "test" if "test/pr_auc" in metrics else ("val" if "val/pr_auc" in metrics else None)
    if stage is not None:
        print(format_result_table(metrics, model, stage), flush=True)
    print(f"run dir: {run_dir}" + (f"\ncheckpoint: {ckpt_path}" if ckpt_path else ""), flush=True)

    objects = {"cfg": cfg, "dataset": dataset, "split": split, "features": feats,
               "datamodule": datamodule, "model": model, "trainer": trainer,
               "callbacks": callbacks, "loggers": loggers, "pr_callback": pr_cb,
               "checkpoint_path": ckpt_path, "run_dir": run_dir}
    return metrics, objects


def _floats(d) -> dict:
    out = {}
    for k, v in d.items():
        try:
            out[str(k)] = float(v)
        except (TypeError, ValueError):
            continue
    return out


def _loggable_config(cfg: DictConfig) -> dict:
    """The config as primitives (interpolations resolved where possible)."""
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # e.g. ${hydra:...} outside a Hydra run, or a missing value
        return OmegaConf.to_container(cfg, resolve=False)


def get_metric_value(metrics: dict, name: str | None) -> float | None:
    """The value train.py returns to sweepers; a clear error when it was not produced."""
    if not name:
        return None
    if name not in metrics:
        raise KeyError(f"optimized_metric={name!r} was not produced by this run; available: "
                       f"{sorted(k for k in metrics if '/' in k and k.count('/') == 1)}")
    return float(metrics[name])
