"""Two labellers per GIF; agreement decides, a disagreement goes to a third (paper §3.2, §4).

The paper's GIFGIF+ labels were assigned "only when consensuses were reached" between two
labellers checking candidates in ranked order (§4). Here a candidate needs two yes/no
judgements from different labellers; if they agree, that is the label; if they disagree a
third labeller judges and the majority of the three decides. "Skip" is not a judgement: it
only takes the GIF off that labeller's queue.

Agreement is reported as the raw rate at which the first two judgements of a GIF agree, as
Cohen's κ over those pairs (chance-corrected; ``sklearn.metrics.cohen_kappa_score``), and per
labeller as the rate at which their judgements match the final decision.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping

JUDGEMENTS = ("yes", "no")
ANSWERS = ("yes", "no", "skip")


def judgements_needed(n_yes: int, n_no: int) -> int:
    """2, or 3 once the first two disagree."""
    return 3 if n_yes > 0 and n_no > 0 else 2


def decide(n_yes: int, n_no: int) -> int | None:
    """The consensus label (1 positive, 0 negative) from yes/no counts, or None if undecided."""
    if n_yes < 0 or n_no < 0:
        raise ValueError(f"negative judgement counts {n_yes}, {n_no}")
    if n_yes + n_no < judgements_needed(n_yes, n_no):
        return None
    return int(n_yes > n_no)


def agreement(judgements: Iterable[tuple[str, str, str]], decisions: Mapping[str, int]) -> dict:
    """Agreement statistics.

    Parameters
    ----------
    judgements : iterable of (gif_id, labeller, answer)
        In the order they were given; ``skip`` answers are ignored.
    decisions : mapping gif_id -> 0/1
        Final consensus labels.

    Returns
    -------
    dict with ``n_pairs`` (GIFs with two judgements), ``pair_agreement`` (fraction of those whose
    first two agree; NaN if none), ``kappa`` (Cohen's κ of first vs second; NaN if undefined),
    ``n_third`` (GIFs sent to a third judgement), ``per_labeller`` {name: {n, agree_with_consensus}}.
    """
    firsts: dict[str, list[str]] = defaultdict(list)
    per: dict[str, list[int]] = defaultdict(list)
    for gif, who, answer in judgements:
        if answer not in JUDGEMENTS:
            continue
        firsts[gif].append(answer)
        if gif in decisions:
            per[who].append(int((answer == "yes") == bool(decisions[gif])))
    pairs = [(a[0], a[1]) for a in firsts.values() if len(a) >= 2]
    n = len(pairs)
    agree = sum(a == b for a, b in pairs)
    kappa = math.nan
    if n:
        a_lab, b_lab = [p[0] for p in pairs], [p[1] for p in pairs]
        if len(set(a_lab) | set(b_lab)) > 1:
            from sklearn.metrics import cohen_kappa_score

            kappa = float(cohen_kappa_score(a_lab, b_lab, labels=list(JUDGEMENTS)))
    return {
        "n_pairs": n,
        "pair_agreement": agree / n if n else math.nan,
        "kappa": kappa,
        "n_third": sum(1 for a, b in pairs if a != b),
        "per_labeller": {who: {"n": len(v), "agree_with_consensus": sum(v) / len(v)}
                         for who, v in sorted(per.items())},
    }
