"""Figures drawn from the records' curves rather than from one claim kind's statistic.

- ``learning_curve_figure``: for a claim whose quantity is a steps-to-target or a final metric, the
  validation metric (for a train-split quantity, the reported one) against steps and against examples, of the trials the claim's
  statistic was computed from (``ClaimResult.selected``, each entry naming the quantity it was selected
  for): one line per level or arm, the mean over seeds with its interval at each evaluation
  (``claims.common.curve_summary``: the claims layer computes it, this module draws it), and the target
  drawn for steps-to-target claims. A kind gets curves by filling ``selected``; which quantities have a
  curve is ``claims.common.curve_metric``.
- ``tuned_value_figure``: for a claim whose statistic is about a tuned value, the selection metric against
  the tuned axis, one thin line per level or arm and seed, each seed's selected value marked
  (``ClaimResult.figure_data["tuned_points"]``, which the claims layer fills).
- ``range_sweep_figure``: the LR range test's loss against LR, one line per seed (the smoothed loss),
  with each seed's suggested LR and the grid's best LR marked, for a claim that reads the range test.

Both need the curves of a run dir (``Evaluation.curves()`` / ``range_curves()``); without them they
return None and the claim's section shows its other figures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from claimbench.claims.base import Claim, ClaimResult
from claimbench.claims.common import CURVE_METHOD, curve_metric, curve_summary
from claimbench.report import format as fmt
from claimbench.report.figures.base import RenderedFigure, register_common
from claimbench.report.figures.panels import _no_values, _panel_title, _parts, panel_heading, wrap
from claimbench.report.figures.style import GREY, PANEL_MAX_WIDTH, RED, _legend, _new_figure, _rc, _safe, to_svg

if TYPE_CHECKING:
    from claimbench.evaluation import Evaluation

#: Line colours for up to 10 levels or arms (Okabe-Ito, then grey shades).
LINE_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
                "#999999", "#666666"]


def _claim_quantity(claim: Claim) -> str:
    """The quantity the claim names, for selected entries that do not name theirs (older results)."""
    p = claim.params
    return str(p.get("metric") or p.get("quantity") or "")


def curve_parts(claim: Claim, result: ClaimResult, columns) -> tuple[str, bool, list[tuple[ClaimResult, list[dict]]]] | None:
    """(the metric drawn, whether a target applies, per part its selected entries that show that metric),
    from the claim's ``selected`` trials and the quantity each was selected for; None when no part has
    a quantity with a learning curve (see ``claims.common.curve_metric``)."""
    picked = None
    out = []
    for part in _parts(result):
        keep = []
        for s in part.selected:
            m = curve_metric(str(s.get("quantity") or _claim_quantity(claim)), columns)
            if m is None:
                continue
            picked = picked or m
            if m == picked:  # one metric per figure: a group that shows another one is left out
                keep.append(s)
        if keep:
            out.append((part, keep))
    return (picked[0], picked[1], out) if picked and out else None


@register_common
def learning_curve_figure(claim: Claim, result: ClaimResult, evaluation: "Evaluation") -> RenderedFigure | None:
    if not any(part.selected for part in _parts(result)):
        return None
    curves = evaluation.curves()
    if curves.empty:
        return None
    found = curve_parts(claim, result, {c for c in curves.columns if curves[c].notna().any()})
    if found is None:
        return None
    metric, with_target, chosen = found
    confidence = float(claim.params.get("confidence", 0.95))
    frame = evaluation.frame.set_index("trial_id")
    groups = list(dict.fromkeys(s["group"] for _, selected in chosen for s in selected))
    colours = {g: LINE_COLOURS[i % len(LINE_COLOURS)] for i, g in enumerate(groups)}
    parts = [part for part, _ in chosen]
    with mpl.rc_context(_rc()):
        fig = _new_figure(PANEL_MAX_WIDTH, 2.9 * len(parts) + 0.6 + 0.18 * -(-len(groups) // 3))
        grid = fig.subplots(len(parts), 2, squeeze=False)
        targets: set[float] = set()
        for (ax_steps, ax_examples), (part, selected) in zip(grid, chosen):
            drew = False
            for ax, x in ((ax_steps, "step"), (ax_examples, "examples")):
                summary = curve_summary(curves, selected, metric, x, confidence)  # the claims layer's statistic
                for group, stats in summary.groupby("group", sort=False):
                    stats = stats[stats["x"] > 0] if x == "examples" else stats
                    if stats.empty:
                        continue
                    ax.plot(stats["x"], stats["mean"], color=colours[group], linewidth=1.4, zorder=3)
                    band = stats.dropna(subset=["lo", "hi"])
                    ax.fill_between(band["x"], band["lo"], band["hi"], color=colours[group], alpha=0.15,
                                    linewidth=0, zorder=2)
                    drew = True
            if with_target and "target" in frame.columns:  # the target the trials were trained with
                known = [t for s in selected for t in s["trial_ids"] if t in frame.index]
                targets |= {float(v) for v in frame.loc[known, "target"].dropna() if float(v) > 0}
            if not drew:
                _no_values(ax_steps)
                _no_values(ax_examples)
                continue
            for ax, xlabel in ((ax_steps, "steps"), (ax_examples, "examples seen")):
                for t in sorted(targets):
                    ax.axhline(t, color=RED, linestyle="--", linewidth=1.1, zorder=1)
                ax.set_xlabel(xlabel)
                ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: fmt.tick(v)))
            ax_examples.set_xscale("log")
            ax_examples.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: fmt.tick(v)))
            ax_examples.xaxis.set_minor_locator(mpl.ticker.NullLocator())
            ax_steps.set_ylabel(_safe(metric))
            title = _panel_title(part).replace("\n", ", ")
            panel_heading(ax_steps, title, "against steps")
            ax_examples.set_title("against examples seen", fontsize=9.5)
        handles = [Line2D([], [], color=colours[g], linewidth=1.6, label=_safe(wrap(g, 40))) for g in groups]
        handles.append(Patch(facecolor=GREY, alpha=0.3, label=f"{confidence:.0%} CI over seeds"))
        if targets:
            handles.append(Line2D([], [], color=RED, linestyle="--",
                                  label=f"target {', '.join(fmt.tick(t) for t in sorted(targets))}"))
        _legend(fig, handles)
    what = ("the trial that reached the target in the fewest steps" if with_target
            else f"the trials the claim's statistic was computed from (the one best on "
                 f"{claim.params.get('select') or 'val_acc'}, or every trial a mean or median is over)")
    caption = (f"{metric} at each evaluation of {what}, per seed, against training steps (left) and examples seen "
               f"(right, log scale): one line per level or arm; {CURVE_METHOD} "
               f"({confidence:.0%})" + (". Dashed: the validation target of steps-to-target." if targets else "."))
    return RenderedFigure(title=f"learning curves ({metric})", caption=caption,
                          svg=to_svg(fig, f"{claim.id}-curves"))


def _reads_range_test(claim: Claim) -> bool:
    text = repr(claim.params)
    return "range_suggested_lr" in text or "range_min_loss_lr" in text


@register_common
def range_sweep_figure(claim: Claim, result: ClaimResult, evaluation: "Evaluation") -> RenderedFigure | None:
    """The LR range test's loss against LR per seed, each seed's suggested LR (dotted) and, from the
    claim's per-seed data, the other side of its ratio (the grid's best LR, dashed)."""
    if not _reads_range_test(claim):
        return None
    sweeps = evaluation.range_curves()
    if sweeps.empty or "lr" not in sweeps.columns:
        return None
    frame = evaluation.frame.set_index("trial_id")
    seeds = sorted(int(s) for s in sweeps["seed"].dropna().unique())
    colours = {s: LINE_COLOURS[i % len(LINE_COLOURS)] for i, s in enumerate(seeds)}
    part = _parts(result)[0]
    data = pd.DataFrame(part.data)
    den_q = str((claim.params.get("den") or {}).get("quantity") or "")
    with mpl.rc_context(_rc()):
        fig = _new_figure(6.2, 3.6)
        ax = fig.subplots()
        lrs: list[float] = []
        for trial_id, sweep in sweeps.groupby("trial_id", sort=True):
            seed = int(sweep["seed"].iloc[0])
            sweep = sweep.sort_values("lr")
            y = sweep["smoothed"] if "smoothed" in sweep and sweep["smoothed"].notna().any() else sweep["loss"]
            ax.plot(sweep["lr"], sweep["loss"], color=colours[seed], linewidth=0.6, alpha=0.35, zorder=1)
            ax.plot(sweep["lr"], y, color=colours[seed], linewidth=1.4, zorder=2)
            lrs += list(sweep["lr"])
            suggested = frame["range_suggested_lr"].get(trial_id) if "range_suggested_lr" in frame else None
            if suggested is not None and np.isfinite(suggested):
                ax.axvline(float(suggested), color=colours[seed], linestyle=":", linewidth=1.3, zorder=3)
        if {"seed", "den"} <= set(data.columns):  # the other side of the ratio, per seed (the claim's data)
            for _, row in data.dropna(subset=["den"]).iterrows():
                if int(row["seed"]) in colours:
                    ax.axvline(float(row["den"]), color=colours[int(row["seed"])], linestyle="--", linewidth=1.3,
                               zorder=3)
        ax.set_xscale("log")
        lv = sorted(v for v in lrs if v > 0)
        if lv:
            ax.set_xlim(lv[0], lv[-1])
        ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: fmt.tick(v)))
        ax.set_xlabel("learning rate (range test sweep)")
        ax.set_ylabel("training loss")
        ys = pd.concat([sweeps["loss"], sweeps.get("smoothed", sweeps["loss"])]).to_numpy(dtype=float)
        ys = ys[np.isfinite(ys)]
        if ys.size:  # the diverging tail would flatten the rest
            ax.set_ylim(float(ys.min()) * 0.95, float(np.percentile(ys, 95)) * 1.1)
        handles = [Line2D([], [], color=colours[s], linewidth=1.4, label=f"seed {s}") for s in seeds]
        handles += [Line2D([], [], color=GREY, linestyle=":", label="suggested LR (range test)"),
                    Line2D([], [], color=GREY, linestyle="--", label=_safe(wrap(f"grid: {den_q or 'den'}", 36)))]
        _legend(fig, handles)
    caption = ("The LR range test: training loss (faint) and its smoothed value (solid) as the learning rate "
               "grows through the sweep, one line per seed; dotted, each seed's suggested LR; dashed, the same "
               f"seed's {den_q or 'denominator'} from the trained grid (the two sides of the claim's ratio).")
    return RenderedFigure(title="LR range test: loss against learning rate", caption=caption,
                          svg=to_svg(fig, f"{claim.id}-range-sweep"))


@register_common
def tuned_value_figure(claim: Claim, result: ClaimResult, evaluation: "Evaluation") -> RenderedFigure | None:
    """The selection metric against the tuned value, per level or arm and seed, the selected values marked."""
    parts = [(part, part.figure_data["tuned_points"]) for part in _parts(result)
             if (part.figure_data.get("tuned_points") or {}).get("points")]
    if not parts:
        return None
    several = len(parts) > 1
    points = pd.DataFrame([{**p, "group": f"{_panel_title(part).replace(chr(10), ', ')}: {p['group']}" if several
                            else p["group"]} for part, data in parts for p in data["points"]])
    axis, metric = str(parts[0][1]["axis"]), str(parts[0][1]["metric"])
    finite = points[np.isfinite(points["value"]) & np.isfinite(points["metric"])]
    if finite.empty:
        return None
    groups = list(dict.fromkeys(points["group"]))
    colours = {g: LINE_COLOURS[i % len(LINE_COLOURS)] for i, g in enumerate(groups)}
    failed = int((points["status"] != "completed").sum())
    with mpl.rc_context(_rc()):
        fig = _new_figure(6.2, 3.8 + 0.18 * -(-len(groups) // 3))
        ax = fig.subplots()
        for (group, _seed), line in finite.groupby(["group", "seed"], sort=False):
            line = line.sort_values("value")
            ax.plot(line["value"], line["metric"], color=colours[group], linewidth=0.9, alpha=0.55, marker="o",
                    markersize=2.5, zorder=2)
        picked = finite[finite["selected"]]
        ax.scatter(picked["value"], picked["metric"], s=46, facecolors="none",
                   edgecolors=[colours[g] for g in picked["group"]], linewidths=1.6, zorder=4)
        if (finite["value"] > 0).all() and finite["value"].nunique() > 2 and \
                finite["value"].max() / finite["value"].min() >= 20:
            ax.set_xscale("log")
        ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: fmt.tick(v)))
        ax.set_xlabel(_safe(axis))
        ax.set_ylabel(_safe(metric))
        handles = [Line2D([], [], color=colours[g], linewidth=1.4, label=_safe(wrap(g, 40))) for g in groups]
        handles.append(Line2D([], [], color=GREY, marker="o", markerfacecolor="none", linestyle="none",
                              markersize=7, label="selected on each seed"))
        _legend(fig, handles)
    caption = (f"{metric} of every trial against {axis}, one thin line per level or arm and seed (the trials the "
               f"selection chose among); circled, the value each seed selected"
               + (f". {failed} diverged or failed trial(s) have no finite {metric} and are not drawn." if failed
                  else "."))
    return RenderedFigure(title=f"{metric} against the tuned {axis}", caption=caption,
                          svg=to_svg(fig, f"{claim.id}-tuned"))
