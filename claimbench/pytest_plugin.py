"""The pytest plugin: each claim of a suite becomes a test item, gated against a baseline as `claimbench check`.

    pytest --claimbench suites/mine.toml --claimbench-baseline baseline.json [--claimbench-tier ci]
           [--claimbench-out runs/pytest-ci] [--claimbench-cache .claimbench-cache]

Registered through pytest's entry-point group ``pytest11`` (pyproject.toml), as pytest-benchmark is; it does
nothing unless ``--claimbench`` is given. At collection the suites load and the baseline is read (a bad
suite or baseline is a usage error, before anything trains); the first item trains the missing trials once,
through the local executor (or ``--claimbench-executor ray``), and every item then passes, fails or skips
with the line `claimbench check` prints for its claim (``check.gate``: the same rule).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from claimbench.errors import UserError
from claimbench.paths import inside


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("claimbench", "claims as tests (claimbench)")
    group.addoption("--claimbench", action="append", default=[], metavar="SUITE",
                    help="a suite (name or .toml path) whose claims become test items; repeatable")
    group.addoption("--claimbench-baseline", default=None, metavar="FILE", help="the baseline the claims are gated on")
    group.addoption("--claimbench-tier", default="ci", help="the suites' tier [ci]")
    group.addoption("--claimbench-out", default=None, metavar="DIR", help="run dirs [runs/pytest-TIER]")
    group.addoption("--claimbench-executor", default="local", help="local (default) or ray")
    group.addoption("--claimbench-cache", default=None, metavar="DIR|URL", help="a shared trial cache")


class ClaimGate:
    """The suites and baseline of this session, measured once on first use."""

    def __init__(self, config: pytest.Config) -> None:
        # the pipeline loads only in a session that asks for claims: pytest loads this plugin in every session
        from claimbench.api import load_check_targets
        from claimbench.check.baseline import baseline_for, read_baseline

        opt = config.getoption
        self.baseline_path = opt("claimbench_baseline")
        if not self.baseline_path:
            raise pytest.UsageError("--claimbench needs --claimbench-baseline FILE (claimbench baseline writes one)")
        self.tier = opt("claimbench_tier")
        try:
            self.data = read_baseline(self.baseline_path)
            self.suites, skipped = load_check_targets(list(opt("claimbench")), self.tier, None)
            for s in self.suites:
                baseline_for(self.data, s, self.baseline_path)
        except UserError as e:
            raise pytest.UsageError(f"claimbench: {e}") from None
        if skipped:
            raise pytest.UsageError(f"claimbench: no [tiers.{self.tier}] in {', '.join(skipped)}")
        self.out = Path(opt("claimbench_out") or inside("runs", f"pytest-{self.tier}"))
        self.executor = opt("claimbench_executor")
        self.cache = opt("claimbench_cache")
        self._outcomes: dict[tuple[str, str], Any] | None = None

    def outcome(self, suite: str, claim_id: str):
        if self._outcomes is None:
            from claimbench.api import measure
            from claimbench.check.gate import check_measured

            measured = measure(self.suites, self.out, executor=self.executor, progress=False, html=True,
                               command="pytest --claimbench", cache=self.cache)
            checks = check_measured(measured, self.data, self.baseline_path, None)
            self._outcomes = {(sc.suite, o.claim_id): o for sc in checks for o in sc.outcomes}
        return self._outcomes.get((suite, claim_id))


class ClaimItem(pytest.Item):
    def __init__(self, *, gate: ClaimGate, suite: str, claim_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gate, self.suite, self.claim_id = gate, suite, claim_id

    def runtest(self) -> None:
        o = self.gate.outcome(self.suite, self.claim_id)
        if o is None:
            pytest.fail(f"{self.suite}/{self.claim_id}: not judged", pytrace=False)
        if o.status == "skipped":
            pytest.skip(o.line)
        if o.status == "failed":
            pytest.fail(f"{self.suite}/{self.claim_id}: {o.line}", pytrace=False)

    def reportinfo(self):
        return self.gate.baseline_path, None, f"claim {self.suite}/{self.claim_id}"


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    if not config.getoption("claimbench"):
        return
    gate = ClaimGate(config)
    for suite in gate.suites:
        for claim in suite.claims:
            items.append(ClaimItem.from_parent(session, name=f"claimbench::{suite.name}::{claim.id}", gate=gate,
                                               suite=suite.name, claim_id=claim.id))
