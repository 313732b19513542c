"""The Ray executor: long-lived actors, one per resource slot, fed packs of trials.

GPU tasks in Ray do not reuse worker processes, so each slot is an actor that
lives for the whole run: it builds each dataset once and keeps it on its
device. The driver keeps at most ``inflight_per_actor`` packs queued on each
actor, streams results with ``ray.wait`` as packs finish, and owns the store
(workers only return records). A pack whose actor dies is resubmitted to a
fresh actor up to ``max_attempts`` times, then recorded as ``failed`` with the
reason.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from typing import Any, Callable

from claimbench.faults import Fault, as_trial, corrupted, should_crash, should_raise
from claimbench.trial import TrialRecord, TrialSpec

log = logging.getLogger(__name__)


class _Worker:
    """One resource slot. Defined plainly here, made a Ray actor in ``RayExecutor``."""

    def __init__(self, threads: int, faults: tuple[Fault, ...] = ()):
        import torch

        from claimbench.workloads import DataCache

        torch.set_num_threads(max(1, threads))
        self.cache = DataCache()
        self.device = "cpu"
        self.faults = faults

    def run_pack(self, specs: list[dict[str, Any]], attempt: int = 1) -> list[dict[str, Any]]:
        from claimbench.train import train_trial

        out = []
        for d in specs:
            spec = TrialSpec.from_dict(d)
            if should_crash(self.faults, spec.trial_id, attempt):
                os._exit(1)  # injected: the worker process dies mid-pack
            record = train_trial(corrupted(self.faults, spec), self.cache, self.device,
                                 inject_error=should_raise(self.faults, spec.trial_id))
            out.append(as_trial(record, spec).to_dict())
        return out


class RayExecutor:
    name = "ray"

    def __init__(self, address: str | None = None, cpus_per_trial: float = 1, max_attempts: int = 3,
                 inflight_per_actor: int = 2, num_workers: int | None = None, faults: tuple[Fault, ...] = ()):
        if cpus_per_trial <= 0:
            raise ValueError(f"cpus_per_trial must be > 0, got {cpus_per_trial}")
        self.address = address
        self.cpus_per_trial = cpus_per_trial
        self.max_attempts = max_attempts
        self.inflight_per_actor = inflight_per_actor
        self.num_workers = num_workers
        self.faults = faults

    # -- cluster ----------------------------------------------------------
    def _connect(self) -> bool:
        """Attach to ``address`` or start an embedded local Ray; True if we started it."""
        import ray

        if ray.is_initialized():
            return False
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no phoning home
        kwargs: dict[str, Any] = dict(logging_level=logging.WARNING, log_to_driver=False, configure_logging=True)
        if self.address:
            ray.init(address=self.address, **kwargs)
        else:
            # embedded: this machine's resources, no dashboard. Ray (2.60) still listens on all
            # interfaces for its internal gRPC ports, behind its token authentication: see README.
            ray.init(include_dashboard=False, **kwargs)
        return True

    def _new_actor(self):
        import ray

        cls = ray.remote(_Worker).options(num_cpus=self.cpus_per_trial, max_restarts=0, max_task_retries=0)
        return cls.remote(max(1, int(self.cpus_per_trial)), self.faults)

    # -- run ----------------------------------------------------------------
    def run(self, packs: list[list[TrialSpec]], on_record: Callable[[TrialRecord], None]) -> None:
        import ray

        if not packs:
            return
        started = self._connect()
        try:
            self._run(ray, packs, on_record)
        finally:
            if started:
                ray.shutdown()

    def _run(self, ray, packs: list[list[TrialSpec]], on_record: Callable[[TrialRecord], None]) -> None:
        from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

        slots = int(ray.cluster_resources().get("CPU", 1) // self.cpus_per_trial) or 1
        n_actors = min(self.num_workers or slots, len(packs))
        actors = [self._new_actor() for _ in range(n_actors)]
        load = {i: 0 for i in range(n_actors)}
        queue: deque[tuple[list[TrialSpec], int]] = deque((p, 1) for p in packs)
        inflight: dict[Any, tuple[int, list[TrialSpec], int]] = {}

        def submit() -> None:
            for i in sorted(load, key=load.get):
                while queue and load[i] < self.inflight_per_actor:
                    pack, attempt = queue.popleft()
                    ref = actors[i].run_pack.remote([s.to_dict() for s in pack], attempt)
                    inflight[ref] = (i, pack, attempt)
                    load[i] += 1

        submit()
        while inflight:
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=None)
            for ref in ready:
                i, pack, attempt = inflight.pop(ref)
                load[i] -= 1
                try:
                    records = [TrialRecord.from_dict(d) for d in ray.get(ref)]
                except RayActorError as e:
                    self._replace_actor(ray, actors, i, load, inflight, queue)
                    reason = f"worker died: {type(e).__name__}: {str(e).splitlines()[0][:300]}"
                    if attempt < self.max_attempts:
                        log.warning("pack of %d trials lost (%s); resubmitting, attempt %d", len(pack), reason, attempt + 1)
                        queue.appendleft((pack, attempt + 1))
                    else:
                        records = [TrialRecord.failed(s, f"{reason} (after {attempt} attempts)", attempts=attempt)
                                   for s in pack]
                        for r in records:
                            on_record(r)
                    continue
                except (RayTaskError, GetTimeoutError) as e:  # a bug outside train_trial's own catch
                    records = [TrialRecord.failed(s, f"{type(e).__name__}: {str(e).splitlines()[0][:300]}",
                                                  attempts=attempt) for s in pack]
                for r in records:
                    r.attempts = attempt
                    on_record(r)
            submit()

    def _replace_actor(self, ray, actors, i, load, inflight, queue) -> None:
        """Kill actor ``i`` and start a fresh one; its other queued packs go back on the queue."""
        try:
            ray.kill(actors[i], no_restart=True)
        except Exception:  # already dead
            pass
        actors[i] = self._new_actor()
        for ref, (j, pack, attempt) in list(inflight.items()):
            if j == i:  # these would fail too: resubmit them without charging an attempt
                del inflight[ref]
                load[i] -= 1
                queue.appendleft((pack, attempt))
