"""The executor contract: what every executor does the same way, written once, and the one thing each
does its own way (how packs reach workers).

An executor trains packs of trials (``packs.make_packs``) and hands back exactly one record per trial.
Written once, here, for every executor:

- **Fault injection** (``faults.py``) happens on the worker side, in ``Worker.train``, which every
  executor's workers call: a ``crash`` fault loses the worker (``WorkerLost``; a Ray actor makes it a real
  death of its process), a ``raise`` fault makes training raise, a ``corrupt`` fault trains another spec
  under the same id.
- **Retries**: a pack whose worker is lost goes back for another attempt, at most ``max_attempts`` in all;
  then each of its trials is a ``failed`` record with the reason (``Ledger.lost``).
- **Timeouts** (``timeouts.py``): a pack's limit is the sum of its trials'. Past it, its trials are
  ``failed`` records, "timed out after N s", never retried (``Ledger.expired``). ``Worker.train`` enforces it
  in-process (an alarm on the main thread; a user's workload in a child process, each trial within its own
  limit), or an executor enforces it from the driver with ``Ledger.limit`` (Ray kills the actor, which also
  ends a pack stuck in native code).
- **Records**: ``Ledger`` hands each trial's record to ``on_record`` once, with its attempts; a diverged
  trial is a record like any other; a trial an executor left without a record is a ``failed`` one.
- **Exclusive packs** (``is_exclusive``: timing blocks, ``packs.timing_blocks``) train after every other
  pack, one at a time, with nothing else training, so that a timed trial has its worker to itself.

An executor implements ``workers`` (how many packs train at once, which ``make_packs`` sizes the packs
for) and ``dispatch`` (send each pack to a worker that calls ``Worker.train``; report every outcome to the
``Ledger``). It registers through the entry-point group ``claimbench.executors`` (``registry.py``), as the
built-ins do.

``Executor`` is an abstract base class, not a ``typing.Protocol``: the contract is behaviour (``run``, the
``Ledger``, ``Worker``), not only a shape, and the registry refuses a class that does not inherit it, so
that no executor can bypass the shared fault, retry and timeout paths.
"""

from __future__ import annotations

import contextlib
import logging
from abc import ABC, abstractmethod
from typing import Callable, ClassVar, Iterator

from claimbench.errors import UserError
from claimbench.runner.child import Isolator, needs_child
from claimbench.runner.faults import Fault, as_trial, corrupted, should_crash, should_raise
from claimbench.runner.timeouts import TrialTimeout, alarm, pack_limit, summed, timed_out_text
from claimbench.trial import BUILTIN, TrialRecord
from claimbench.workloads import registry as workloads
from claimbench.workloads.builtin import TrialSpec

log = logging.getLogger(__name__)

#: How many times a pack is tried when its worker is lost (a dead process or node), the first included.
MAX_ATTEMPTS = 3

OnRecord = Callable[[TrialRecord], None]
#: ``feed()``: packs to add to a run while it trains, with their trials' limits and halving directives;
#: ([], {}, {}) when none now.
Feed = Callable[[], tuple[list[list[TrialSpec]], dict[str, float], dict[str, dict]]]
#: ``on_eval(trial_id, step, total)``: a trial of a pack still training evaluated after ``step`` of ``total``.
OnEval = Callable[[str, int, int], None]


def is_exclusive(pack: list[TrialSpec]) -> bool:
    """A timing block (``packs.timing_blocks``): it trains only when nothing else does, after the other packs."""
    return bool(pack) and all(s.exclusive for s in pack)


class WorkerLost(Exception):
    """The worker training a pack is gone (its process or node died, or a ``crash`` fault was injected): the
    pack may be tried again. The message is the reason a record gives once the attempts run out."""


class Worker:
    """The worker side of every executor: trains the packs one slot receives, with its data cache (each
    dataset built once, kept on ``device``) and the child process a user's workload trains in.

    ``in_process_limits``: enforce each pack's limit here, with an alarm (the main thread only; see
    ``timeouts.alarm``); False where the driver enforces it by ending the worker (Ray)."""

    def __init__(self, faults: tuple[Fault, ...] = (), device: str = "cpu", in_process_limits: bool = True) -> None:
        from claimbench.workloads.data import DataCache  # torch: loads when a worker is made, never on import

        self.faults = faults
        self.device = device
        self.in_process_limits = in_process_limits
        self.cache = DataCache()
        self.isolator = Isolator()  # its helper process starts with the first trial of a user's workload

    def train(self, pack: list[TrialSpec], attempt: int = 1, timeouts: dict[str, float] | None = None,
              on_eval: OnEval | None = None, threads: int | None = None,
              halving: dict[str, dict] | None = None) -> list[TrialRecord]:
        """One record per trial of ``pack``, each filed under its own spec. ``attempt``: which try of the pack
        this is (a ``crash:PREFIX:N`` fault loses the first N); ``timeouts``: each trial's limit in seconds;
        ``halving``: trial id -> its halving directive (``train.policy.driver.halving_losers``; a user's
        workload trains alone in its child, so never halts);
        ``threads``: torch's threads for a child process (None: this process's). Raises ``WorkerLost`` for an
        injected crash; every outcome of a trial itself (an error, a divergence, a timeout) is a record."""
        from claimbench.train.pack import train_pack  # torch
        from claimbench.train.policy.state import observing

        crashed = [s.trial_id for s in pack if should_crash(self.faults, s.trial_id, attempt)]
        if crashed:
            raise WorkerLost(f"worker crashed (injected fault, trial {crashed[0]})")
        timeouts = timeouts or {}
        records: dict[str, TrialRecord] = {}
        for spec in (s for s in pack if needs_child(s)):  # a user's workload: in a child, each within its limit
            records[spec.trial_id] = self.isolator.train(
                spec, timeouts.get(spec.trial_id), corrupted(self.faults, spec), should_raise(self.faults, spec.trial_id),
                on_eval, self.device, threads)
        builtin = [s for s in pack if not needs_child(s)]
        if builtin:
            limit = summed(builtin, timeouts) if self.in_process_limits else None
            text = timed_out_text(limit, len(builtin)) if limit is not None else ""
            try:
                with alarm(limit, text), (observing(on_eval) if on_eval else contextlib.nullcontext()):
                    trained = train_pack([corrupted(self.faults, s) for s in builtin], self.cache, self.device,
                                         inject_error=[should_raise(self.faults, s.trial_id) for s in builtin],
                                         halving=[(halving or {}).get(s.trial_id) for s in builtin])
            except TrialTimeout as e:  # past the policy's own catch: none of the pack's records came back
                trained = [TrialRecord.failed(s, str(e)) for s in builtin]
            records.update((s.trial_id, r) for s, r in zip(builtin, trained))
        return [as_trial(records[s.trial_id], s) for s in pack]

    def close(self) -> None:
        """End the child process, if one started (a later ``train`` starts another)."""
        self.isolator.close()


class Ledger:
    """The driver's side of the contract, one per ``Executor.run``: every outcome of a pack an executor
    reports becomes records, and each trial's record reaches ``on_record`` once, with the settings its
    workload does not read marked (``TrialRecord.not_applicable``)."""

    def __init__(self, packs: list[list[TrialSpec]], on_record: OnRecord, timeouts: dict[str, float],
                 max_attempts: int = MAX_ATTEMPTS, feed: Feed | None = None,
                 halving: dict[str, dict] | None = None) -> None:
        self.on_record = on_record
        self.timeouts = timeouts
        self.halving = halving or {}  # trial id -> its halving directive, as timeouts travel
        self.max_attempts = max_attempts
        self.feed = feed
        self._waiting: dict[str, TrialSpec] = {s.trial_id: s for p in packs for s in p}

    def more(self) -> list[list[TrialSpec]]:
        """Packs the driver adds to the run now (``feed``: the experimenter loop's next rounds, as the
        records of the last ones arrive); []: none now. An executor asks after each outcome it reports and
        before it ends: the run ends when nothing is queued or training and this gives nothing."""
        if self.feed is None:
            return []
        packs, limits, halving = self.feed()
        self.timeouts.update(limits)
        self.halving.update(halving)
        for pack in packs:
            for spec in pack:
                self._waiting.setdefault(spec.trial_id, spec)
        return packs

    def limit(self, pack: list[TrialSpec]) -> float | None:
        """The pack's limit from when its worker begins it (``timeouts.pack_limit``), for an executor that
        enforces it from the driver; None without one."""
        return pack_limit(pack, self.timeouts, children=sum(needs_child(s) for s in pack))

    def done(self, pack: list[TrialSpec], attempt: int, records: list[TrialRecord]) -> None:
        """The pack came back on its ``attempt``-th try with ``records`` (``Worker.train``'s); a trial of it
        without one is recorded failed."""
        by_id = {r.trial_id: r for r in records}
        for spec in pack:
            record = by_id.get(spec.trial_id) or TrialRecord.failed(spec, "the worker sent back no record of it")
            record.attempts = attempt
            self._file(record)

    def lost(self, pack: list[TrialSpec], attempt: int, reason: str) -> int | None:
        """The pack's worker was lost on its ``attempt``-th try: the next attempt's number, to send it again;
        or, when that was the last (``max_attempts``), None, and each of its trials is recorded failed."""
        if attempt < self.max_attempts:
            log.warning("pack of %d trials lost (%s); resubmitting, attempt %d", len(pack), reason, attempt + 1)
            return attempt + 1
        self.failed(pack, attempt, f"{reason} (after {attempt} attempts)")
        return None

    def expired(self, pack: list[TrialSpec], attempt: int, seconds: float) -> None:
        """The pack ran past its limit of ``seconds``: each trial is recorded failed, not retried."""
        log.warning("pack of %d trials ran past its limit of %.0f s", len(pack), seconds)
        self.failed(pack, attempt, timed_out_text(seconds, len(pack)))

    def failed(self, pack: list[TrialSpec], attempt: int, reason: str) -> None:
        """Each trial of the pack failed, for ``reason`` (one line), on its ``attempt``-th try."""
        for spec in pack:
            self._file(TrialRecord.failed(spec, reason, attempts=attempt))

    def waiting(self) -> list[TrialSpec]:
        """The trials with no record yet."""
        return list(self._waiting.values())

    def _file(self, record: TrialRecord) -> None:
        if self._waiting.pop(record.trial_id, None) is not None:  # a second record of a trial: the first stands
            record.not_applicable = list(workloads.not_applicable(record.spec.get("workload", BUILTIN)))
            self.on_record(record)


class Executor(ABC):
    """Trains packs of trials on workers; see the module docstring for what every executor shares.

    A subclass sets ``name`` (what ``--executor`` calls it), implements ``workers`` and ``dispatch``, and
    may override ``create`` to take the command line's options (``--address``, a slot's resources)."""

    #: The name ``--executor`` gives, as registered (registry.py).
    name: ClassVar[str] = ""
    #: Whether ``--address`` (a cluster to attach to) means anything to this executor.
    takes_address: ClassVar[bool] = False

    def __init__(self, faults: tuple[Fault, ...] = (), max_attempts: int = MAX_ATTEMPTS) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        self.faults = faults
        self.max_attempts = max_attempts
        self.startup_s: float | None = None  # seconds the executor took to start (Ray's start), when it says

    @classmethod
    def create(cls, faults: tuple[Fault, ...] = (), address: str | None = None, cpus_per_trial: float = 1,
               gpus_per_trial: float = 0) -> "Executor":
        """The executor that ``--executor NAME`` and its options ask for (validated by ``check_options``).
        By default: one that trains where it runs, taking only the faults."""
        return cls(faults=faults)

    @classmethod
    def check_options(cls, address: str | None = None) -> None:
        """UserError for an option this executor does not use, before any work."""
        if address and not cls.takes_address:
            raise UserError(f"--address attaches to a Ray cluster, which the {cls.name} executor does not use",
                            where="--address", fix="drop --address or use --executor ray")

    @abstractmethod
    def workers(self, note: Callable[[str], None] | None = None) -> int:
        """How many packs train at once (``make_packs`` sizes the packs for them). ``note`` hears what the
        executor does meanwhile, e.g. a cluster's start."""

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """The scope of one run's rounds (``api.run_suites``): an executor may keep what it starts (a Ray
        connection, its workers and their data) from one ``run`` to the next inside it, and ends it on exit.
        By default nothing is kept."""
        yield

    @abstractmethod
    def dispatch(self, packs: list[list[TrialSpec]], ledger: Ledger, on_eval: OnEval | None = None) -> None:
        """Send each pack, and each pack ``ledger.more`` adds, to a worker, where ``Worker.train(pack, attempt,
        ledger.timeouts, ..., halving=ledger.halving)`` trains it (the exclusive packs when nothing else is
        queued or training, one at a time, alone: ``is_exclusive``), and report each outcome: ``ledger.done`` (the records came back), ``ledger.lost`` (the worker is gone:
        send the pack again when it returns an attempt number), ``ledger.expired`` (past ``ledger.limit``),
        ``ledger.failed`` (anything else). ``on_eval``, when given, hears the workers' evaluations."""

    def run(self, packs: list[list[TrialSpec]], on_record: OnRecord, on_eval: OnEval | None = None,
            timeouts: dict[str, float] | None = None, feed: Feed | None = None,
            halving: dict[str, dict] | None = None) -> None:
        """Train ``packs``: ``on_record`` hears each trial's record once, as packs finish; ``on_eval(trial_id,
        step, total)`` each evaluation of a pack still training; ``timeouts``: each trial's wall-clock limit
        in seconds (none where absent); ``feed``: more packs as the run goes (``Ledger.more``); ``halving``:
        trial id -> its halving directive (none where absent)."""
        ledger = Ledger(packs, on_record, dict(timeouts or {}), self.max_attempts, feed, dict(halving or {}))
        self.dispatch(packs, ledger, on_eval)
        left = ledger.waiting()
        if left:
            log.warning("the %s executor returned without a record of %d trials", self.name, len(left))
            ledger.failed(left, 1, f"the {self.name} executor returned without a record of it")
