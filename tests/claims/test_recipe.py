"""docs/extending.md's claim-kind recipe: a kind and its figure come from two test-local files, with no edit
anywhere in claimbench, and the whole path takes them: a suite names the kind, a run trains it, the verdict
comes from it, the report draws its figure, and `claimbench calibrate` measures it from its own scenario."""

from __future__ import annotations

import importlib
import sys

import pytest

from claimbench.claims import KINDS
from claimbench.report.figures import FIGURES

SUITE = """
[suite]
name = "recipe"
seeds = 2

[workload]
dataset = "teacher"
n_samples = 300
depth = 1
width = 8

[train]
evals = 2

[budget]
steps = 20

[axes.lr]
role = "nuisance"
values = [0.05, 0.2]

[[claims]]
id = "R1"
kind = "best_accuracy_above"
faq_section = 0
paraphrase = "The tuned model beats chance."
params = { threshold = 0.05 }
"""


@pytest.fixture
def recipe():
    """The two recipe modules imported (registering the kind and its figure), removed afterwards."""
    names = ("tests.claims.recipe_kind", "tests.claims.recipe_figure")
    modules = [importlib.import_module(n) for n in names]
    yield modules
    KINDS.pop("best_accuracy_above", None)
    FIGURES.pop("best_accuracy_above", None)
    for n in names:
        sys.modules.pop(n, None)


def test_a_claim_kind_and_its_figure_from_two_files(recipe, write_suite, tmp_path, one_thread):
    from claimbench.api import evaluate_run, run_suite
    from claimbench.report import write_report
    from claimbench.suite import load_suite

    suite = load_suite(write_suite(SUITE), "default")
    out = tmp_path / "run"
    run_suite(suite, out, executor="local", progress=False)
    ev = evaluate_run(out)
    [result] = ev.results
    assert result.kind == "best_accuracy_above" and result.n_seeds == 2 and result.unit == "test_acc"
    assert result.verdict in ("supported", "refuted", "inconclusive") and result.p_supported is not None
    html = write_report(out, [ev]).read_text(encoding="utf-8")
    assert "Best test accuracy per seed" in html and "<svg" in html


def test_calibrate_measures_a_new_kind_from_the_scenario_it_carries(recipe):
    from claimbench import calibrate

    assert "best_accuracy_above" in calibrate.scenario_kinds()
    rows = calibrate.run(["best_accuracy_above"], seeds=(5,), reps=60)
    null, effect = rows
    assert null.null and null.supported <= 0.15 and not effect.null
    assert effect.power is not None and effect.power > null.supported
