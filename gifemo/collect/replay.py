"""How many looks the ranking (and re-ranking) saved: replaying the original order.

A *look* is one candidate decided by the labellers. When a campaign has confirmed k positives
after L looks in the order it actually used (re-ranked every N labels), the question is how
many looks the checkpoint's original order would have needed for the same k positives.

Replay walks the original order and counts candidates until k positives are reached. A
candidate that was never decided has an unknown label, so the answer is bracketed:
``lower`` counts unknowns as positives (the fewest looks the original order could have
needed), ``upper`` as negatives (None when the known positives in that order never reach k),
and ``estimate`` counts each unknown as a fraction p of a positive, p being the precision
observed so far (looks = first position where the expected positive count reaches k).
When every candidate up to the point reached is decided the three agree exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Replay:
    """Looks to reach ``k`` positives: actually used and replayed in the original order."""

    k: int
    actual: int
    lower: int | None
    upper: int | None
    estimate: float | None

    @property
    def saved_estimate(self) -> float | None:
        return None if self.estimate is None else self.estimate - self.actual

    @property
    def saved_at_least(self) -> int | None:
        return None if self.lower is None else self.lower - self.actual

    def to_dict(self) -> dict:
        return {"k": self.k, "actual": self.actual, "original_lower": self.lower,
                "original_upper": self.upper, "original_estimate": self.estimate,
                "saved_estimate": self.saved_estimate, "saved_at_least": self.saved_at_least}


def _first_reaching(cum: np.ndarray, k: float) -> int | None:
    hit = np.flatnonzero(cum >= k - 1e-9)
    return int(hit[0]) + 1 if len(hit) else None


def replay(original_order: np.ndarray, labels: np.ndarray, looks: np.ndarray) -> Replay:
    """Replay the original ranking against the consensus labels gathered so far.

    Parameters
    ----------
    original_order : int [N]
        Candidate indices in the checkpoint's original ranked order.
    labels : float [N]
        1 positive, 0 negative, NaN undecided (indexed by candidate).
    looks : float [N]
        For decided candidates, the look number (1-based order of decision); NaN otherwise.
    """
    labels = np.asarray(labels, dtype=np.float64)
    looks = np.asarray(looks, dtype=np.float64)
    decided = ~np.isnan(labels)
    k = int(np.nansum(labels))
    if k == 0:
        return Replay(0, 0, 0, 0, 0.0)
    pos_looks = np.sort(looks[decided & (labels == 1)])
    actual = int(pos_looks[k - 1])
    p = float(labels[decided].mean())
    seq = labels[np.asarray(original_order, dtype=np.int64)]
    unknown = np.isnan(seq)
    lower = _first_reaching(np.cumsum(np.where(unknown, 1.0, seq)), k)
    upper = _first_reaching(np.cumsum(np.where(unknown, 0.0, seq)), k)
    est = _first_reaching(np.cumsum(np.where(unknown, p, seq)), k)
    return Replay(k, actual, lower, upper, None if est is None else float(est))
