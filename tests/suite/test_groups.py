"""Suite groups: `claimbench run GROUP` runs several suites through one executor into one run dir and one report."""

from __future__ import annotations

import json
import re

import pytest

from claimbench.api import evaluate_target
from claimbench.cli import main
from claimbench.errors import SuiteError
from claimbench.suite import load_group, load_suite, load_targets
from tests.conftest import TINY_SUITE

SECOND = TINY_SUITE.replace('name = "tiny"', 'name = "tiny_two"').replace('id = "B2"', 'id = "X2"') \
    .replace('id = "B3"', 'id = "X3"').replace("faq_section = 6", "faq_section = 9", 1)

GROUP = """
[group]
name = "pair"
title = "Two tiny suites"
description = "Group test."
suites = ["one.toml", "two.toml"]
"""


@pytest.fixture
def group_path(write_suite):
    write_suite(TINY_SUITE, "one.toml")
    write_suite(SECOND, "two.toml")
    return write_suite(GROUP, "pair.toml")


def test_group_expands_to_its_suites_in_order(group_path):
    group = load_group(group_path)
    assert group.name == "pair" and len(group.suites) == 2
    suites = load_targets([str(group_path)], "smoke")
    assert [s.name for s in suites] == ["tiny", "tiny_two"] and all(s.tier == "smoke" for s in suites)
    assert load_group(group_path.parent / "one.toml") is None  # a suite is not a group


def test_a_group_is_not_a_suite_and_names_known_suites(group_path, write_suite):
    with pytest.raises(SuiteError, match="group of suites"):
        load_suite(group_path)
    bad = write_suite(GROUP.replace('"two.toml"', '"missing.toml"'), "bad.toml")
    with pytest.raises(SuiteError, match=r"bad.toml: group.suites.*missing.toml"):
        load_group(bad)


def test_run_group_one_report_grouped_by_faq_section(group_path, tmp_path, capsys):
    out = tmp_path / "run"
    main(["run", str(group_path), "--tier", "smoke", "--executor", "local", "--out", str(out), "--quiet"])
    info = json.loads((out / "group.json").read_text())
    assert info["suites"] == ["tiny", "tiny_two"] and info["tier"] == "smoke"
    one = sorted(p.name for p in (out / "tiny" / "trials").glob("*.json"))
    two = sorted(p.name for p in (out / "tiny_two" / "trials").glob("*.json"))
    # the two suites share every trial (same matrix): each store gets every record, trained once
    assert one == two and len(one) == 2 * 3  # smoke: 2 batch sizes x 3 LRs x 1 seed
    printed = capsys.readouterr().out
    assert "trained 6 trials" in printed and printed.count("; 6 new;") == 2  # shared trials trained once
    html = (out / "report.html").read_text(encoding="utf-8")
    sections = re.findall(r'<tr class="section"><th colspan="10">(.*?)</th>', html)
    assert sections == ["FAQ §6 · Batch size", "FAQ §9 · Momentum"]
    for cid in ("B2", "B3", "X2", "X3"):
        assert f'id="{cid}"' in html
    assert html.index('id="B3"') < html.index('id="X2"')  # §6 before §9
    assert [e.suite.name for e in evaluate_target(out)] == ["tiny", "tiny_two"]

    main(["run", str(group_path), "--tier", "smoke", "--executor", "local", "--out", str(out), "--quiet"])
    printed = capsys.readouterr().out
    assert "trained 0 trials" in printed and printed.count("; 0 new;") == 2  # a rerun trains nothing


def test_report_of_group_dir_and_missing_group_runs(group_path, tmp_path, capsys):
    out = tmp_path / "run"
    (out).mkdir()
    (out / "group.json").write_text(json.dumps({"schema": 1, "group": "pair", "tier": "smoke", "suites": ["tiny"]}))
    with pytest.raises(SystemExit) as e:
        main(["report", str(out)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no suite run dirs yet" in err and "claimbench run pair" in err
