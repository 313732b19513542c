"""Abuse of the CI gate: a baseline file that is damaged or no longer describes its suite is refused in
one line (exit 2), before any training; a fuzzed one is read or refused, never a traceback."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claimbench.check.baseline import BaselineError, baseline_for, matrix_fingerprint, read_baseline
from claimbench.suite import load_suite
from tests.conftest import TINY_SUITE, assert_refused, cli, write


def baseline_data(suite, **entry_changes) -> dict:
    """A valid baseline of ``suite`` (every claim supported, an effect tracked over 3 seeds), edited by ``entry_changes``."""
    claims = {c.id: {"kind": c.kind, "verdict": "supported", "effect": 0.1, "ci": [0.0, 0.2], "n_seeds": 3,
                     "n_trials": 10, "tracked": {"effect": {"seeds": [0, 1, 2], "values": [0.1, 0.1, 0.1],
                                                            "tolerance": 0.05}}} for c in suite.claims}
    entry = {"tier": suite.tier, "matrix": matrix_fingerprint(suite), "claims": claims, **entry_changes}
    return {"schema": 1, "kind": "claimbench-baseline", "suites": {suite.name: {suite.tier: entry}}}


def _edit_b2(**changes):
    def edit(data):
        data["suites"]["tiny"]["ci"]["claims"]["B2"].update(changes)
    return edit


def _tracked(values):
    return _edit_b2(tracked={"effect": {"seeds": [0, 1, 2], "values": values, "tolerance": 0.05}})


@pytest.mark.parametrize("edit, expected", [
    (_tracked([1e308, 1e308, 1e308]), "values[0]: must be finite and at most"),
    (_tracked(["0.1", 0.1, 0.1]), "must be a number or null, got str"),
    (_tracked([[0.1], 0.1, 0.1]), "must be a number or null, got list"),
    (_tracked([float("nan"), 0.1, 0.1]), "must be finite"),
    (_edit_b2(ci=5), "must be a pair"),
    (_edit_b2(ci=[0.1, 0.2, 0.3]), "must be a pair"),
    (_edit_b2(effect=float("inf")), "claims.B2.effect"),
    (_edit_b2(effect="big"), "claims.B2.effect"),
    (lambda d: d["suites"]["tiny"]["ci"].update(claims={}), "\"claims\" is empty"),
    (lambda d: d["suites"]["tiny"]["ci"]["claims"].pop("B3"), "no baseline for claim B3"),
    (lambda d: d["suites"]["tiny"]["ci"]["claims"].update(B9=d["suites"]["tiny"]["ci"]["claims"]["B2"]),
     "B9 of the baseline is no longer in the suite"),
    (lambda d: d["suites"]["tiny"]["ci"].update(matrix="0123456789abcdef"), "trial matrix"),
    (lambda d: d["suites"]["tiny"]["ci"].pop("matrix"), "no trial-matrix fingerprint"),
])
def test_the_gate_fails_closed_before_any_training(here, write_suite, edit, expected):
    path = write_suite(TINY_SUITE.replace("[tiers.smoke]", "[tiers.ci]\nseeds = 3\n\n[tiers.smoke]"), "tiny.toml")
    suite = load_suite(path, "ci")
    data = baseline_data(suite)
    read_baseline(write(here / "ok.json", json.dumps(data)))
    assert baseline_for(data, suite, "ok.json")  # the unedited baseline passes
    edit(data)
    bad = here / "bad.json"
    bad.write_text(json.dumps(data))  # json writes NaN/Infinity as such: a hand-edited file can hold them
    with pytest.raises(BaselineError):
        baseline_for(read_baseline(bad), suite, bad)
    code, out, err = cli("check", str(path), "--baseline", str(bad), "--executor", "local", "--quiet",
                         "--out", str(here / "never"))
    assert_refused(code, err, str(bad), expected)
    assert not (here / "never").exists() and "holds" not in out


@settings(database=None, max_examples=100, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                    max_leaves=15))
def test_fuzzed_baselines_are_read_or_refused_in_one_line(tmp_path, value):
    path = tmp_path / "b.json"
    data = {"schema": 1, "kind": "claimbench-baseline", "suites": {"tiny": {"ci": {
        "matrix": "x", "claims": {"B2": {"verdict": "supported", "tracked": {}, "effect": value}}}}}}
    for doc in (data, value):
        path.write_text(json.dumps(doc))
        try:
            read_baseline(path)
        except BaselineError as e:
            assert "\n" not in str(e)
