"""Figures for the HTML report: seaborn/matplotlib drawn to inline SVG strings.

One function per claim kind, registered in ``FIGURES`` under the kind's name (``register_figures``);
a kind with no entry gets no figure (its section still renders). A figure function takes the claim,
its ``ClaimResult`` and the ``Evaluation`` (suite and trial frame) and returns a list of
``RenderedFigure``. Figures only draw what the result hands them: its ``estimates`` (per level or arm,
with their intervals and method), ``band`` (the decision rule), ``effect`` and ``ci``, ``data`` (the
table behind the figure), ``selected`` (the trials behind each value) and ``figure_data`` (anything else
the claim computed for its figure: heatmap cells, grid edges, a fitted line); from the frame only raw
points (each trial's status, the tested grid). No figure module imports ``claimbench.analysis``,
selects trials, computes an interval or re-applies a claim's ``where`` or margin, so a figure cannot
disagree with the verdict beside it (tests/report/test_figures.py checks both).

The package: ``style`` (colours, matplotlib style, SVG output), ``panels`` (shared drawing pieces),
and one module per claim family (``levels``, ``arms``, ``scaling``, ...), plus the figures that are not
a claim kind's: ``curves`` (learning curves, the LR range test's sweep; any kind that fills
``selected`` gets them) and ``summary`` (the report's forest plot).

Adding a claim kind is one claims module (``claimbench/claims/<family>.py``, calling
``claims.base.register``) plus one figure module here (``<family>.py``, decorating its function with
``@register_figures("<kind>")``). Each registers itself where it is defined: every module of this
package is imported when it is (``FAMILIES`` first, in that order, then any other module, by name), so
a new figure module needs no line anywhere else; listing it in ``FAMILIES`` only fixes its order.

Figures are built on ``matplotlib.figure.Figure`` objects (no pyplot, no global state); style settings
apply only inside ``rc_context`` while a figure is drawn and saved. The SVG keeps text as text
(``svg.fonttype = "none"``) and references nothing outside itself.
"""

from __future__ import annotations

import importlib
import pkgutil

from claimbench.report.figures.base import (COMMON_FIGURES, FIGURES, FigureFn, RenderedFigure, figures_for,
                                             register_common, register_figures)
from claimbench.report.figures.style import to_svg

#: The figure modules, one per claim family: importing one registers its kinds' figure functions.
FAMILIES = ("levels", "arms", "scaling", "frontier", "curves")

for _family in FAMILIES:
    importlib.import_module(f"claimbench.report.figures.{_family}")
for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):  # a figure module not listed: found
    if _module not in FAMILIES and not _module.startswith("_"):
        importlib.import_module(f"claimbench.report.figures.{_module}")

from claimbench.report.figures.scaling import critical_batch_figures  # noqa: E402  (tests and shallue.py name it)

__all__ = ["COMMON_FIGURES", "FAMILIES", "FIGURES", "FigureFn", "RenderedFigure", "critical_batch_figures", "figures_for",
           "register_common", "register_figures", "to_svg"]
