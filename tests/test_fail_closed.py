"""Fail closed (issue 29): every claim parameter checked at load through its kind's one declaration;
`check` that fails when trials failed, tracked values are missing or the evidence is smaller than the
baseline's; trial timeouts on both executors; one writer per baseline file; storage errors as one line;
records read without blocking and verified by a digest of their content; bounded `-k` parsing."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest

from claimbench.claims import KINDS
from claimbench.claims.base import REQUIRED, ParamError
from tests.conftest import TINY_SUITE, cli


def one_line(code: int, err: str, *words: str) -> str:
    """Exit 2, one stderr line starting ``claimbench: error:``, no traceback, each word in it."""
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("claimbench: error: "), err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


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


# ---------------------------------------------------------------- records: read without blocking, verified by content

SMALL = TINY_SUITE.replace("seeds = 2", "seeds = 1").replace("values = [4, 16, 64]", "values = [4, 64]").replace(
    "values = [0.01, 0.1, 100.0]", "values = [0.01, 0.1]")


@pytest.fixture
def made_run(tmp_path):
    """A run dir of SMALL (4 trials) with made-up completed records, written by the store: no training."""
    from claimbench.store import RunStore
    from claimbench.suite import expand, load_suite
    from claimbench.trial import TrialRecord, TrialStatus

    suite_path = tmp_path / "small.toml"
    suite_path.write_text(textwrap.dedent(SMALL), encoding="utf-8")
    suite = load_suite(suite_path)
    store = RunStore(tmp_path / "run")
    store.init(suite, "claimbench run small.toml", {})
    for i, spec in enumerate(expand(suite)):
        store.append(TrialRecord(trial_id=spec.trial_id, spec=spec.to_dict(), status=TrialStatus.COMPLETED,
                                 metrics={"val_acc": 0.5 + i / 100, "test_acc": 0.5, "train_acc": 0.5,
                                          "val_loss": 1.0, "test_loss": 1.0, "train_loss": 1.0}, steps_done=30))
    store.release()
    return suite_path, store.dir


def test_an_edited_metric_is_quarantined_by_the_content_digest(made_run):
    import json

    from claimbench.store import RunStore

    _, run = made_run
    path = sorted((run / "trials").glob("*.json"))[0]
    data = json.loads(path.read_text())
    assert len(data["digest"]) == 64
    data["metrics"]["test_acc"] = 0.99  # the spec (and so the trial id) intact, a result edited
    path.write_text(json.dumps(data))
    store = RunStore(run)
    assert len(store.records()) == 3
    assert [d.reason for d in store.quarantined] == ["its content does not match its digest (an edited record)"]
    del data["digest"]  # and without a digest at all
    other = sorted((run / "trials").glob("*.json"))[0]
    other.write_text(json.dumps({**json.loads(other.read_text()), "digest": None}))
    assert len(RunStore(run).records()) == 2


def test_a_fifo_and_a_symlink_to_dev_zero_in_place_of_records_are_quarantined_without_hanging(made_run):
    """Run in a child with 20 s and 2 GiB of address space: before, the FIFO blocked the reader forever and
    /dev/zero (size 0 by stat) was read until memory ran out."""
    import os
    import resource
    import subprocess
    import sys

    _, run = made_run
    first, second = sorted((run / "trials").glob("*.json"))[:2]
    first.unlink()
    os.mkfifo(first)
    second.unlink()
    second.symlink_to("/dev/zero")

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))

    code = ("import sys; from claimbench.store import RunStore; s = RunStore(sys.argv[1]); "
            "print(len(s.records()), sorted(d.reason for d in s.quarantined))")
    done = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True, text=True, timeout=20,
                          preexec_fn=limit, cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2 ['is a FIFO, not a regular file', 'is a device, not a regular file']"
    assert not first.exists() and not second.is_symlink()  # moved to trials/.damaged/, never deleted


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


# ---------------------------------------------------------------- storage errors: one line, records whole

def _full_disk(monkeypatch, when):
    """Make every atomic replace (and the lock's pwrite) whose target satisfies ``when`` fail with ENOSPC."""
    import errno
    import os

    real_replace, real_pwrite = os.replace, os.pwrite

    def replace(src, dst, *a, **k):
        if when(str(dst)):
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real_replace(src, dst, *a, **k)

    def pwrite(fd, data, offset):
        if when(os.readlink(f"/proc/self/fd/{fd}")):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "pwrite", pwrite)


def test_a_full_disk_when_the_lock_is_written_is_one_line(made_run, monkeypatch, tmp_path):
    suite_path, _ = made_run
    out = tmp_path / "new"
    _full_disk(monkeypatch, lambda p: p.endswith(".claimbench.lock"))
    code, _, err = cli("run", str(suite_path), "--executor", "local", "--quiet", "--out", str(out))
    one_line(code, err, str(out / ".claimbench.lock"), "no space left", "fix: free space")


def test_a_report_that_does_not_fit_after_training_is_one_line_and_the_records_stay_whole(made_run, monkeypatch,
                                                                                          tmp_path):
    from claimbench.store import RunStore

    suite_path, run = made_run
    _full_disk(monkeypatch, lambda p: p.endswith(".html"))
    code, _, err = cli("run", str(suite_path), "--executor", "local", "--quiet", "--out", str(run))
    one_line(code, err, str(run / "report.html"), "no space left")
    assert len(RunStore(run).records()) == 4 and not (run / "report.html").exists()
    code, _, err = cli("report", str(run), "-o", str(tmp_path / "elsewhere.html"))
    one_line(code, err, str(tmp_path / "elsewhere.html"), "no space left")
    assert not list(tmp_path.glob(".elsewhere.html.*"))  # no half-written temporary left behind


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
