"""One training run from a composed Hydra config: ``run_train(cfg) -> (metrics, objects)``.

1. seed everything; the run directory is ``cfg.paths.output_dir``;
2. load the dataset (the demo is generated when missing) -> TrueSkill labels, masks;
3. per-emotion test pools, 33 % test, K folds on the rest (paper §3.6);
4. features [visual | tags] (visual from the feature cache, built by ``cfg.backbone`` when
   missing; the tag vocabulary from the training GIFs only);
5. the recognizer from ``cfg.model`` with the runtime layout and vocabulary;
6. optionally clustered MTL's k by silhouette (``select_k``) and the penalty by K-fold CV
   (``select_rho``);
7. the head is fitted: ``fit_exact`` on the full training batch, or ``trainer.fit``
   (``model.fit=minibatch``);
8. ``trainer.validate`` (when ``data.val_fold`` is set) and ``trainer.test`` run the
   :class:`~gifemo.eval.callbacks.PRMetricsCallback` (PR-AUC, Ñ, plots, tables);
9. the checkpoint is written, a short result table printed, wandb finished.
"""
from __future__ import annotations

import logging
import math
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig
from omegaconf.errors import InterpolationToMissingValueError, MissingMandatoryValue

from gifemo.checkpoint import finite_metrics, save_checkpoint
from gifemo.data.prepare import prepare_dataset
from gifemo.data.splits import make_split
from gifemo.eval.callbacks import PRMetricsCallback
from gifemo.features.assemble import FeatureData, assemble_features
from gifemo.models.layout import FEATURE_GROUPS
from gifemo.models.recognizer import RecognizerBase
from gifemo.models.text_encoder import DEFAULT_MODEL, SentenceTagEncoder
from gifemo.models.selection import cv_trace_rho, select_k, select_regularisation
from gifemo.plain_config import to_plain

_log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"


class ConfigError(ValueError):
    """The composed config cannot run; the message names the key and how to fix it."""


def backbone_config(cfg: DictConfig) -> dict:
    """``cfg.backbone`` as a dict with its ``_target_``; a clear error when weights are missing."""
    try:
        return to_plain(cfg.backbone)
    except (MissingMandatoryValue, InterpolationToMissingValueError):
        raise ConfigError(
            "no backbone weights given: pass backbone.weights=/path/to/weights (e.g. the Sports-1M "
            "c3d.pickle or a gifemo safetensors export), or backbone.weights=random to run with "
            "random weights explicitly (nothing is downloaded)") from None


def dataset_of(data_cfg: DictConfig):
    """The dataset ``cfg.data`` names (the demo generated first when it says so); shared by
    train.py and scripts/extract.py."""
    d = data_cfg
    return prepare_dataset(d.manifest, generate=d.get("generate", False),
                           n_gifs=d.get("n_gifs", 600), demo_seed=d.get("demo_seed", 0),
                           votes_per_gif=d.get("votes_per_gif", 28.0),
                           labels=str(d.get("labels", "trueskill")))


def text_encoder_of(features_cfg: DictConfig) -> SentenceTagEncoder | None:
    """The sentence-embedding tag encoder of a feature group with a text block (else None):
    ``features.text_model`` (``default``: the packaged all-MiniLM-L6-v2, else its hub name)."""
    if "text" not in FEATURE_GROUPS.get(str(features_cfg.group), ()):
        return None
    return SentenceTagEncoder(str(features_cfg.get("text_model", DEFAULT_MODEL)),
                              device=str(features_cfg.get("text_device", "cpu")))


def build_model(model_cfg: DictConfig, feats: FeatureData) -> RecognizerBase:
    """The recognizer of ``cfg.model`` with the runtime layout, vocabulary and backbone identity
    (passed to the partial: Hydra would turn these objects into configs)."""
    model = instantiate(model_cfg, _partial_=True, _convert_="all")(layout=feats.layout,
                                                                    vocabulary=feats.vocabulary)
    if not isinstance(model, RecognizerBase):
        raise ConfigError(f"model._target_ must build a gifemo recognizer, got {type(model).__name__}")
    model.backbone_info = feats.backbone
    if feats.text_encoder is not None:
        model.attach_text_encoder(feats.text_encoder)
    return model


def run_train(cfg: DictConfig) -> tuple[dict, dict]:
    """Train and evaluate one recognizer as configured (see the module docstring).

    Returns ``(metrics, objects)``: every logged scalar (``test/pr_auc``, ``test/n_tilde``,
    ``cv/*``, ``fit/*`` …) and ``cfg, dataset, split, features, datamodule, model, trainer,
    callbacks, loggers, pr_callback, checkpoint_path, run_dir``.
    """
    try:
        return _run(cfg)
    finally:
        _finish_wandb()


def load_data(cfg: DictConfig, run_dir: Path) -> dict:
    """Steps 2–4 of a run: ``dataset, split, val_fold, fit_mask, features, backbone_config``
    (features from the cache, or the backbone when missing). :func:`run_train` starts with
    it; a resumed reproduction uses it alone for its dataset figures and Table 4."""
    d = cfg.data
    dataset = dataset_of(d)
    split = make_split(dataset, **to_plain(d.split))
    val_fold = d.get("val_fold")
    fit_mask = split.train if val_fold is None else split.fit_mask(int(val_fold))
    visual_file = d.get("visual_features")  # precomputed features: no backbone, no cache
    visual = "visual" in str(cfg.features.group) and not visual_file
    bb_cfg = backbone_config(cfg) if visual else None
    feats = assemble_features(
        dataset, fit_mask, group=str(cfg.features.group),
        tag_min_fraction=float(cfg.features.tag_min_fraction),
        backbone=instantiate(bb_cfg) if visual else None, cache_dir=str(cfg.features.cache_dir),
        max_clips_per_gif=d.get("max_clips_per_gif"), decode=to_plain(d.decode),
        run=to_plain(cfg.extract), run_dir=run_dir, visual_file=visual_file,
        text_encoder=text_encoder_of(cfg.features))
    return {"dataset": dataset, "split": split, "val_fold": val_fold, "fit_mask": fit_mask,
            "features": feats, "backbone_config": bb_cfg}


def _run(cfg: DictConfig) -> tuple[dict, dict]:
    pl.seed_everything(int(cfg.seed), workers=True)
    run_dir = Path(str(cfg.paths.output_dir))
    run_dir.mkdir(parents=True, exist_ok=True)
    _log.info("run directory: %s", run_dir)

    d = cfg.data
    data = load_data(cfg, run_dir)
    dataset, split, val_fold, fit_mask = (data[k] for k in ("dataset", "split", "val_fold",
                                                             "fit_mask"))
    feats, bb_cfg = data["features"], data["backbone_config"]
    r = feats.rows
    masks = {"train": fit_mask[r], "test": split.test[r]}
    if val_fold is not None:
        masks["val"] = split.val_mask(int(val_fold))[r]
    datamodule = instantiate(d.datamodule)
    datamodule.set_features(feats.X, dataset.y[r], masks)

    model = build_model(cfg.model, feats)
    _log.info("model: %r", model)

    metrics = {"data/n_gifs": float(len(r)), "data/n_bad": float(len(feats.bad)),
               "data/feature_dim": float(feats.layout.dim),
               "data/n_extracted": float(feats.n_computed), "data/extract_s": feats.extract_s}
    Y = dataset.y[r]
    if cfg.get("select_k", False):
        trace_rho, trace_W0 = cfg.select_k_trace_rho, None
        if str(trace_rho) == "cv":
            trace_rho, trace_W0 = cv_trace_rho(
                feats.X, Y, dataset.positive[r], split.train[r], split.fold[r],
                to_plain(cfg.trace_norm_grid), str(cfg.selection_metric), tol=model.tol,
                max_iter=model.max_iter)
            metrics["cv/k_trace_rho"] = trace_rho
        metrics.update(select_k(model, feats.X, Y, fit_mask[r], float(trace_rho),
                                W0=trace_W0))
    if cfg.get("select_rho", False):
        metrics.update(select_regularisation(model, feats.X, Y, dataset.positive[r],
                                             split.train[r], split.fold[r],
                                             str(cfg.selection_metric)))

    callbacks = [instantiate(v) for v in (cfg.get("callbacks") or {}).values()
                 if isinstance(v, DictConfig) and "_target_" in v]
    pr_cb = next((c for c in callbacks if isinstance(c, PRMetricsCallback)), None)
    if pr_cb is None:
        pr_cb = PRMetricsCallback(out_dir=str(run_dir))
        callbacks.append(pr_cb)
    loggers = [instantiate(v) for v in (cfg.get("logger") or {}).values()
               if isinstance(v, DictConfig) and "_target_" in v]
    extra = {} if val_fold is not None else {"limit_val_batches": 0}
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, **extra)
    for lg in loggers:
        lg.log_hyperparams(_loggable_config(cfg))

    t0 = time.perf_counter()
    if model.fit_mode == "exact":
        res = model.fit_exact(*datamodule.full_batch("train"))
        if hasattr(res, "rel_gap"):
            metrics.update({"fit/objective": float(res.objective), "fit/rel_gap": float(res.rel_gap),
                            "fit/n_iter": float(res.n_iter)})
    else:
        trainer.fit(model, datamodule=datamodule)
        metrics["fit/rel_gap_to_optimum"] = float(model.rel_gap_to_optimum)
    metrics["fit/seconds"] = time.perf_counter() - t0
    for lg in loggers:
        lg.log_metrics({k: v for k, v in metrics.items() if math.isfinite(v)})

    with warnings.catch_warnings():
        # one batch per split by construction; Lightning's hint about workers does not apply
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        for stage, wanted in (("val", val_fold is not None), ("test", cfg.get("evaluate_test", True))):
            if wanted:
                getattr(trainer, "validate" if stage == "val" else "test")(
                    model, datamodule=datamodule, verbose=False)
                metrics.update(_floats(trainer.callback_metrics))
                metrics.update(pr_cb.metrics.get(stage, {}))

    ckpt_path = None
    if cfg.get("save_checkpoint", True):
        ckpt_path = save_checkpoint(
            model, run_dir / CHECKPOINT_NAME, backbone_config=bb_cfg,
            clips={"max_clips_per_gif": d.get("max_clips_per_gif")}, decode=to_plain(d.decode),
            precision=feats.precision, metrics=finite_metrics(metrics),
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


def format_result_table(metrics: dict, model: RecognizerBase, stage: str = "test") -> str:
    """The short table printed at the end of a run (averaged curve, Unsorted baseline)."""
    def g(key: str) -> float:
        v = metrics.get(f"{stage}/{key}")
        return math.nan if v is None else float(v)

    name = repr(getattr(model, "penalty", None)) if hasattr(model, "penalty") else "GP (eq. 5)"
    n_emo = g("n_emotions")
    w = max(len(name), 10) + 2
    return "\n".join([
        f"{stage} set, averaged PR curve over {int(n_emo) if math.isfinite(n_emo) else '?'} "
        f"emotions (features: {model.layout.group}, d={model.layout.dim})",
        f"  {'':<{w}}{'PR-AUC':>8}{'Ñ':>10}",
        f"  {name:<{w}}{g('pr_auc'):>8.3f}{g('n_tilde'):>10,.0f}",
        f"  {'Unsorted':<{w}}{g('unsorted_pr_auc'):>8.3f}{g('unsorted_n_tilde'):>10,.0f}"])


def get_metric_value(metrics: dict, name: str | None) -> float | None:
    """The value train.py returns to sweepers; a clear error when it was not produced."""
    if not name:
        return None
    if name not in metrics:
        raise KeyError(f"optimized_metric={name!r} was not produced by this run; available: "
                       f"{sorted(k for k in metrics if '/' in k and k.count('/') == 1)}")
    return float(metrics[name])


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
        return to_plain(cfg)
    except Exception:  # e.g. ${hydra:...} outside a Hydra run, or a missing value
        return to_plain(cfg, resolve=False)


def _finish_wandb() -> None:
    try:
        import wandb
    except ImportError:  # pragma: no cover
        return
    if wandb.run is not None:
        wandb.finish()
