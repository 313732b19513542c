"""The figure of ``recipe_kind``'s claim kind: one file that draws only what the result hands it."""

from __future__ import annotations

from matplotlib.figure import Figure

from claimbench.report.figures.base import RenderedFigure, register_figures
from claimbench.report.figures.style import to_svg


@register_figures("best_accuracy_above")
def best_accuracy_figure(claim, result, evaluation) -> list[RenderedFigure]:
    fig = Figure(figsize=(3, 2))
    ax = fig.add_subplot()
    ax.plot([r["seed"] for r in result.data], [r["test_acc"] for r in result.data], "o")
    ax.axhline(claim.params["threshold"])
    return [RenderedFigure("Best test accuracy per seed", "recipe figure", to_svg(fig, claim.id))]
