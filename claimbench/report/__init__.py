"""Reports of an evaluated run: one self-contained HTML file (tables, inline SVG figures).

``write_report(run_dir)`` evaluates a run directory's claims and writes
``RUN_DIR/report.html``; ``render_html(evaluation)`` returns the HTML. Figures
per claim kind live in ``FIGURES`` (see ``claimbench.report.figures``).
"""

from claimbench.report.figures import FIGURES, RenderedFigure, register_figures
from claimbench.report.html import render_html, write_report

__all__ = ["FIGURES", "RenderedFigure", "register_figures", "render_html", "write_report"]
