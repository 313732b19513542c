"""The cost model the dry run, the trial limits and the progress bar share.

``packs.cost`` ranks trials by a rough relative cost (steps x per-step work); ``model_seconds`` turns
it into one trial's worker seconds, ``DEFAULT_SECONDS_PER_TRIAL + DEFAULT_SECONDS_PER_COST x cost``
(what every trial pays whatever its size, plus its share by cost). The dry run (``plan.py``) and the
default trial limit (``timeouts.default_timeout``) scale it by what a run dir's records measured.
"""

from __future__ import annotations

from claimbench.runner.packs import cost
from claimbench.workloads.builtin import TrialSpec

#: The model of one trial's worker seconds: the least-squares fit over the completed trials published in
#: reports/faq-default and reports/batch_scaling-default (2-core CPU machine). The cost model counts steps,
#: batch and width, not the model family nor whether a trial packs, so per suite the seconds per cost unit
#: vary by more than an order of magnitude: without records to scale it, an estimate is rough.
DEFAULT_SECONDS_PER_TRIAL = 0.72
DEFAULT_SECONDS_PER_COST = 2.9e-4


def model_seconds(spec: TrialSpec) -> float:
    """One trial's worker seconds by the default model (before the records' scale)."""
    return DEFAULT_SECONDS_PER_TRIAL + DEFAULT_SECONDS_PER_COST * cost(spec)
