"""Results of expensive, deterministic fits kept within one process, keyed by the content of
their inputs.

The paper's protocol fits the same thing twice: clustered MTL takes k from the
cross-validated trace-norm W (§3.6, Fig. 6), and the trace-norm row of Table 2 has just run
that very cross-validation on the same split. :func:`scripts/reproduce.py` runs the rows in
one process, so the second one finds the first's result here instead of repeating 5 folds ×
7 ρ at ~a minute per fold at paper scale. Keys hash the arrays' bytes, shapes and dtypes
(blake2b, ~1 s per GB), so a changed input is never served an old result.
"""

from __future__ import annotations

import copy
import hashlib
from collections import OrderedDict
from typing import Any, Callable

import numpy as np
import torch

__all__ = ["content_key", "FitMemo"]


def content_key(*parts: Any) -> bytes:
    """A digest of arrays (numpy or torch: dtype, shape and bytes) and plain values (repr)."""
    h = hashlib.blake2b(digest_size=20)
    for p in parts:
        if isinstance(p, torch.Tensor):
            p = p.detach().cpu().numpy()
        if isinstance(p, np.ndarray):
            a = np.ascontiguousarray(p)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.view(np.uint8).reshape(-1) if a.size else b"")
        else:
            h.update(repr(p).encode())
        h.update(b"\x00")
    return h.digest()


class FitMemo:
    """The last ``size`` results by key; :meth:`get_or_compute` hands out deep copies, so a
    caller that changes its result cannot change what the next caller gets (``copy_out=False``:
    the stored object itself, for large arrays that callers only read)."""

    def __init__(self, size: int = 8, copy_out: bool = True) -> None:
        self.size = size
        self.copy_out = copy_out
        self._items: OrderedDict[bytes, Any] = OrderedDict()
        self.hits = 0

    def get_or_compute(self, key: bytes, compute: Callable[[], Any]) -> Any:
        if key in self._items:
            self._items.move_to_end(key)
            self.hits += 1
        else:
            self._items[key] = compute()
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return copy.deepcopy(self._items[key]) if self.copy_out else self._items[key]

    def clear(self) -> None:
        self._items.clear()
