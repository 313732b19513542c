"""The registry of figure functions: one per claim kind, and what each returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from claimbench.claims.base import Claim, ClaimResult

if TYPE_CHECKING:
    from claimbench.api import Evaluation

@dataclass(frozen=True)
class RenderedFigure:
    """One figure of a claim section: a title, a caption (plain text) and an inline ``<svg>`` element."""

    title: str
    caption: str
    svg: str


FigureFn = Callable[[Claim, ClaimResult, "Evaluation"], list[RenderedFigure]]

#: Figure functions by claim kind name. A new claim kind adds its own with ``register_figures``.
FIGURES: dict[str, FigureFn] = {}


def register_figures(kind: str) -> Callable[[FigureFn], FigureFn]:
    def add(fn: FigureFn) -> FigureFn:
        FIGURES[kind] = fn
        return fn
    return add


def figures_for(claim: Claim, result: ClaimResult, evaluation: "Evaluation") -> list[RenderedFigure]:
    """The figures of one claim; none for a kind without a figure function or a run without trials."""
    fn = FIGURES.get(result.kind)
    if fn is None or evaluation.frame.empty:
        return []
    return fn(claim, result, evaluation)
