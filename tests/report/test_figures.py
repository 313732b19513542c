"""Figures draw what their ClaimResult hands them: for every shipped claim kind, changing a number of the
result changes the figure, and no figure module computes a statistic, selects trials or re-applies a
claim's ``where`` / margin (so that a figure can never disagree with the verdict beside it)."""

from __future__ import annotations

import ast
import copy
import dataclasses
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import claimbench.report.figures as figures_pkg
from claimbench.claims import KINDS, Claim, ClaimResult
from claimbench.report.figures import FIGURES, figures_for
from claimbench.report.figures.curves import learning_curve_figure
from tests.claims.test_kinds import FIGURE_SUITE, fake_kind_record

ROOT = Path(__file__).resolve().parents[2]
FIGURE_DIR = Path(figures_pkg.__file__).parent

#: Names a figure module may not use: statistics, trial selection, the claims' filters and decisions.
COMPUTES = {"restrict", "seed_mean_ci", "t_interval", "bootstrap", "idxmax", "idxmin", "polyfit", "nanargmax",
            "nanargmin", "isolate", "cell_quantities", "fastest_trials", "decide_mean", "decide_max_min",
            "decide_rank_trend", "fit_steps_vs_batch", "good_range", "spearmanr", "kendalltau"}
#: Claim parameters that decide a verdict: a figure reads them from the result (band, figure_data), never here.
DECIDING = {"where", "tune", "margin", "low", "high", "regime_factor"}


def _shipped_kinds() -> set[str]:
    import tomllib
    kinds = set()
    for path in (ROOT / "suites").rglob("*.toml"):
        for c in tomllib.loads(path.read_text()).get("claims", []):
            kinds.add(c["kind"])
    return kinds


def test_every_shipped_kind_has_a_figure_module_entry():
    shipped = _shipped_kinds()
    assert len(shipped) >= 13 and shipped <= set(KINDS) and shipped <= set(FIGURES), shipped - set(FIGURES)


def test_figure_modules_compute_nothing_and_import_nothing_from_analysis():
    for path in sorted(FIGURE_DIR.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            where = f"{path.name}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("claimbench.analysis"), where
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("claimbench.analysis") for a in node.names), where
            name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
            assert name not in COMPUTES, f"{where} uses {name}"
            # p["margin"], p.get("where"), claim.params.get("low"): deciding parameters read in a figure
            key, receiver = None, None
            if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
                key, receiver = node.slice.value, node.value
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                    and node.args and isinstance(node.args[0], ast.Constant):
                key, receiver = node.args[0].value, node.func.value
            if key in DECIDING:
                text = ast.unparse(receiver)
                assert not (text == "p" or text.endswith("params")), f"{where} reads {text}[{key!r}]"


# ------------------------------------------------------------------ every kind, from a fake run dir with curves

SUITE = copy.deepcopy(FIGURE_SUITE)
SUITE["suite"]["name"] = "fake_figures"
SUITE["claims"] += [
    {"id": "K9", "kind": "best_level_in_range", "params": {"axis": "batch_size", "low": 8, "high": 32}},
    {"id": "K10", "kind": "range_width_trend", "params": {"axis": "batch_size", "range_axis": "lr",
                                                         "tolerance": 0.05}},
    {"id": "K11", "kind": "ratio_in_range",
     "params": {"num": {"where": {"optimizer": "adam"}, "quantity": "test_acc"},
                "den": {"where": {"optimizer": "sgd"}, "quantity": "test_acc"}, "low": 0.9, "high": 1.1}},
]


def _with_curve(record):
    """The fake record with a 3-point learning curve ending at its metrics."""
    if record.status.value != "completed":
        return record
    b = record.spec["batch_size"]
    curve = [{"step": s, "examples": s * b, **{m: record.metrics[m] * f for m in ("val_acc", "test_acc", "train_acc")}}
             for s, f in ((0, 0.2), (25, 0.8), (50, 1.0))]
    return dataclasses.replace(record, curve=curve)


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory):
    from claimbench.api import evaluate_run
    from claimbench.store.rundir import RunStore
    from claimbench.suite import expand, parse_suite
    suite = parse_suite(SUITE, "figures.toml", "default")
    store = RunStore(tmp_path_factory.mktemp("figures"))
    store.init(suite, "claimbench run figures.toml", {"python": "3", "git_sha": "x", "packages": {}})
    for spec in expand(suite):
        store.append(_with_curve(fake_kind_record(spec)))
    return evaluate_run(store.dir)


def _fingerprint(fig, salt: str) -> str:
    """What a figure draws, without writing its SVG (the slow part): every line's points, every collection's
    offsets, paths and values, every patch's extent, every text, and the axes' limits."""
    from matplotlib.collections import Collection
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.text import Text

    out: list = [salt]
    for ax in fig.axes:
        out.append((ax.get_xlim(), ax.get_ylim()))
        for a in ax.get_children():
            if isinstance(a, Line2D):
                out.append(np.asarray(a.get_xydata(), dtype=float).round(9).tolist())
            elif isinstance(a, Collection):
                out.append(np.asarray(a.get_offsets(), dtype=float).round(9).tolist())
                out.append([np.asarray(p.vertices, dtype=float).round(9).tolist() for p in a.get_paths()])
                values = a.get_array()
                out.append(None if values is None else np.asarray(values, dtype=float).round(9).tolist())
            elif isinstance(a, Patch):
                out.append(np.asarray(a.get_extents().get_points(), dtype=float).round(6).tolist())
            elif isinstance(a, Text):
                out.append(a.get_text())
    for legend in fig.legends:
        out.append([t.get_text() for t in legend.get_texts()])
    return repr(out)


@pytest.fixture
def fingerprints(monkeypatch):
    """Figures return their fingerprint as their ``svg`` (the SVG writer is tested in test_report)."""
    from claimbench.report.figures import arms, curves, levels, scaling
    for module in (arms, curves, levels, scaling):
        monkeypatch.setattr(module, "to_svg", _fingerprint)


def _bump(x):
    return x * 1.37 + 0.011 if isinstance(x, float) and math.isfinite(x) else x


def _bump_rows(rows, keys):
    return [{k: _bump(v) if k in keys else v for k, v in row.items()} for row in rows]


def _estimates(r: ClaimResult) -> None:
    r.estimates = _bump_rows(r.estimates, {"mean", "lo", "hi"})


def _effect(r: ClaimResult) -> None:
    if r.effect is not None:
        r.effect, r.ci = _bump(r.effect), tuple(_bump(c) for c in r.ci) if r.ci else r.ci


def _band(r: ClaimResult) -> None:
    if r.band:
        r.band = {k: _bump(v) for k, v in r.band.items()}


def _heatmap(r: ClaimResult) -> None:
    h = r.figure_data.get("heatmap")
    if h:
        r.figure_data = {**r.figure_data, "heatmap": {**h, "cells": _bump_rows(h["cells"], {"mean"}),
                                                      "outlined": []}}


def _trend_line(r: ClaimResult) -> None:
    line = r.figure_data.get("trend_line")
    if line:
        r.figure_data = {**r.figure_data, "trend_line": {**line, "slope": -line["slope"]}}


def _grid(r: ClaimResult) -> None:
    g = r.figure_data.get("grid")
    if g:
        r.figure_data = {**r.figure_data, "grid": {**g, "high": 0.0, "low": 1e9}}  # no end marked as censored


def _selected(r: ClaimResult) -> None:
    r.selected = r.selected[: len(r.selected) // 2]


#: claim id -> (figure title fragment, what of the result to change): the figure must change with it
DRAWS = {
    "K1": [("along", _trend_line), ("learning curves", _selected)],  # monotone_trend
    "K2": [("claimed order", _estimates)],  # ranking
    "K3": [("paired by seed", _estimates), ("paired by seed", _band)],  # paired_comparison
    "K4": [("ratio", _band)],  # ratio_in_range
    "K5": [("good lr range", _grid)],  # range_width_comparison
    "K6": [("against b", _estimates)],  # equivalence
    "K7": [("best level", _effect)],  # equivalence against the best level
    "K8": [("per seed", _effect)],  # timing_ratio
    "K9": [("by batch_size and lr", _heatmap), ("best test_acc per batch_size", _estimates)],  # best_level_in_range
    "K10": [("width of the good", _estimates)],  # range_width_trend
    "K11": [("learning curves", _selected)],  # ratio_in_range of a final metric
}


def _perturbed(result: ClaimResult, change) -> ClaimResult:
    out = copy.deepcopy(result)
    for part in out.strata or [out]:
        change(part)
    return out


def _figure(figs, fragment):
    found = [f for f in figs if fragment in f.title]
    assert found, (fragment, [f.title for f in figs])
    return found[0]


def _draw(claim, result, evaluation, fragment):
    """The figure whose title holds ``fragment``: the learning curves, or one of the kind's own."""
    if fragment == "learning curves":
        return learning_curve_figure(claim, result, evaluation)
    return _figure(FIGURES[claim.kind](claim, result, evaluation), fragment)


def test_each_figure_draws_the_numbers_its_result_hands_it(evaluation, fingerprints):
    for claim_id, draws in DRAWS.items():
        claim = next(c for c in evaluation.suite.claims if c.id == claim_id)
        result = next(r for r in evaluation.results if r.claim_id == claim_id)
        before = {}
        for fragment, change in draws:
            if fragment not in before:
                before[fragment] = _draw(claim, result, evaluation, fragment).svg
            after = _draw(claim, _perturbed(result, change), evaluation, fragment).svg
            assert after != before[fragment], (claim_id, claim.kind, fragment, change.__name__)


def test_learning_curves_for_trend_ranking_ratio_and_arms_not_for_lr_or_timing_quantities(evaluation, fingerprints):
    titles = {r.claim_id: learning_curve_figure(c, r, evaluation)
              for c, r in zip(evaluation.suite.claims, evaluation.results)}
    with_curves = {cid for cid, f in titles.items() if f is not None}
    # K4 (argbest:lr / min_diverging:lr), K5 (a range width), K8 (time per step), K10 (widths): no curve shows them
    assert with_curves == {"K1", "K2", "K3", "K6", "K7", "K9", "K11"}, titles
    k11 = [s for part in next(r for r in evaluation.results if r.claim_id == "K11").strata for s in part.selected]
    assert {s["group"].split(":")[0] for s in k11} == {"num", "den"}
    assert all(s["quantity"] == "test_acc" for s in k11)
    claim = next(c for c in evaluation.suite.claims if c.id == "K1")
    svg = learning_curve_figure(claim, next(r for r in evaluation.results if r.claim_id == "K1"), evaluation).svg
    assert all(f"batch_size={b}" in svg for b in (8, 32, 128))  # one line per level


def test_every_result_names_the_method_of_its_estimates(evaluation):
    for r in evaluation.results:
        for part in r.strata or [r]:
            if r.kind in ("ratio_in_range", "timing_ratio"):
                assert part.band is not None  # the ratio figure's band comes from the result, undecided too
                continue
            assert part.estimates, r.claim_id
            assert all(e["method"] and {"group", "mean", "lo", "hi", "n"} <= set(e) for e in part.estimates)


# ------------------------------------------------------------------ critical_batch and linear_scaling

def test_scaling_figures_draw_the_grid_edges_and_margin_the_claim_used(fingerprints):
    from tests.claims.test_scaling import critical, linear, linear_frame, scaling_frame
    frame = scaling_frame(noise=200)
    result = critical(frame)
    claim = Claim("T-B4", "critical_batch", "6", "a B4 claim", KINDS["critical_batch"].resolve_params({}))
    ev = SimpleNamespace(frame=frame, curves=lambda: pd.DataFrame())
    assert result.figure_data["lr_grid"] == [float(frame["lr"].min()), float(frame["lr"].max())]
    before = {f.title: f.svg for f in FIGURES["critical_batch"](claim, result, ev)}

    def moved(r):
        r.figure_data = {**r.figure_data, "lr_grid": [1e-5, 10.0]}
    after = {f.title: f.svg for f in FIGURES["critical_batch"](claim, _perturbed(result, moved), ev)}
    lr_title = next(t for t in before if t.startswith("optimal"))
    assert after[lr_title] != before[lr_title]

    b5 = linear(linear_frame(), min_k=8)
    claim = Claim("T-B5", "linear_scaling", "6", "a B5 claim", KINDS["linear_scaling"].resolve_params({"min_k": 8}))
    assert b5.band == {"kind": "greater", "support": -0.01, "refute": -0.01, "log": False}
    before = FIGURES["linear_scaling"](claim, b5, ev)[0].svg
    assert FIGURES["linear_scaling"](claim, _perturbed(b5, _band), ev)[0].svg != before
    assert FIGURES["linear_scaling"](claim, _perturbed(b5, lambda r: setattr(
        r, "data", _bump_rows(r.data, {"mean", "lo", "hi"}))), ev)[0].svg != before
    assert {s["group"].split(":")[0] for s in b5.selected} == {"warmup", "none"}


def test_a_kind_and_its_figure_register_where_they_are_defined():
    """One claims module plus one figure module: importing the packages imports every module of each, and
    each kind and figure function comes from its own module (no list to edit elsewhere)."""
    import pkgutil
    import sys

    import claimbench.claims as claims_pkg
    for pkg in (claims_pkg, figures_pkg):
        for m in pkgutil.iter_modules(pkg.__path__):
            assert f"{pkg.__name__}.{m.name}" in sys.modules, m.name
    assert all(k.evaluate.__module__.startswith("claimbench.claims.") for k in KINDS.values())
    assert all(fn.__module__.startswith("claimbench.report.figures.") for fn in FIGURES.values())


def test_long_arm_names_wrap_in_ticks_and_titles_within_their_line_budget():
    from claimbench.report.figures.panels import arm_tick, panel_heading, wrap
    arm = "|".join(f"batch_size={b},optimizer=adam,beta2=0.9999{b}" for b in (1, 2, 4))  # B6's combined arm
    tick = arm_tick(arm)
    lines = tick.split("\n")
    assert len(lines) == 5 and lines[-1].endswith("…") and all(len(x) <= 26 for x in lines)
    assert lines[0] == "batch_size=1,"  # broken at the separators, not inside a level
    assert arm_tick("optimizer=sgd") == "optimizer=sgd"
    assert wrap("a b c d", 3, max_lines=2) == "a b\nc d" and wrap("a b c d e", 3, max_lines=2) == "a b\nc d …"
    from matplotlib.figure import Figure
    ax = Figure().subplots()
    panel_heading(ax, "a = " + arm.replace("|", ", "), "arms")
    title = ax.get_title()
    assert 1 < len(title.split("\n")) <= 3 and ax.title.get_fontsize() == 8
    panel_heading(ax, "", "arms")
    assert ax.get_title() == "arms" and ax.title.get_fontsize() == 9.5


def test_claims_about_a_tuned_value_get_its_picture_drawn_from_their_own_points(evaluation, fingerprints):
    from claimbench.report.figures.curves import tuned_value_figure

    drawn = {}
    for claim, result in zip(evaluation.suite.claims, evaluation.results):
        figure = tuned_value_figure(claim, result, evaluation)
        if figure is not None:
            drawn[claim.id] = (claim, result, figure)
    assert "K9" in drawn  # best_level_in_range tunes lr within each batch size
    claim, result, figure = drawn["K9"]
    parts = result.strata or [result]
    for part in parts:  # one circle per level and seed the claim picked, in each panel
        points = part.figure_data["tuned_points"]
        assert points["axis"] == "lr" and "against the tuned lr" in figure.title
        picks = [(p["group"], p["seed"]) for p in points["points"] if p["selected"]]
        assert len(picks) == len(set(picks)) == len(part.selected)

    def moved(r):
        points = r.figure_data["tuned_points"]
        r.figure_data = {**r.figure_data, "tuned_points": {**points, "points": [
            {**p, "metric": _bump(p["metric"])} for p in points["points"]]}}

    assert tuned_value_figure(claim, _perturbed(result, moved), evaluation).svg != figure.svg
