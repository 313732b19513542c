"""Expansion: a suite's matrix as trials, settings without effect collapsed into one trial."""

from __future__ import annotations

from claimbench.suite import expand, load_suite
from claimbench.workloads.builtin import TrialSpec
from tests.conftest import TINY_SUITE


def test_expands_axes_times_seeds(tiny_suite_path):
    suite = load_suite(tiny_suite_path)
    specs = expand(suite)
    assert len(specs) == 3 * 3 * 2
    assert {s.batch_size for s in specs} == {4, 16, 64}
    assert {s.seed for s in specs} == {0, 1}
    assert all(s.steps == 30 and s.dataset == "teacher" and s.momentum == 0.9 for s in specs)
    assert len({s.trial_id for s in specs}) == len(specs)


def test_budget_axis_of_tables(write_suite):
    text = TINY_SUITE.replace("[budget]\nsteps = 30", "[budget]\nsteps = 30\n\n[axes.budget]\nrole = \"fixed\"\n"
                              "values = [{ epochs = 1 }, { steps = 20 }]")
    suite = load_suite(write_suite(text))
    specs = expand(suite)
    assert {(s.epochs, s.steps) for s in specs} == {(1, 0), (0, 20)}
    assert suite.design().fixed == ("budget",)
    assert "steps" not in suite.design().constants


def test_settings_without_effect_collapse_into_one_trial(write_suite):
    text = TINY_SUITE.split("[tiers.smoke]")[0].replace(
        "[axes.batch_size]\nrole = \"scientific\"\nvalues = [4, 16, 64]",
        "[axes.kind]\nrole = \"scientific\"\nvalues = [\"train\", \"range_test\"]\n\n"
        "[axes.momentum]\nrole = \"scientific\"\nvalues = [0.0, 0.9]\n\n"
        "[axes.nesterov]\nrole = \"scientific\"\nvalues = [false, true]")
    specs = expand(load_suite(write_suite(text)))
    # per seed: train: 3 lrs x (momentum 0 | 0.9 classical | 0.9 nesterov); range_test ignores lr: 1 x 3
    assert len(specs) == 2 * (3 * 3 + 3)
    assert len({s.trial_id for s in specs}) == len(specs)
    assert {s.lr for s in specs if s.kind == "range_test"} == {TrialSpec(steps=1).lr}
    assert not any(s.nesterov and s.momentum == 0 for s in specs)
