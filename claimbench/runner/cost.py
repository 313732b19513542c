"""The cost model the dry run, the trial limits and the progress bar's ETA share.

``packs.cost`` ranks trials by a rough relative cost (steps x per-step work). A trial's worker seconds
are its cost times a rate, in seconds per cost unit, that depends on what trains it: its *family*, the
workload and, for the built-in workload, the model (an MLP's cost unit is about ten times cheaper than a
CNN's or an RNN's). ``CostModel`` holds:

- the default rates (``DEFAULT_RATES``, per built-in family; ``UNKNOWN_RATE`` for any other), and
- what records measured (``Ratios``): per family, the sum of the records' ``wall_s`` (a packed trial's share
  of its pack's time) over the sum the default rates predict for them. A family with few records is shrunk
  toward the ratio of all families (``SHRINK`` trials' weight), and that one toward 1, so a family without
  records takes the machine's measured speed, and without any records the defaults stand.

The dry run (``plan.py``) and the trial limits (``timeouts.py``) fit a model on the records of the run dirs
and of the shared trial cache, of any code version (a code change retrains a trial, but what it took still
says how fast this machine trains it). The progress bar (``progress.py``) corrects the model's predictions
again with a ``Ratios`` of the trials finished in this run, so that a family that runs last is estimated
from its own first trials. ``makespan`` turns packs of predicted seconds into wall seconds on N workers.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any, Iterable

from claimbench.runner.packs import cost
from claimbench.trial import BUILTIN
from claimbench.workloads.builtin import TrialSpec

#: Seconds per cost unit of a built-in family by default: sum of ``wall_s`` over sum of ``packs.cost`` of the
#: trials published in reports/faq-default and reports/batch_scaling-default, and for the transformer in
#: reports/lm-default (2-core CPU, 2 workers; its cost unit leaves out the evaluations that dominate it).
DEFAULT_RATES = {"mlp": 3.5e-4, "cnn": 3.1e-3, "rnn": 5.6e-3, "lstm": 5.6e-3, "transformer": 3.2e-2}
#: A family with no default rate (a user's workload, a new model family): the costliest built-in rate,
#: so that an estimate without records errs long.
UNKNOWN_RATE = max(DEFAULT_RATES.values())
#: Seconds every trial pays whatever its size (its share of its pack's setup and evaluations).
DEFAULT_SECONDS_PER_TRIAL = 0.1
#: The weight, in trials, of the parent ratio when a family's own is shrunk toward it.
SHRINK = 3.0


#: A timing trial (``exclusive``) trains alone, on the single engine: its cost unit is dearer than a packed one's
#: by about this much (the published timing trials against the packed MLPs) ...
ALONE_FACTOR = 2.0
#: ... and its rate is kept apart, under its family's name with this suffix.
ALONE = " alone"


def family(spec: TrialSpec) -> str:
    """The name a trial's rate is kept under: the model for the built-in workload, else the workload; a timing
    trial's apart (it trains alone)."""
    name = spec.model if spec.workload == BUILTIN else spec.workload
    return name + ALONE if spec.exclusive else name


def model_seconds(spec: TrialSpec) -> float:
    """One trial's worker seconds by the default rates (no records)."""
    name = family(spec)
    rate = DEFAULT_RATES.get(name.removesuffix(ALONE), UNKNOWN_RATE) * (ALONE_FACTOR if spec.exclusive else 1.0)
    return DEFAULT_SECONDS_PER_TRIAL + rate * cost(spec)


@dataclass
class Ratios:
    """Measured over predicted seconds, per family: ``observe`` adds a trial, ``ratio`` reads a family's,
    shrunk toward the ratio of every family (``SHRINK``), itself shrunk toward 1."""

    sums: dict[str, list[float]] = field(default_factory=dict)  # family -> [measured s, predicted s, trials]

    def observe(self, key: str, measured: float, predicted: float) -> None:
        if measured > 0 and predicted > 0:
            s = self.sums.setdefault(key, [0.0, 0.0, 0.0])
            s[0] += measured
            s[1] += predicted
            s[2] += 1

    def count(self, key: str | None = None) -> int:
        """Trials observed of ``key`` (of every family when None)."""
        if key is None:
            return int(sum(s[2] for s in self.sums.values()))
        return int(self.sums.get(key, (0, 0, 0))[2])

    def overall(self) -> float:
        m = sum(s[0] for s in self.sums.values())
        p = sum(s[1] for s in self.sums.values())
        return _shrunk(m, p, self.count(), 1.0)

    def ratio(self, key: str) -> float:
        s = self.sums.get(key)
        return _shrunk(s[0], s[1], s[2], self.overall()) if s else self.overall()


def _shrunk(measured: float, predicted: float, n: float, parent: float) -> float:
    if n <= 0 or predicted <= 0:
        return parent
    w = n / (n + SHRINK)
    return w * measured / predicted + (1 - w) * parent


@dataclass(frozen=True)
class Sample:
    """One final trial's measured worker seconds (a record's ``wall_s``) and its spec."""

    spec: TrialSpec
    seconds: float

    @classmethod
    def of(cls, data: dict[str, Any]) -> "Sample | None":
        """A record's data (a dict, as stored) as a sample; None when it has no time to learn from: not
        completed or diverged (a failed trial stopped at its error or its limit), or no ``wall_s``."""
        return cls.from_parts(data.get("status"), data.get("wall_s"), data.get("spec"))

    @classmethod
    def from_parts(cls, status: Any, wall_s: Any, spec: Any) -> "Sample | None":
        """The same from a record's status, ``wall_s`` and spec (a ``TrialRecord``'s attributes)."""
        status = getattr(status, "value", status)
        if status not in ("completed", "diverged") or not isinstance(spec, dict):
            return None
        try:
            wall = float(wall_s or 0.0)
            return cls(TrialSpec.from_dict(spec), wall) if wall > 0 else None
        except (TypeError, ValueError, KeyError):
            return None


@dataclass
class CostModel:
    """Each trial's predicted worker seconds: the default model times what the samples measured of its family."""

    ratios: Ratios = field(default_factory=Ratios)

    @classmethod
    def fit(cls, samples: Iterable[Sample]) -> "CostModel":
        model = cls()
        for s in samples:
            model.ratios.observe(family(s.spec), s.seconds, model_seconds(s.spec))
        return model

    def seconds(self, spec: TrialSpec) -> float:
        return model_seconds(spec) * self.ratios.ratio(family(spec))

    def measured(self, spec: TrialSpec) -> int:
        """Records this model learned from of ``spec``'s family."""
        return self.ratios.count(family(spec))

    def source(self, specs: Iterable[TrialSpec]) -> str:
        """What the predictions of ``specs`` rest on, for the dry run: how many records, and which families
        fall back on the default model."""
        fams = sorted({family(s) for s in specs})
        seen = [f for f in fams if self.ratios.count(f)]
        unseen = [f for f in fams if not self.ratios.count(f)]
        parts = []
        if self.ratios.count():
            n = self.ratios.count()
            per = ", ".join(f"{f} {self.ratios.count(f)}" for f in sorted(self.ratios.sums))
            parts.append(f"fitted on {n} record{'s' if n != 1 else ''} ({per})")
        if unseen:
            scaled = " scaled by the other families' records" if self.ratios.count() else ""
            parts.append(f"default model{scaled}, no records for {', '.join(unseen)}: rough")
        elif not seen:
            parts.append("default model, no trials to train")
        return "; ".join(parts)


def makespan(packs: list[list[float]], workers: int, alone: list[list[float]] | None = None) -> float:
    """Wall seconds to train ``packs`` (each a list of its trials' worker seconds) on ``workers`` workers, each
    pack in order to the first free worker, as the executors feed them; then ``alone`` (timing blocks), one
    after another with nothing else training."""
    free = [0.0] * max(1, workers)
    for pack in packs:
        heapq.heappush(free, heapq.heappop(free) + sum(pack))
    return max(free) + sum(sum(b) for b in alone or [])
