"""The HTML report, built from a fake run dir (records written through the store, no training)."""

from __future__ import annotations

import copy
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from claimbench.api import evaluate_run, evaluate_target
from claimbench.report import FIGURES, render_html, write_report
from claimbench.report.figures import base as figures_base
from claimbench.report.figures import figures_for
from claimbench.store.rundir import RunStore
from claimbench.suite import Suite, expand, parse_suite
from claimbench.trial import TrialRecord, TrialStatus
from claimbench.workloads.builtin import TrialSpec

EVIL = "<script>alert(1)</script>"

RAW = {
    "suite": {"name": "fake_batch", "title": f"Batch size {EVIL} & friends",
              "description": "Fake records written straight to the store & never trained.", "seeds": 3,
              "faq_sections": [6]},
    "workload": {"dataset": "mnist1d", "model": "mlp", "n_samples": 1000},
    "train": {"optimizer": "sgd", "momentum": 0.9, "evals": 4},
    "budget": {"epochs": 2},
    "axes": {
        "batch_size": {"role": "scientific", "values": [4, 16, 64, 256]},
        "lr": {"role": "nuisance", "values": [0.001, 0.01, 0.1, 1.0]},
        "budget": {"role": "fixed", "values": [{"epochs": 2}, {"steps": 100}]},
    },
    "claims": [
        {"id": "B2", "kind": "best_level_in_range", "faq_section": 6,
         "paraphrase": f"Small batches {EVIL} & 2 to 32 examples generalize best.",
         "params": {"axis": "batch_size", "low": 2, "high": 32}},
        {"id": "B3", "kind": "range_width_trend", "faq_section": "6",
         "paraphrase": "The larger the batch, the narrower the range of good learning rates.",
         "params": {"axis": "batch_size", "range_axis": "lr", "tolerance": 0.02}},
    ],
}
#: the kind's own figures, plus the common tuned-value figure where the claim tunes lr within its levels
FIGURES_PER_CLAIM = {"best_level_in_range": 3, "range_width_trend": 2}


def fake_record(spec: TrialSpec) -> TrialRecord:
    """A plausible outcome: the best LR grows with the batch, too large an LR diverges, one cell
    diverges in one seed only; accuracies carry seed noise."""
    b, lr = spec.batch_size, spec.lr
    rng = np.random.default_rng([spec.seed, b, int(round(1000 * lr)), spec.steps])
    diverges = lr >= 1.0 and b <= 64 or (lr >= 1.0 and spec.seed == 0) or (lr == 0.1 and b == 4 and spec.seed == 1)
    steps = spec.steps or spec.epochs * 25
    if diverges:
        return TrialRecord(trial_id=spec.trial_id, spec=spec.to_dict(), status=TrialStatus.DIVERGED,
                           diverged_step=int(steps // 3), divergence_reason="loss above 10x its initial value",
                           steps_done=int(steps // 3), wall_s=0.1)
    best_lr = 0.01 * math.sqrt(b / 4)
    budget_bonus = 0.012 * math.log2(b / 16) if spec.steps else 0.0
    val = 0.80 - 0.015 * abs(math.log2(b / 16)) - 0.10 * math.log10(lr / best_lr) ** 2 + budget_bonus
    val += rng.normal(0, 0.004)
    test = val + rng.normal(0, 0.004)
    metrics = {"train_loss": 0.5, "train_acc": val + 0.05, "val_loss": 0.6, "val_acc": val,
               "test_loss": 0.6, "test_acc": test}
    return TrialRecord(trial_id=spec.trial_id, spec=spec.to_dict(), status=TrialStatus.COMPLETED,
                       metrics=metrics, steps_done=steps, best_step=steps, wall_s=0.2,
                       time_per_step_s=0.001, examples_per_s=1000.0)


def build_run(run_dir: Path, raw: dict = RAW, records: bool = True) -> Suite:
    suite = parse_suite(copy.deepcopy(raw), "test.toml", "default")
    store = RunStore(run_dir)
    env = {"python": "3.11.7", "platform": "Linux-test", "cpu": "Test CPU <b>", "cpu_count": 2, "gpus": [],
           "packages": {"numpy": "2.0", "torch": None}, "git_sha": "abc123", "command": "claimbench run x"}
    store.init(suite, f"claimbench run test.toml --out '{run_dir}' && echo {EVIL}", env)
    if records:
        for spec in expand(suite):
            store.append(fake_record(spec))
    return suite


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("run")
    build_run(run_dir)
    return run_dir


@pytest.fixture(scope="module")
def evaluation(run):
    return evaluate_run(run)


@pytest.fixture(scope="module")
def html(evaluation) -> str:
    return render_html(evaluation)


def _section(html: str, anchor: str) -> str:
    start = html.index(f'id="{anchor}"')
    end = html.find("<section", start)
    return html[start:end if end > 0 else len(html)]


def test_fake_run_has_diverged_and_partially_diverged_cells(evaluation):
    frame = evaluation.frame
    assert len(frame) == len(expand(evaluation.suite))
    assert (frame["status"] == "diverged").any() and (frame["status"] == "completed").any()
    per_cell = frame.groupby(["budget", "batch_size", "lr"])["status"].apply(lambda s: (s == "diverged").mean())
    assert ((per_cell > 0) & (per_cell < 1)).any()


def test_verdict_table_has_a_row_per_claim_with_strata(html, evaluation):
    table = _section(html, "cb-verdicts")
    for result in evaluation.results:
        assert re.search(rf'<tr>\s*<td class="id"><a href="#{result.claim_id}">{result.claim_id}</a></td>', table)
        assert f'<span class="badge {result.verdict}">{result.verdict}</span>' in table
    assert table.count('<tr class="stratum">') == sum(len(r.strata) for r in evaluation.results) == 4
    for claim in evaluation.suite.claims:
        assert f'<section class="claim ' in html and f'id="{claim.id}"' in html


def test_one_svg_per_expected_figure_and_each_is_well_formed(html, evaluation):
    expected = sum(FIGURES_PER_CLAIM[c.kind] for c in evaluation.suite.claims)
    assert html.count("<svg") == expected + 1  # and the overview at the top
    for svg in re.findall(r"<svg\b.*?</svg>", html, flags=re.S):
        ET.fromstring(svg)  # inline SVG is well-formed XML: no prolog, no DOCTYPE left behind
    for claim in evaluation.suite.claims:
        assert _section(html, claim.id).count("<svg") == FIGURES_PER_CLAIM[claim.kind]
    ids = re.findall(r'\sid="([^"]*)"', html)
    assert len(ids) == len(set(ids))  # figures share no id with each other or with the anchors
    for ref in re.findall(r'(?:url\(#|href="#)([^)"]+)', html):
        assert ref in ids or ref in {c.id for c in evaluation.suite.claims}


def test_figures_are_deterministic(evaluation, html):
    claim = evaluation.suite.claims[1]
    result = next(r for r in evaluation.results if r.claim_id == claim.id)
    for figure in figures_for(claim, result, evaluation):  # drawn again: the same bytes, so a rebuilt report diffs clean
        assert figure.svg in html


def test_no_script_and_no_network_reference(html):
    assert not re.search(r"<\s*script", html, flags=re.I)
    # clip paths refer to ids in the same SVG: url(#...) is local
    assert not re.search(r"<link\b|<img\b|<iframe\b|@import|url\((?!#)", html, flags=re.I)
    for ref in re.findall(r'href="([^"]*)"', html):  # links within the page, or inline data (colour bars)
        assert ref.startswith(("#", "data:image/png;base64,")), ref
    without_ns = re.sub(r'\sxmlns(:\w+)?="[^"]*"', "", html)
    urls = [u for u in re.findall(r"(?:https?:)?//[\w.-]+\.\w+[^\s\"'<>]*", without_ns) if "www.w3.org" not in u]
    assert urls == []


def test_suite_and_run_strings_are_escaped(html):
    assert EVIL not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4  # title, heading, paraphrase x2, command
    assert "Test CPU &lt;b&gt;" in html
    assert "&amp; friends" in html and " & friends" not in html
    assert "<title>Batch size &lt;script&gt;" in html


def test_claim_section_contents(html):
    b2 = _section(html, "B2")
    for text in ("best mean metric inside the range", "paired Student t bounds", "budget = epochs=2",
                 "budget = steps=100", "Data behind the figure", "Caveats", "claimbench run test.toml"):
        assert text in b2, text
    methodology = _section(html, "cb-methodology")
    assert re.search(r"<th>diverged</th><td class=\"num\">\d+</td>", methodology)
    assert "scientific" in methodology and "nuisance" in methodology and "epochs=2, steps=100" in methodology
    assert "Test CPU" in _section(html, "cb-environment")


def test_write_report_writes_where_asked(run, tmp_path, monkeypatch):
    import claimbench.report.html as report_html
    monkeypatch.setattr(report_html, "render_html", lambda evaluations, group=None: f"<!DOCTYPE html>{evaluations[0].suite.name}")
    out = tmp_path / "nested" / "r.html"
    path = write_report(run, evaluate_target(run), out)
    assert path == out and out.read_text(encoding="utf-8") == "<!DOCTYPE html>fake_batch"
    default = write_report(run, evaluate_target(run))
    assert default == run / "report.html" and default.is_file()
    assert not list(run.glob(".report.html.*.tmp"))  # the atomic write leaves no temporary file


def test_kind_without_figures_still_renders(evaluation, monkeypatch):
    for kind in FIGURES_PER_CLAIM:  # no figure function for any kind: every section still renders
        monkeypatch.delitem(FIGURES, kind)
    monkeypatch.setattr(figures_base, "COMMON_FIGURES", [])  # nor the figures every kind may get
    html = render_html(evaluation)
    assert "<svg" not in html[html.index('id="cb-verdicts"'):]  # only the overview, which is no kind's
    for claim in evaluation.suite.claims:
        section = _section(html, claim.id)
        assert "Data behind the figure" in section and "Caveats" in section


def test_a_failing_figure_is_reported_not_raised(evaluation, monkeypatch):
    def broken(claim, result, evaluation):
        raise ValueError(f"cannot draw {EVIL}")
    monkeypatch.setitem(FIGURES, "range_width_trend", broken)
    monkeypatch.delitem(FIGURES, "best_level_in_range")
    html = render_html(evaluation)
    assert "The figure could not be drawn: ValueError: cannot draw &lt;script&gt;" in _section(html, "B3")
    assert "could not be drawn" not in _section(html, "B2")
    assert EVIL not in html


def test_run_without_records_renders(tmp_path):
    build_run(tmp_path / "empty", records=False)
    html = write_report(tmp_path / "empty", evaluate_run(tmp_path / "empty")).read_text(encoding="utf-8")
    assert "<svg" not in html
    for claim_id in ("B2", "B3"):
        assert re.search(rf'<td class="id"><a href="#{claim_id}">{claim_id}</a></td>', html)
    assert "not evaluated" in html


# ------------------------------------------------------------------ numbers in their unit

@pytest.mark.parametrize("value, unit, text", [
    (0.000667, "accuracy", "+0.001"), (-0.0637, "accuracy", "-0.064"), (533.333, "steps", "+533"),
    (12345.6, "examples", "+12,346"), (21.544, "ratio", "21.5×"), (2.92e-10, "ratio", "2.92e-10×"),
    (1024.0, "examples per batch", "1,024"), (0.4222, "Kendall tau", "+0.42"), (0.0, "accuracy", "0"),
    (-0.0, "Spearman rho", "0"), (0.5537, "log2 units", "+0.55"), (None, "ratio", "—"),
])
def test_effects_print_per_unit(value, unit, text):
    from claimbench.report import format as fmt
    assert fmt.in_unit(value, unit, fmt.unit_is_signed(unit)) == text


def test_claimed_band_reads_in_the_effect_unit():
    from claimbench.analysis.inference import Hypothesis
    from claimbench.claims.base import band_of
    from claimbench.report import format as fmt
    assert fmt.claimed(band_of(Hypothesis.greater(0.01, 0.0)), "accuracy") == "> +0.010 (refuted < 0)"
    assert fmt.claimed(band_of(Hypothesis.band(math.log(0.25), math.log(1.0)), log=True), "ratio") == "in [0.25×, 1×]"
    assert fmt.claimed(band_of(Hypothesis.band(math.log(2), math.inf), log=True), "ratio") == "≥ 2×"
    assert fmt.claimed(None, "ratio") == "—"


def test_verdict_table_has_unit_and_claimed_columns(html):
    head = re.search(r'<table class="verdicts">.*?</thead>', html, re.S).group(0)
    assert "<th>Unit · claimed</th>" in head
    assert re.search(r'<span class="claimed">claimed (&gt;|&lt;|in \[|≥)', html)


def test_ticks_and_table_columns_keep_their_digits():
    from claimbench.report import format as fmt
    assert [fmt.tick(v) for v in (1024, 1000.0, 512, 0.5, 2.5)] == ["1024", "1000", "512", "0.5", "2.5"]
    # a column of different estimates (B_crit 277, a ratio 0.78, an exponent 0.892) is not rounded to one
    # number of decimals
    assert fmt.column([277.2, 0.7761, 0.892, None]) == ["277.2", "0.7761", "0.892", "—"]


def test_records_of_different_shapes_are_separate_tables():
    from claimbench.claims.base import ClaimResult
    from claimbench.report.html import _tables
    r = ClaimResult(claim_id="X", kind="critical_batch", verdict="supported", statistic="", effect=1.0, ci=(0.5, 2.0),
                    n_seeds=3, n_trials=9, method="", summary="",
                    data=[{"level": 4, "steps": 100.0}, {"level": 8, "steps": 52.0},
                          {"estimate": "B_crit", "value": 277.2}, {"estimate": "exponent", "value": 0.892}])
    tables = _tables(r, {})
    assert [[c["header"] for c in t["columns"]] for t in tables] == [["level", "steps"], ["estimate", "value"]]
    assert [row for g in tables[1]["groups"] for row in g["rows"]] == [["B_crit", "277.2"], ["exponent", "0.892"]]


# ------------------------------------------------------------------ the summary forest plot

def _result(effect, ci, band, mde=None, verdict="inconclusive"):
    from claimbench.claims.base import ClaimResult
    return ClaimResult(claim_id="X", kind="k", verdict=verdict, statistic="", effect=effect, ci=ci, n_seeds=3,
                       n_trials=9, method="", summary="", band=band, mde=mde)


def test_forest_places_each_effect_against_its_own_rule():
    from claimbench.analysis.inference import Hypothesis
    from claimbench.claims.base import band_of
    from claimbench.report.figures.summary import relative
    # a ratio band [0.5, 2] on the log scale: its ends at 0 and 1, the geometric middle (1x) at 0.5
    p = relative(_result(1.0, (0.5, 2.0), band_of(Hypothesis.band(math.log(0.5), math.log(2.0)), log=True)))
    assert (p.lo, p.point, p.hi) == pytest.approx((0.0, 0.5, 1.0)) and p.claimed == (0.0, 1.0)
    # superiority with a margin: refute (0) at 0, support (0.01) at 1
    p = relative(_result(0.02, (0.01, 0.03), band_of(Hypothesis.greater(0.01, 0.0))))
    assert (p.lo, p.point, p.hi) == pytest.approx((1.0, 2.0, 3.0)) and not p.scaled_by_mde
    # "less" is mirrored (right is the claim's side); no margin: one unit is the detectable effect
    p = relative(_result(-0.5, (-0.8, -0.2), band_of(Hypothesis.less(0.0)), mde=0.25))
    assert (p.lo, p.point, p.hi) == pytest.approx((0.8, 2.0, 3.2)) and p.scaled_by_mde
    assert relative(_result(None, None, band_of(Hypothesis.greater(0.0)))) is None


def test_report_opens_with_the_overview_figure(html):
    start = html.index('id="cb-overview"')
    assert start < html.index('id="cb-verdicts"')
    section = html[start:html.index('id="cb-verdicts"')]
    assert "<svg" in section and "Every claim against its decision rule" in section
