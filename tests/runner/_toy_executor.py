"""An executor defined outside claimbench, the one-file recipe for a new one: packs go to a pool of worker
processes on this machine (``concurrent.futures``), the shape a Dask or Slurm executor has. The test that
uses it registers it through the entry-point group ``claimbench.executors``, as an installed package's
pyproject.toml would (``pool = "tests.runner._toy_executor:PoolExecutor"``); nothing in claimbench names it.

What it writes is only how packs reach workers. Fault injection, retries, timeouts and the records are
the contract's (``claimbench.runner.base``): each process trains through ``Worker.train``, and every
outcome goes to the ``Ledger``.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from claimbench.runner.base import MAX_ATTEMPTS, Executor, Ledger, OnEval, Worker, WorkerLost, is_exclusive
from claimbench.runner.faults import Fault
from claimbench.trial import TrialRecord
from claimbench.workloads.builtin import TrialSpec

_worker: Worker | None = None  # one per pool process: its data cache lives as long as the process


def _train(pack: list[TrialSpec], attempt: int, faults: tuple[Fault, ...],
           timeouts: dict[str, float]) -> list[TrialRecord]:
    """In a pool process: the worker side every executor shares (faults injected, limits enforced there)."""
    global _worker
    _worker = _worker or Worker()
    _worker.faults = faults  # the plan of the run that sent this pack
    return _worker.train(pack, attempt, timeouts)


class PoolExecutor(Executor):
    name = "pool"
    processes = 2

    def __init__(self, faults: tuple[Fault, ...] = (), max_attempts: int = MAX_ATTEMPTS) -> None:
        super().__init__(faults, max_attempts)
        self.pool: ProcessPoolExecutor | None = None  # made by the first run and kept: its processes keep their data

    def workers(self, note=None) -> int:
        return self.processes

    def dispatch(self, packs: list[list[TrialSpec]], ledger: Ledger, on_eval: OnEval | None = None) -> None:
        if self.pool is None:
            # processes forked from a server that has imported the training code and computed nothing: quick
            # to start, and safe (a fork of a process that has used torch's threads can hang)
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["claimbench.train"])
            self.pool = ProcessPoolExecutor(self.processes, mp_context=context)
        self._train_all([p for p in packs if not is_exclusive(p)], ledger)
        for pack in (p for p in packs if is_exclusive(p)):  # timing blocks: last, one at a time, alone
            self._train_all([pack], ledger)

    def close(self) -> None:
        """End the pool's processes."""
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None

    def _train_all(self, packs: list[list[TrialSpec]], ledger: Ledger) -> None:
        running: dict[Future, tuple[list[TrialSpec], int]] = {}

        def submit(pack: list[TrialSpec], attempt: int) -> None:
            running[self.pool.submit(_train, pack, attempt, self.faults, ledger.timeouts)] = (pack, attempt)

        for pack in packs:
            submit(pack, 1)
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                pack, attempt = running.pop(future)
                try:
                    records = future.result()
                except WorkerLost as e:  # the worker is gone: the ledger says whether to try again
                    again = ledger.lost(pack, attempt, str(e))
                    if again:
                        submit(pack, again)
                    continue
                except BrokenProcessPool as e:  # a process died for real: this toy does not mend its pool
                    ledger.failed(pack, attempt, f"the pool broke: {e}")
                    continue
                ledger.done(pack, attempt, records)
