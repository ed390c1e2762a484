"""Stage 1: build or reuse the cache of per-GIF visual features (paper §3.3).

:func:`ensure_visual_features` is the one entry point the training side calls. It

1. fingerprints the manifest's GIF files (SHA-256 of the bytes; unchanged ``(size, mtime)``
   reuse the last run's hash, see :mod:`gifemo.features.cache`);
2. opens the cache folder of the feature *settings* (the backbone's ``identity()``: name,
   weights, settings, clip spec; the clip cap, decode backend, feature code version);
3. plans the work: GIFs whose content hash has no done row (and is not a known bad file);
   identical files are computed once;
4. if there is work, runs a Lightning ``predict`` over a
   :class:`~gifemo.features.clip_datamodule.ClipDataModule` with
   :class:`~gifemo.features.backbone_module.BackboneModule` and a
   :class:`~gifemo.features.writer.ShardWriter` (resumable shards; exactly once per GIF under
   DDP), showing GIFs/s and clips/s;
5. assembles a :class:`FeatureTable` in manifest order, writes the cache's ``index.json``
   and ``run_dir/bad_files.csv``.

A finished cache is reused in about the time it takes to stat the files and read the shards.
On a GPU the defaults are bf16 autocast, ``channels_last_3d`` and pinned memory;
``torch.compile`` is opt-in. On CPU the default is fp32. The compute dtype is part of the
cache key (fp32 and bf16 features are separate entries, :func:`compute_dtype`).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch

from gifemo.data.bad_files import BadFileLog
from gifemo.data.decode import DecodeLimits
from gifemo.data.manifest import GifDataset, load_dataset
from gifemo.features.backbone_module import BackboneModule
from gifemo.features.cache import CacheContents, FeatureCache, fingerprint_files
from gifemo.features.clip_batches import shard_for_rank
from gifemo.features.clip_datamodule import ClipDataModule
from gifemo.features.progress import ExtractionProgress
from gifemo.features.writer import ShardWriter
from gifemo.models.backbone import Backbone
from gifemo.plain_config import to_plain

_log = logging.getLogger(__name__)

FEATURE_CODE_VERSION = 2
"""Bump when the computation of a feature changes (invalidates every cache): the backbone,
the pooling, and also the decoder (:mod:`gifemo.data.decode`) or clip cutting
(:mod:`gifemo.data.clips`), whose code is not otherwise part of the cache key."""

MISSING_FILE = "file not found or unreadable"


# --------------------------------------------------------------------------- configs

def _from_any(cls, cfg):
    """Build a config dataclass from None, an instance, or a mapping (dict / DictConfig)."""
    if cfg is None:
        return cls()
    if isinstance(cfg, cls):
        return cfg
    cfg = to_plain(cfg)
    if not isinstance(cfg, Mapping):
        raise TypeError(f"{cls.__name__}: expected a mapping, got {type(cfg).__name__}")
    return cls.from_mapping(dict(cfg))


@dataclass(frozen=True)
class _Config:
    @classmethod
    def from_mapping(cls, d: dict):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names - {"_target_"})
        if unknown:
            raise TypeError(f"{cls.__name__}: unknown key(s) {unknown}; known: {sorted(names)}")
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class ClipConfig(_Config):
    """Clips per GIF; the geometry (length, stride, resize, crop) is the backbone's."""

    max_clips_per_gif: int | None = None


@dataclass(frozen=True)
class DecodeConfig(_Config):
    """Decoder backend and :class:`DecodeLimits` fields (flat: ``max_frames=...`` etc.)."""

    backend: str = "pyav"
    max_pixels_per_frame: int | None = None
    max_frames: int | None = None
    max_decoded_bytes: int | None = None
    timeout_s: float | None = None

    def limits(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "backend" and v is not None}

    def limits_record(self) -> dict:
        """All effective limits (defaults filled in), for bad-file records."""
        return dataclasses.asdict(DecodeLimits(**self.limits()))


@dataclass(frozen=True)
class RunConfig(_Config):
    """How to compute (not part of the cache key, except the dtype that ``precision`` implies).
    ``None`` = choose by device."""

    accelerator: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"
    precision: str | None = None  # GPU: "bf16-mixed" (or "16-mixed"); CPU: "32-true"
    channels_last: bool | None = None  # GPU: True; CPU: False
    compile: bool = False
    clip_batch_size: int = 8
    num_workers: int = 0
    pin_memory: bool | None = None  # GPU: True
    shard_size: int = 256
    flush_every_s: float = 60.0
    progress: bool = True
    retry_bad: bool = False  # decode again the files the cache remembers as bad


DEFAULT_BACKBONE = "gifemo.models.c3d.C3DBackbone"


def as_backbone(backbone) -> Backbone:
    """A :class:`Backbone` from itself, a config mapping with ``_target_`` (a
    ``conf/backbone`` node), or settings of the default (C3D) backbone (``{"weights": ...}``)."""
    if isinstance(backbone, Backbone):
        return backbone
    backbone = to_plain(backbone)
    if not isinstance(backbone, Mapping):
        raise TypeError(f"backbone must be a gifemo Backbone or its settings, got "
                        f"{type(backbone).__name__}")
    from hydra.utils import instantiate

    built = instantiate({"_target_": DEFAULT_BACKBONE, **backbone})
    if not isinstance(built, Backbone):
        raise TypeError(f"{backbone.get('_target_')} is not a gifemo Backbone")
    return built


def _uses_gpu(accelerator: str) -> bool:
    if accelerator in ("gpu", "cuda"):
        return True
    return accelerator == "auto" and torch.cuda.is_available()


def resolve_run(run: RunConfig) -> RunConfig:
    """Fill the device-dependent defaults (precision, channels_last, pin_memory)."""
    gpu = _uses_gpu(run.accelerator)
    precision = run.precision or (
        ("bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed") if gpu else "32-true")
    return dataclasses.replace(
        run, precision=precision,
        channels_last=gpu if run.channels_last is None else run.channels_last,
        pin_memory=gpu if run.pin_memory is None else run.pin_memory)


def clip_cap(data_cap: int | None, backbone_cap: int | None) -> int | None:
    """Clips kept per GIF: the smaller of the data's and the backbone's caps (None = no cap).
    The backbone's cap is part of its ``identity()``, so the cache key covers both."""
    caps = [int(c) for c in (data_cap, backbone_cap) if c is not None]
    return min(caps) if caps else None


def compute_dtype(precision: str | None) -> str:
    """The dtype the backbone computes in under a Lightning ``precision``: ``bfloat16`` for
    ``bf16-*``, ``float16`` for ``16-*``, else ``float32``. It changes the features (bf16
    moves them by ~1e-5 in cosine, see benchmarks/extract.py), so it is part of the cache key;
    layout, compilation and batch size are not (they move them by < 1e-12)."""
    p = str(precision or "32-true")
    return "bfloat16" if p.startswith("bf16") else "float16" if p.startswith("16") else "float32"


def feature_settings(backbone: dict, clips: ClipConfig, decode: DecodeConfig,
                     dtype: str = "float32") -> dict:
    """Everything that determines a GIF's feature besides its bytes (the cache key);
    ``backbone`` is ``Backbone.identity()``, ``dtype`` the :func:`compute_dtype`."""
    return {"feature": "backbone features, mean over clips, L2-normalised",
            "code_version": FEATURE_CODE_VERSION, "backbone": dict(backbone),
            "max_clips_per_gif": clips.max_clips_per_gif, "decode_backend": decode.backend,
            "compute_dtype": dtype}


# --------------------------------------------------------------------------- result

@dataclass
class FeatureTable:
    """Per-GIF visual features of a manifest, in manifest order, bad files left out.

    Attributes
    ----------
    ids : list of str
        GIF ids with a feature (manifest order).
    visual : np.ndarray float32 [N, d]
        L2-normalised mean of the backbone's clip features (d = 4096 for C3D fc6).
    backbone : dict
        ``Backbone.identity()`` of the features.
    bad : list of (path, reason)
        Files without a feature.
    rows : np.ndarray int64 [N]
        Manifest row of each id.
    cache_dir : Path
        The settings folder the features came from.
    settings : dict
        The cache key's settings.
    n_computed : int
        GIFs computed by this call (0 when the cache was complete).
    precision : str
        The Lightning precision the features were computed under (its dtype is in the key).
    extract_s : float
        Wall seconds this call spent computing features (0 when the cache was complete).
    """

    ids: list[str]
    visual: np.ndarray
    backbone: dict
    bad: list = field(default_factory=list)
    rows: np.ndarray | None = None
    cache_dir: Path | None = None
    settings: dict = field(default_factory=dict)
    n_computed: int = 0
    precision: str = "32-true"
    extract_s: float = 0.0


# --------------------------------------------------------------------------- plan

def _is_known_bad(entry: dict | None, limits: dict, retry_bad: bool) -> bool:
    return entry is not None and not retry_bad and entry.get("limits") == limits


def plan_work(fingerprints, contents: CacheContents, limits: dict, retry_bad: bool = False) -> list[int]:
    """Dataset rows to compute: no done row and not a known bad file; one row per content hash."""
    work, planned = [], set()
    for i, fp in enumerate(fingerprints):
        if fp is None or fp.sha256 in contents.features or fp.sha256 in planned:
            continue
        if _is_known_bad(contents.bad.get(fp.sha256), limits, retry_bad):
            continue
        planned.add(fp.sha256)
        work.append(i)
    return work


def package_version() -> str | None:
    """Installed gifemo version (recorded in the cache; not part of the key)."""
    try:
        from importlib.metadata import version
        return version("gifemo")
    except Exception:
        return None


def _barrier_if_distributed() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


def _rank() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", 0)) or 0)


# --------------------------------------------------------------------------- run

def extract_features(dataset: GifDataset, work: list[int], describe: dict[int, dict],
                     backbone: Backbone, clips: ClipConfig, decode: DecodeConfig,
                     run: RunConfig, cache: FeatureCache) -> int:
    """Compute the features of dataset rows ``work`` into ``cache`` shards (Lightning predict).

    Returns the number of GIFs (good or bad) this rank wrote.
    """
    run = resolve_run(run)
    dm = ClipDataModule(str(dataset.root), backend=decode.backend, clip_spec=backbone.clip_spec,
                        max_clips_per_gif=clip_cap(clips.max_clips_per_gif, backbone.max_clips),
                        clip_batch_size=run.clip_batch_size, num_workers=run.num_workers,
                        pin_memory=run.pin_memory, run_dir=None, **decode.limits())
    dm.dataset = dataset
    dm.select_for_predict(work)
    provenance = {"precision": run.precision, "channels_last": run.channels_last,
                  "compile": run.compile, "clip_batch_size": run.clip_batch_size,
                  "gifemo_version": package_version(),
                  "torch": torch.__version__, "backbone": repr(backbone)}
    writer = ShardWriter(cache, work, describe, shard_size=run.shard_size,
                         flush_every_s=run.flush_every_s, provenance=provenance,
                         bad_extra={"limits": decode.limits_record()})
    progress = ExtractionProgress(total=len(work), enable=run.progress,
                                  label=f"{backbone.name} features")
    trainer = pl.Trainer(accelerator=run.accelerator, devices=run.devices, strategy=run.strategy,
                         precision=run.precision, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[writer, progress], use_distributed_sampler=False,
                         inference_mode=True, default_root_dir=str(cache.dir))
    progress.total = len(shard_share(work, trainer))
    with warnings.catch_warnings():
        # The packed iterable has no sampler to take batch indices from; the writer needs none.
        warnings.filterwarnings("ignore", message="Couldn't infer the batch indices")
        trainer.predict(BackboneModule(backbone, channels_last=run.channels_last, compile=run.compile),
                        datamodule=dm, return_predictions=False)
    trainer.strategy.barrier("gifemo-features-written")
    return writer.n_gifs + writer.n_bad


def shard_share(work: list[int], trainer: pl.Trainer) -> list[int]:
    return shard_for_rank(work, trainer.global_rank, trainer.world_size)


def ensure_visual_features(manifest, cache_dir, backbone: Backbone, clips=None, decode=None, *,
                           run=None, run_dir: str | os.PathLike | None = None) -> FeatureTable:
    """Per-GIF visual features of ``manifest``, from the cache or computed into it.

    Parameters
    ----------
    manifest : str, Path or GifDataset
        Dataset folder / ``manifest.csv`` (or an already loaded dataset).
    cache_dir : str or Path
        Root of the feature cache (one sub-folder per settings).
    backbone : Backbone or mapping
        The frozen encoder (its network is built only when something must be computed), or
        its settings (see :func:`as_backbone`).
    clips, decode, run : config dataclass, mapping or None
        :class:`ClipConfig`, :class:`DecodeConfig`, :class:`RunConfig` (Hydra nodes work;
        None = defaults).
    run_dir : path, optional
        Where ``bad_files.csv`` is written.

    Returns
    -------
    FeatureTable
    """
    backbone = as_backbone(backbone)
    ccfg, dcfg, rcfg = _from_any(ClipConfig, clips), _from_any(DecodeConfig, decode), _from_any(RunConfig, run)
    dataset = manifest if isinstance(manifest, GifDataset) else load_dataset(manifest)
    identity = backbone.identity()
    _log.log(logging.WARNING if backbone.is_random else logging.INFO, "backbone %r: weights %s",
             backbone, identity["weights_id"])
    rcfg = resolve_run(rcfg)
    settings = feature_settings(identity, ccfg, dcfg, compute_dtype(rcfg.precision))
    cache = FeatureCache(cache_dir, settings).create()
    index = cache.load_index()
    fingerprints, n_hashed = fingerprint_files(dataset.paths, cache.known_files(index))
    contents = cache.scan()
    limits = dcfg.limits_record()
    work = plan_work(fingerprints, contents, limits, rcfg.retry_bad)
    _log.info("feature cache %s: %d GIFs, %d hashed, %d to compute", cache.dir, len(dataset.ids),
              n_hashed, len(work))
    _barrier_if_distributed()  # every rank planned before any rank writes
    n_computed, extract_s = 0, 0.0
    if work:
        describe = {i: {"sha256": fingerprints[i].sha256, "id": dataset.ids[i],
                        "path": str(dataset.paths[i])} for i in work}
        t0 = time.perf_counter()
        n_computed = extract_features(dataset, work, describe, backbone, ccfg, dcfg, rcfg, cache)
        extract_s = time.perf_counter() - t0
        contents = cache.scan()
    table = _assemble(dataset, fingerprints, contents, cache, identity, limits)
    table.n_computed, table.precision, table.extract_s = n_computed, rcfg.precision, extract_s
    if _rank() == 0:
        _write_index(cache, dataset, fingerprints, contents, index, table, identity)
        _write_bad_files(table.bad, run_dir)
    return table


def _assemble(dataset, fingerprints, contents: CacheContents, cache: FeatureCache,
              identity: dict, limits: dict) -> FeatureTable:
    rows, shas, bad, missing = [], [], [], []
    for i, fp in enumerate(fingerprints):
        path = str(dataset.paths[i])
        if fp is None:
            bad.append((path, MISSING_FILE))
        elif fp.sha256 in contents.features:
            rows.append(i)
            shas.append(fp.sha256)
        elif fp.sha256 in contents.bad:
            bad.append((path, contents.bad[fp.sha256]["reason"]))
        else:
            missing.append(dataset.ids[i])
    if missing:
        raise RuntimeError(f"feature extraction did not produce {len(missing)} GIF(s): {missing[:20]}"
                           f" (cache {cache.dir}; rerun to resume)")
    visual = cache.gather(contents, shas)
    return FeatureTable(ids=[dataset.ids[i] for i in rows], visual=visual, backbone=identity,
                        bad=bad, rows=np.asarray(rows, dtype=np.int64), cache_dir=cache.dir,
                        settings=cache.settings)


def _write_index(cache, dataset, fingerprints, contents, old_index, table, identity) -> None:
    gifs, files = [], cache.known_files(old_index)
    for i, fp in enumerate(fingerprints):
        if fp is None:
            continue
        files[fp.path] = {"size": fp.size, "mtime_ns": fp.mtime_ns, "sha256": fp.sha256}
        if fp.sha256 in contents.features:
            shard, row = contents.features[fp.sha256]
            gifs.append({"id": dataset.ids[i], "path": fp.path, "sha256": fp.sha256,
                         "size": fp.size, "mtime_ns": fp.mtime_ns, "shard": shard, "row": row})
    bad = [{"path": p, "reason": r} for p, r in table.bad]
    cache.write_index(gifs, bad, files, extra={
        "backbone": identity,
        "manifest": str(dataset.root), "dim": contents.dim,
        "gifemo_version": package_version()})


def _write_bad_files(bad: list, run_dir) -> None:
    if bad:
        _log.warning("%d GIF file(s) have no feature (bad or missing)%s", len(bad),
                     f"; listed in {Path(run_dir) / 'bad_files.csv'}" if run_dir else "")
    if run_dir is None:
        return
    log = BadFileLog()
    for path, reason in bad:
        log.add(path, reason)
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    log.write_csv(run_dir)
