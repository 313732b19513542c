"""Property tests (hypothesis) of what claimbench reads from users and from disk: the suite loader, the `-k`
parser, the record reader and the baseline reader, each through the command line. The property: any input
exits 0 or 2, prints no traceback (a refusal is one line), returns within its bound, and writes nothing
outside --out. Inputs are bounded in size, examples derandomized (the same cases on every run) and counted
so that the file takes seconds."""

from __future__ import annotations

import json
import math
import re
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import TINY_SUITE, cli

SMALL = TINY_SUITE.replace("seeds = 2", "seeds = 1").replace("values = [4, 16, 64]", "values = [4, 64]").replace(
    "values = [0.01, 0.1, 100.0]", "values = [0.01, 0.1]")
FUZZ = settings(database=None, derandomize=True, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
#: The longest one input may take, command included.
BOUND_S = 10.0

LEAVES = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True, allow_infinity=True)
          | st.text(max_size=12))
VALUES = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=16)


def tree(root: Path, skip: Path | None = None) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` (but ``skip``) with its size and modification time."""
    return {str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in sorted(root.rglob("*"))
            if skip is None or not (p == skip or skip in p.parents)}


def refused_or_done(code: int, out: str, err: str) -> None:
    from hypothesis import event

    event(f"exit {code}")
    assert code in (0, 2), (code, out[-500:], err[-2000:])
    assert "Traceback" not in err and "Traceback" not in out, err[-2000:]
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("claimbench: error: "), err[-2000:]


def toml(value, top: bool = False) -> str:
    """``value`` as TOML (inline tables and arrays; None has no TOML form, so it becomes a string)."""
    if top:
        return "\n".join(f"{json.dumps(str(k))} = {toml(v)}" for k, v in value.items()) + "\n"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(str(value))


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


def mutate(data, doc):
    """``doc`` (parsed JSON or TOML) with 1-3 of its values, at random paths, replaced by random values."""
    def holds(parent, k) -> bool:  # an earlier replacement may have changed what lies on the path
        return (isinstance(parent, dict) and k in parent) or (
            isinstance(parent, list) and isinstance(k, int) and k < len(parent))

    paths = [p for p in _paths(doc) if p]
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from(paths))
        parent = doc
        for k in where[:-1]:
            parent = parent[k] if holds(parent, k) else None
        if holds(parent, where[-1]) or (isinstance(parent, dict) and isinstance(where[-1], str)):
            parent[where[-1]] = data.draw(VALUES)
    return doc


# ---------------------------------------------------------------- the suite loader

@settings(FUZZ, max_examples=150)
@given(data=st.data())
def test_any_suite_file_is_planned_or_refused_in_one_line(tmp_path_factory, data):
    import tomllib

    root = tmp_path_factory.mktemp("suite")
    how = data.draw(st.sampled_from(["mutated", "numbers", "text", "bytes"]))
    if how == "mutated":
        text = toml(mutate(data, tomllib.loads(textwrap.dedent(SMALL))), top=True)
    elif how == "numbers":  # one or two numbers (levels, sizes, claim parameters) another, NaN and inf too
        number = st.integers(-3, 10**7) | st.floats(allow_nan=True, allow_infinity=True)
        text = textwrap.dedent(SMALL)
        spots = list(re.finditer(r"(?<![\w.])\d+(\.\d+)?(?![\w.])", text))
        for m in sorted(data.draw(st.lists(st.sampled_from(spots), min_size=1, max_size=2, unique_by=lambda m: m.start())),
                        key=lambda m: -m.start()):
            text = text[:m.start()] + toml(data.draw(number)) + text[m.end():]
    elif how == "text":
        text = textwrap.dedent(SMALL) + data.draw(st.text(max_size=80))
    else:
        text = None
    path = root / "fuzz.toml"
    if text is None:
        path.write_bytes(data.draw(st.binary(max_size=200)))
    else:
        path.write_text(text, encoding="utf-8")
    out = root / "out"
    before = tree(root)
    start = time.monotonic()
    refused_or_done(*cli("run", str(path), "--executor", "local", "--out", str(out), "--dry-run"))
    assert time.monotonic() - start < BOUND_S
    assert tree(root) == before  # a dry run writes nothing, not even its --out


# ---------------------------------------------------------------- -k

K_WORDS = st.sampled_from(["(", ")", "not", "and", "or", ",", "B2", "B3", "tiny", "b", " ", "((", "))", "x-y.z/1"])
#: Well-formed expressions (which select something or nothing), beside word soup and noise.
K_EXPRS = st.recursive(st.sampled_from(["B2", "B3", "tiny", "b", "nothing"]),
                       lambda e: st.tuples(e, st.sampled_from([" and ", " or ", ","]), e).map("".join)
                       | e.map(lambda x: f"not {x}") | e.map(lambda x: f"({x})"), max_leaves=10)


@settings(FUZZ, max_examples=120)
@given(expr=K_EXPRS | st.lists(K_WORDS, max_size=40).map(" ".join) | st.text(max_size=20))
def test_any_k_expression_selects_or_is_one_line(tmp_path_factory, expr):
    root = tmp_path_factory.mktemp("k")
    suite = root / "tiny.toml"
    suite.write_text(textwrap.dedent(SMALL), encoding="utf-8")
    before = tree(root)
    start = time.monotonic()
    refused_or_done(*cli("run", str(suite), "--executor", "local", "--out", str(root / "out"), "--dry-run",
                         "-k", expr))
    assert time.monotonic() - start < BOUND_S and tree(root) == before


@settings(FUZZ, max_examples=300)
@given(depth=st.integers(0, 5000), kind=st.sampled_from(["(", "not "]))
def test_deep_k_expressions_parse_or_are_refused_never_recurse(depth, kind):
    from claimbench.selection import SelectionError, parse

    expr = kind * depth + "B2" + (")" * depth if kind == "(" else "")
    try:
        keep = parse(expr)
    except SelectionError as e:
        assert "\n" not in str(e)
    else:
        assert isinstance(keep("tiny", "B2"), bool)


# ---------------------------------------------------------------- records

@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """SMALL's file and its trial ids."""
    from claimbench.suite import expand, load_suite

    path = tmp_path_factory.mktemp("small") / "small.toml"
    path.write_text(textwrap.dedent(SMALL), encoding="utf-8")
    return path, [s.trial_id for s in expand(load_suite(path))]


def _record(spec_id: str, suite_path: Path) -> dict:
    from claimbench.store.records import DIGEST_KEY, record_digest
    from claimbench.suite import expand, load_suite
    from claimbench.trial import TrialRecord, TrialStatus

    spec = next(s for s in expand(load_suite(suite_path)) if s.trial_id == spec_id)
    data = json.loads(json.dumps(TrialRecord(trial_id=spec.trial_id, spec=spec.to_dict(), status=TrialStatus.COMPLETED,
                                             metrics={"val_acc": 0.5, "test_acc": 0.5}).to_dict()))
    data[DIGEST_KEY] = record_digest(data)
    return data


@settings(FUZZ, max_examples=80)
@given(data=st.data())
def test_any_record_file_is_read_or_quarantined_and_the_dry_run_plans(tmp_path_factory, small, data):
    from claimbench.store.rundir import RunStore

    path, ids = small
    root = tmp_path_factory.mktemp("records")
    run = root / "run"
    trials = run / "trials"
    trials.mkdir(parents=True)
    target = trials / f"{ids[0]}.json"
    how = data.draw(st.sampled_from(["mutated", "bytes", "json"]))
    if how == "mutated":
        target.write_text(json.dumps(mutate(data, _record(ids[0], path))), encoding="utf-8")
    elif how == "bytes":
        target.write_bytes(data.draw(st.binary(max_size=300)))
    else:
        target.write_text(json.dumps(data.draw(VALUES)), encoding="utf-8")
    outside = tree(root, skip=run)
    start = time.monotonic()
    refused_or_done(*cli("run", str(path), "--executor", "local", "--out", str(run), "--dry-run", "--force"))
    records = RunStore(run).records()  # the store's own read: a record, or quarantined inside the run dir
    assert len(records) + len(RunStore(run).quarantined) <= 1
    assert time.monotonic() - start < BOUND_S and tree(root, skip=run) == outside


# ---------------------------------------------------------------- baselines

def _baseline(suite_path: Path) -> dict:
    from claimbench.check.baseline import matrix_fingerprint, new_baseline
    from claimbench.suite import expand, load_suite

    suite = load_suite(suite_path, "default")
    data = new_baseline()
    claims = {c.id: {"kind": c.kind, "verdict": "inconclusive", "effect": 0.01, "ci": [-0.1, 0.1], "n_seeds": 1,
                     "n_trials": 4, "strata": [], "tracked": {"effect": {"seeds": [0], "values": [0.5]}}}
              for c in suite.claims}
    data["suites"][suite.name] = {"default": {"tier": "default", "matrix": matrix_fingerprint(suite),
                                              "n_trials": len(expand(suite)), "statuses": {"completed": 4},
                                              "claims": claims}}
    return data


@settings(FUZZ, max_examples=100)
@given(data=st.data())
def test_any_baseline_file_is_checked_or_refused_in_one_line(tmp_path_factory, small, data):
    path, _ = small
    root = tmp_path_factory.mktemp("baseline")
    baseline = root / "baseline.json"
    how = data.draw(st.sampled_from(["mutated", "mutated", "bytes", "json"]))
    if how == "mutated":
        baseline.write_text(json.dumps(mutate(data, _baseline(path))), encoding="utf-8")
    elif how == "bytes":
        baseline.write_bytes(data.draw(st.binary(max_size=300)))
    else:
        baseline.write_text(json.dumps(data.draw(VALUES)), encoding="utf-8")
    out = root / "out"
    before = tree(root)
    start = time.monotonic()
    refused_or_done(*cli("check", str(path), "--tier", "default", "--baseline", str(baseline), "--executor", "local",
                         "--out", str(out), "--dry-run"))
    assert time.monotonic() - start < BOUND_S and tree(root) == before
