"""The batch-size schedule (Smith et al. 2018, arXiv 1711.00489): batch x k where a step LR schedule
divides the LR by k; updates and examples counted apart; the packed engine as the single one."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from claimbench.train.packed.engine import train_jointly
from claimbench.train.packing import pack_key, packable
from claimbench.train.policy.plan import DataOrder, Plan
from claimbench.train.single import train_trial
from claimbench.workloads.builtin import TrialSpec
from tests.train.equivalence import assert_match

# 1000 samples of the teacher task: 640 training examples, 80 batches of 8 per epoch
BASE = TrialSpec(dataset="teacher", n_samples=1000, depth=1, width=32, batch_size=8, optimizer="sgd", momentum=0.9,
                 lr=0.05, epochs=4, evals=4, batch_schedule="step", batch_factor=2)


pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_batch_grows_where_the_step_schedule_cuts_the_lr(cache):
    record = train_trial(BASE, cache)
    # 4 epochs x 80 steps = 320 steps at batch 8 for the LR arm; its cuts at steps 160 and 240. The batch
    # arm: 160 steps of 8, then the next 640 examples in 40 steps of 16, the last 640 in 20 steps of 32.
    assert record.steps_done == 160 + 40 + 20
    assert record.examples_done == 320 * 8
    lr_arm = train_trial(dataclasses.replace(BASE, batch_schedule="constant", batch_factor=1, schedule="step",
                                             schedule_gamma=0.5), cache)
    assert lr_arm.steps_done == 320 and lr_arm.examples_done == record.examples_done
    assert "batch_size" not in lr_arm.curve[-1]
    # evaluations evenly over the examples: one per epoch, each with the batch of its last update
    assert [(p["step"], p["examples"], p["epoch"]) for p in record.curve] == [
        (0, 0, 0.0), (80, 640, 1.0), (160, 1280, 2.0), (200, 1920, 3.0), (220, 2560, 4.0)]
    assert [p.get("batch_size") for p in record.curve[1:]] == [8, 8, 16, 32]
    assert [p["lr"] for p in record.curve[1:]] == [BASE.lr] * 4  # the LR stays constant


def test_with_schedule_step_the_lr_is_cut_where_the_batch_grows(cache):
    """Seesaw's ramp: each batch growth comes with an LR cut, at the same update."""
    ramp = train_trial(dataclasses.replace(BASE, schedule="step", schedule_gamma=0.5 ** 0.5), cache)
    assert ramp.steps_done == 160 + 40 + 20  # the batch schedule as without the cut
    by_step = {p["step"]: (p.get("batch_size"), p["lr"]) for p in ramp.curve[1:]}
    assert by_step[80] == (8, pytest.approx(BASE.lr)) and by_step[160] == (8, pytest.approx(BASE.lr))
    assert by_step[200] == (16, pytest.approx(BASE.lr / 2 ** 0.5))  # first growth at update 160: one cut
    assert by_step[220] == (32, pytest.approx(BASE.lr / 2))  # second growth at update 200: two cuts


def test_examples_to_target_follow_the_schedule(cache):
    spec = dataclasses.replace(BASE, target=0.3)
    record = train_trial(spec, cache)
    assert record.steps_to_target is not None
    at = next(p for p in record.curve if p["step"] == record.steps_to_target)
    assert record.examples_to_target == at["examples"]


def test_the_data_order_draws_each_batch_from_the_epochs_permutation():
    plan = Plan(8, 100, 12, 0, frozenset(), 0, "val_acc", ((0, 8, 0), (5, 32, 40)))
    order = DataOrder([3], plan, torch.device("cpu"))
    batches = [order.batch(step)[0] for step in range(9)]
    assert [len(b) for b in batches] == [8] * 5 + [32] * 4
    epoch = torch.cat(batches[:6])  # 40 + 32 examples of one permutation; the next batch of 32 does not fit
    assert len(set(epoch.tolist())) == 72
    assert len(set(torch.cat(batches[6:8]).tolist())) == 64  # a new permutation


def test_packed_batch_schedule_matches_the_single_engine(cache):
    specs = [BASE, dataclasses.replace(BASE, seed=1, lr=0.02), dataclasses.replace(BASE, seed=2, momentum=0.5)]
    assert all(packable(s) for s in specs) and len({pack_key(s) for s in specs}) == 1
    assert pack_key(BASE) != pack_key(dataclasses.replace(BASE, batch_factor=4))
    assert pack_key(BASE) != pack_key(dataclasses.replace(BASE, batch_schedule="constant", batch_factor=1))
    for p, s in zip(train_jointly(specs, cache), specs):
        assert p.engine == "packed-mlp"
        assert_match(p, train_trial(s, cache), n_eval=200)


@pytest.mark.parametrize("changes, message", [
    (dict(batch_factor=2), "batch_factor applies to batch_schedule step"),
    (dict(batch_schedule="step"), "batch_factor >= 2"),
    (dict(batch_schedule="step", batch_factor=2, schedule="cosine"), "schedule constant"),
])
def test_bad_schedules_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        TrialSpec(steps=10, **changes)


def test_a_batch_that_outgrows_the_data_fails_with_the_reason(cache):
    record = train_trial(dataclasses.replace(BASE, batch_size=64, batch_factor=4), cache)
    assert record.status.value == "failed" and "more than the 640 training examples" in record.error


def test_a_suite_with_a_bad_schedule_fails_on_load_naming_the_file(tmp_path):
    from pathlib import Path

    from claimbench.errors import UserError
    from claimbench.suite import load_suite

    shipped = Path(__file__).parents[2] / "suites" / "frontier" / "batch_schedule.toml"
    bad = tmp_path / "bad.toml"
    bad.write_text(shipped.read_text().replace("batch_factor = 5", "batch_factor = 1"))
    with pytest.raises(UserError) as info:
        load_suite(str(bad), tier="smoke")
    text = str(info.value)
    assert "bad.toml" in text and "batch_factor >= 2" in text and "\n" not in text
    assert "epochs/steps" not in text  # the fix is the combination's, not the budget's
