"""JUnit XML of a `claimbench check`: one testsuite per suite and tier, one testcase per claim.

A regression is a ``<failure type="regression">`` whose message is its first
line of evidence and whose text holds all of it (verdicts, effects and CIs,
each tracked quantity with its test); a claim with nothing to compare is
``<skipped>``. The layout is the common JUnit dialect that CI systems and
``junitparser`` read (testsuites > testsuite > testcase > failure | skipped,
system-out).
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

from claimbench.check.gate import ClaimOutcome, SuiteCheck
from claimbench.store.files import atomic_write_text


def render_junit(checks: list[SuiteCheck]) -> str:
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    root = ET.Element("testsuites", name="claimbench check")
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    total_time = 0.0
    for sc in checks:
        tests = len(sc.outcomes)
        failures = sum(o.status == "failed" for o in sc.outcomes)
        skipped = sum(o.status == "skipped" for o in sc.outcomes)
        suite_el = ET.SubElement(root, "testsuite", name=f"{sc.suite} [{sc.tier}]", tests=str(tests),
                                 failures=str(failures), errors="0", skipped=str(skipped),
                                 time=f"{sc.elapsed_s:.3f}", timestamp=stamp, hostname=socket.gethostname())
        props = ET.SubElement(suite_el, "properties")
        for key, value in (("run_dir", str(sc.run_dir)), ("report", str(sc.report or "")),
                           ("trials", f"{sc.total} ({sc.trained} trained now)"),
                           ("baseline.measured", sc.baseline_measured),
                           ("baseline.git_sha", str(sc.baseline_environment.get("git_sha") or "")),
                           ("baseline.cpu", str(sc.baseline_environment.get("cpu") or ""))):
            ET.SubElement(props, "property", name=key, value=value)
        for o in sc.outcomes:
            _testcase(suite_el, o)
        totals["tests"] += tests
        totals["failures"] += failures
        totals["skipped"] += skipped
        total_time += sc.elapsed_s
    root.set("tests", str(totals["tests"]))
    root.set("failures", str(totals["failures"]))
    root.set("errors", "0")
    root.set("skipped", str(totals["skipped"]))
    root.set("time", f"{total_time:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _testcase(parent: ET.Element, o: ClaimOutcome) -> None:
    name = f"{o.claim_id}: {o.paraphrase}" if o.paraphrase else o.claim_id
    case = ET.SubElement(parent, "testcase", classname=f"claimbench.{o.suite}.{o.tier}", name=name,
                         time=f"{o.time_s:.3f}")
    if o.status == "failed":
        failure = ET.SubElement(case, "failure", type="regression",
                                message=f"{o.suite} {o.claim_id} regressed: {o.regressions[0]}")
        failure.text = "\n".join([*o.regressions, *(f"note: {n}" for n in o.notes), f"now: {o.summary}"])
    elif o.status == "skipped":
        ET.SubElement(case, "skipped", message=o.headline)
    out = [f"verdict: {o.verdict} (baseline: {o.baseline_verdict}; gate: {o.gate})"]
    out += [f.text for f in o.findings]
    out += [f"note: {n}" for n in o.notes]
    if o.summary:
        out.append(f"now: {o.summary}")
    ET.SubElement(case, "system-out").text = "\n".join(out)


def write_junit(checks: list[SuiteCheck], path: str | Path) -> Path:
    p = Path(path)
    atomic_write_text(p, render_junit(checks))
    return p
