"""The certificate every exact solver stops on: a primal value, a dual lower bound, their gap.

For the objective F(W) = Σ_mask (XW + b − Y)² + Ω(W), any dual point gives D ≤ F* ≤ F(W), so
(F − D)/F bounds how far W is from the optimum (:mod:`gifemo.models.solvers` computes both).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class GapReport:
    """Primal value F(W, b*(W)), a dual lower bound D ≤ F*, and (F − D)/F."""

    primal: float
    dual: float
    rel_gap: float
