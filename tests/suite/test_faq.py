"""The FAQ corpus end to end: every catalog claim (except the batch-scaling rows B1, B4, B5)
is listed, runs at the smoke tier through the `faq` group, and gets a verdict row and a
figure in one report that renders cleanly in a browser."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from claimbench.suite import load_group, load_targets

#: The ids of the claim catalog (CLAIMS.md) that the FAQ group answers.
CATALOG = ("E1 L1 L2 L3 M1 M2 M3 V1 A1 A2 I1 N1 N2 N3 N4 C1 C2 D1 D2 D3 D4 D5 O1 O2 O3 O4 S1 S2 "
           "H1 H2 H3 H4 R1 R2 B2 B3").split()
#: The parts of catalog rows that the first suites tested only in part (issue 16), one suite each.
PARTS = "D2b D4b O2b I1b I1c C1b C1c".split()
FAQ_SECTIONS = {"B": "6", "E": "7", "L": "8", "M": "9", "V": "10", "A": "11", "I": "13", "N": "14",
                "C": "15", "D": "17", "O": "18", "S": "19", "H": "4", "R": "5"}


def claimbench(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "claimbench", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_every_catalog_claim_has_a_suite_and_its_faq_section():
    claims = {c.id: c for s in load_targets(["faq"], "default") for c in s.claims}
    assert set(CATALOG + PARTS) <= set(claims)
    assert not {"B1", "B4", "B5"} & set(claims)  # the batch-scaling suite answers those
    for cid in CATALOG + PARTS:
        assert claims[cid].faq_section == FAQ_SECTIONS[cid[0]], cid
        assert claims[cid].paraphrase
    listed = claimbench("list")
    assert listed.returncode == 0, listed.stderr
    for cid in CATALOG + PARTS:
        assert re.search(rf"^\s+{cid}\s+FAQ §{FAQ_SECTIONS[cid[0]]}\s", listed.stdout, re.M), cid
    assert "faq (group)" in listed.stdout


def test_every_faq_suite_has_smoke_default_and_full_tiers():
    for name in load_group("faq").suites:
        for tier in ("smoke", "default", "full"):
            assert load_targets([name], tier)[0].tier == tier


@pytest.mark.slow
@pytest.mark.ray
def test_faq_smoke_run_answers_every_claim_in_one_report(tmp_path):
    out = tmp_path / "faq"
    run = claimbench("run", "faq", "--tier", "smoke", "--out", str(out), "--quiet")
    assert run.returncode == 0, run.stderr[-2000:]
    html = (out / "report.html").read_text(encoding="utf-8")
    for cid in CATALOG + PARTS:
        row = re.search(rf'<td class="id"><a href="#{cid}">{cid}</a></td>.*?<span class="badge (\w+)">', html, re.S)
        assert row and row.group(1) in ("supported", "refuted", "inconclusive"), cid
    sections = re.split(r'<section class="claim ', html)[1:]
    assert len(sections) >= len(CATALOG)
    for section in sections:
        cid = re.search(r'id="([^"]+)"', section).group(1)
        assert "<figure>" in section and "could not be drawn" not in section, cid
    faq_heads = re.findall(r'<tr class="section"><th colspan="10">FAQ §(\d+)', html)
    assert faq_heads == sorted(faq_heads, key=int) and len(faq_heads) == len(set(FAQ_SECTIONS.values()))

    from tests.cdp import Browser, find_chromium
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no Chromium installed: the browser half of this test did not run")
    with Browser(chromium) as browser:
        page = browser.open((out / "report.html").as_uri())
        log = page.log()
        layout = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth, "
                               "[...document.querySelectorAll('figure svg')].filter("
                               "s => s.getBoundingClientRect().height < 50).length]")
    assert [u for u in log.requests if not u.startswith(("file:", "data:"))] == []
    assert log.errors() == []
    assert layout[0] <= layout[1] + 1 and layout[2] == 0  # nothing overflows sideways; every figure drawn
