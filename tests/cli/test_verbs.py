"""The CLI's selection, planning and comparison verbs: list over the group files, -k, --dry-run,
--seeds, compare, --tier as a choice, and the resource flags of check and baseline.

Two tiny suites (6 trials each at the smoke tier: 2 levels x 3 seeds, 20 steps) in one group; one
module-scoped `run -k P1` of the group trains only the first (local executor, in-process).
"""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from pathlib import Path

import pytest

from claimbench.report.exports import read_verdicts
from claimbench.selection import SelectionError, parse
from claimbench.suite import load_suite
from tests.conftest import cli

ALPHA = """
[suite]
name = "alpha"
title = "Alpha: optimizers"
seeds = 3

[workload]
dataset = "teacher"
n_samples = 300
depth = 1
width = 8

[train]
evals = 2

[budget]
steps = 20

[axes.optimizer]
role = "scientific"
values = ["sgd", "adam"]

[axes.lr]
role = "nuisance"
values = [0.05]

[tiers.smoke]
seeds = 3

[[claims]]
id = "P1"
kind = "paired_comparison"
faq_section = 18
paraphrase = "Adam beats SGD."
params = { a = { optimizer = "adam" }, b = { optimizer = "sgd" } }
"""

BETA = (ALPHA.replace('"alpha"', '"beta"').replace("Alpha: optimizers", "Beta: batch sizes")
        .replace("[axes.optimizer]", "[axes.batch_size]").replace('["sgd", "adam"]', "[4, 16]")
        .replace('"P1"', '"Q1"').replace("Adam beats SGD.", "Small batches win.")
        .replace('{ optimizer = "adam" }', "{ batch_size = 4 }").replace('{ optimizer = "sgd" }', "{ batch_size = 16 }"))

GROUP = """
[group]
name = "pair"
title = "Two tiny suites"
suites = ["pair/alpha.toml", "pair/beta.toml"]
"""


def write_tree(root: Path) -> Path:
    """A suites dir: group pair.toml with its members under pair/, and one suite in no group."""
    (root / "pair").mkdir(parents=True)
    (root / "pair.toml").write_text(textwrap.dedent(GROUP), encoding="utf-8")
    (root / "pair" / "alpha.toml").write_text(ALPHA, encoding="utf-8")
    (root / "pair" / "beta.toml").write_text(BETA, encoding="utf-8")
    (root / "loner.toml").write_text(ALPHA.replace('"alpha"', '"loner"').replace('"P1"', '"Z9"'), encoding="utf-8")
    return root / "pair.toml"


def one_error_line(code: int, err: str, *words: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("claimbench: error:"), err
    for w in words:
        assert w in lines[0], (w, err)


def tree(path: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(path.rglob("*"))}


@pytest.fixture(scope="module")
def grun(tmp_path_factory):
    """`run pair -k P1`: the group's out dir, trained for alpha only."""
    root = tmp_path_factory.mktemp("cli_more")
    group = write_tree(root / "suites")
    out = root / "g"
    code, stdout, err = cli("run", str(group), "-k", "P1", "--tier", "smoke", "--executor", "local", "--quiet",
                            "--out", str(out))
    assert code == 0, err
    return {"root": root, "group": group, "out": out, "stdout": stdout}


def test_list_shows_every_shipped_claim_of_group_members():
    code, out, err = cli("list")
    assert code == 0, err
    for cid in ("B1", "B4", "B5"):  # suites/batch_scaling/*.toml: members of the batch_scaling group only
        assert re.search(rf"^\s+{cid}\s+FAQ §6\s+\w+\s+\S", out, re.M), cid
    assert re.search(r"^batch_scaling \(group\):", out, re.M) and re.search(r"^faq \(group\):", out, re.M)


def test_list_is_driven_by_the_group_files(tmp_path, monkeypatch):
    write_tree(tmp_path)
    monkeypatch.setattr("claimbench.suite.load.suites_dir", lambda: tmp_path)
    code, out, err = cli("list")
    assert code == 0, err
    lines = out.splitlines()
    head = lines.index(next(x for x in lines if x.startswith("pair (group): Two tiny suites")))
    assert lines[head + 1].startswith("  alpha: Alpha: optimizers  (tiers: default, smoke)")
    assert re.match(r"^    P1\s+FAQ §18\s+paired_comparison\s+Adam beats SGD\.$", lines[head + 2])
    assert lines[head + 3].startswith("  beta: ") and lines[head + 4].split()[0] == "Q1"
    rest = lines.index("suites in no group:")
    assert lines[rest + 1].startswith("  loner: ") and lines[rest + 2].split()[0] == "Z9"


def test_k_trains_only_the_selected_claims_suite_and_reports_only_it(grun):
    out = grun["out"]
    assert (out / "alpha" / "run.json").is_file() and not (out / "beta").exists()
    assert len(list((out / "alpha" / "trials").glob("*.json"))) == 6
    assert "alpha [smoke]: 6 trials" in grun["stdout"] and "beta" not in grun["stdout"]
    assert {r["claim_id"] for r in read_verdicts(out)} == {"P1"}
    html = (out / "report.html").read_text(encoding="utf-8")
    assert 'id="P1"' in html and 'id="Q1"' not in html
    assert json.loads((out / "group.json").read_text())["suites"] == ["alpha", "beta"]  # the group, not the pick


def test_k_that_selects_nothing_or_does_not_parse_is_one_line(grun, tmp_path):
    out = tmp_path / "none"
    code, _, err = cli("run", str(grun["group"]), "-k", "nothing_here", "--tier", "smoke", "--executor", "local",
                       "--out", str(out))
    one_error_line(code, err, "-k", "selects no claim", "alpha (P1)")
    assert not out.exists()
    code, _, err = cli("report", str(grun["out"]), "-k", "P1 and (")
    one_error_line(code, err, "-k")


def test_selection_expressions():
    def kept(expr):
        s = parse(expr)
        return sorted(cid for suite, cid in [("alpha", "P1"), ("alpha", "P1b"), ("beta", "Q1")] if s(suite, cid))

    assert kept("p1") == ["P1", "P1b"]
    assert kept("P1 and not P1b") == ["P1"]
    assert kept("beta, P1b") == ["P1b", "Q1"]
    assert kept("not alpha or P1b and Q") == ["Q1"]  # and binds tighter than or
    assert kept("(alpha or beta) and not (P1b)") == ["P1", "Q1"]
    for bad in ("", "P1 and", "(P1", "P1 Q1", "P1;rm"):
        with pytest.raises(SelectionError):
            parse(bad)


def test_dry_run_counts_cached_records_and_writes_nothing(grun, tmp_path):
    out = grun["out"]
    before = tree(out)
    code, stdout, err = cli("run", str(grun["group"]), "--tier", "smoke", "--executor", "local", "--out", str(out),
                            "--dry-run")
    assert code == 0, err
    assert "alpha [smoke]: 6 trials (3 seeds), 6 cached, 0 new" in stdout
    assert "beta [smoke]: 6 trials (3 seeds), 0 cached, 6 new" in stdout
    assert re.search(r"^new: 6 distinct trials in \d+ packs .* on 1 worker$", stdout, re.M)
    assert re.search(r"^estimate: .*fitted on 6 records \(mlp 6\)", stdout, re.M)
    assert tree(out) == before  # no record, lock, report or run.json touched
    fresh = tmp_path / "fresh"
    code, stdout, err = cli("run", str(grun["group"]), "--tier", "smoke", "--out", str(fresh), "--dry-run")
    assert code == 0, err
    assert "0 cached, 6 new" in stdout and "default model, no records for mlp: rough" in stdout and not fresh.exists()


def test_seeds_changes_the_seed_count_and_the_default_out_dir(grun, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    beta = grun["group"].parent / "pair" / "beta.toml"
    assert load_suite(str(beta), "smoke", seeds=2).seeds == (0, 1)  # 0..N-1 in place of the tier's 3
    code, stdout, err = cli("run", str(beta), "--tier", "smoke", "--executor", "local", "--seeds", "2", "--dry-run")
    assert code == 0, err
    assert f"beta [smoke]: 4 trials (2 seeds), 0 cached, 4 new; run dir {Path('runs') / 'beta-smoke-seeds2'}" in stdout
    code, stdout, err = cli("run", str(grun["group"]), "--tier", "smoke", "--seeds", "5", "--dry-run")
    assert f"run dir {Path('runs') / 'pair-smoke-seeds5' / 'alpha'}" in stdout and "10 trials (5 seeds)" in stdout, err
    assert not (tmp_path / "runs").exists()
    code, _, err = cli("run", str(beta), "--tier", "smoke", "--seeds", "0", "--dry-run")
    one_error_line(code, err, "--seeds", ">= 1")
    code, _, err = cli("run", str(beta), "--tier", "smoke", "--seeds", "5000", "--dry-run")
    one_error_line(code, err, "--seeds", "5000", "[limits]")


def test_compare_a_run_with_itself_and_with_shifted_records(grun, tmp_path):
    out = grun["out"]
    code, stdout, err = cli("compare", str(out), str(out))
    assert code == 0, err
    assert re.search(r"^  P1\s+same\s+verdict \w+;", stdout, re.M)
    assert "1 claim: 0 regression, 0 changed, 1 same" in stdout
    from claimbench.store.records import record_digest

    shifted = tmp_path / "shifted"
    shutil.copytree(out, shifted)
    # arm a loses 0.3 to 0.32 of test accuracy, seed by seed (the same loss on all 3 seeds is p = 1/8 under the
    # exact sign-flip test, which never claims certainty from 3 seeds)
    for p in (shifted / "alpha" / "trials").glob("*.json"):
        record = json.loads(p.read_text())
        if record["spec"]["optimizer"] == "adam":
            record["metrics"]["test_acc"] -= 0.3 + 0.01 * record["spec"]["seed"]
            record["digest"] = record_digest(record)  # another result, sealed as the store seals one
            p.write_text(json.dumps(record))
    md = tmp_path / "compare.md"
    code, stdout, err = cli("compare", str(out), str(shifted), "--markdown", str(md))
    assert code == 0, err  # informational: a change is not a failure
    line = next(x for x in stdout.splitlines() if x.strip().startswith("P1"))
    assert re.search(r"P1\s+(regression|changed)\s", line), line
    assert re.search(r"Δ -0\.310 \(95% CI -0\.33\d to -0\.28\d; paired, n=3\) beyond", line), line
    table = md.read_text(encoding="utf-8")
    assert "| status | suite | claim | verdict A → B | effect |" in table and "| alpha | P1 |" in table
    code, _, err = cli("compare", str(out), str(tmp_path / "missing"))
    one_error_line(code, err, "missing")


@pytest.mark.parametrize("verb", ["run", "check", "baseline"])
def test_an_unknown_tier_is_one_line_naming_the_tiers(verb, tmp_path):
    extra = ["--baseline", str(tmp_path / "b.json")] if verb == "check" else []
    code, _, err = cli(verb, "batch_size", "--tier", "huge", *extra)
    one_error_line(code, err, "--tier", "'huge'", "smoke, ci, default, full")


@pytest.mark.parametrize("verb,flag,value", [("check", "--pack-size", "0"), ("baseline", "--pack-size", "0"),
                                             ("check", "--cpus-per-trial", "0"),
                                             ("baseline", "--gpus-per-trial", "-1")])
def test_check_and_baseline_validate_the_resource_flags_as_run_does(verb, flag, value, tmp_path):
    extra = ["--baseline", str(tmp_path / "b.json")] if verb == "check" else ["-o", str(tmp_path / "b.json")]
    code, _, err = cli(verb, "batch_size", flag, value, "--executor", "local", *extra)
    one_error_line(code, err, flag)
    code_run, _, err_run = cli("run", "batch_size", flag, value, "--executor", "local")
    assert err_run == err  # the same check, the same line


def test_baseline_k_keeps_the_other_claims_of_an_entry_of_the_same_matrix(tiny_suite_path):
    from claimbench.check.baseline import matrix_fingerprint, merge_entry

    suite = load_suite(str(tiny_suite_path), "smoke")
    old = {"matrix": matrix_fingerprint(suite), "claims": {"B2": {"verdict": "supported"}, "B3": {"verdict": "refuted"}}}
    data = {"suites": {"tiny": {"smoke": old}}}
    new = {"matrix": old["matrix"], "claims": {"B3": {"verdict": "inconclusive"}}}
    entry, lacking = merge_entry(data, suite, new)
    assert entry["claims"] == {"B2": {"verdict": "supported"}, "B3": {"verdict": "inconclusive"}} and lacking == []
    entry, lacking = merge_entry(data, suite, {**new, "matrix": "another"})  # another matrix: nothing kept
    assert list(entry["claims"]) == ["B3"] and lacking == ["B2"]


def test_baseline_and_check_with_k_train_and_gate_only_the_selection(grun, tmp_path):
    base = tmp_path / "baseline.json"
    args = ("--tier", "smoke", "--executor", "local", "--quiet", "--out", str(grun["out"]), "-k", "P1")
    code, out, err = cli("baseline", str(grun["group"]), "-o", str(base), *args)
    assert code == 0, err
    assert "alpha [smoke]: 6 trials, reused 6, trained 0 now" in out and "beta" not in out
    assert list(json.loads(base.read_text())["suites"]) == ["alpha"]
    code, out, err = cli("check", str(grun["group"]), "--baseline", str(base), *args, "--pack-size", "2")
    assert code == 0, out + err
    assert re.search(r"^  P1\s+ok\s", out, re.M) and "every claim holds" in out
    code, _, err = cli("check", str(grun["group"]), "--baseline", str(base), *args[:-2])  # beta: no baseline
    one_error_line(code, err, "no baseline for suite 'beta'")
