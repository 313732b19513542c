"""The registry of figure functions: one per claim kind, and what each returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from claimbench.claims.base import Claim, ClaimResult

if TYPE_CHECKING:
    from claimbench.evaluation import Evaluation

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


CommonFn = Callable[[Claim, ClaimResult, "Evaluation"], "RenderedFigure | None"]

#: Figures any claim may get, after its kind's own (learning curves, the range test's sweep): each
#: returns None when the claim or the run has nothing for it to draw.
COMMON_FIGURES: list[CommonFn] = []


def register_common(fn: CommonFn) -> CommonFn:
    COMMON_FIGURES.append(fn)
    return fn


def figures_for(claim: Claim, result: ClaimResult, evaluation: "Evaluation") -> list[RenderedFigure]:
    """The figures of one claim: its kind's, then the common ones that apply; none for a run without trials."""
    if evaluation.frame.empty:
        return []
    fn = FIGURES.get(result.kind)
    out = list(fn(claim, result, evaluation)) if fn is not None else []
    for common in COMMON_FIGURES:
        figure = common(claim, result, evaluation)
        if figure is not None:
            out.append(figure)
    return out
