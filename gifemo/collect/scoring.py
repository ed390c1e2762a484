"""The one seam between the labelling app and the model side: scores and re-ranking.

Two things are needed from the model side, and only here:

1. :func:`score_pool` — the candidates' feature vectors ``X`` [N, d] and the checkpoint's
   scores for the campaign's emotion. Two sources:

   * a training checkpoint (:mod:`gifemo.checkpoint`): features are computed as
     :func:`gifemo.rank.rank_gifs` computes them (same candidate discovery, hash-checked
     backbone, feature pipeline and cache, saved tag vocabulary), and the recognizer scores
     them; the feature matrix is kept for re-ranking;
   * a *precomputed* head (``*.npz`` with ``W`` [d, T], ``b`` [T], ``emotions``) plus a feature
     file (``*.npz`` with ``ids`` [N] and ``X`` [N, d]) — for pools whose features were
     extracted elsewhere, and for tests that do not run C3D;
   * no checkpoint at all (:func:`score_pool_zero_shot`, the cold start): ``X`` is the
     candidates' pooled tag embeddings (:mod:`gifemo.models.text_encoder`) and the scores are
     zero-shot cosines with the emotion's prompts (:mod:`gifemo.models.zero_shot`), put on the
     head's scale as ``µ₀ + σ₀ z`` (z: the cosine standardised over the pool), so that the
     re-ranking below starts from them exactly as it starts from a checkpoint's scores and
     learns from the answers from the first block on (cold start -> supervised, same campaign).

2. :func:`refit_scores` — re-ranking after N new labels. The head is refitted
   on the labels so far with :func:`gifemo.models.solvers.fit_multitask_linear`, on the cached
   features (seconds). With a few dozen labels against d ≈ 4,235 features a fit from scratch
   would forget the checkpoint, so the refit is a ridge fit *around the checkpoint's head*:
   it fits a correction ΔW, Δb to the residual ``t − s₀`` of the labelled candidates,

       min_{ΔW, Δb}  Σ_labelled (xᵢᵀΔW + Δb − (tᵢ − s₀ᵢ))² + ρ‖ΔW‖²_F,

   which is the same as refitting W with the penalty ρ‖W − W₀‖² (shrinkage towards the
   checkpoint instead of towards 0). New scores are ``s₀ + XΔW + Δb``. A consensus label is
   put on the head's own scale (the label score y = µ − 3σ, positive iff y > µ₀ = 25,
   paper §3.1–3.2) as ``t = µ₀ ± σ₀`` (:data:`TARGET_POSITIVE`, :data:`TARGET_NEGATIVE`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gifemo.collect.errors import PoolError
from gifemo.collect.pool import CandidatePool
from gifemo.data.emotions import EMOTIONS
from gifemo.data.labels import MU0, SIGMA0
from gifemo.models.zero_shot import standardize

TARGET_POSITIVE = MU0 + SIGMA0
TARGET_NEGATIVE = MU0 - SIGMA0
DEFAULT_RERANK_RHO = 1.0
_CHUNK = 8192


@dataclass(frozen=True)
class LinearHead:
    """Linear recognizers: score = x W + b, one column per emotion."""

    W: np.ndarray          # float64 [d, T]
    b: np.ndarray          # float64 [T]
    emotions: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.W.ndim != 2 or self.b.shape != (self.W.shape[1],) or len(self.emotions) != self.W.shape[1]:
            raise PoolError(f"linear head with inconsistent shapes: W {self.W.shape}, b {self.b.shape}, "
                            f"{len(self.emotions)} emotions")

    def column(self, emotion: str) -> int:
        try:
            return self.emotions.index(emotion)
        except ValueError:
            raise PoolError(f"the head has no recognizer for emotion {emotion!r}; "
                            f"it has {', '.join(self.emotions)}") from None

    def scores(self, X: np.ndarray, emotion: str) -> np.ndarray:
        """float64 [N]: the recognizer's output for ``emotion``."""
        t = self.column(emotion)
        return np.asarray(X, dtype=np.float64) @ self.W[:, t] + self.b[t]


def save_head(path: str | Path, W: np.ndarray, b: np.ndarray,
              emotions: tuple[str, ...] = EMOTIONS) -> Path:
    """Write a precomputed head file (``np.savez``: W, b, emotions)."""
    path = Path(path)
    np.savez(path, W=np.asarray(W, np.float64), b=np.asarray(b, np.float64),
             emotions=np.asarray(list(emotions)))
    return path


def load_head(path: str | Path) -> LinearHead:
    """Read a file written by :func:`save_head`."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            return LinearHead(np.asarray(z["W"], np.float64), np.asarray(z["b"], np.float64),
                              tuple(str(e) for e in z["emotions"]))
    except (OSError, KeyError, ValueError) as e:
        raise PoolError(f"head file {path}: {e}") from e


def save_features(path: str | Path, ids: list[str], X: np.ndarray) -> Path:
    """Write a precomputed feature file (``np.savez``: ids [N], X [N, d] float32)."""
    path = Path(path)
    np.savez(path, ids=np.asarray(ids), X=np.asarray(X, np.float32))
    return path


def load_features(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Read a file written by :func:`save_features`: (ids, X float32 [N, d])."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            ids, X = [str(i) for i in z["ids"]], np.asarray(z["X"], np.float32)
    except (OSError, KeyError, ValueError) as e:
        raise PoolError(f"feature file {path}: {e}") from e
    if X.ndim != 2 or X.shape[0] != len(ids):
        raise PoolError(f"feature file {path}: X has shape {X.shape} for {len(ids)} ids")
    if not np.isfinite(X).all():
        raise PoolError(f"feature file {path}: X has non-finite entries")
    return ids, X


@dataclass(frozen=True)
class ScoredPool:
    """The scored candidates: features, the checkpoint's scores for one emotion, and which pool
    rows they are (GIFs that cannot be decoded get no feature and are left out, listed in ``bad``)."""

    X: np.ndarray          # float32 [M, d]
    scores: np.ndarray     # float64 [M]
    rows: np.ndarray       # int64 [M], rows of the pool
    bad: list = field(default_factory=list)   # (path, reason)
    kind: str = "linear"   # "linear" heads can be refitted for re-ranking; "gp" cannot


def score_pool(pool: CandidatePool, emotion: str, checkpoint: str | Path,
               features: str | Path | None = None, cache_dir: str | Path | None = None,
               weights: str | Path | None = None) -> ScoredPool:
    """Features and checkpoint scores for the candidates of ``pool`` (rows in pool order).

    ``checkpoint`` ending in ``.npz`` is a precomputed head and needs ``features`` (a file from
    :func:`save_features` that covers every pool id); anything else is a training checkpoint
    (:mod:`gifemo.checkpoint`), whose features are computed as :mod:`gifemo.rank` does, with the
    feature cache in ``cache_dir`` and the backbone ``weights`` file if given (else the path the
    checkpoint records).
    """
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise PoolError(f"checkpoint {checkpoint}: no such file")
    if checkpoint.suffix == ".npz":
        if weights is not None:
            raise PoolError(f"backbone weights ({weights}) go with a training checkpoint; {checkpoint} "
                            "is a precomputed head over precomputed features")
        if features is None:
            raise PoolError(f"checkpoint {checkpoint} is a precomputed head: give the candidates' "
                            "feature file too")
        head = load_head(checkpoint)
        ids, X = load_features(features)
        index = {g: i for i, g in enumerate(ids)}
        missing = [g for g in pool.ids if g not in index]
        if missing:
            raise PoolError(f"feature file {features}: no features for {len(missing)} pool GIF(s), "
                            f"e.g. {missing[:5]}")
        if X.shape[1] != head.W.shape[0]:
            raise PoolError(f"feature file {features}: {X.shape[1]} features, head {checkpoint} "
                            f"expects {head.W.shape[0]}")
        X = X[[index[g] for g in pool.ids]]
        return ScoredPool(X, head.scores(X, emotion), np.arange(len(pool), dtype=np.int64))
    if features is not None:
        raise PoolError(f"a feature file ({features}) goes with a precomputed head (.npz), not with "
                        f"the training checkpoint {checkpoint}, which computes its own features")
    return _score_with_checkpoint(pool, emotion, checkpoint, cache_dir, weights)


def _score_with_checkpoint(pool: CandidatePool, emotion: str, checkpoint: Path,
                           cache_dir: str | Path | None, weights: str | Path | None = None) -> ScoredPool:
    """The path of :func:`gifemo.rank.rank_gifs` (same candidates, backbone check, feature
    pipeline and recognizer), keeping the feature matrix x = [visual | tags] that it discards."""
    import torch

    from gifemo.checkpoint import CheckpointError, load_recognizer
    from gifemo.models.text_encoder import TextModelError
    from gifemo.rank import RankError, discover_candidates, resolve_backbone

    try:
        model, ckpt = load_recognizer(checkpoint)
        emotions = list(model.emotions)
        if emotion not in emotions:
            raise PoolError(f"checkpoint {checkpoint} has no recognizer for {emotion!r}; it has "
                            f"{', '.join(emotions)}")
        dataset = discover_candidates(pool.source)
        if list(dataset.ids) != list(pool.ids):
            raise PoolError(f"candidate pool {pool.source}: ids differ from those gifemo.rank finds")
        rows = np.arange(len(dataset), dtype=np.int64)
        visual, bad = None, []
        if model.layout.uses_visual:
            from gifemo.features import ensure_visual_features

            bb = resolve_backbone(ckpt.get("backbone") or {}, None if weights is None else str(weights),
                                  str(checkpoint))
            clips = {"max_clips_per_gif": (ckpt.get("clips") or {}).get("max_clips_per_gif")}
            if cache_dir is None:
                raise PoolError("scoring with a training checkpoint needs a feature cache folder")
            table = ensure_visual_features(dataset, cache_dir, bb, clips, dict(ckpt.get("decode") or {}),
                                           run={"progress": False}, run_dir=cache_dir)
            visual, rows, bad = table.visual, np.asarray(table.rows, dtype=np.int64), list(table.bad)
        tag_lists = [dataset.tags[i] for i in rows]
        with torch.no_grad():
            x = model.features(visual, tag_lists)
            s = model(x).double().cpu().numpy()
    except (CheckpointError, RankError, TextModelError) as e:
        raise PoolError(f"checkpoint {checkpoint}: {e}") from e
    if len(rows) == 0:
        raise PoolError(f"candidate pool {pool.source}: no GIF could be decoded ({len(bad)} bad)")
    return ScoredPool(x.float().numpy(), s[:, emotions.index(emotion)], rows, bad, model.kind)


ZERO_SHOT = "zero-shot"
"""The ``checkpoint`` a zero-shot campaign records (followed by ``:<text model>``)."""


def zero_shot_prior(cosines: np.ndarray) -> np.ndarray:
    """Zero-shot cosines [N] on the head's scale: ``µ₀ + σ₀ z``, z standardised over the pool
    (a constant column -> µ₀ everywhere)."""
    return MU0 + SIGMA0 * standardize(np.asarray(cosines, dtype=np.float64)[:, None])[:, 0]


def score_pool_zero_shot(pool: CandidatePool, emotion: str, text_model: str = "default",
                         cache_dir: str | Path | None = None, variant: str = "synonyms") -> ScoredPool:
    """Tag-embedding features and zero-shot scores for ``emotion`` (any name; no checkpoint)."""
    from gifemo.features.text_cache import embed_tag_lists
    from gifemo.models.text_encoder import SentenceTagEncoder, TextModelError
    from gifemo.models.zero_shot import tag_scores

    if not any(pool.tags):
        raise PoolError(f"candidate pool {pool.source}: no candidate has tags, and a zero-shot "
                        f"campaign ranks by tags (give a dataset folder or manifest.csv with tags)")
    enc = SentenceTagEncoder(text_model)
    try:
        X = embed_tag_lists(enc, pool.tags, cache_dir)
        cos = tag_scores(X, enc, [emotion], variant)[:, 0]
    except TextModelError as e:
        raise PoolError(f"zero-shot scoring: {e}") from None
    return ScoredPool(X, zero_shot_prior(cos), np.arange(len(pool), dtype=np.int64), [], "linear")


@dataclass(frozen=True)
class Refit:
    """Scores after a re-ranking refit, and how well the refit was solved."""

    scores: np.ndarray     # float64 [N]
    n_train: int
    n_train_positive: int
    rel_gap: float


def refit_scores(X: np.ndarray, base_scores: np.ndarray, rows: np.ndarray, labels: np.ndarray,
                 rho: float = DEFAULT_RERANK_RHO) -> Refit:
    """Re-score every candidate after a ridge refit of the head around the checkpoint's.

    Parameters
    ----------
    X : float [N, d]
        Cached features of the whole pool.
    base_scores : float [N]
        The checkpoint's scores s₀ for the campaign's emotion.
    rows : int [n]
        Rows of ``X`` with a consensus label.
    labels : bool or 0/1 [n]
        The consensus labels of those rows.
    rho : float
        Ridge weight ρ on ΔW (module docstring).
    """
    from gifemo.models.penalties import RidgePenalty
    from gifemo.models.solvers import fit_multitask_linear

    rows = np.asarray(rows, dtype=np.int64)
    labels = np.asarray(labels).astype(bool)
    base = np.asarray(base_scores, dtype=np.float64)
    if rows.shape != labels.shape or rows.ndim != 1:
        raise ValueError(f"rows {rows.shape} and labels {labels.shape} must be matching 1-D arrays")
    if len(rows) == 0:
        return Refit(base.copy(), 0, 0, 0.0)
    target = np.where(labels, TARGET_POSITIVE, TARGET_NEGATIVE)
    Xl = np.asarray(X[rows], dtype=np.float64)
    resid = (target - base[rows])[:, None]
    fit = fit_multitask_linear(Xl, resid, np.ones_like(resid, dtype=bool), RidgePenalty(rho))
    dW = fit.W.numpy()[:, 0]
    db = float(fit.b.numpy()[0])
    new = base + db
    for i in range(0, len(new), _CHUNK):  # X may be a memory map larger than RAM in float64
        new[i:i + _CHUNK] += np.asarray(X[i:i + _CHUNK], dtype=np.float64) @ dW
    return Refit(new, len(rows), int(labels.sum()), float(fit.rel_gap))
