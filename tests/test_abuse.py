"""Abuse and fuzz: what an attacker or a careless user feeds claimbench gets one line and exit 2.

Every CLI case asserts: exit 2, at most 2 stderr lines, no traceback, nothing written outside the
out dir, and no record lost. Most run the CLI in-process (as the console script does); the ones
that must see a real process (timing of a refusal, two drivers, a traceback) use a subprocess with
a time limit. Training is kept to a micro suite (2 trials, well under a second each, local executor).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claimbench import limits as lim
from claimbench.errors import UserError
from claimbench.runner.faults import parse_faults
from claimbench.paths import PathError, check_name, inside
from claimbench.store.lock import LOCK_FILE
from claimbench.store.records import record_problem
from claimbench.store.rundir import RunStore
from claimbench.suite import expand, load_suite, load_targets, parse_suite
from tests.conftest import MICRO, TINY_SUITE, assert_refused, cli, files, records, run_cli, write


# ------------------------------------------------------------------ names are names

@pytest.mark.parametrize("name", ["../escape", "/tmp/elsewhere", ".hidden", "a/b", "x" * 65, "", "ünï", "a b", "..",
                                  "con\n", "-" * 3 + "\x00"])
def test_a_suite_name_that_is_not_a_name_is_refused_and_writes_nothing(here, name):
    suite = write(here / "s.toml", MICRO.replace('name = "micro"', f"name = {json.dumps(name)}"))
    before = files(here)
    code, out, err = cli("baseline", str(suite), "-o", str(here / "b.json"), "--executor", "local", "--quiet",
                         "--out", str(here / "out"), "--tier", "default")
    assert_refused(code, err, str(suite), "suite.name")
    assert files(here) == before
    assert not Path("/tmp/elsewhere").exists() or name != "/tmp/elsewhere" or not (Path("/tmp/elsewhere") / "run.json").exists()


def test_claim_and_group_names_are_names(here):
    bad_claim = write(here / "c.toml", TINY_SUITE.replace('id = "B2"', 'id = "../B2"'))
    code, _, err = cli("run", str(bad_claim), "--executor", "local", "--out", str(here / "o"))
    assert_refused(code, err, "claims[0].id")
    write(here / "one.toml", TINY_SUITE)
    group = write(here / "g.toml", '[group]\nname = "../../g"\nsuites = ["one.toml"]\n')
    code, _, err = cli("run", str(group), "--executor", "local", "--out", str(here / "o"))
    assert_refused(code, err, "group.name")
    assert not (here / "o").exists()


def test_inside_is_the_one_join_and_refuses_every_way_out(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    assert inside(root, "suite") == root / "suite"
    for part in ("../x", "/etc", "link/x", ".", "a/../../b"):
        with pytest.raises(PathError, match="does not stay inside"):
            inside(root, part)
    with pytest.raises(PathError):
        check_name("../x", "here")


def test_a_non_empty_dir_without_run_json_is_refused_unless_force(here, trained):
    suite, _ = trained
    out = here / "mine"
    write(out / "thesis.tex", "precious")
    code, _, err = cli("run", str(suite), "--executor", "local", "--out", str(out), "--quiet")
    assert_refused(code, err, str(out), "--force")
    assert files(out) == {"thesis.tex"}
    code, _, err = cli("run", str(suite), "--executor", "local", "--out", str(out), "--quiet", "--force")
    assert code == 0, err
    assert (out / "thesis.tex").read_text() == "precious" and (out / "run.json").is_file()


def test_default_run_dir_stays_under_runs(here):
    suite = write(here / "s.toml", MICRO)
    code, out, err = cli("run", str(suite), "--executor", "local", "--quiet")
    assert code == 0, err
    assert (here / "runs" / "micro-default" / "run.json").is_file()
    assert {p.split("/")[0] for p in files(here)} == {"s.toml", "runs"}


# ------------------------------------------------------------------ limits

def product_suite(n_axes: int = 9) -> str:
    axes = "".join(f'\n[axes.{name}]\nrole = "fixed"\nvalues = {values}\n' for name, values in [
        ("lr", [0.1 * i for i in range(1, 11)]), ("momentum", [0.05 * i for i in range(10)]),
        ("batch_size", list(range(1, 11))), ("width", list(range(1, 11))), ("depth", list(range(1, 11))),
        ("evals", list(range(1, 11))), ("warmup_steps", list(range(10))),
        ("weight_decay", [0.01 * i for i in range(10)]), ("seq_len", list(range(2, 12)))][:n_axes])
    return MICRO.split("[axes.lr]")[0] + axes


def test_an_axis_product_of_10_9_is_refused_at_once(here):
    path = write(here / "big.toml", product_suite())
    start = time.monotonic()
    with pytest.raises(lim.LimitError, match=r"= 1e\+09 trials, above the limit of 100000"):
        load_suite(path)
    assert time.monotonic() - start < 5  # counted, never expanded: microseconds, far from any timing noise
    proc = run_cli("run", str(path), "--executor", "local", "--out", str(here / "o"), timeout=60)
    assert_refused(proc.returncode, proc.stderr, str(path), "axes", "[limits] trials")
    assert not (here / "o").exists()


def test_width_10_9_is_refused_at_once(here):
    path = write(here / "wide.toml", MICRO.replace("width = 8", "width = 1000000000"))
    proc = run_cli("run", str(path), "--executor", "local", "--out", str(here / "o"), timeout=60, memory_gb=4)
    assert_refused(proc.returncode, proc.stderr, str(path), "workload.width", "[limits] width")
    assert not (here / "o").exists()


@pytest.mark.parametrize("old, new, key, raise_with", [
    ("values = [0.1, 100.0]", "values = [" + ", ".join(str(0.001 * (i + 1)) for i in range(1001)) + "]",
     "axes.lr.values", "[limits] levels"),
    ("values = [0.1, 100.0]", "logspace = { start = 1e-3, stop = 1.0, num = 10000000 }", "axes.lr.logspace.num",
     "[limits] levels"),
    ("seeds = 1", "seeds = 1000000", "suite.seeds", "[limits] seeds"),
    ("depth = 1", "depth = 1000000", "workload.depth", "[limits] depth"),
    ("steps = 4", "steps = 1000000000000", "budget.steps", "[limits] steps"),
    ("evals = 1", "evals = 1000000000", "train.evals", "[limits] evals"),
    ("n_samples = 300", "n_samples = 1000000000000", "workload.n_samples", "[limits] samples"),
    ("[train]", "[train]\nbatch_size = 9223372036854775807", "train.batch_size", "batch_size <= 192"),
    ("[train]", "[train]\nrange_steps = 1000000000", "train.range_steps", "[limits] range_steps"),
    ('dataset = "teacher"', 'dataset = "digits"\nmodel = "mlp"', "", ""),  # fits: digits has 1797 examples
    ('dataset = "teacher"\nn_samples = 300', 'dataset = "digits"\nn_samples = 5000', "workload.n_samples",
     "n_samples <= 1797"),
    ("depth = 1\nwidth = 8", "depth = 100\nwidth = 60000", "workload.width", "[limits] memory_mb"),
    ("[workload]", "[limits]\ntrials = 100000000\n\n[workload]", "limits.trials", "from 1 to 10000000"),
    ("[workload]", "[limits]\ncolour = 3\n\n[workload]", "limits.colour", "use one of"),
    ("[workload]", "[limits]\ndepth = 2000000\n\n[workload]", "limits.depth", "from 1 to 100000"),
])
def test_every_size_is_limited_with_one_line_naming_file_key_and_how_to_raise_it(write_suite, old, new, key,
                                                                                   raise_with):
    assert old in MICRO
    path = write_suite(MICRO.replace(old, new, 1), "big.toml")
    start = time.monotonic()
    if not key:
        assert expand(load_suite(path))
        return
    with pytest.raises(UserError) as e:
        load_suite(path)
    message = str(e.value)
    assert time.monotonic() - start < 5
    assert "\n" not in message and str(path) in message and key in message and raise_with in message, message


def test_a_suite_raises_a_limit_for_itself(write_suite):
    text = MICRO.replace("seeds = 1", "seeds = 1200").replace("[workload]", "[limits]\nseeds = 2000\ntrials = 5000\n\n[workload]")
    suite = load_suite(write_suite(text))
    assert len(suite.seeds) == 1200 and suite.limits == {"seeds": 2000, "trials": 5000}
    assert len(expand(suite)) == 2400


@pytest.mark.parametrize("faults, expected", [
    ("crash:ab:²", "bad fault entry"),
    ("crash:ab:0", "bad fault entry"),
    ("raise:", "bad fault entry"),
    ("raise:../x", "bad fault entry"),
    ("crash:zz", "bad fault entry"),
    ("corrupt:lr=nan", "FACTOR a positive number"),
    ("corrupt:lr=inf", "FACTOR a positive number"),
    ("corrupt:steps=1e12", "[limits] steps"),
    ("corrupt:steps=1e308", "which no trial can train"),
    ("corrupt:width=1e9", "[limits] width"),
    ("corrupt:batch_size=1e6", "training examples"),
    ("corrupt:range_lr_min=1e9", "cannot run"),
    ("x" * 5000, "characters"),
])
def test_the_fault_variable_is_parsed_strictly_and_goes_through_the_limits(here, trained, monkeypatch, faults,
                                                                           expected):
    suite, _ = trained
    monkeypatch.setenv("CLAIMBENCH_FAULTS", faults)
    code, _, err = cli("run", str(suite), "--executor", "local", "--out", str(here / "o"), "--quiet")
    assert_refused(code, err, "CLAIMBENCH_FAULTS", expected)
    assert not (here / "o" / "trials").exists()


@settings(database=None, max_examples=200, deadline=1000)
@given(st.text(max_size=60))
def test_fuzzed_fault_text_parses_or_is_one_line(text):
    try:
        parse_faults(text)
    except UserError as e:
        assert "\n" not in str(e)


# ------------------------------------------------------------------ load-time checks

@pytest.mark.parametrize("text, key", [
    (TINY_SUITE.replace('params = { axis = "batch_size", low = 2, high = 32',
                        'params = { metric = "test_accuracy", axis = "batch_size", low = 2, high = 32'),
     "claims[0].params.metric"),
    (TINY_SUITE.replace('[[claims]]\nid = "B2"', '[[claims]]\nid = "M1"\nkind = "paired_comparison"\n'
                        'params = { a = { batch_size = 4 }, b = { batch_size = 8 }, quantity = "max:test_acc" }\n\n'
                        '[[claims]]\nid = "B2"', 1), "claims[0].params.b.batch_size"),
    (TINY_SUITE.replace('[[claims]]\nid = "B2"', '[[claims]]\nid = "M1"\nkind = "paired_comparison"\n'
                        'params = { a = { batch_size = 4 }, b = { batch_size = 16 }, quantity = "max:test_acc", '
                        'where = { lr = 0.5 } }\n\n[[claims]]\nid = "B2"', 1), "claims[0].params.where.lr"),
    (TINY_SUITE.replace('[[claims]]\nid = "B2"', '[[claims]]\nid = "M1"\nkind = "paired_comparison"\n'
                        'params = { a = { batch_size = 4 }, b = { batch_size = 16 }, quantity = "max:test_r2" }\n\n'
                        '[[claims]]\nid = "B2"', 1), "claims[0].params.quantity"),
    (TINY_SUITE.replace("values = [0.01, 0.1, 100.0]", "logspace = { start = nan, stop = 1.0, num = 3 }")
     .replace("axes = { batch_size = [4, 64] }", "axes = { batch_size = [4, 64], lr = [0.1] }"), "axes.lr.logspace"),
    ("[suite]\nname = 'x'\n" + "a = " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply"),
])
def test_suites_that_would_train_for_nothing_are_refused_at_load(here, text, key):
    assert text != TINY_SUITE
    path = write(here / "s.toml", text)
    code, _, err = cli("run", str(path), "--tier", "smoke", "--executor", "local", "--out", str(here / "o"))
    assert_refused(code, err, str(path), key)
    assert not (here / "o").exists()


def test_group_with_two_suites_of_one_name_and_a_deeply_nested_group_file(here):
    write(here / "one.toml", TINY_SUITE)
    write(here / "two.toml", TINY_SUITE.replace("seeds = 2", "seeds = 3"))
    group = write(here / "g.toml", '[group]\nname = "g"\nsuites = ["one.toml", "two.toml"]\n')
    code, _, err = cli("run", str(group), "--executor", "local", "--out", str(here / "o"))
    assert_refused(code, err, "two suites are named 'tiny'", "group.suites")
    assert [s.name for s in load_targets([str(here / "one.toml"), str(here / "one.toml")])] == ["tiny"]
    deep = write(here / "deep.toml", "[group]\nname = 'g'\nsuites = " + "[" * 5000 + "]" * 5000 + "\n")
    code, _, err = cli("run", str(deep), "--executor", "local", "--out", str(here / "o"))
    assert_refused(code, err, str(deep))
    assert not (here / "o").exists()


MUTANT_VALUES = st.one_of(
    st.integers(min_value=-2**70, max_value=2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.booleans(), st.lists(st.integers(-5, 10**7), max_size=4),
    st.dictionaries(st.text(max_size=6), st.integers(-3, 10**9), max_size=3),
    st.sampled_from(["../x", "/tmp/x", "nan", "sgd", "test_accuracy", "range_test", 10**12, 2**63 - 1]))


def _paths(d, prefix=()):
    for k, v in d.items():
        yield prefix + (k,)
        if isinstance(v, dict):
            yield from _paths(v, prefix + (k,))


@settings(database=None, max_examples=100, deadline=3000, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzzed_suites_load_or_are_one_line(data):
    """A valid suite with random keys replaced by random values: it loads (and stays within the limits)
    or is one UserError line; never another exception, never a long expansion."""
    import tomllib
    raw = tomllib.loads(textwrap.dedent(TINY_SUITE))
    keys = sorted(_paths(raw), key=str)
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from(keys))
        parent = raw
        for k in where[:-1]:
            parent = parent.get(k) if isinstance(parent, dict) else None
        if isinstance(parent, dict):
            parent[where[-1]] = data.draw(MUTANT_VALUES)
    if data.draw(st.booleans()) and isinstance(raw.get("axes", {}), dict):
        raw.setdefault("axes", {})[data.draw(st.sampled_from(["width", "depth", "steps", "seed", "bogus"]))] = {
            "role": "fixed", "values": data.draw(st.lists(MUTANT_VALUES, max_size=3))}
    tier = data.draw(st.sampled_from(["smoke", "default", "full"]))
    start = time.monotonic()
    try:
        suite = parse_suite(raw, "fuzz.toml", tier)
    except UserError as e:
        assert "\n" not in str(e) and "fuzz.toml" in str(e)
    else:
        assert len(expand(suite)) <= suite.limit_table()["trials"]
    assert time.monotonic() - start < 3


# ------------------------------------------------------------------ damage is detected

def test_a_swapped_and_a_truncated_record_are_quarantined_retrained_and_reported(run_copy):
    suite, run = run_copy
    before = records(run)
    a, b = (run / "trials" / n for n in before)
    swapped_bytes = b.read_bytes()
    shutil.copy(b, a)  # a's file now holds b's record
    b.write_bytes(swapped_bytes[: len(swapped_bytes) // 2])  # b's record half written
    code, out, err = cli("run", str(suite), "--executor", "local", "--out", str(run), "--quiet")
    assert code == 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "quarantined 2 damaged records" in lines[0] and a.stem in lines[0] and b.stem in lines[0]
    assert "2 new" in out  # both retrained
    assert records(run) == before  # every record present again, none lost
    damaged = sorted(p.name for p in (run / "trials" / ".damaged").iterdir())
    assert len(damaged) == 3 and "log.jsonl" in damaged  # the two damaged files kept, never deleted
    html = (run / "report.html").read_text(encoding="utf-8")
    assert "damaged records, quarantined to trials/.damaged/ and retrained" in html
    assert a.stem in html and b.stem in html


@pytest.mark.parametrize("mutate, reason", [
    (lambda d: {**d, "status": "bogus"}, "unknown status"),
    (lambda d: {k: v for k, v in d.items() if k != "trial_id"}, "no trial_id"),
    (lambda d: {**d, "metrics": "great"}, "metrics must be"),
    (lambda d: {**d, "spec": {**d["spec"], "lr": 0.123}}, "hashes to"),
    (lambda d: {**d, "steps_done": "many"}, "steps_done"),
    (lambda d: {**d, "curve": [["x"]]}, "curve"),
    (lambda d: [d], "not a JSON object"),
    (lambda d: None, "not a JSON object"),
])
def test_each_kind_of_damaged_record_is_quarantined_never_deleted(run_copy, mutate, reason):
    _, run = run_copy
    path = run / "trials" / records(run)[0]
    path.write_text(json.dumps(mutate(json.loads(path.read_text()))))
    store = RunStore(run)
    kept = store.records()
    assert len(kept) == 1 and len(store.quarantined) == 1 and reason in store.quarantined[0].reason
    assert not path.exists() and len(list((run / "trials" / ".damaged").glob("*.json.*"))) == 1
    assert [d.file for d in RunStore(run).damaged()] == [path.name]


def test_deeply_nested_record_and_record_that_is_a_directory(run_copy):
    _, run = run_copy
    first, second = (run / "trials" / n for n in records(run))
    first.write_text("[" * 100000 + "]" * 100000)
    second.unlink()
    second.mkdir()
    store = RunStore(run)
    assert store.records() == [] and len(store.quarantined) == 2


@settings(database=None, max_examples=200, deadline=1000)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=20))
def test_fuzzed_record_json_is_judged_never_raises(data):
    assert isinstance(record_problem(data, "0123456789abcdef"), str)


@pytest.mark.parametrize("content, expected", [
    ("[]", "must be a JSON object"),
    ("null", "must be a JSON object"),
    ("{}", "schema None"),
    ('{"schema": 1}', "'suite'"),
    ('{"schema": 1, "suite": {"name": "micro"}}', "run.json's suite lacks"),
    ('{"schema": 1, "suite": []}', "'suite' must be a JSON object"),
    ('{"schema": 1, "suite": {}, "command": 3}', "'command' must be a JSON string"),
    ("[" * 100000 + "]" * 100000, "nested too deeply"),
    ("{not json", "not valid JSON"),
])
def test_a_malformed_run_json_is_one_line(run_copy, content, expected):
    _, run = run_copy
    (run / "run.json").write_text(content)
    code, _, err = cli("report", str(run))
    assert_refused(code, err, "run.json", expected)
    assert len(records(run)) == 2


def test_run_dirs_that_cannot_be_run_dirs(here, trained):
    suite, _ = trained
    for name, make in [("trials-file", lambda d: (d.mkdir(), (d / "trials").write_text("x"), (d / "run.json").write_text("{}"))),
                       ("run-json-dir", lambda d: (d.mkdir(), (d / "run.json").mkdir())),
                       ("a-file", lambda d: d.write_text("x"))]:
        d = here / name
        make(d)
        code, _, err = cli("run", str(suite), "--executor", "local", "--out", str(d), "--quiet")
        assert_refused(code, err, str(d))
        code, _, err = cli("report", str(d))
        assert_refused(code, err, str(d))
    (here / "plain").write_text("x")
    code, _, err = cli("run", str(suite), "--executor", "local", "--out", str(here / "plain" / "sub"), "--quiet")
    assert_refused(code, err, "is a file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through read-only modes")
def test_a_read_only_run_dir_is_one_line(run_copy, here):
    suite, run = run_copy
    os.chmod(run, 0o555)
    try:
        code, _, err = cli("run", str(suite), "--executor", "local", "--out", str(run), "--quiet")
        assert_refused(code, err, "not writable")
        code, _, err = cli("report", str(run))
        assert_refused(code, err)
    finally:
        os.chmod(run, 0o755)


# ------------------------------------------------------------------ one writer

def test_a_second_driver_exits_2_naming_the_holder(run_copy):
    suite, run = run_copy
    store = RunStore(run)
    assert store.open_for_writing() == []
    try:
        proc = run_cli("run", str(suite), "--executor", "local", "--out", str(run), "--quiet", timeout=120)
        assert_refused(proc.returncode, proc.stderr, f"pid {os.getpid()}", "--wait")
    finally:
        store.release()
    assert len(records(run)) == 2


def test_a_stale_lock_of_a_dead_pid_is_taken_over_with_a_note(run_copy):
    _, run = run_copy
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (run / LOCK_FILE).write_text(f"pid {dead.pid} host {socket.gethostname()} since 2026-01-01T00:00:00+00:00\n")
    store = RunStore(run)
    notes = store.open_for_writing()
    store.release()
    assert len(notes) == 1 and f"pid {dead.pid}" in notes[0] and "no longer running" in notes[0]


def test_two_concurrent_runs_on_one_out_train_each_trial_once(here):
    suite = write(here / "s.toml", MICRO.replace("values = [0.1, 100.0]", "values = [0.1, 0.3, 1.0, 100.0]"))
    out = here / "out"
    args = [sys.executable, "-m", "claimbench", "run", str(suite), "--executor", "local", "--out", str(out),
            "--quiet", "--wait"]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    new = sorted(int(o.split("; ")[1].split()[0]) for o, _ in results)  # "micro [default]: 4 trials (...); N new; ..."
    assert new == [0, 4]  # one driver trained all four, the other waited and found them done
    assert len(records(out)) == 4


def test_a_read_only_run_dir_is_one_line_even_as_root(run_copy, monkeypatch):
    """What a non-root user meets in a read-only dir, simulated: the write probe fails, and a write the
    probe did not foresee (the dir made read-only mid-run) raises PermissionError."""
    import claimbench.paths
    import claimbench.store.rundir
    suite, run = run_copy
    monkeypatch.setattr(claimbench.paths, "_writable_dir", lambda d: False)
    code, _, err = cli("run", str(suite), "--executor", "local", "--out", str(run), "--quiet")
    assert_refused(code, err, "not writable")
    code, _, err = cli("report", str(run), "-o", str(run / "r.html"))
    assert_refused(code, err, "not writable")
    monkeypatch.undo()

    def denied(path, text):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(claimbench.store.rundir, "atomic_write_text", denied)
    code, _, err = cli("run", str(suite), "--executor", "local", "--out", str(run), "--quiet")
    assert_refused(code, err, "run.json", "Permission denied")
    assert len(records(run)) == 2
