"""The in-process executor: packs train one after another in this process (debugging, tests).

One worker (``base.Worker``, kept across runs with its data cache): nothing else trains while a pack runs,
so exclusive (timing) packs need no drain. They train on ``TIMING_THREADS`` torch threads, as on a Ray
slot of one CPU: with more threads on a machine that other work shares, each forward waits for whichever
thread the OS has descheduled.

A pack's worker is lost only to an injected ``crash`` fault here (a real crash would be this process's);
the pack is tried again as on any executor (``base.Ledger.lost``). Limits are enforced in-process
(``Worker.train``: an alarm for the built-in workloads, a child process for a user's).
"""

from __future__ import annotations

from collections import deque
from typing import Callable

from claimbench.runner.base import MAX_ATTEMPTS, Executor, Ledger, OnEval, Worker, WorkerLost, is_exclusive
from claimbench.runner.faults import Fault
from claimbench.workloads.builtin import TrialSpec

#: Torch threads while an exclusive (timing) pack trains in this process.
TIMING_THREADS = 1


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, faults: tuple[Fault, ...] = (), max_attempts: int = MAX_ATTEMPTS) -> None:
        super().__init__(faults, max_attempts)
        self.worker: Worker | None = None  # made by the first run: torch loads when packs train, not before

    def workers(self, note: Callable[[str], None] | None = None) -> int:
        """Packs that train at once: one."""
        return 1

    def dispatch(self, packs: list[list[TrialSpec]], ledger: Ledger, on_eval: OnEval | None = None) -> None:
        import torch  # heavy: only when packs train

        self.worker = self.worker or Worker(self.faults)
        threads = torch.get_num_threads()
        queue = deque((pack, 1) for pack in packs if not is_exclusive(pack))
        timed = deque((pack, 1) for pack in packs if is_exclusive(pack))  # the timing blocks last, in order
        try:
            while True:
                for pack in ledger.more():  # the loop's next rounds, as the records of the last ones came
                    (timed if is_exclusive(pack) else queue).append((pack, 1))
                if not (queue or timed):
                    break
                pack, attempt = (queue or timed).popleft()
                torch.set_num_threads(TIMING_THREADS if is_exclusive(pack) else threads)
                try:
                    records = self.worker.train(pack, attempt, ledger.timeouts, on_eval, halving=ledger.halving)
                except WorkerLost as e:
                    again = ledger.lost(pack, attempt, str(e))
                    if again:
                        (timed if is_exclusive(pack) else queue).appendleft((pack, again))
                    continue
                ledger.done(pack, attempt, records)
        finally:
            self.worker.close()
            torch.set_num_threads(threads)
