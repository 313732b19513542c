"""The dry-run plan (claimbench/plan.py): what a run would train, and an estimate scaled by what the run
dir's records took, those of earlier code included."""

from __future__ import annotations

import dataclasses

import pytest

from claimbench.api import run_suite
from claimbench.plan import describe, plan
from claimbench.runner.cost import SHRINK, model_seconds
from claimbench.store.cache import TrialCache
from claimbench.store.rundir import RunStore
from claimbench.suite import expand, load_suite
from claimbench.trial import TrialRecord, TrialStatus
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
    assert later.measured_from == same.measured_from
    text = "\n".join(describe(later, "smoke"))
    assert "no records" not in text and f"fitted on {later.measured_from} records (mlp {later.measured_from})" in text
    fresh = plan([(suite, tmp_path / "fresh")], pack_size=64, executor="local")
    assert fresh.measured_from == 0 and "default model, no records for mlp: rough" in "\n".join(describe(fresh, "smoke"))
    # the estimate follows what the records measured: the same trials, the fitted model's seconds
    assert later.estimate_s == pytest.approx(sum(later.model.seconds(s) for s in later.new))


def _records(suite, factor: float) -> list[TrialRecord]:
    """A completed record of each trial of ``suite`` that took ``factor`` x the default model's seconds."""
    return [TrialRecord(trial_id=s.trial_id, spec=s.to_dict(), status=TrialStatus.COMPLETED,
                        wall_s=factor * model_seconds(s)) for s in expand(suite)]


@pytest.mark.parametrize("factor", [0.25, 4.0])
def test_the_estimate_scales_with_the_records_of_the_run_dir_and_of_the_cache(write_suite, tmp_path, factor):
    suite = load_suite(write_suite(TINY_SUITE), "smoke")
    changed = dataclasses.replace(suite, code="claimbench 000000000000")
    fresh = plan([(changed, tmp_path / "fresh")], pack_size=64, executor="local")
    store = RunStore(tmp_path / "run")
    for r in _records(suite, factor):
        store.append(r)
    measured = plan([(changed, tmp_path / "run")], pack_size=64, executor="local")
    # every record says factor x: the estimate is the default's x the family's ratio, shrunk by SHRINK trials toward
    # the ratio of every family, itself shrunk toward 1
    n = len(expand(suite))
    overall = (n * factor + SHRINK) / (n + SHRINK)
    expected = (n * factor + SHRINK * overall) / (n + SHRINK)
    assert measured.estimate_s == pytest.approx(fresh.estimate_s * expected)
    cache = TrialCache(str(tmp_path / "cache"))
    for r in _records(suite, factor):
        cache.put(r)
    # a fresh run dir, the cache holding the earlier code's records: the same fit
    cached = plan([(changed, tmp_path / "other")], pack_size=64, executor="local", cache=str(tmp_path / "cache"))
    assert cached.measured_from == n and cached.estimate_s == pytest.approx(measured.estimate_s)
    # the cache holding this code's records: they are cached, nothing trains
    hit = plan([(suite, tmp_path / "other")], pack_size=64, executor="local", cache=str(tmp_path / "cache"))
    assert not hit.new and hit.suites[0].cached == n
