"""The figures' look and their output: colours, matplotlib style (applied only inside ``rc_context``), figure
and panel sizes, the shared legend, and the inline-SVG writer."""

from __future__ import annotations

import io
import re
from typing import Any

import matplotlib as mpl
import seaborn as sns
from matplotlib.figure import Figure


# ------------------------------------------------------------------ style and SVG output

#: Colours (colour-blind safe: Okabe-Ito).
BLUE, ORANGE, RED, GREY = "#0072B2", "#E69F00", "#D55E00", "#8c8c8c"
GREEN = "#009E73"
BLACK_LINE = "#333333"
#: Verdict colours (the report's badges, darker for marks on white).
VERDICT_COLOURS = {"supported": "#1a7f37", "refuted": "#cf222e", "inconclusive": "#9a6700", "pending": "#8c959f"}
HEATMAP_CMAP = "viridis"
PANEL_MAX_WIDTH = 7.8  # inches: drawn at DISPLAY_SCALE, the page's content width
DISPLAY_SCALE = 1.3  # figures are drawn small and shown larger: 9 pt labels read as 12 pt


def _rc() -> dict[str, Any]:
    rc = dict(sns.axes_style("whitegrid"))
    rc.update(sns.plotting_context("notebook", font_scale=0.85))
    rc.update({
        "font.sans-serif": ["DejaVu Sans", "Bitstream Vera Sans", "Arial", "Helvetica", "sans-serif"],
        "axes.titleweight": "bold",
        "axes.titlesize": 10.5,
        "svg.fonttype": "none",  # text stays text: searchable, selectable, small
        "xtick.bottom": True,
        "ytick.left": True,
        "xtick.major.size": 3,
        "ytick.major.size": 3,
        "xtick.minor.size": 2,
        "ytick.minor.size": 2,
        "legend.frameon": False,
    })
    return rc


def _new_figure(width: float, height: float) -> Figure:
    return Figure(figsize=(min(width, PANEL_MAX_WIDTH), height), layout="constrained")


def _panels(n: int, panel_w: float, panel_h: float, extra_w: float = 0.0) -> tuple[Figure, list]:
    """A figure of ``n`` panels sharing the y axis, wrapped into rows when they would not fit the page."""
    cols = max(1, min(n, int((PANEL_MAX_WIDTH - extra_w) // panel_w)))
    rows = -(-n // cols)
    fig = _new_figure(panel_w * cols + extra_w, panel_h * rows + (0.4 if rows > 1 else 0.0))
    grid = fig.subplots(rows, cols, squeeze=False, sharey=True)
    axes = list(grid.ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    for i, ax in enumerate(axes[:n]):
        if i % cols:  # the y axis is labelled in the first column only
            ax.tick_params(axis="y", left=False)
    return fig, axes[:n]


_REF = re.compile(r'(?:url\(#|href="#)([^)"]+)')
_ID = re.compile(r'\sid="([^"]*)"')
_SIZE = re.compile(r'<svg([^>]*?)\swidth="([\d.]+)pt"\sheight="([\d.]+)pt"')


def to_svg(fig: Figure, salt: str) -> str:
    """The figure as an ``<svg>`` element to inline in HTML: no XML prolog, no DOCTYPE, no metadata.

    ``salt`` makes the element ids (clip paths, markers) unique within the page
    and the output deterministic. The element scales down with the page and is
    never drawn larger than ``DISPLAY_SCALE`` times its natural size.
    """
    buf = io.StringIO()
    with mpl.rc_context({**_rc(), "svg.hashsalt": salt}):
        fig.savefig(buf, format="svg",
                    metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    # matplotlib names every group (figure_1, axes_1, ...): drop the ids nothing refers to, so that
    # several figures on a page share no id and none can shadow a claim's anchor
    refs = set(_REF.findall(svg))
    svg = _ID.sub(lambda m: m.group(0) if m.group(1) in refs else "", svg)
    return _SIZE.sub(lambda m: f'<svg{m.group(1)} width="100%" style="max-width: '
                               f'{float(m.group(2)) * DISPLAY_SCALE:.0f}pt; height: auto"', svg, count=1).strip()


def _legend(fig: Figure, handles: list) -> None:
    """One legend under the panels, in as many columns as fit the figure's width."""
    widths = [0.75 + 0.075 * len(h.get_label()) for h in handles]  # inches at 8.5 pt: handle, spacing, text

    def total(cols: int) -> float:  # matplotlib fills a legend column by column
        rows = -(-len(handles) // cols)
        return sum(max(widths[j * rows:(j + 1) * rows], default=0.0) for j in range(cols))

    cols = len(handles)
    while cols > 1 and total(cols) > fig.get_figwidth():
        cols -= 1
    rows = -(-len(handles) // cols)
    cols = -(-len(handles) // rows)  # balanced rows: 2 + 2 rather than 3 + 1
    fig.legend(handles=handles, loc="outside lower center", ncols=cols, fontsize=8.5)


def _safe(text: Any) -> str:
    """Suite text for a figure: ``$`` would switch matplotlib to mathtext."""
    return str(text).replace("$", r"\$")
