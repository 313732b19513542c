"""Fail closed: every claim parameter checked at load through its kind's one declaration; `check` that fails
when trials failed, tracked values are missing or the evidence is smaller than the baseline's; a FIFO as a
baseline or a suite refused in one line; one writer per baseline file; bounded `-k` parsing. (The store's
part, records verified and storage errors as one line, is tests/store/test_fail_closed.py; trial timeouts
are tests/runner/.)"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest

from claimbench.claims import KINDS
from claimbench.claims.base import REQUIRED, ParamError
from tests.conftest import SMALL, TINY_SUITE, cli, one_line


# ---------------------------------------------------------------- claim parameters at load

def _filled(kind) -> dict:
    """The least a kind needs: a value for each required parameter that its declaration accepts."""
    out = {}
    for key, p in kind.params.items():
        if p.default is not REQUIRED:
            continue
        types = p.type if isinstance(p.type, tuple) else (p.type,)
        if p.metric:
            out[key] = "val_acc"
        elif p.choices:
            out[key] = p.choices[0]
        elif str in types:
            out[key] = "batch_size"
        elif dict in types:
            out[key] = {}
        elif list in types:
            out[key] = []
        else:
            out[key] = 1.0
    return out


FLOAT_PARAMS = [(name, key) for name, kind in sorted(KINDS.items()) for key, p in kind.params.items()
                if p.type is float]


@pytest.mark.parametrize("kind,key", FLOAT_PARAMS, ids=[f"{k}.{p}" for k, p in FLOAT_PARAMS])
def test_every_number_of_every_kind_refuses_nan(kind, key):
    given = {**_filled(KINDS[kind]), key: math.nan}
    with pytest.raises(ParamError) as e:
        KINDS[kind].resolve_params(given)
    assert e.value.key == key and "nan" in str(e.value)


def test_infinity_only_where_declared_and_bounds_in_order():
    slope = KINDS["power_law_slope"]
    assert slope.resolve_params({"axis": "batch_size", "of": "lr", "low": 0.5})["high"] == math.inf
    with pytest.raises(ParamError, match="cannot both be infinite"):  # its defaults alone bound nothing: it
        slope.resolve_params({"axis": "batch_size", "of": "lr"})      # raised after training, now at load
    for kind, given in (("best_level_in_range", {"axis": "b", "low": 2, "high": math.inf}),
                        ("paired_comparison", {"a": {}, "b": {}, "margin": math.inf}),
                        ("equivalence", {"a": {}, "b": {}, "margin": -math.inf})):
        with pytest.raises(ParamError):
            KINDS[kind].resolve_params(given)
    assert KINDS["ratio_in_range"].resolve_params({"num": {}, "den": {}, "low": 2, "high": math.inf})["high"] == math.inf
    with pytest.raises(ParamError, match="low <= high"):
        KINDS["ratio_in_range"].resolve_params({"num": {}, "den": {}, "low": 3, "high": 2})


def _suite_with(claim: str, tmp_path: Path) -> Path:
    text = TINY_SUITE.split("[[claims]]")[0] + textwrap.dedent(claim)
    path = tmp_path / "suite.toml"
    path.write_text(textwrap.dedent(text).replace("[axes.lr]", "[axes.optimizer]\nrole = \"fixed\"\n"
                                                   "values = [\"sgd\", \"adam\"]\n\n[axes.lr]"), encoding="utf-8")
    return path


BAD_PARAMS = [  # the probe's cases (a NaN margin decided a claim; NaN and inverted bounds loaded) and their kin
    ('kind = "paired_comparison"\nparams = { a = { optimizer = "adam" }, b = { optimizer = "sgd" }, margin = nan }',
     "params.margin", "nan"),
    ('kind = "equivalence"\nparams = { a = { optimizer = "adam" }, b = { optimizer = "sgd" }, margin = nan }',
     "params.margin", "nan"),
    ('kind = "best_level_in_range"\nparams = { axis = "batch_size", low = nan, high = 32 }', "params.low", "nan"),
    ('kind = "best_level_in_range"\nparams = { axis = "batch_size", low = 64, high = 32 }', "params.low",
     "low <= high"),
    ('kind = "best_level_in_range"\nparams = { axis = "batch_size", low = 2, high = inf }', "params.high", "finite"),
    ('kind = "best_level_in_range"\nparams = { axis = "batch_size", low = 2, high = 32, confidence = 1.5 }',
     "params.confidence", "< 1"),
    ('kind = "best_level_in_range"\nparams = { axis = "batch_size", low = 2, high = 32, select = "val_speed" }',
     "params.select", "direction"),
    ('kind = "monotone_trend"\nparams = { axis = "batch_size", direction = "sideways" }', "params.direction",
     "one of"),
    ('kind = "range_width_trend"\nparams = { axis = "batch_size", range_axis = "lr", tolerance = -0.1 }',
     "params.tolerance", ">= 0"),
    ('kind = "ratio_in_range"\nparams = { num = { where = { batch_size = 4 } }, den = { where = { batch_size = 64 } }, '
     'low = 2, high = -inf }', "params.", "high"),
]


@pytest.mark.parametrize("claim,where,words", [(c, w, x) for c, w, x in BAD_PARAMS],
                         ids=[f"{i}" for i in range(len(BAD_PARAMS))])
def test_a_bad_claim_parameter_exits_2_naming_the_key_before_any_training(claim, where, words, tmp_path):
    path = _suite_with(f'[[claims]]\nid = "X1"\n{claim}\n', tmp_path)
    out = tmp_path / "out"
    code, _, err = cli("run", str(path), "--executor", "local", "--quiet", "--out", str(out))
    one_line(code, err, str(path), f"claims[0].{where}", words, "fix:")
    assert not out.exists()  # refused before a run dir, a lock or a trial


def test_select_on_a_loss_loads_and_means_lower_is_better(tmp_path):
    from claimbench.suite import load_suite

    path = _suite_with('[[claims]]\nid = "X1"\nkind = "best_level_in_range"\n'
                       'params = { axis = "batch_size", low = 2, high = 32, select = "val_loss" }\n', tmp_path)
    assert load_suite(path).claims[0].params["select"] == "val_loss"


# ---------------------------------------------------------------- the gate fails closed

#: One claim of each kind the gate tracks in a small matrix (3 seeds: a tracked quantity needs 3), each with
#: a check table: verdict gates supported (the default), decided and off, tracked effect and test accuracy.
GATED_SUITE = """
[suite]
name = "gated"
seeds = 3

[workload]
dataset = "teacher"
n_samples = 400
depth = 1
width = 8

[train]
momentum = 0.9
evals = 2

[budget]
steps = 16

[axes.batch_size]
role = "scientific"
values = [4, 64]

[axes.optimizer]
role = "scientific"
values = ["sgd", "adam"]

[axes.lr]
role = "nuisance"
values = [0.01, 1.0]

[[claims]]
id = "B2"
kind = "best_level_in_range"
params = { axis = "batch_size", low = 2, high = 32 }
check = { gate = "decided", track = ["effect", "test_acc"], tolerance = { effect = 0.05, test_acc = 0.02 } }

[[claims]]
id = "B3"
kind = "range_width_trend"
params = { axis = "batch_size", range_axis = "lr" }
check = { gate = "decided", track = ["effect"], tolerance = 0.5 }

[[claims]]
id = "P1"
kind = "paired_comparison"
params = { a = { optimizer = "adam" }, b = { optimizer = "sgd" } }
check = { track = ["effect", "test_acc"], tolerance = 0.05 }

[[claims]]
id = "E1"
kind = "equivalence"
params = { a = { optimizer = "adam" }, b = { optimizer = "sgd" }, margin = 0.05 }
check = { gate = "off", track = ["effect"], tolerance = 0.05 }

[[claims]]
id = "T1"
kind = "monotone_trend"
params = { axis = "batch_size", direction = "decreasing" }
check = { gate = "decided", track = ["effect"], tolerance = 0.5 }

[[claims]]
id = "R1"
kind = "ranking"
params = { axis = "optimizer", order = ["sgd", "adam"] }
check = { gate = "decided", track = ["effect"], tolerance = 0.5 }

[[claims]]
id = "Q1"
kind = "ratio_in_range"
params = { num = { where = { batch_size = 64 }, quantity = "argbest:lr" }, den = { where = { batch_size = 4 }, quantity = "argbest:lr" }, low = 1.0, high = inf }
check = { gate = "decided", track = ["effect"], tolerance = 0.5 }

[[claims]]
id = "W1"
kind = "range_width_comparison"
params = { a = { optimizer = "adam" }, b = { optimizer = "sgd" } }
check = { gate = "decided", track = ["effect"], tolerance = 0.5 }

[[claims]]
id = "S1"
kind = "power_law_slope"
params = { axis = "batch_size", of = "lr", low = 0.0 }
check = { gate = "decided", track = ["effect"], tolerance = 0.5 }

[[claims]]
id = "Z1"
kind = "paired_comparison"
params = { a = { batch_size = 4 }, b = { batch_size = 64 } }
check = { gate = "off" }
"""
GATED_IDS = ["B2", "B3", "P1", "E1", "T1", "R1", "Q1", "W1", "S1"]
EVERY_TRIAL_RAISES = ";".join(f"raise:{c}" for c in "0123456789abcdef")  # every trial id starts with one


def gated_baseline(suite_path: Path, verdict: str = "inconclusive") -> dict:
    """A baseline of ``suite_path`` at the default tier as `claimbench baseline` writes one, with the numbers of
    a healthy run (every trial completed, 3 seeds, an effect and 3 per-seed values of each tracked quantity):
    a baseline is data, so the check below needs no healthy run of its own."""
    from claimbench.check.baseline import matrix_fingerprint, new_baseline
    from claimbench.suite import expand, load_suite

    suite = load_suite(suite_path)
    n = len(expand(suite))
    claims = {}
    for c in suite.claims:
        check = suite.checks[c.id]
        claims[c.id] = {
            "kind": c.kind, "paraphrase": "", "verdict": verdict, "effect": 0.01, "ci": [-0.1, 0.1], "n_seeds": 3,
            "n_trials": n, "summary": "", "strata": [], "check": check.to_dict(),
            "tracked": {q: {"seeds": [0, 1, 2], "values": [0.5, 0.5, 0.5], "tolerance": check.tolerance[q],
                            "direction": "both"} for q in check.track}}
    data = new_baseline()
    data["suites"][suite.name] = {"default": {"tier": "default", "suite_path": str(suite_path), "measured": "",
                                              "environment": {}, "matrix": matrix_fingerprint(suite), "n_trials": n,
                                              "statuses": {"completed": n}, "claims": claims}}
    return data


@pytest.fixture(scope="module")
def gated(tmp_path_factory):
    """The suite, its baseline (inconclusive verdicts, the probe's case), and a check with every trial failing."""
    import json
    import os

    root = tmp_path_factory.mktemp("gated")
    suite = root / "gated.toml"
    suite.write_text(textwrap.dedent(GATED_SUITE), encoding="utf-8")
    baseline = root / "baseline.json"
    baseline.write_text(json.dumps(gated_baseline(suite)), encoding="utf-8")
    os.environ["CLAIMBENCH_FAULTS"] = EVERY_TRIAL_RAISES
    try:
        result = cli("check", str(suite), "--tier", "default", "--baseline", str(baseline), "--executor", "local",
                     "--quiet", "--out", str(root / "broken"))
    finally:
        del os.environ["CLAIMBENCH_FAULTS"]
    return {"root": root, "suite": suite, "baseline": baseline, "check": result}


def test_check_with_every_trial_failing_exits_1_and_names_every_gated_claim(gated):
    code, out, err = gated["check"]
    assert code == 1, out + err
    assert "every claim holds" not in out
    last = err.strip().splitlines()[-1]
    assert f"{len(GATED_IDS)} claims not judged on the baseline's evidence" in last, last
    for cid in GATED_IDS:
        assert f"gated/{cid}" in last
    assert "gated/Z1" not in last  # gate = "off", nothing tracked: reported, never gated


@pytest.mark.parametrize("cid", GATED_IDS)
def test_each_tracked_kind_fails_with_its_reason_when_its_trials_failed(gated, cid):
    from claimbench.check.baseline import read_baseline

    _, out, _ = gated["check"]
    line = next(x for x in out.splitlines() if x.strip().startswith(cid + " "))
    assert " FAILED " in line or " REGRESSION " in line, line
    assert "not judged on the baseline's evidence" in line and "trials failed" in line, line
    kind = read_baseline(gated["baseline"])["suites"]["gated"]["default"]["claims"][cid]["kind"]
    assert kind == {"B2": "best_level_in_range", "B3": "range_width_trend", "P1": "paired_comparison",
                    "E1": "equivalence", "T1": "monotone_trend", "R1": "ranking", "Q1": "ratio_in_range",
                    "W1": "range_width_comparison", "S1": "power_law_slope"}[cid]


def test_the_junit_names_the_failed_claims_with_their_reason(gated):
    import xml.etree.ElementTree as ET

    root = ET.parse(gated["root"] / "broken" / "junit.xml").getroot()
    failures = {c.get("name").split()[0].split(".")[-1]: c.find("failure") for c in root.iter("testcase")}
    failed = [n for n, f in failures.items() if f is not None]
    assert len(failed) == len(GATED_IDS), failures
    assert all("trials failed" in (failures[n].get("message") or "") + (failures[n].text or "") for n in failed)


def _result(**kw):
    from claimbench.claims import ClaimResult

    fields = dict(claim_id="X1", kind="paired_comparison", verdict="inconclusive", statistic="", effect=0.01,
                  ci=(-0.1, 0.1), n_seeds=3, n_trials=24, method="", summary="")
    return ClaimResult(**{**fields, **kw})


BASE_CLAIM = {"verdict": "inconclusive", "effect": 0.01, "ci": [-0.1, 0.1], "n_seeds": 3, "n_trials": 24,
              "strata": [], "tracked": {"effect": {"seeds": [0, 1, 2], "values": [0.5, 0.5, 0.5]}}}


@pytest.mark.parametrize("result,reason", [
    (dict(n_seeds=2), "judged on 2 seeds, the baseline on 3"),
    (dict(n_trials=20), "judged on 20 trials, the baseline on 24"),
    (dict(effect=None, ci=None), "no effect now"),
])
def test_less_evidence_than_the_baseline_fails_a_gated_claim_and_is_a_note_of_an_ungated_one(result, reason,
                                                                                           monkeypatch):
    from claimbench.check import gate
    from claimbench.claims import Claim
    from claimbench.suite import ClaimCheck

    monkeypatch.setattr(gate, "tracked_values", lambda *a: {})
    claim = Claim("X1", "paired_comparison", "", "", {})
    suite = type("S", (), {"name": "s", "tier": "ci"})()
    held = gate.compare_claim(suite, claim, _result(), None, BASE_CLAIM, ClaimCheck())
    assert held.status == "passed" and held.evidence == []
    out = gate.compare_claim(suite, claim, _result(**result), None, BASE_CLAIM, ClaimCheck())
    assert out.status == "failed" and reason in out.regressions[0] and reason in out.headline
    off = gate.compare_claim(suite, claim, _result(**result), None, BASE_CLAIM, ClaimCheck(gate="off"))
    assert off.status == "passed" and reason in off.notes[0]


def test_tracked_values_missing_now_fail_where_they_were_a_note(monkeypatch):
    from claimbench.check import gate
    from claimbench.claims import Claim
    from claimbench.suite import ClaimCheck

    claim, suite = Claim("X1", "paired_comparison", "", "", {}), type("S", (), {"name": "s", "tier": "ci"})()
    track = ClaimCheck(gate="off", track=("effect",), tolerance={"effect": 0.1}, direction={"effect": "both"})
    monkeypatch.setattr(gate, "tracked_values", lambda *a: {})  # every trial failed: no per-seed value at all
    out = gate.compare_claim(suite, claim, _result(), None, BASE_CLAIM, track)
    assert out.status == "failed" and "effect: no value now for any seed (the baseline has 3)" in out.headline
    monkeypatch.setattr(gate, "tracked_values", lambda *a: {"effect": {"seeds": [0, 1, 2], "values": [0.5, None, None]}})
    out = gate.compare_claim(suite, claim, _result(), None, BASE_CLAIM, track)
    assert out.status == "failed" and "effect: values for 1 seeds now, the baseline has 3" in out.headline


def test_more_failed_trials_or_fewer_records_than_the_baseline():
    import pandas as pd

    from claimbench.check.gate import trial_shortfall

    frame = pd.DataFrame({"status": ["completed", "failed", "completed"], "error": [None, "boom", None]})
    assert trial_shortfall(frame, {"statuses": {"completed": 2, "failed": 1}, "n_trials": 3}) == []
    lines = trial_shortfall(frame, {"statuses": {"completed": 3}, "n_trials": 4})
    assert "1 of 3 trials failed (the baseline had 0; first error: boom)" in lines[0]
    assert "only 3 trials have a record, the baseline had 4" in lines[1]


# ---------------------------------------------------------------- reports and baselines: a FIFO refused, only the named file written

def test_a_fifo_as_the_baseline_or_the_suite_is_one_line(made_run, tmp_path):
    import os

    suite_path, _ = made_run
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    code, _, err = cli("check", str(suite_path), "--baseline", str(fifo), "--executor", "local", "--out",
                       str(tmp_path / "c"))
    one_line(code, err, str(fifo), "is a FIFO")
    fifo_suite = tmp_path / "fifo.toml"
    os.mkfifo(fifo_suite)
    code, _, err = cli("run", str(fifo_suite), "--dry-run")
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_report_o_writes_only_the_file_it_names(made_run, tmp_path):
    _, run = made_run

    def tree():
        return {str(p.relative_to(run)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(run.rglob("*"))}

    before = tree()
    code, out, err = cli("report", str(run), "-o", str(tmp_path / "r.html"))
    assert code == 0, err
    assert (tmp_path / "r.html").is_file() and tree() == before  # no verdicts.json, no frames in the run dir
    assert "verdicts.json" not in out


def test_report_into_a_read_only_run_dir_is_one_line(made_run, monkeypatch):
    import errno
    import os

    _, run = made_run
    real = os.replace

    def read_only(src, dst, *a, **k):
        if str(dst).startswith(str(run)):
            raise OSError(errno.EROFS, "Read-only file system", str(dst))
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", read_only)
    code, _, err = cli("report", str(run))
    one_line(code, err, str(run), "read-only", "fix:")


# ---------------------------------------------------------------- one writer per baseline file

EVERY_WORKER_CRASHES = ";".join(f"crash:{c}" for c in "0123456789abcdef")  # local: failed, nothing trained


def _baseline_child(path: str, out: str, runs: str) -> None:
    import os

    os.environ["CLAIMBENCH_FAULTS"] = EVERY_WORKER_CRASHES
    code, _, err = cli("baseline", path, "--tier", "default", "-o", out, "--executor", "local", "--quiet",
                       "--out", runs)
    os._exit(code if not err.strip() or code else 3)


def test_two_baselines_for_different_suites_writing_one_file_at_once_both_land(tmp_path):
    """Two `baseline` commands (forked from this process: no imports to wait for; every trial recorded failed
    without training) write one -o file at once. Each read the file when it started and wrote it when it
    ended, so the second to write dropped the first's entry."""
    import json
    import multiprocessing

    out = tmp_path / "baseline.json"
    ctx = multiprocessing.get_context("fork")
    procs = []
    for name in ("one", "two"):
        path = tmp_path / f"{name}.toml"
        path.write_text(textwrap.dedent(SMALL).replace('name = "tiny"', f'name = "{name}"'), encoding="utf-8")
        procs.append(ctx.Process(target=_baseline_child, args=(str(path), str(out), str(tmp_path / f"runs-{name}"))))
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0, p.exitcode
    assert sorted(json.loads(out.read_text())["suites"]) == ["one", "two"]


# ---------------------------------------------------------------- bounded parsing

@pytest.mark.parametrize("expr", ["(" * 500 + "B2" + ")" * 500, "not " * 1000 + "B2", "not " * 3000 + "B2"])
def test_k_nested_beyond_its_depth_is_one_line(expr):
    code, _, err = cli("run", "tiny", "--executor", "local", "-k", expr)
    one_line(code, err, "-k")


def test_k_at_its_stated_depth_parses():
    from claimbench.selection import MAX_DEPTH, parse

    expr = "(" * (MAX_DEPTH // 2) + "not " * (MAX_DEPTH // 2) + "b2" + ")" * (MAX_DEPTH // 2)  # an even number of nots
    assert parse(expr)("s", "b2") and not parse(expr)("s", "x")


def test_pack_size_that_is_not_a_number_is_one_line():
    code, _, err = cli("run", "tiny", "--pack-size", "abc")
    one_line(code, err, "--pack-size", "'abc'")
