"""The CI gate: `claimbench baseline` and `claimbench check` on a tiny suite (local executor).

One baseline is written per module; each test checks against it (or a copy edited
to differ) in its own out dir unless it tests reuse.
"""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from claimbench.check.baseline import read_baseline, update_baseline
from claimbench.check.gate import compare_values
from tests.conftest import cli
from claimbench.errors import SuiteError, UserError
from claimbench.runner.faults import as_trial, corrupted, parse_faults
from claimbench.suite import load_suite
from claimbench.workloads.builtin import TrialSpec
from tests.conftest import TINY_SUITE

# TINY_SUITE with 3 seeds (a tracked quantity needs 3 to be judged), a ci tier, and check tables:
# B2's verdict is gated on any change and its effect and tuned test accuracy are tracked.
CHECKED_SUITE = TINY_SUITE.replace("seeds = 2", "seeds = 3").replace(
    'params = { axis = "batch_size", low = 2, high = 32 }',
    'params = { axis = "batch_size", low = 2, high = 32 }\n'
    'check = { gate = "decided", track = ["effect", "test_acc"], tolerance = { effect = 0.05, test_acc = 0.02 }, '
    'direction = { test_acc = "decrease" } }',
).replace("[tiers.smoke]", "[tiers.ci]\nseeds = 3\n\n[tiers.smoke]")




@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """The suite file, its check out dir (trained once) and a baseline written from it."""
    root = tmp_path_factory.mktemp("check")
    suite = root / "tiny.toml"
    suite.write_text(textwrap.dedent(CHECKED_SUITE), encoding="utf-8")
    baseline = root / "baseline.json"
    code, out, err = cli("baseline", str(suite), "-o", str(baseline), "--executor", "local", "--quiet",
                         "--out", str(root / "runs"))
    assert code == 0, err
    assert f"baseline: {baseline}" in out
    return {"root": root, "suite": suite, "baseline": baseline, "runs": root / "runs"}


def check(made, baseline, out, *extra):
    return cli("check", str(made["suite"]), "--baseline", str(baseline), "--executor", "local", "--quiet",
               "--out", str(out), *extra)


def parse_junit(path: Path) -> ET.Element:
    """The JUnit XML, parsed by xml.etree and (when installed) by junitparser, a standard JUnit reader."""
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    for suite in root.iter("testsuite"):
        cases = suite.findall("testcase")
        assert int(suite.get("tests")) == len(cases)
        assert int(suite.get("failures")) == sum(c.find("failure") is not None for c in cases)
        for c in cases:
            assert c.get("name") and c.get("classname")
    try:
        import junitparser
    except ImportError:
        return root
    xml = junitparser.JUnitXml.fromfile(str(path))
    assert sum(s.tests for s in xml) == len(list(root.iter("testcase")))
    assert sum(s.failures for s in xml) == len(list(root.iter("failure")))
    return root


def test_baseline_file_holds_verdicts_per_seed_values_and_environment(made):
    data = read_baseline(made["baseline"])
    assert data["schema"] == 1 and data["kind"] == "claimbench-baseline"
    assert data["environment"]["packages"]["torch"]
    entry = data["suites"]["tiny"]["ci"]
    assert entry["tier"] == "ci" and entry["environment"]["python"] and entry["matrix"]
    b2 = entry["claims"]["B2"]
    assert b2["verdict"] in ("supported", "refuted", "inconclusive") and b2["n_seeds"] == 3
    assert b2["check"]["gate"] == "decided"
    assert b2["tracked"]["test_acc"]["seeds"] == [0, 1, 2] and len(b2["tracked"]["test_acc"]["values"]) == 3
    assert b2["tracked"]["effect"]["tolerance"] == 0.05
    assert entry["claims"]["B3"]["tracked"] == {}  # B3 tracks nothing


def test_check_passes_against_its_baseline_reusing_the_run(made, tmp_path, monkeypatch):
    summary = tmp_path / "step_summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, out, err = check(made, made["baseline"], made["runs"])
    assert code == 0, out + err
    assert "trained 0 now" in out  # the store's resume: nothing retrains
    assert "every claim holds" in out
    root = parse_junit(made["runs"] / "junit.xml")
    assert root.get("failures") == "0" and len(root.findall(".//testcase")) == 2
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n") and "claimbench check: 0 regressions in 2 claims" in text
    assert "| ✅ pass | tiny | B2 |" in text
    assert (made["runs"] / "summary.md").is_file() and (made["runs"] / "tiny" / "report.html").is_file()


def test_an_edited_baseline_verdict_fails_with_a_readable_junit_failure(made, tmp_path):
    data = json.loads(made["baseline"].read_text())
    now = data["suites"]["tiny"]["ci"]["claims"]["B2"]["verdict"]
    edited = "supported" if now != "supported" else "refuted"
    data["suites"]["tiny"]["ci"]["claims"]["B2"]["verdict"] = edited
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    junit = tmp_path / "junit.xml"
    code, out, err = check(made, path, made["runs"], "--junit", str(junit))
    assert code == 1, out + err
    assert "1 regression" in err
    root = parse_junit(junit)
    failures = root.findall(".//failure")
    assert len(failures) == 1
    message = failures[0].get("message")
    assert message.startswith(f"tiny B2 regressed: verdict {edited} -> {now}")
    assert "CI" in message and "\n" not in message


def test_broken_training_fails_on_verdict_and_tracked_accuracy(made, tmp_path, monkeypatch):
    # The fault trains every trial with its learning rate x 1e-5 (outside anything the LR grid can
    # absorb) but files it under its own trial id: a fresh out dir, so nothing is reused.
    monkeypatch.setenv("CLAIMBENCH_FAULTS", "corrupt:lr=1e-5")
    out_dir = tmp_path / "broken"
    code, out, err = check(made, made["baseline"], out_dir)
    assert code == 1, out + err
    assert "trained 27 now" in out
    failure = parse_junit(out_dir / "junit.xml").find(".//failure")
    assert failure is not None
    text = failure.text
    assert "test_acc: mean over seeds" in text and "beyond tolerance" in text
    assert "Student t interval over seeds" in text
    md = (out_dir / "summary.md").read_text(encoding="utf-8")
    assert "❌ regression" in md and "### Regressions" in md


@pytest.mark.parametrize("content, expected", [
    (None, "baseline file not found"),
    ("{not json", "not valid JSON"),
    ('{"schema": 1}', "not a claimbench baseline"),
    ('{"schema": 99, "kind": "claimbench-baseline", "suites": {}}', "baseline schema 99"),
    ('{"schema": 1, "kind": "claimbench-baseline", "suites": {}}', "no baseline for suite 'tiny' at tier 'ci'"),
    ('{"schema": 1, "kind": "claimbench-baseline", "suites": {"tiny": {"ci": {"claims": {"B2": {"verdict": "great"}}}}}}',
     "suites.tiny.ci.claims.B2.verdict"),
])
def test_missing_or_malformed_baseline_is_one_line_and_exit_2(made, tmp_path, content, expected):
    path = tmp_path / "baseline.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    code, out, err = check(made, path, tmp_path / "never")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("claimbench: error: ") and str(path) in lines[0]
    assert expected in lines[0] and "fix:" in lines[0]
    assert not (tmp_path / "never").exists()  # refused before any training


def test_a_tier_no_suite_defines_is_a_usage_error(made, tmp_path):
    code, out, err = cli("check", str(made["suite"]), "--baseline", str(made["baseline"]), "--tier", "full",
                         "--executor", "local", "--out", str(tmp_path / "never"))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "defines tier 'full'" in err and "fix: add [tiers.full]" in err
    assert not (tmp_path / "never").exists()


def test_baseline_keeps_entries_of_other_suites(made):
    data = read_baseline(made["baseline"])
    data["suites"]["other"] = {"ci": {"tier": "ci", "claims": {}}}
    entry = data["suites"]["tiny"]["ci"]
    merged = update_baseline(data, [("tiny", {**entry, "measured": "now"})], {"python": "x"})
    assert merged["suites"]["other"] == {"ci": {"tier": "ci", "claims": {}}}
    assert merged["suites"]["tiny"]["ci"]["measured"] == "now" and merged["environment"] == {"python": "x"}


# ------------------------------------------------------------------ the test over seeds

def values(xs):
    return {"seeds": list(range(len(xs))), "values": list(xs)}


def test_identical_values_hold_and_a_clear_drop_regresses():
    base = values([0.80, 0.82, 0.78, 0.81])
    assert compare_values("test_acc", base, base, 0.01).status == "ok"
    dropped = compare_values("test_acc", base, values([0.60, 0.63, 0.58, 0.61]), 0.01)
    assert dropped.status == "regression" and dropped.paired and dropped.ci[1] < -0.01
    assert "Student t" in dropped.text and "paired, n=4 seeds" in dropped.text


def test_noise_within_tolerance_holds_and_direction_is_respected():
    base = values([0.80, 0.82, 0.78, 0.81])
    noisy = compare_values("test_acc", base, values([0.81, 0.80, 0.80, 0.80]), 0.02)
    assert noisy.status == "ok"
    better = values([0.95, 0.96, 0.94, 0.95])
    assert compare_values("test_acc", base, better, 0.01, "decrease").status == "ok"
    assert compare_values("test_acc", base, better, 0.01, "both").status == "regression"


def test_one_noisy_number_is_never_judged():
    few = compare_values("effect", values([0.1, 0.2]), values([0.9, 0.95]), 0.01)
    assert few.status == "not judged" and "need 3" in few.text
    unpaired = compare_values("effect", {"seeds": [0, 1, 2], "values": [0.1, 0.12, 0.11]},
                              {"seeds": [3, 4, 5], "values": [0.5, 0.52, 0.49]}, 0.1)
    assert unpaired.status == "regression" and not unpaired.paired
    # identical values on 3 + 3 seeds: the exact test cannot reach 2.5% (p = 2^-5), so no certainty is claimed
    same = compare_values("effect", {"seeds": [0, 1, 2], "values": [0.1] * 3},
                          {"seeds": [3, 4, 5], "values": [0.5] * 3}, 0.1)
    assert same.status == "ok" and "within tolerance" in same.text


# ------------------------------------------------------------------ suite check tables and the fault

@pytest.mark.parametrize("check_table, where", [
    ('{ gate = "sometimes" }', "claims[0].check.gate"),
    ('{ track = ["effect"] }', "claims[0].check.tolerance"),
    ('{ track = ["accuracy"], tolerance = 0.1 }', "claims[0].check.track"),
    ('{ track = ["effect"], tolerance = { test_acc = 0.1 } }', "claims[0].check.tolerance.test_acc"),
    ('{ track = ["effect"], tolerance = -1 }', "claims[0].check.tolerance"),
    ('{ tolerance = 0.1, extra = 1 }', "claims[0].check.extra"),
    ('{ track = ["effect"], tolerance = 0.1, direction = "down" }', "claims[0].check.direction"),
    ('{ track = ["effect"], tolerance = 0.1, direction = { test_acc = "decrease" } }', "claims[0].check.direction.test_acc"),
])
def test_bad_check_tables_are_refused_naming_the_key(write_suite, check_table, where):
    text = TINY_SUITE.replace('params = { axis = "batch_size", low = 2, high = 32 }',
                              'params = { axis = "batch_size", low = 2, high = 32 }\n'
                              f'check = {check_table}')
    with pytest.raises(SuiteError) as e:
        load_suite(write_suite(text))
    assert where in str(e.value) and "fix:" in str(e.value) and "\n" not in str(e.value)


def test_check_tables_load_with_defaults(write_suite):
    suite = load_suite(write_suite(textwrap.dedent(CHECKED_SUITE)), "ci")
    assert suite.checks["B2"].track == ("effect", "test_acc") and suite.checks["B2"].tolerance["test_acc"] == 0.02
    assert suite.checks["B2"].direction == {"effect": "both", "test_acc": "decrease"}
    assert "B3" not in suite.checks
    again = type(suite).from_dict(json.loads(json.dumps(suite.to_dict())))
    assert again.checks == suite.checks


def test_corrupt_fault_trains_another_spec_under_the_same_trial_id():
    faults = parse_faults("corrupt:lr=0.5;corrupt:steps=0.1")
    spec = TrialSpec(lr=0.2, steps=100)
    trained = corrupted(faults, spec)
    assert trained.lr == pytest.approx(0.1) and trained.steps == 10 and trained.trial_id != spec.trial_id
    assert corrupted(parse_faults("corrupt:steps=0.5"), TrialSpec(epochs=3)).steps == 0  # unset stays unset
    from claimbench.trial import TrialRecord, TrialStatus
    record = TrialRecord(trial_id=trained.trial_id, spec=trained.to_dict(), status=TrialStatus.COMPLETED)
    filed = as_trial(record, spec)
    assert filed.trial_id == spec.trial_id and filed.spec["lr"] == 0.2
    for bad in ("corrupt:lr", "corrupt:seed=2", "corrupt:optimizer=2", "corrupt:lr=-1", "corrupt:lr=x"):
        with pytest.raises(UserError, match="corrupt:PARAM=FACTOR|corrupt:lr=0.01"):
            parse_faults(bad)
