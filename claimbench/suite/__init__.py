"""Suites: TOML files -> validated ``Suite`` -> ``expand()`` -> [TrialSpec].

A suite is data, never code. Layout (see suites/batch_size.toml and
claimbench/suite.schema.json)::

    [suite]       name, title, description, seeds (a count or a list)
    [workload]    name (a registered workload; default "claimbench", the built-ins: dataset, model
                  and their parameters), and the parameters the workload declares
    [train]       optimizer, schedule, clipping, early stopping, evaluation
    [budget]      epochs = N  or  steps = N
    [axes.NAME]   role = scientific | nuisance | fixed;
                  values = [...]  or  logspace = {start, stop, num}
                  (a value may be a table that sets several parameters,
                  e.g. values = [{epochs = 10}, {steps = 2000}] for axis "budget")
    [tiers.T]     seeds, budget, params, axes: overrides for tier T
    [resources]   cpus_per_trial, gpus_per_trial: one Ray slot per trial (run-level; not in trial ids)
    [limits]      raise a size limit for this suite (claimbench/limits.py), e.g. trials = 200000
    [[claims]]    id, kind, faq_section, paraphrase, params;
                  check = {gate, track, tolerance, direction}: how `claimbench check` gates it

A suite names a registered workload, never a module path: loading it imports the installed package
that registers the name (workloads/registry.py) and executes nothing from the suite. Another
workload's suite sets its declared parameters (validated by their ``Param`` rules) and only the
built-in settings that workload reads (its ``uses``, and for a training function the settings its
trial policy implements; workloads/spec.py); its code fingerprint is resolved here (``Suite.code``)
and goes into every trial id.

Every problem is a ``SuiteError`` naming the file and the key. Names (suite, group, claim id) are
names, never paths (``paths.check_name``); every size is checked against ``limits.py`` before the
matrix is expanded.

The modules: ``model`` (the types and the keys a suite file may use), ``load`` (finding and reading suite
and group files), ``validate`` (a TOML table -> ``Suite``), ``expansion`` (``Suite`` -> [TrialSpec]) and
``schema`` (the JSON Schema of suite files).
"""

from __future__ import annotations

from claimbench.suite.model import (BUDGET_KEYS, DIRECTIONS, FUTILITY, FUTILITY_FROM, GATES, HALVE, INTERNAL, LOOKS, PRUNE,
                                    ROLES, SECTIONS, TIERS, TRACKABLE, Axis, ClaimCheck, Group, Rules, Suite)
from claimbench.suite.expansion import TIMED_KINDS, canonical, expand
from claimbench.suite.load import (group_names, load_group, load_suite, load_targets, read_toml, recorded_suite,
                                   resolve_published_suite, resolve_suite_path, suite_names, suites_dir)
from claimbench.suite.schema import json_schema
from claimbench.suite.validate import check_fault_limits, check_specs, parse_suite

__all__ = [
    "BUDGET_KEYS", "DIRECTIONS", "FUTILITY", "FUTILITY_FROM", "GATES", "HALVE", "INTERNAL", "LOOKS", "PRUNE", "ROLES", "Rules", "SECTIONS", "TIERS", "TIMED_KINDS", "TRACKABLE", "Axis",
    "ClaimCheck", "Group", "Suite", "canonical", "check_fault_limits", "check_specs", "expand", "group_names", "json_schema", "load_group",
    "load_suite", "load_targets", "parse_suite", "read_toml", "recorded_suite", "resolve_published_suite", "resolve_suite_path",
    "suite_names", "suites_dir",
]
