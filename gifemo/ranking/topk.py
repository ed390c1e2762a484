"""Top-K selection with a total order, and a running top-K per emotion.

The order is: higher score first; equal scores -> lower candidate index first; NaN counts as
the lowest score. Because it is a total order, the top K of a union is contained in the union
of each part's top K, so per-shard top-K lists merged in any grouping give the same answer as
sorting everything at once (what makes resumed and multi-process runs match exactly).
"""
from __future__ import annotations

import numpy as np


def top_k_order(scores: np.ndarray, index: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` best rows of ``scores`` [m] (ties: lower ``index`` first), best first.

    O(m) to find the candidates (``np.partition`` on the k-th score, keeping every tie),
    then a sort of those.
    """
    scores = np.asarray(scores, dtype=np.float64)
    index = np.asarray(index, dtype=np.int64)
    if scores.shape != index.shape or scores.ndim != 1:
        raise ValueError(f"scores {scores.shape} and index {index.shape} must be matching 1-D arrays")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    neg = np.where(np.isnan(scores), np.inf, -scores)  # ascending in neg = best first
    pos = np.arange(len(neg))
    if len(neg) > k > 0:
        kth = np.partition(neg, k - 1)[k - 1]
        pos = np.flatnonzero(neg <= kth)  # every row tied with the k-th stays in
    elif k == 0:
        return pos[:0]
    return pos[np.lexsort((index[pos], neg[pos]))][:k]


class RunningTopK:
    """The ``k`` best candidates per column of a score matrix, fed in blocks.

    ``update(index [m], scores [m, T], ids, paths)``; :meth:`table` gives the final lists.
    Memory is O(k * T) whatever the number of candidates fed.
    """

    def __init__(self, k: int, n_columns: int):
        self.k, self.n_columns = int(k), int(n_columns)
        self._index = [np.zeros(0, np.int64) for _ in range(self.n_columns)]
        self._score = [np.zeros(0, np.float32) for _ in range(self.n_columns)]
        self._names: dict[int, tuple[str, str]] = {}  # index -> (id, path) of current members
        self.n_seen = 0

    def update(self, index, scores, ids, paths) -> None:
        index = np.asarray(index, dtype=np.int64)
        scores = np.asarray(scores, dtype=np.float32).reshape(len(index), self.n_columns)
        if len(ids) != len(index) or len(paths) != len(index):
            raise ValueError("index, ids and paths must have the same length")
        self.n_seen += len(index)
        for t in range(self.n_columns):
            idx = np.concatenate([self._index[t], index])
            sc = np.concatenate([self._score[t], scores[:, t]])
            keep = top_k_order(sc, idx, self.k)
            self._index[t], self._score[t] = idx[keep], sc[keep]
        members = set(np.concatenate(self._index).tolist())
        for i, gid, path in zip(index.tolist(), ids, paths):
            if i in members:
                self._names[i] = (str(gid), str(path))
        self._names = {i: v for i, v in self._names.items() if i in members}

    def table(self, column: int) -> list[tuple[int, str, str, float]]:
        """``(index, id, path, score)`` best first for one column."""
        return [(int(i), *self._names[int(i)], float(s))
                for i, s in zip(self._index[column], self._score[column])]
