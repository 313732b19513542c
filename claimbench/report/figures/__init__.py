"""Figures for the HTML report: seaborn/matplotlib drawn to inline SVG strings.

One function per claim kind, registered in ``FIGURES`` under the kind's name (``register_figures``);
a kind with no entry gets no figure (its section still renders). A figure function takes the claim,
its ``ClaimResult`` and the ``Evaluation`` (suite and trial frame) and returns a list of
``RenderedFigure``. Figures only draw: every number they show comes from the result (its ``data``,
``effect``, ``ci`` and ``band``) or, for raw points, from the frame; none re-decides a claim.

The package: ``style`` (colours, matplotlib style, SVG output), ``panels`` (shared drawing pieces),
and one module per claim family (``levels``, ``arms``, ``scaling``), plus the figures that are not a
claim kind's: ``curves`` (learning curves, the LR range test's sweep) and ``summary`` (the report's
forest plot). Adding a claim kind is one claims module plus one figure module listed in ``FAMILIES``.

Figures are built on ``matplotlib.figure.Figure`` objects (no pyplot, no global state); style settings
apply only inside ``rc_context`` while a figure is drawn and saved. The SVG keeps text as text
(``svg.fonttype = "none"``) and references nothing outside itself.
"""

from __future__ import annotations

import importlib

from claimbench.report.figures.base import (COMMON_FIGURES, FIGURES, FigureFn, RenderedFigure, figures_for,
                                             register_common, register_figures)
from claimbench.report.figures.style import to_svg

#: The figure modules, one per claim family: importing one registers its kinds' figure functions.
FAMILIES = ("levels", "arms", "scaling", "curves")

for _family in FAMILIES:
    importlib.import_module(f"claimbench.report.figures.{_family}")

from claimbench.report.figures.scaling import critical_batch_figures  # noqa: E402  (tests and shallue.py name it)

__all__ = ["COMMON_FIGURES", "FAMILIES", "FIGURES", "FigureFn", "RenderedFigure", "critical_batch_figures", "figures_for",
           "register_common", "register_figures", "to_svg"]
