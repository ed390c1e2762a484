"""The feature matrix a run trains on: x = [visual | tags | text] per GIF (paper §3.3–3.4).

Visual features come from the feature cache (:func:`~gifemo.features.visual_features.
ensure_visual_features` computes what is missing); the tag vocabulary is built on the
TRAINING GIFs only (tags on ≥ ``tag_min_fraction`` of them) and every GIF is encoded with it.
The text block (beyond the paper) embeds every GIF's tags with a sentence model
(:class:`~gifemo.models.text_encoder.SentenceTagEncoder`; nothing is fitted, so all GIFs are
encoded alike), the tags' vectors cached under ``cache_dir`` (:mod:`gifemo.features.text_cache`).
GIFs without a visual feature (bad files) are left out: ``FeatureData.rows`` says which
dataset rows remain.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gifemo.data.manifest import GifDataset
from gifemo.data.tags import TagVocabulary
from gifemo.models.backbone import Backbone
from gifemo.models.layout import FEATURE_GROUPS, FeatureLayout
from gifemo.models.text_encoder import SentenceTagEncoder, TextModelError

_log = logging.getLogger(__name__)


class FeatureConfigError(ValueError):
    """The features cannot be built as configured; the message says which setting."""


@dataclass
class FeatureData:
    """Features of the GIFs that have them.

    rows : int64 [n] dataset rows kept (manifest order); X : float32 [n, d]; layout;
    vocabulary (None without tags); backbone : ``Backbone.identity()`` (None without visual
    features); bad : list of (path, reason); n_computed : GIFs extracted by this call;
    precision : the Lightning precision of the visual features (None without them);
    extract_s : wall seconds spent computing visual features in this call;
    text_encoder (None without a text block).
    """

    rows: np.ndarray
    X: np.ndarray
    layout: FeatureLayout
    vocabulary: TagVocabulary | None
    backbone: dict | None
    bad: list = field(default_factory=list)
    n_computed: int = 0
    precision: str | None = None
    extract_s: float = 0.0
    text_encoder: SentenceTagEncoder | None = None


def load_visual_file(path: str | Path, n_gifs: int) -> tuple[np.ndarray, dict]:
    """Precomputed visual features [n_gifs, d] from an .npy file (float32, finite), and an
    identity naming the file (in place of a backbone's)."""
    path = Path(path)
    try:
        visual = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as e:
        raise FeatureConfigError(f"data.visual_features={str(path)!r}: cannot read it as an "
                                 f".npy array ({e})") from None
    if visual.ndim != 2 or visual.shape[0] != n_gifs:
        raise FeatureConfigError(f"{path}: visual features of shape {tuple(visual.shape)}; the "
                                 f"dataset has {n_gifs} GIFs (expected [{n_gifs}, d])")
    visual = np.ascontiguousarray(visual, dtype=np.float32)
    bad = ~np.isfinite(visual).all(1)
    if bad.any():
        raise FeatureConfigError(f"{path}: row {int(np.flatnonzero(bad)[0])} has non-finite "
                                 f"values ({int(bad.sum())} rows)")
    stat = path.stat()
    return visual, {"name": "precomputed", "file": str(path.resolve()), "size": stat.st_size,
                    "mtime": stat.st_mtime}


def assemble_features(dataset: GifDataset, fit_mask: np.ndarray, *, group: str,
                      tag_min_fraction: float = 0.005, backbone: Backbone | None = None,
                      cache_dir: str | Path | None = None, max_clips_per_gif: int | None = None,
                      decode: dict | None = None, run: dict | None = None,
                      run_dir: str | Path | None = None,
                      visual_file: str | Path | None = None,
                      text_encoder: SentenceTagEncoder | None = None) -> FeatureData:
    """[visual | tags | text] features of ``dataset`` for feature group ``group``.

    ``fit_mask`` [N, T] marks the training labels (the vocabulary is built on GIFs with at
    least one); the backbone, cache and decode/run settings are used only for visual groups;
    ``text_encoder`` (default: the default sentence model) only for groups with a text block.
    ``visual_file``: an .npy of precomputed visual features [N, d] in manifest order (e.g. the
    paper-scale synthetic set of ``benchmarks/paper_scale_data.py``), used instead of the
    backbone and the cache.
    """
    if group not in FEATURE_GROUPS:
        raise FeatureConfigError(f"features.group={group!r}; choose one of {sorted(FEATURE_GROUPS)}")
    blocks = FEATURE_GROUPS[group]
    rows = np.arange(len(dataset), dtype=np.int64)
    visual, identity, bad, n_computed, precision, extract_s = None, None, [], 0, None, 0.0
    if "visual" in blocks and visual_file is not None:
        visual, identity = load_visual_file(visual_file, len(dataset))
    elif "visual" in blocks:
        from gifemo.features.visual_features import ensure_visual_features

        if backbone is None or cache_dir is None:
            raise FeatureConfigError(f"feature group {group!r} needs a backbone and a cache_dir")
        table = ensure_visual_features(dataset, cache_dir, backbone,
                                       {"max_clips_per_gif": max_clips_per_gif}, decode,
                                       run=run, run_dir=run_dir)
        rows = np.asarray(table.rows, dtype=np.int64)
        visual, identity = table.visual, table.backbone
        bad, n_computed, precision = list(table.bad), int(table.n_computed), table.precision
        extract_s = float(table.extract_s)
        if bad:
            _log.warning("%d GIF(s) have no visual feature and are left out%s", len(bad),
                         f" (see {Path(run_dir) / 'bad_files.csv'})" if run_dir else "")
    vocab, tags = None, None
    if "tags" in blocks:
        train_rows = rows[fit_mask[rows].any(axis=1)]
        vocab = TagVocabulary.build([dataset.tags[i] for i in train_rows], float(tag_min_fraction))
        if len(vocab) == 0:
            raise FeatureConfigError(f"no tag is on >= {tag_min_fraction} of the "
                                     f"{len(train_rows)} training GIFs: the tag vocabulary is empty")
        tags = vocab.encode([dataset.tags[i] for i in rows])
        _log.info("tag vocabulary: %d tags on >= %.2g %% of %d training GIFs", len(vocab),
                  100 * vocab.min_fraction, len(train_rows))
    text = None
    if "text" in blocks:
        from gifemo.features.text_cache import embed_tag_lists

        text_encoder = text_encoder if text_encoder is not None else SentenceTagEncoder()
        try:
            text = embed_tag_lists(text_encoder, [dataset.tags[i] for i in rows], cache_dir)
        except TextModelError as e:
            raise FeatureConfigError(f"feature group {group!r}: {e}") from None
        _log.info("text tag features: %s, %d dims, %d distinct tags", text_encoder.model_name,
                  text.shape[1], len(text_encoder.memo))
    else:
        text_encoder = None
    layout = FeatureLayout(group, 0 if visual is None else int(visual.shape[1]),
                           0 if vocab is None else len(vocab), 0 if text is None else int(text.shape[1]))
    return FeatureData(rows=rows, X=layout.concat(visual, tags, text), layout=layout,
                       vocabulary=vocab, backbone=identity, bad=bad, n_computed=n_computed,
                       precision=precision, extract_s=extract_s, text_encoder=text_encoder)
