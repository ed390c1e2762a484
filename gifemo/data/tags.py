"""Bag-of-tags features (Chen & Picard 2017, §3.4).

The paper gathers every tag of the GIFGIF GIFs (11,042 unique), keeps those that "appear in
0.5 % or more of the GIFs" (139 tags) and represents a GIF by the counts of its dictionary
tags, L2-normalised per GIF. Here:

- tags are normalised first (:func:`normalize_tag`: lower case, strip, collapse whitespace),
  so ``"Eye  Roll "`` and ``"eye roll"`` are one tag; empty tags are dropped;
- the frequency used for the threshold is the *document* frequency: a tag counts once per
  GIF however often that GIF lists it; a tag is kept iff ``df / n_gifs >= min_fraction``;
- the vocabulary is ordered by document frequency (descending), ties by name, so it is
  deterministic and independent of input order;
- a feature row holds the raw occurrence counts of vocabulary tags, divided by its L2 norm;
  a GIF without vocabulary tags gets the zero row (never NaN).

The vocabulary is built on the training GIFs, saved with the model (JSON, or
:meth:`TagVocabulary.to_dict` inside a checkpoint) and reused unchanged to encode new GIFs.
A plain dict counter is used rather than scikit-learn's ``CountVectorizer`` because tags are
already tokens (multi-word tags such as "cartoons & comics" must stay whole) and the threshold
and ordering above are simpler to state exactly than to configure there.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

_FORMAT = "gifemo.tag_vocabulary/1"


def normalize_tag(tag: str) -> str:
    """Lower-case ``tag``, strip it and collapse runs of whitespace to one space.

    >>> normalize_tag("  Cartoons\\t&   Comics ")
    'cartoons & comics'
    """
    if not isinstance(tag, str):
        raise TypeError(f"a tag must be a str, got {type(tag).__name__} {tag!r}")
    return " ".join(tag.split()).lower()


def _normalized_lists(tag_lists: Iterable[Iterable[str]]) -> list[list[str]]:
    """Normalise every tag of every GIF and drop empty ones; reject a bare string as a GIF's list."""
    out = []
    for i, tags in enumerate(tag_lists):
        if isinstance(tags, (str, bytes)):
            raise TypeError(f"GIF {i}: expected a list of tags, got the string {tags!r}")
        out.append([t for t in (normalize_tag(t) for t in tags) if t])
    return out


@dataclass
class TagVocabulary:
    """The tag dictionary of §3.4 and the bag-of-tags encoder built on it.

    Parameters
    ----------
    tags : list of str
        Vocabulary in feature-column order (normalised, unique).
    document_frequency : list of int, optional
        GIFs carrying each tag in the data the vocabulary was built on.
    n_gifs : int, optional
        GIFs in that data.
    min_fraction : float, optional
        Threshold used to build it.
    """

    tags: list[str]
    document_frequency: list[int] | None = None
    n_gifs: int | None = None
    min_fraction: float | None = None
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.tags = list(self.tags)
        for t in self.tags:
            if not isinstance(t, str) or normalize_tag(t) != t or not t:
                raise ValueError(f"vocabulary tag {t!r} is not a normalised, non-empty tag")
        self._index = {t: i for i, t in enumerate(self.tags)}
        if len(self._index) != len(self.tags):
            dupes = sorted(t for t, c in Counter(self.tags).items() if c > 1)
            raise ValueError(f"vocabulary has duplicated tags: {dupes}")
        if self.document_frequency is not None:
            self.document_frequency = [int(c) for c in self.document_frequency]
            if len(self.document_frequency) != len(self.tags):
                raise ValueError(f"document_frequency has {len(self.document_frequency)} entries "
                                 f"for {len(self.tags)} tags")

    @classmethod
    def build(cls, tag_lists: Iterable[Iterable[str]], min_fraction: float = 0.005) -> TagVocabulary:
        """Vocabulary of the tags carried by at least ``min_fraction`` of the GIFs (§3.4).

        Parameters
        ----------
        tag_lists : iterable of iterables of str
            Each training GIF's tags (raw; normalised here).
        min_fraction : float, default=0.005
            Keep a tag iff (GIFs carrying it) / (GIFs) >= ``min_fraction``; 0 keeps every tag.

        Returns
        -------
        TagVocabulary
            Ordered by document frequency descending, then by name.
        """
        if isinstance(min_fraction, bool) or not isinstance(min_fraction, (int, float)) \
                or not math.isfinite(min_fraction) or not 0 <= min_fraction <= 1:
            raise ValueError(f"min_fraction must be a number in [0, 1], got {min_fraction!r}")
        lists = _normalized_lists(tag_lists)
        if not lists:
            raise ValueError("cannot build a tag vocabulary from zero GIFs")
        df = document_frequencies(lists)
        n = len(lists)
        # count / n >= min_fraction, with a relative tolerance so 1/200 >= 0.005 holds exactly.
        kept = [(t, c) for t, c in df.items() if c >= min_fraction * n * (1 - 1e-12)]
        kept.sort(key=lambda tc: (-tc[1], tc[0]))
        return cls(tags=[t for t, _ in kept], document_frequency=[c for _, c in kept],
                   n_gifs=n, min_fraction=float(min_fraction))

    def __len__(self) -> int:
        return len(self.tags)

    def encode(self, tag_lists: Iterable[Iterable[str]]) -> np.ndarray:
        """Bag-of-tags features: vocabulary-tag counts per GIF, each row L2-normalised.

        Parameters
        ----------
        tag_lists : iterable of iterables of str
            Each GIF's tags (raw; normalised here; tags outside the vocabulary are ignored).

        Returns
        -------
        np.ndarray of float32, shape (N, V)
            Unit-norm rows; all-zero rows for GIFs with no vocabulary tag.
        """
        lists = _normalized_lists(tag_lists)
        counts = np.zeros((len(lists), len(self.tags)), dtype=np.float64)
        for row, tags in enumerate(lists):
            for t in tags:
                col = self._index.get(t)
                if col is not None:
                    counts[row, col] += 1.0
        norms = np.linalg.norm(counts, axis=1, keepdims=True)
        np.divide(counts, norms, out=counts, where=norms > 0)
        return counts.astype(np.float32)

    def to_dict(self) -> dict:
        """Primitive-only description (str, int, float, lists, None) for checkpoints."""
        return {"format": _FORMAT, "tags": list(self.tags),
                "document_frequency": None if self.document_frequency is None else list(self.document_frequency),
                "n_gifs": self.n_gifs, "min_fraction": self.min_fraction}

    @classmethod
    def from_dict(cls, d: dict) -> TagVocabulary:
        """Inverse of :meth:`to_dict`; ValueError naming what is missing or malformed."""
        if not isinstance(d, dict):
            raise ValueError(f"a tag vocabulary must be a dict, got {type(d).__name__}")
        if d.get("format", _FORMAT) != _FORMAT:
            raise ValueError(f"unknown tag vocabulary format {d.get('format')!r}; expected {_FORMAT!r}")
        tags = d.get("tags")
        if not isinstance(tags, list):
            raise ValueError(f"a tag vocabulary needs a list 'tags', got {type(tags).__name__}")
        n_gifs = d.get("n_gifs")
        min_fraction = d.get("min_fraction")
        return cls(tags=tags, document_frequency=d.get("document_frequency"),
                   n_gifs=None if n_gifs is None else int(n_gifs),
                   min_fraction=None if min_fraction is None else float(min_fraction))

    def save(self, path: str | Path) -> Path:
        """Write the vocabulary as JSON to ``path``; returns the path."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> TagVocabulary:
        """Read a vocabulary written by :meth:`save`; ValueError naming the file if it is not one."""
        path = Path(path)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: not a JSON tag vocabulary ({e})") from None
        try:
            return cls.from_dict(d)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{path}: {e}") from None


def document_frequencies(tag_lists: Sequence[Iterable[str]]) -> Counter:
    """Number of GIFs carrying each normalised tag (a tag counts once per GIF)."""
    return Counter(t for tags in _normalized_lists(tag_lists) for t in set(tags))
