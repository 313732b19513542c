"""Progress: evaluations inside a pack move the bar; the long-wait message blames resources only when Ray
says a worker is not scheduled; the command's wall time. No timing is asserted."""

from __future__ import annotations

import contextlib
import io
import time
from types import SimpleNamespace

import pytest

from claimbench.runner.driver import run_trials
from claimbench.runner.local import LocalExecutor
from claimbench.runner.packs import make_packs
from claimbench.runner.progress import RunProgress, command_elapsed, timing_line
from claimbench.runner.ray_executor import _pending_actors, _Reporter, _stall_message
from claimbench.suite import expand, load_suite
from claimbench.trial import TrialRecord, TrialStatus

IMPORTED_AT = time.monotonic()


class Listening(LocalExecutor):
    """The local executor, noting every on_eval that run_trials hands it, in order with the records."""

    def __init__(self, events: list) -> None:
        super().__init__()
        self.events = events

    def run(self, packs, on_record, on_eval=None, timeouts=None, feed=None):
        def heard(tid, step, total):
            self.events.append(("eval", tid, step, total))
            on_eval(tid, step, total)

        super().run(packs, on_record, on_eval=heard, timeouts=timeouts, feed=feed)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The tiny suite's smoke trials through run_trials on the local executor, progress on (not a terminal):
    every on_eval and on_record in order, the records, and what it printed."""
    from tests.conftest import TINY_SUITE

    path = tmp_path_factory.mktemp("progress") / "suite.toml"
    path.write_text(TINY_SUITE, encoding="utf-8")
    specs = expand(load_suite(path, "smoke"))
    events, records = [], {}

    def on_record(r: TrialRecord) -> None:
        events.append(("record", r.trial_id, None, None))
        records[r.trial_id] = r

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        run_trials(specs, Listening(events), on_record, pack_size=64, progress=True)
    return specs, events, records, err.getvalue()


def test_local_executor_reports_each_evaluation_before_its_pack_ends(local_run):
    specs, events, records, _ = local_run
    completed = [s.trial_id for s in specs if records[s.trial_id].status is TrialStatus.COMPLETED]
    assert completed
    first_record = min(i for i, e in enumerate(events) if e[0] == "record")
    for tid in completed:
        evals = [(i, e[2], e[3]) for i, e in enumerate(events) if e[0] == "eval" and e[1] == tid]
        done_at = next(i for i, e in enumerate(events) if e[0] == "record" and e[1] == tid)
        steps = [step for _, step, _ in evals]
        # one event per evaluation after step 0, the curve's, all before the trial's record
        assert steps == [p["step"] for p in records[tid].curve[1:]]
        assert all(i < done_at for i, _, _ in evals)
        assert all(total == steps[-1] for _, _, total in evals)
    # some trial evaluated before any pack had finished: progress moves inside a pack
    assert any(e[0] == "eval" and e[2] < e[3] for e in events[:first_record])


def test_progress_lines_move_before_the_first_pack_ends(local_run):
    specs, _, records, err = local_run
    lines = [ln for ln in err.splitlines() if ln.startswith("trials: ")]
    assert len(records) == len(specs) and len(make_packs(specs, 64, workers=1)) > 1
    assert any(ln.startswith("trials: 0/") for ln in lines), lines  # credited by evaluations alone
    assert lines[-1].startswith(f"trials: {len(specs)}/{len(specs)} done")


def test_evaluations_credit_their_share_once_and_the_record_the_rest():
    from claimbench.runner.cost import CostModel
    from claimbench.workloads.builtin import TrialSpec

    a = TrialSpec(dataset="teacher", n_samples=600, depth=1, width=16, batch_size=8, steps=100)
    b = TrialSpec(dataset="teacher", n_samples=600, depth=1, width=16, batch_size=8, steps=200)
    model = CostModel()
    pa, pb = model.seconds(a), model.seconds(b)
    bar = RunProgress(2, enabled=False)
    bar.plan([[a], [b]], model, workers=1)
    bar.on_eval(a.trial_id, 5, 10)
    bar.on_eval(a.trial_id, 5, 10)  # repeated: nothing more
    bar.on_eval(a.trial_id, 3, 10)  # an older one, late: nothing back
    assert bar.work() == pytest.approx((0.5 * pa, 0.5 * pa + pb))
    bar.update(SimpleNamespace(trial_id=a.trial_id, status=TrialStatus.COMPLETED, wall_s=pa))  # as predicted
    assert bar.work() == pytest.approx((pa, pb)) and bar.done == 1
    bar.on_eval(a.trial_id, 10, 10)  # drained after its record: credits nothing
    bar.on_eval(b.trial_id, 40, 10)  # a step beyond the total is capped at the trial's prediction
    assert bar.work()[1] == pytest.approx(0.0) and bar.fraction() == pytest.approx(1.0)
    bar.update(SimpleNamespace(trial_id=b.trial_id, status=TrialStatus.DIVERGED, wall_s=2 * pb))
    assert bar.work() == pytest.approx((pa + 2 * pb, 0.0)) and bar.diverged == 1 and bar.last_eval_at is not None


def test_notes_print_unless_progress_is_off(capsys):
    RunProgress(1, enabled=True).note("starting Ray (2 CPUs)…")
    RunProgress(1, enabled=False).note("never")
    err = capsys.readouterr().err
    assert "starting Ray (2 CPUs)…" in err and "never" not in err


def test_the_wait_message_blames_resources_only_when_ray_reports_a_pending_worker():
    busy = _stall_message(180, actors=2, pending=0, starting=0, queued=3, running_since=[0.0, 100.0],
                          last_eval_at=188.0, now=200.0)
    assert "resources" not in busy
    assert "2 packs training (the longest for 200s)" in busy and "last evaluation 12s ago" in busy
    assert "all 2 workers started" in busy
    starting = _stall_message(60, actors=2, pending=0, starting=1, queued=4, running_since=[], now=60.0)
    assert "resources" not in starting and "1 of 2 workers starting" in starting
    waiting = _stall_message(60, actors=2, pending=1, starting=0, queued=4, running_since=[10.0], now=60.0)
    assert "1 of 2 workers waiting for resources" in waiting


def test_pending_workers_are_counted_from_rays_actor_states(monkeypatch):
    pytest.importorskip("ray")
    from ray._private import state

    table = {"a1": "ALIVE", "p1": "PENDING_CREATION", "d1": "DEPENDENCIES_UNREADY", "x1": None}

    def actors(actor_id=None, **_):
        if table[actor_id] is None:
            raise RuntimeError("not connected")
        return {"State": table[actor_id]}

    monkeypatch.setattr(state, "actors", actors)
    handles = [SimpleNamespace(_actor_id=SimpleNamespace(hex=lambda k=k: k)) for k in table]
    assert _pending_actors(None, handles) == 2  # an unreadable state is never blamed on resources
    assert _pending_actors(None, handles[:1]) == 0


def test_a_worker_sends_its_latest_evaluations_at_most_every_interval():
    sent = []
    sink = SimpleNamespace(put=SimpleNamespace(remote=sent.append))
    slow = _Reporter(sink, every=1e9)
    slow("a", 10, 30)  # the first goes at once
    slow("a", 20, 30)
    slow("b", 20, 30)
    assert sent == [[("a", 10, 30)]]
    slow.flush()  # the rest, latest per trial only
    assert sent[-1] == [("a", 20, 30), ("b", 20, 30)]
    eager = _Reporter(sink, every=0.0)
    eager("c", 1, 2)
    eager("c", 2, 2)
    assert sent[-2:] == [[("c", 1, 2)], [("c", 2, 2)]]


def test_the_command_time_counts_from_the_process_start():
    elapsed = command_elapsed()
    if elapsed is None:
        pytest.skip("no /proc here")
    assert elapsed + 0.05 >= time.monotonic() - IMPORTED_AT  # this process started before this module loaded
    assert timing_line(0, 24.2, 6.4, 2.9) == "trained 0 trials; the command took 24s (Ray startup 6s)"
    assert timing_line(5, 30.0, None, 12.4) == "trained 5 trials in 12s; the command took 30s"
    assert timing_line(1, 3.0) == "trained 1 trial; the command took 3s"
