"""Rank new GIFs with a trained recognizer checkpoint (design.md "Tracking, checkpoints, ranking").

:func:`rank_gifs` loads a checkpoint (weights-only), finds the candidate GIFs (a folder of
``*.gif`` files, searched recursively, or a dataset folder / ``manifest.csv`` whose tags are
then used), computes their features exactly as in training — the same C3D weights (checked
by SHA-256), width, input convention, clip cutting and decoder through the same feature
pipeline (:func:`gifemo.features.ensure_visual_features`), the saved tag vocabulary and the
same sentence model for text tag features (its weights digest checked) — scores every
emotion, and writes a ranked CSV.

:func:`rank_zero_shot` needs no checkpoint: it scores candidates for any emotion name from
their tags alone (:mod:`gifemo.models.zero_shot`).

The backbone is rebuilt from the checkpoint's weights identity: random weights from the
stored seed and width; a weights file from ``weights=`` (``--weights``) or the stored path.
A file whose SHA-256 differs from the checkpoint's is refused
(:class:`BackboneMismatchError`, naming both hashes): its features would silently mean
something else to the head. GIFs that cannot be decoded are skipped, listed in
``bad_files.csv`` and counted.
"""
from __future__ import annotations

import csv
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from gifemo.atomic_file import atomic_write
from gifemo.checkpoint import load_recognizer
from gifemo.data.manifest import MANIFEST, GifDataset, load_dataset
from gifemo.models.backbone import Backbone, describe_backbone, same_backbone
from gifemo.models.recognizer import RecognizerBase
from gifemo.models.text_encoder import TextModelError

_log = logging.getLogger(__name__)


class RankError(ValueError):
    """Ranking cannot proceed (no candidates, unknown emotion, missing weights file ...)."""


class BackboneMismatchError(RankError):
    """The backbone differs from the one the checkpoint's features were computed with."""

    def __init__(self, found: dict, expected: dict, checkpoint_path: str | None = None):
        self.found, self.expected = found, expected
        super().__init__(
            f"backbone {describe_backbone(found)} differs from the checkpoint's "
            f"{describe_backbone(expected)}" + (f" ({checkpoint_path})" if checkpoint_path else "")
            + "; refusing to rank with a different backbone (pass --weights with the right file)")


@dataclass
class RankResult:
    """Scores of the candidates that have features.

    ids, paths : per candidate; scores : float32 [N, T] (linear: predicted y per emotion;
    GP: log of eq. 5); emotions : column names; bad : list of (path, reason);
    csv_path : the written CSV (or None); n_candidates : GIFs found (good + bad).
    """

    ids: list[str]
    paths: list[str]
    scores: np.ndarray
    emotions: list[str]
    bad: list = field(default_factory=list)
    csv_path: Path | None = None
    n_candidates: int = 0

    def order(self, emotion: str) -> np.ndarray:
        """Candidate indices, best first for ``emotion`` (ties: input order)."""
        t = self.emotions.index(emotion)
        return np.argsort(-self.scores[:, t], kind="stable")

    def aligned(self, ids, emotions) -> np.ndarray:
        """float64 [len(ids), len(emotions)]: the scores in that row and column order, NaN for
        an id without a score (a bad file, or not a candidate)."""
        index = {g: i for i, g in enumerate(self.ids)}
        out = np.full((len(ids), len(emotions)), np.nan)
        rows = [r for r, g in enumerate(ids) if g in index]
        out[rows] = self.scores[np.ix_([index[ids[r]] for r in rows],
                                       [self.emotions.index(e) for e in emotions])]
        return out

    def top(self, emotion: str, n: int = 20) -> list[tuple[str, str, float]]:
        t = self.emotions.index(emotion)
        return [(self.ids[i], self.paths[i], float(self.scores[i, t]))
                for i in self.order(emotion)[:n]]


def discover_candidates(source: str | os.PathLike) -> GifDataset:
    """Candidates of a dataset folder / ``manifest.csv`` (with tags) or of a plain folder of
    GIFs (``**/*.gif``, sorted; id = path relative to the folder without suffix; no tags)."""
    source = Path(source)
    if source.is_file() and source.suffix.lower() == ".csv":
        return load_dataset(source)
    if not source.is_dir():
        raise RankError(f"{source}: not a folder of GIFs or a manifest.csv")
    if (source / MANIFEST).is_file():
        return load_dataset(source)
    files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() == ".gif")
    if not files:
        raise RankError(f"{source}: no *.gif files found (searched recursively)")
    ids = [p.relative_to(source).with_suffix("").as_posix() for p in files]
    return GifDataset(root=source.resolve(), ids=ids, paths=[p.resolve() for p in files],
                      tags=[[] for _ in files])


def resolve_backbone(stored: dict, weights: str | None = None,
                     checkpoint_path: str | None = None) -> Backbone:
    """The backbone that reproduces the checkpoint's visual features: rebuilt from the stored
    ``conf/backbone`` node (``weights`` replaces its weights), then its ``identity()`` checked
    against the stored one; :class:`BackboneMismatchError` names both when they differ."""
    from hydra.utils import get_class, instantiate

    if not stored or "config" not in stored or "identity" not in stored:
        raise RankError("the checkpoint records no backbone although it uses visual features")
    config, expected = dict(stored["config"]), dict(stored["identity"])
    target = str(config.get("_target_", ""))
    try:
        cls = get_class(target)
    except Exception as e:
        raise RankError(f"the checkpoint's backbone class {target!r} cannot be imported: {e}") from None
    if not (isinstance(cls, type) and issubclass(cls, Backbone)):
        raise RankError(f"the checkpoint's backbone target {target!r} is not a gifemo Backbone")
    if weights is not None:
        config["weights"] = str(weights)
    elif "weights" in config and str(config["weights"]) != "random" \
            and not Path(str(config["weights"])).is_file():
        raise RankError(f"backbone weights file {config.get('weights')} not found (the checkpoint "
                        f"was trained with weights {expected.get('weights_id')}); pass --weights PATH")
    backbone = instantiate(config)
    found = backbone.identity()
    if not same_backbone(found, expected):
        raise BackboneMismatchError(found, expected, checkpoint_path)
    return backbone


def rank_gifs(checkpoint: str | os.PathLike, source: str | os.PathLike, *,
              weights: str | None = None, out_csv: str | os.PathLike | None = None,
              emotion: str | None = None, run_dir: str | os.PathLike | None = None,
              cache_dir: str | os.PathLike | None = None, run: dict | None = None,
              text_model: str | None = None) -> RankResult:
    """Score every candidate GIF of ``source`` for every emotion with ``checkpoint``.

    Parameters
    ----------
    checkpoint : path
        A file written by :func:`gifemo.checkpoint.save_checkpoint`.
    source : path
        Folder of GIFs, or dataset folder / ``manifest.csv`` (tags used when the model has
        a tag block).
    weights : str, optional
        The backbone weights file (default: the one stored in the checkpoint); its identity
        (SHA-256, settings, clip spec) must equal the checkpoint's.
    out_csv : path, optional
        Write the ranked CSV here.
    emotion : str, optional
        Sort the CSV by this emotion (a ``rank`` column first); else keep the input order.
    run_dir : path, optional
        Where ``bad_files.csv`` goes (default: ``out_csv``'s folder).
    cache_dir : path, optional
        Feature cache to use (default: a temporary one, removed afterwards).
    run : dict, optional
        :class:`gifemo.features.RunConfig` fields (accelerator, batch size, workers ...).
    text_model : str, optional
        The sentence model for text tag features (default: the name the checkpoint stores);
        its weights must be the checkpoint's.
    """
    model, ckpt = load_recognizer(checkpoint, text_model)
    emotions = list(model.emotions)
    if emotion is not None and emotion not in emotions:
        raise RankError(f"unknown emotion {emotion!r}; choose one of {emotions}")
    dataset = discover_candidates(source)
    if run_dir is None and out_csv is not None:
        run_dir = Path(out_csv).resolve().parent
    rows = np.arange(len(dataset))
    visual, bad = None, []
    if model.layout.uses_visual:
        bb = resolve_backbone(ckpt.get("backbone") or {}, weights, str(checkpoint))
        visual, rows, bad = _visual_features(dataset, bb, ckpt, run_dir, cache_dir, run)
    tag_lists = [dataset.tags[i] for i in rows]
    if model.layout.reads_tags and not any(tag_lists):
        _log.warning("the model uses tag features but the candidates have no tags (a plain "
                     "folder has none: give a manifest.csv with a tags column)")
    try:
        scores = score_features(model, visual, tag_lists)
    except TextModelError as e:
        raise RankError(str(e)) from None
    result = RankResult(ids=[dataset.ids[i] for i in rows], paths=[str(dataset.paths[i]) for i in rows],
                        scores=scores, emotions=emotions, bad=bad, n_candidates=len(dataset))
    if out_csv is not None:
        result.csv_path = write_ranked_csv(result, out_csv, emotion)
    if bad:
        where = f"; listed in {Path(run_dir) / 'bad_files.csv'}" if run_dir else ""
        _log.warning("%d of %d GIF(s) could not be decoded and were skipped%s", len(bad),
                     len(dataset), where)
    return result


def rank_zero_shot(source: str | os.PathLike, emotions: str | list[str], *,
                   text_model: str = "default", variant: str = "synonyms",
                   out_csv: str | os.PathLike | None = None,
                   cache_dir: str | os.PathLike | None = None,
                   image_text: Backbone | None = None, run: dict | None = None) -> RankResult:
    """Score the candidates of ``source`` for ``emotions`` (any names) with no checkpoint.

    Tags: the cosine between each GIF's pooled tag embedding and the emotion's prompts
    (:func:`gifemo.models.zero_shot.tag_scores`; a GIF without tags scores 0). With an
    image-text backbone (``image_text``, e.g. ``OpenClipFrames``): also the cosine between its
    frame embeddings and the prompts embedded by its text tower; with both, the mean of the two
    standardised scores (:func:`~gifemo.models.zero_shot.combine_scores`); GIFs that cannot be
    decoded are then skipped and listed in ``bad_files.csv`` beside ``out_csv``.
    """
    from gifemo.features.text_cache import embed_tag_lists
    from gifemo.models.text_encoder import SentenceTagEncoder
    from gifemo.models.zero_shot import (combine_scores, emotion_name, image_text_scores,
                                         is_image_text, tag_scores)

    emotions = [emotions] if isinstance(emotions, str) else list(emotions)
    emotions = [emotion_name(e) for e in emotions]
    if not emotions or not all(emotions):
        raise RankError("give an emotion name to rank for")
    if image_text is not None and not is_image_text(image_text):
        raise RankError(f"backbone {getattr(image_text, 'name', type(image_text).__name__)!r} has "
                        f"no text tower (encode_text): image-text zero-shot needs one (open_clip)")
    dataset = discover_candidates(source)
    rows, bad, parts = np.arange(len(dataset)), [], []
    if image_text is not None:
        run_dir = Path(out_csv).resolve().parent if out_csv is not None else None
        visual, rows, bad = _visual_features(dataset, image_text, {}, run_dir, cache_dir, run)
        parts.append(image_text_scores(visual, image_text, emotions, variant))
    tag_lists = [dataset.tags[i] for i in rows]
    if any(tag_lists):
        n_untagged = sum(1 for t in tag_lists if not t)
        if n_untagged:
            _log.warning("%d of %d candidates have no tags: their tag score is 0", n_untagged,
                         len(tag_lists))
        enc = SentenceTagEncoder(text_model)
        try:
            parts.append(tag_scores(embed_tag_lists(enc, tag_lists, cache_dir), enc, emotions,
                                    variant))
        except TextModelError as e:
            raise RankError(str(e)) from None
    elif image_text is None:
        raise RankError(f"{source}: the candidates have no tags, and zero-shot ranking reads "
                        f"tags (give a dataset folder or manifest.csv with a tags column, or an "
                        f"image-text backbone: --clip-weights)")
    scores = (parts[0] if len(parts) == 1 else combine_scores(*parts)).astype(np.float32)
    result = RankResult(ids=[dataset.ids[i] for i in rows], paths=[str(dataset.paths[i]) for i in rows],
                        scores=scores, emotions=emotions, bad=bad, n_candidates=len(dataset))
    if out_csv is not None:
        result.csv_path = write_ranked_csv(result, out_csv, emotions[0])
    return result


def _visual_features(dataset, bb, ckpt, run_dir, cache_dir, run):
    from gifemo.features import ensure_visual_features

    clips = {"max_clips_per_gif": (ckpt.get("clips") or {}).get("max_clips_per_gif")}
    decode = {k: v for k, v in (ckpt.get("decode") or {}).items()}
    run = dict(run or {})
    run.setdefault("progress", True)
    if run.get("precision") is None and ckpt.get("feature_precision"):
        run["precision"] = ckpt["feature_precision"]  # the features the head was trained on
    with tempfile.TemporaryDirectory(prefix="gifemo-rank-") as tmp:
        table = ensure_visual_features(dataset, cache_dir or tmp, bb, clips, decode, run=run,
                                       run_dir=run_dir)
    return table.visual, np.asarray(table.rows, dtype=np.int64), list(table.bad)


@torch.no_grad()
def score_features(model: RecognizerBase, visual, tag_lists) -> np.ndarray:
    """Scores float32 [N, T] of visual features and tag lists (ignored by a model with no
    tag or text block; may then be None): x = [visual | tags | text], then the head."""
    x = model.features(visual, tag_lists)
    if x.shape[0] == 0:
        return np.zeros((0, model.n_tasks), dtype=np.float32)
    return model(x).float().cpu().numpy()


def write_ranked_csv(result: RankResult, path: str | os.PathLike, emotion: str | None = None) -> Path:
    """CSV: [rank,] id, path, score_<emotion> ..., rank_<emotion> ... (rank 1 = best)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n, T = result.scores.shape
    ranks = np.empty((n, T), dtype=np.int64)
    for t, e in enumerate(result.emotions):
        ranks[result.order(e), t] = np.arange(1, n + 1)
    order = result.order(emotion) if emotion is not None else np.arange(n)
    header = (["rank"] if emotion is not None else []) + ["id", "path"] + \
        [f"score_{e}" for e in result.emotions] + [f"rank_{e}" for e in result.emotions]
    with atomic_write(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for pos, i in enumerate(order, start=1):
            w.writerow(([pos] if emotion is not None else []) + [result.ids[i], result.paths[i]] +
                       [f"{s:.6g}" for s in result.scores[i]] + ranks[i].tolist())
    return path


def format_top(result: RankResult, emotion: str | None = None, n: int = 20) -> str:
    """Text of the top ``n`` for ``emotion``, or the top few ids of every emotion."""
    if emotion is not None:
        lines = [f"top {min(n, len(result.ids))} of {len(result.ids)} GIFs for {emotion}:",
                 f"{'rank':>4}  {'score':>10}  id"]
        for r, (gid, _, s) in enumerate(result.top(emotion, n), start=1):
            lines.append(f"{r:>4}  {s:>10.4g}  {gid}")
        return "\n".join(lines)
    k = min(n, 5)
    lines = [f"top {k} of {len(result.ids)} GIFs per emotion:"]
    for e in result.emotions:
        lines.append(f"  {e:<14} " + ", ".join(gid for gid, _, _ in result.top(e, k)))
    return "\n".join(lines)
