"""The dry-run plan (claimbench/plan.py): what a run would train, and an estimate scaled by what the run
dir's records took, those of earlier code included."""

from __future__ import annotations

import dataclasses

import pytest

from claimbench.api import run_suite
from claimbench.plan import describe, plan
from claimbench.suite import load_suite
from tests.conftest import TINY_SUITE

pytestmark = pytest.mark.usefixtures("one_thread")


def test_records_of_earlier_code_still_scale_the_estimate(write_suite, tmp_path):
    suite = load_suite(write_suite(TINY_SUITE), "smoke")
    out = tmp_path / "run"
    run_suite(suite, out, executor="local", progress=False)
    same = plan([(suite, out)], pack_size=64, executor="local")
    assert not same.new and same.measured_from > 0
    changed = dataclasses.replace(suite, code="claimbench 000000000000")  # the training code changed
    later = plan([(changed, out)], pack_size=64, executor="local")
    assert len(later.new) == len(same.suites[0].new) + same.suites[0].cached  # everything retrains
    assert later.measured_from == same.measured_from and later.scale == pytest.approx(same.scale)
    text = "\n".join(describe(later, "smoke"))
    assert "no records yet" not in text and f"measured from {later.measured_from} records" in text
    fresh = plan([(suite, tmp_path / "fresh")], pack_size=64, executor="local")
    assert fresh.measured_from == 0 and "no records yet" in "\n".join(describe(fresh, "smoke"))
