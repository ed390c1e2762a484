"""The cold start, measured: replayed labelling campaigns with known labels standing in for people.

For each emotion, a campaign runs over the emotion's test pool (GIFs held out of every trained
model, all labelled) and looks at candidates in a strategy's order until it has found ``Np``
positives. Strategies:

(a) ``unsorted``: no ranking. Its looks are the exact expectation over random orders: the
    Np-th positive of P among n sits at position Np (n + 1) / (P + 1) on average, and after L
    looks L P / n positives are expected;
(b) ``zero-shot``: the candidates' tags against the emotion's prompts
    (:func:`gifemo.models.zero_shot.tag_scores`), never updated;
(c) ``zero-shot + re-rank``: as a zero-shot campaign of the app runs
    (:func:`gifemo.collect.scoring.score_pool_zero_shot`): after every ``N`` looks the head is
    refitted around the zero-shot scores on the labels so far
    (:func:`gifemo.collect.scoring.refit_scores`, on the tag embeddings) and the rest re-ordered;
(d) ``other emotions``: a head trained without a single label of this emotion: a ridge head per
    *other* emotion on the text features of the training GIFs (ridge is separable over tasks,
    so one fit of all columns then dropping this emotion's is the same), mixed by how close the
    other emotions' prompts are to this one's (softmax of the prompt cosines over
    :data:`MIX_TEMPERATURE`, each head's scores standardised over the pool);
(e) ``supervised``: a trained checkpoint's scores (e.g. the clustered-MTL demo model).

The looks a strategy needs are read off its order by :func:`looks_to_reach`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from gifemo.collect.scoring import DEFAULT_RERANK_RHO, refit_scores, zero_shot_prior
from gifemo.models.zero_shot import prompt_matrix, standardize, tag_scores

MIX_TEMPERATURE = 0.05
"""Softmax temperature over the prompt cosines of the other emotions, strategy (d)."""


def looks_to_reach(labels_in_order: np.ndarray, k: int) -> int | None:
    """1-based look at which the k-th positive is found (None: never)."""
    cum = np.cumsum(np.asarray(labels_in_order, dtype=np.float64))
    hit = np.flatnonzero(cum >= k)
    return int(hit[0]) + 1 if len(hit) else None


def unsorted_looks(n: int, n_pos: int, k: int) -> float | None:
    """Expected position of the k-th of ``n_pos`` positives in a random order of ``n``."""
    return None if k > n_pos else k * (n + 1) / (n_pos + 1)


def order_by(scores: np.ndarray) -> np.ndarray:
    """Indices, best first (ties: input order)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def rerank_order(X: np.ndarray, base: np.ndarray, labels: np.ndarray, every: int,
                 rho: float = DEFAULT_RERANK_RHO) -> np.ndarray:
    """Look order of a campaign that re-ranks after every ``every`` looks (strategy c): the
    next ``every`` candidates by the current scores, then a refit around ``base`` on all the
    labels seen so far, as the app's re-ranking does."""
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    n = len(base)
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(base, dtype=np.float64).copy()
    seen = np.zeros(n, dtype=bool)
    looked: list[int] = []
    while len(looked) < n:
        rest = np.flatnonzero(~seen)
        take = rest[order_by(scores[rest])[:every]]
        looked += take.tolist()
        seen[take] = True
        if len(looked) < n:
            rows = np.asarray(looked, dtype=np.int64)
            scores = refit_scores(X, base, rows, labels[rows], rho=rho).scores
    return np.asarray(looked, dtype=np.int64)


def other_emotions_scores(head_scores: np.ndarray, prompt_vectors: np.ndarray, t: int,
                          temperature: float = MIX_TEMPERATURE) -> np.ndarray:
    """Strategy (d) for emotion ``t``: the other columns of ``head_scores`` [n, T], standardised,
    mixed by softmax(cos(prompt_t, prompt_j) / temperature) over j != t."""
    P = np.asarray(prompt_vectors, dtype=np.float64)
    others = [j for j in range(P.shape[0]) if j != t]
    cos = P[others] @ P[t]
    w = np.exp((cos - cos.max()) / temperature)
    w /= w.sum()
    return standardize(np.asarray(head_scores, dtype=np.float64)[:, others]) @ w


@dataclass
class EmotionReplay:
    """One emotion's replayed campaign: pool size, positives, Np, and per strategy the looks
    to reach Np and the positives found after each look (``curves[name][L-1]``)."""

    emotion: str
    n: int
    n_pos: int
    k: int
    looks: dict[str, float | None] = field(default_factory=dict)
    curves: dict[str, np.ndarray] = field(default_factory=dict)


def replay_emotion(emotion: str, labels: np.ndarray, k: int,
                   orders: Mapping[str, np.ndarray]) -> EmotionReplay:
    """Looks to reach ``k`` positives and the found-positives curve of each order, plus (a)."""
    labels = np.asarray(labels, dtype=bool)
    n, n_pos = len(labels), int(labels.sum())
    out = EmotionReplay(emotion, n, n_pos, k)
    out.looks["unsorted"] = unsorted_looks(n, n_pos, k)
    out.curves["unsorted"] = np.arange(1, n + 1) * n_pos / n
    for name, order in orders.items():
        order = np.asarray(order, dtype=np.int64)
        if sorted(order.tolist()) != list(range(n)):
            raise ValueError(f"{emotion}/{name}: the order is not a permutation of the {n} candidates")
        seq = labels[order]
        out.looks[name] = looks_to_reach(seq, k)
        out.curves[name] = np.cumsum(seq).astype(np.float64)
    return out


def cold_start_orders(tag_rows: np.ndarray, encoder, emotion: str, labels: np.ndarray, *,
                      every: int, rho: float = DEFAULT_RERANK_RHO,
                      other_scores: np.ndarray | None = None,
                      supervised_scores: np.ndarray | None = None,
                      variant: str = "synonyms") -> dict[str, np.ndarray]:
    """The look orders of strategies (b)-(e) for one emotion's pool (rows in pool order)."""
    cos = tag_scores(tag_rows, encoder, [emotion], variant)[:, 0]
    base = zero_shot_prior(cos)
    orders = {"zero-shot": order_by(base),
              f"zero-shot + re-rank every {every}": rerank_order(tag_rows, base, labels, every, rho)}
    if other_scores is not None:
        orders["other emotions"] = order_by(other_scores)
    if supervised_scores is not None:
        orders["supervised"] = order_by(supervised_scores)
    return orders


def emotion_prompt_matrix(encoder, emotions: Sequence[str], variant: str = "synonyms") -> np.ndarray:
    """[T, D] prompt vectors of ``emotions``."""
    return prompt_matrix(encoder, emotions, variant)


def format_table(replays: Sequence[EmotionReplay]) -> str:
    """Markdown: looks to reach Np per emotion and strategy, and their mean over the emotions
    every strategy reached (a strategy that never reached Np shows "—")."""
    names = list(replays[0].looks)
    lines = ["| emotion | pool | positives | Np | " + " | ".join(names) + " |",
             "|---|---:|---:|---:|" + "---:|" * len(names)]

    def cell(v):
        return "—" if v is None else (f"{v:.1f}" if isinstance(v, float) and v % 1 else f"{v:.0f}")

    for r in replays:
        lines.append(f"| {r.emotion} | {r.n} | {r.n_pos} | {r.k} | " +
                     " | ".join(cell(r.looks[m]) for m in names) + " |")
    ok = [r for r in replays if all(r.looks[m] is not None for m in names)]
    if ok:
        means = [float(np.mean([r.looks[m] for r in ok])) for m in names]
        lines.append(f"| **mean** ({len(ok)} emotions) | {np.mean([r.n for r in ok]):.0f} | "
                     f"{np.mean([r.n_pos for r in ok]):.1f} | | " +
                     " | ".join(f"**{m:.1f}**" for m in means) + " |")
    return "\n".join(lines)


def mean_curves(replays: Sequence[EmotionReplay]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Looks 1..L (L = the smallest pool) and, per strategy, the mean positives found."""
    L = min(r.n for r in replays)
    looks = np.arange(1, L + 1)
    return looks, {m: np.mean([r.curves[m][:L] for r in replays], axis=0) for m in replays[0].curves}


def plot_curves(replays: Sequence[EmotionReplay], path, title: str = "") -> None:
    """Looks vs positives found (mean over emotions), one curve per strategy."""
    from matplotlib.figure import Figure

    looks, curves = mean_curves(replays)
    fig = Figure(figsize=(6.4, 4.6), dpi=110)
    ax = fig.add_subplot()
    for name, c in curves.items():
        ax.plot(looks, c, label=name, lw=1.6, ls="--" if name == "unsorted" else "-")
    k = replays[0].k if len({r.k for r in replays}) == 1 else None
    if k is not None:
        ax.axhline(k, color="grey", lw=0.8, ls=":")
        ax.text(looks[-1], k, f" Np = {k}", va="bottom", ha="right", fontsize=8, color="grey")
    ax.set_xlabel("looks (candidates checked)")
    ax.set_ylabel(f"positives found (mean over {len(replays)} emotions)")
    ax.set_title(title or "cold start: replayed campaigns")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
