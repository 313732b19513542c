"""The Ray executor: long-lived actors, one per resource slot, fed packs of trials.

GPU tasks in Ray do not reuse worker processes, so each slot is an actor that
lives for the whole run and holds its slot's resources (``num_cpus``, and
``num_gpus``, which may be a fraction): it sets torch's threads to its CPUs,
takes its CUDA device from the GPU Ray assigned it, and builds each dataset
once, keeping it on its device (a pack carries only specs, never data).

The driver sends packs only to actors that have started (an actor that waits
for resources, e.g. the replacement of one lost with its node, gets no work
until a node can hold it), keeps at most ``inflight_per_actor`` packs queued on
each, streams results with ``ray.wait`` as packs finish, and owns the store
(workers only return records). A pack whose actor dies — its process, or its
whole node — is lost (``base.Ledger.lost``: resubmitted up to ``max_attempts`` times, then recorded as
``failed`` with the reason). When an actor dies, each of its packs whose result had already come back
is kept (a completed pack is never charged for its successor's crash); the attempt is charged to the
oldest pack that had not, the one it was running; the rest go back uncharged.

Every trial has a wall-clock limit (``timeouts``). Each actor trains its packs through ``base.Worker``
(which also injects faults; an injected crash ends the actor's process, as a real one would). A user's
workload trains in a child process of the actor: past its limit, or after an exit or a crash, that trial
is a failed record and the pack goes on. A pack has the sum of its trials' limits (``Ledger.limit``):
past it (counted from when the actor began the pack), the driver kills the actor and records the pack's
trials failed, "timed out after N s", without a retry (``Ledger.expired``); a fresh actor takes the slot.
The actor sets no alarm of its own: the driver's kill also ends a pack stuck in native code.

Exclusive packs (timing blocks, ``packs.timing_blocks``) run in a phase of their own, after every
other pack has finished: one at a time, on one worker, while the others sit idle, so that nothing
else trains while a trial is timed.

Attaching to a cluster (``--address HOST:PORT``, or RAY_ADDRESS as ``ray job submit`` sets it): an address that
takes no TCP connection, and a cluster that refuses this driver's token (Ray 2.60's token authentication),
are one-line UserErrors that say what to fix. Each slot answers ``describe`` before it gets a pack: a node on
which a workload of the run is not importable, or is other code than the driver's (a stale wheel), stops the
run in one line before anything trains.

Progress: workers tell a small sink actor (no CPU) of their trials' evaluations (``policy.observing``,
at most one message per worker every ``_PROGRESS_EVERY_S``), and the driver drains it while it waits,
so that the bar moves inside long packs. A long wait with no result says what runs; it blames
resources only when Ray reports a worker actor not yet scheduled.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import socket
import sys
import time
from collections import deque
from typing import Any, Callable, Iterator

from claimbench.errors import UserError
from claimbench.workloads import registry
from claimbench.runner.base import MAX_ATTEMPTS, Executor, Ledger, OnEval, Worker, WorkerLost, is_exclusive
from claimbench.runner.faults import Fault
from claimbench.trial import TrialRecord
from claimbench.workloads.builtin import TrialSpec

log = logging.getLogger(__name__)

#: Ray reads this (on Linux too) to decide whether the node may join a multi-node cluster; "0"
#: makes the node's IP the loopback address, and with it every port of the embedded Ray.
_SINGLE_NODE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
#: How long the driver waits with no result before it says what it is waiting for.
_STALL_WARNING_S = 60.0
#: A worker sends its trials' latest evaluations at most this often; the driver drains them as often.
_PROGRESS_EVERY_S = 2.0
#: Ray's states of an actor that is not running yet because no node can hold it (yet).
_PENDING_STATES = ("DEPENDENCIES_UNREADY", "PENDING_CREATION", "RESTARTING")
#: How long the driver tries to open a TCP connection to a HOST:PORT address before it calls it unreachable.
_REACH_TIMEOUT_S = 5.0
#: The fix of a refused token (Ray 2.60's token authentication; docs/cluster.md, "Security").
_TOKEN_FIX = ("export RAY_AUTH_MODE=token and give this driver the cluster's token: ~/.ray/auth_token, "
              "RAY_AUTH_TOKEN_PATH or RAY_AUTH_TOKEN (`ray get-auth-token` prints it on the head)")


def slots_on_nodes(nodes: list[dict[str, float]], cpus: float, gpus: float = 0.0) -> int:
    """How many slots of ``cpus`` CPUs and ``gpus`` GPUs fit on nodes with these resources.

    A slot lives on one node, so each node counts separately (3 CPUs hold one 2-CPU slot, not 1.5).
    """
    def fit(have: float, need: float) -> float:
        return math.floor(have / need + 1e-9) if need > 0 else math.inf

    total = 0
    for r in nodes:
        n = min(fit(r.get("CPU", 0.0), cpus), fit(r.get("GPU", 0.0), gpus))
        total += 0 if n == math.inf else int(n)
    return total


def pick_device(gpu_ids: list, cuda_available: bool, host: str = "") -> tuple[str, str | None]:
    """The torch device of a slot, and a warning when Ray assigned GPUs that CUDA cannot see.

    Ray sets CUDA_VISIBLE_DEVICES to the GPUs it assigned the actor, so the assigned GPU is cuda:0.
    A GPU that exists only as a logical Ray resource (declared with ``--num-gpus`` on a machine
    without CUDA) is scheduled like a real one and trained on the CPU: GPU scheduling is testable
    on a CPU machine.
    """
    if not gpu_ids:
        return "cpu", None
    if cuda_available:
        return "cuda:0", None
    return "cpu", (f"Ray assigned GPU {', '.join(map(str, gpu_ids))} on {host or 'a node'}, but CUDA is not "
                   f"available there: training on the CPU")


def _stall_message(waited: float, actors: int, pending: int, starting: int, queued: int,
                   running_since: list[float], last_eval_at: float | None = None, now: float | None = None) -> str:
    """What the driver is waiting for after ``waited`` seconds with no result: packs still training (a
    wide pack of long trials takes minutes) and when a trial last evaluated; workers that wait for
    resources only when Ray says so (``pending``: actors in ``_PENDING_STATES``), and workers that are
    scheduled but still setting up (``starting``: importing torch, building data)."""
    now = time.monotonic() if now is None else now
    parts = []
    if running_since:
        n = len(running_since)
        parts.append(f"{n} pack{'s' if n != 1 else ''} training (the longest for {now - min(running_since):.0f}s)")
    if last_eval_at is not None:
        parts.append(f"last evaluation {now - last_eval_at:.0f}s ago")
    parts.append(f"{queued} queued")
    if pending:
        parts.append(f"{pending} of {actors} workers waiting for resources (Ray has not scheduled them)")
    if starting:
        parts.append(f"{starting} of {actors} workers starting")
    if not pending and not starting:
        parts.append(f"all {actors} workers started")
    return f"no result for {waited:.0f}s: " + ", ".join(parts)


def _pending_actors(ray, handles: list) -> int:
    """How many of these actors Ray's control store reports as not scheduled yet (``_PENDING_STATES``);
    an actor whose state cannot be read counts as not pending."""
    try:
        from ray._private import state
    except ImportError:
        return 0
    n = 0
    for h in handles:
        try:
            n += state.actors(actor_id=h._actor_id.hex()).get("State") in _PENDING_STATES
        except Exception:  # a private API: a Ray that reads it differently says nothing, wrongly never
            pass
    return n


class _ProgressSink:
    """Collects workers' evaluation events for the driver (a Ray actor of no CPU in ``RayExecutor``)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int, int]] = []

    def put(self, events: list[tuple[str, int, int]]) -> None:
        self.events.extend(events)

    def drain(self) -> list[tuple[str, int, int]]:
        out, self.events = self.events, []
        return out


class _Reporter:
    """A worker's ``policy.observing`` callback: keeps each trial's latest evaluation and sends them to
    the sink at most every ``every`` seconds (fire and forget: training never waits on it)."""

    def __init__(self, sink, every: float = _PROGRESS_EVERY_S) -> None:
        self.sink, self.every = sink, every
        self.latest: dict[str, tuple[int, int]] = {}
        self.sent = -math.inf

    def __call__(self, trial_id: str, step: int, total: int) -> None:
        self.latest[trial_id] = (step, total)
        if time.monotonic() - self.sent >= self.every:
            self.flush()

    def flush(self) -> None:
        if self.latest:
            self.sink.put.remote([(t, step, total) for t, (step, total) in self.latest.items()])
            self.latest = {}
        self.sent = time.monotonic()


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a ``HOST:PORT`` address; None for what Ray resolves itself (``auto``, ``local``, ``ray://``)."""
    host, sep, port = address.strip().rpartition(":")
    if not sep or "://" in address or not port.isdigit():
        return None
    return host.strip("[]") or "127.0.0.1", int(port)


def _check_reachable(address: str, where: str, timeout: float = _REACH_TIMEOUT_S) -> None:
    """A ``HOST:PORT`` address that takes no TCP connection is a one-line UserError at once (Ray itself would
    retry for minutes, then raise)."""
    target = _host_port(address)
    if target is None:
        return
    try:
        socket.create_connection(target, timeout=timeout).close()
    except OSError as e:
        reason = "timed out" if isinstance(e, TimeoutError) else (e.strerror or type(e).__name__)
        raise UserError(f"cannot reach Ray at {address}: {reason}", where=where,
                        fix="start the head (ray start --head) or give its GCS address HOST:PORT (port 6379 unless "
                            "ray start --port says otherwise); from outside the cluster's network, submit the run "
                            "with ray job submit (docs/cluster.md)") from None


def _connect_error(address: str, where: str, e: BaseException) -> UserError:
    """The one line for a ``ray.init(address=...)`` that failed: a refused token says how to pass one."""
    chain, seen = [], e
    while seen is not None and len(chain) < 8:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    text = " ".join(f"{type(x).__name__}: {x}" for x in chain)
    if any(type(x).__name__ == "AuthenticationError" for x in chain) or "InvalidAuthToken" in text:
        mode = os.environ.get("RAY_AUTH_MODE", "unset")
        return UserError(f"Ray at {address} refused this driver's authentication token (RAY_AUTH_MODE is {mode})",
                         where=where, fix=_TOKEN_FIX)
    first = " ".join(str(e).split())[:300]
    return UserError(f"cannot connect to Ray at {address}: {type(e).__name__}: {first}", where=where,
                     fix="check the address (the head's GCS HOST:PORT, or auto on a node of the cluster) and that "
                         "this machine runs the cluster's Ray and Python versions")


@contextlib.contextmanager
def _stderr_held() -> Iterator[None]:
    """While Ray connects: hold what its C++ core writes to file descriptor 2 (a failed connection logs a line a
    second for half a minute). Replayed when the block succeeds, dropped when it raises: the caller's one-line
    error says what went wrong."""
    import sys
    import tempfile

    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (captured in-process): nothing to hold
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), fd)
        ok = False
        try:
            yield
            ok = True
        finally:
            sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            if ok:
                held.seek(0)
                text = held.read()
                if text:
                    os.write(fd, text)


def _local_cpus() -> int:
    """The CPUs an embedded Ray will see (Ray's own count, which honours cgroup limits), for the start line."""
    try:
        from ray._private.utils import get_num_cpus
        return int(get_num_cpus())
    except Exception:
        return os.cpu_count() or 1


class _Slot:
    """One resource slot: a ``base.Worker`` on the device Ray assigned. Defined plainly here, made a Ray actor
    in ``RayExecutor``."""

    def __init__(self, cpus: float = 1, faults: tuple[Fault, ...] = (), progress=None):
        import ray
        import torch


        self.threads = max(1, int(cpus))  # torch threads = the slot's CPUs (a fraction of one: 1 thread)
        torch.set_num_threads(self.threads)
        self.host = socket.gethostname()
        ctx = ray.get_runtime_context() if ray.is_initialized() else None
        self.node_id = ctx.get_node_id() if ctx else ""
        self.gpu_ids = list(ctx.get_accelerator_ids().get("GPU", [])) if ctx else []
        self.device, self.warning = pick_device(self.gpu_ids, torch.cuda.is_available(), self.host)
        # each dataset built once per actor, kept on its device; a pack's limit is the driver's to enforce
        self.worker = Worker(faults, self.device, in_process_limits=False)
        self.progress = progress  # the driver's _ProgressSink, or None

    def describe(self, codes: dict[str, str] | None = None) -> dict[str, Any]:
        """Where this slot runs, and the workloads whose code here is not the driver's (``codes``: workload
        name -> the driver's fingerprint): the driver sends packs only once this has answered."""
        mismatched, missing = {}, {}
        for name, code in (codes or {}).items():
            try:
                here = registry.fingerprint(name)
            except UserError as e:  # not importable on this node: its trials would fail; say so up front
                missing[name] = " ".join(getattr(e, "message", str(e)).split())[:300]
                continue
            if here != code:
                mismatched[name] = here
        return {"node_id": self.node_id, "host": self.host, "device": self.device, "gpu_ids": self.gpu_ids,
                "threads": self.threads, "warning": self.warning, "mismatched": mismatched, "missing": missing}

    def run_pack(self, specs: list[dict[str, Any]], attempt: int = 1,
                 timeouts: dict[str, float] | None = None,
                 halving: dict[str, dict] | None = None) -> list[dict[str, Any]]:
        pack = [TrialSpec.from_dict(d) for d in specs]
        reporter = _Reporter(self.progress) if self.progress else None
        try:
            records = self.worker.train(pack, attempt, timeouts, reporter, self.threads, halving=halving)
        except WorkerLost:
            os._exit(1)  # an injected crash: the worker process dies mid-pack, as a real crash would
        out = []
        for record in records:
            record.node_id = self.node_id
            out.append(record.to_dict())
        return out


@contextlib.contextmanager
def _loopback_only() -> Iterator[None]:
    """While an embedded Ray starts: make its node IP 127.0.0.1, so that its GCS, raylet, object
    manager, agents and workers listen on loopback only (Ray 2.60; tests/runner/test_cluster.py checks it).

    Ray turns ``ray.init(_node_ip_address="127.0.0.1")`` back into the machine's address; its
    single-node switch does not. The switch is read once, at import, so it is set here too.
    """
    from ray._private import ray_constants

    before_env, before_const = os.environ.get(_SINGLE_NODE_ENV), ray_constants.ENABLE_RAY_CLUSTER
    if before_env is None:  # a user's explicit setting wins
        os.environ[_SINGLE_NODE_ENV] = "0"
        ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        if before_env is None:
            os.environ.pop(_SINGLE_NODE_ENV, None)
        ray_constants.ENABLE_RAY_CLUSTER = before_const


class RayExecutor(Executor):
    name = "ray"
    takes_address = True

    def __init__(self, address: str | None = None, cpus_per_trial: float = 1, gpus_per_trial: float = 0,
                 max_attempts: int = MAX_ATTEMPTS, inflight_per_actor: int = 2, num_workers: int | None = None,
                 faults: tuple[Fault, ...] = ()):
        super().__init__(faults, max_attempts)
        if not cpus_per_trial > 0:
            raise ValueError(f"cpus_per_trial must be > 0, got {cpus_per_trial}")
        if not gpus_per_trial >= 0:
            raise ValueError(f"gpus_per_trial must be >= 0, got {gpus_per_trial}")
        self.address = address
        self.cpus_per_trial = cpus_per_trial
        self.gpus_per_trial = gpus_per_trial
        self.inflight_per_actor = inflight_per_actor
        self.num_workers = num_workers
        self.nodes_used: dict[str, dict[str, Any]] = {}  # node id -> describe() of a slot there (last run)
        self._connection: tuple[bool, bool] | None = None  # (connected here, embedded), from workers()
        self._sink = None  # the _ProgressSink actor while a run with on_eval trains
        self._note: Callable[[str], None] | None = None  # who hears "starting Ray", "Ray up in 6s"
        # inside ``session``: the connection, the slots' actors (slot -> actor) and the sink, kept between runs
        self._held: tuple[bool, bool] | None = None
        self._actors: dict[int, Any] = {}

    @classmethod
    def create(cls, faults: tuple[Fault, ...] = (), address: str | None = None, cpus_per_trial: float = 1,
               gpus_per_trial: float = 0) -> "RayExecutor":
        """An executor on an embedded local Ray, or attached to ``address``, one slot per ``cpus_per_trial``
        CPUs and ``gpus_per_trial`` GPUs."""
        return cls(address=address, cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial, faults=faults)

    # -- cluster ----------------------------------------------------------
    def _connect(self) -> tuple[bool, bool]:
        """Attach to ``address`` (or RAY_ADDRESS, as set by ``ray job submit``) or start an embedded
        local Ray on loopback; returns (connected here, embedded)."""
        import ray

        if ray.is_initialized():
            return False, False
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no phoning home
        kwargs: dict[str, Any] = dict(logging_level=logging.WARNING, log_to_driver=False, configure_logging=True)
        address = self.address or os.environ.get("RAY_ADDRESS")
        note = self._note or (lambda text: None)
        t0 = time.monotonic()
        if address:
            where = "--address" if self.address else "RAY_ADDRESS"
            _check_reachable(address, where)
            note(f"connecting to Ray at {address}…")
            from ray.exceptions import AuthenticationError

            try:
                with _stderr_held():
                    ray.init(address=address, **kwargs)
            except (ConnectionError, RuntimeError, AuthenticationError) as e:
                raise _connect_error(address, where, e) from None
        else:
            note(f"starting Ray ({_local_cpus()} CPUs)…")
            # "local": always a new instance of our own, never another Ray that happens to run on this
            # machine; this machine's resources, no dashboard, nothing listening beyond localhost
            with _loopback_only():
                ray.init(address="local", include_dashboard=False, **kwargs)
        self.startup_s = time.monotonic() - t0  # how long ray.init took (the last connection made here)
        note(f"Ray up in {self.startup_s:.0f}s")
        return True, not address

    def _slots(self, ray, embedded: bool) -> int:
        nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
        slots = slots_on_nodes(nodes, self.cpus_per_trial, self.gpus_per_trial)
        if slots:
            return slots
        need = f"{self.cpus_per_trial:g} CPU" + (f" and {self.gpus_per_trial:g} GPU" if self.gpus_per_trial else "")
        if embedded:
            raise UserError(f"no node of this machine's Ray can hold a slot of {need}",
                            where="--gpus-per-trial" if self.gpus_per_trial else "--cpus-per-trial",
                            fix="lower it, or attach to a cluster that has such nodes with --address")
        log.warning("no node of the cluster can hold a slot of %s now; starting one worker, which waits "
                    "for the autoscaler to add a node", need)
        return 1

    def _new_actor(self):
        import ray

        cls = ray.remote(_Slot).options(num_cpus=self.cpus_per_trial, num_gpus=self.gpus_per_trial,
                                        max_restarts=0, max_task_retries=0)
        return cls.remote(self.cpus_per_trial, self.faults, self._sink)

    # -- run ----------------------------------------------------------------
    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """One run's rounds share one Ray: the connection (or embedded Ray) made by the first round stays up,
        and so do the slots' actors, with the datasets they built, and the progress sink; all end on exit.
        Without a session, each ``run`` starts and ends its own."""
        import ray

        self._held = (False, False)
        try:
            yield
        finally:
            held, self._held = self._held, None
            self._release(ray)
            if held[0] and ray.is_initialized():
                ray.shutdown()

    def _open(self) -> tuple[bool, bool]:
        """(connected here, embedded): inside a session, its connection once made (a new one is kept)."""
        if self._held and self._held[0]:
            return self._held
        connection = self._connect()
        if self._held is not None and connection[0]:
            self._held = connection
        return connection

    def _release(self, ray) -> None:
        """Kill the kept actors and the sink (leave nothing queued or waiting for resources)."""
        for a in [*self._actors.values(), *([self._sink] if self._sink is not None else [])]:
            with contextlib.suppress(Exception):  # already dead, or Ray already down
                ray.kill(a, no_restart=True)
        self._actors, self._sink = {}, None

    def workers(self, note: Callable[[str], None] | None = None) -> int:
        """Packs that train at once: ``num_workers``, or the slots the cluster holds now. Connects
        (or starts the embedded Ray, telling ``note`` when it starts and how long it took); the ``run``
        that follows uses that connection and closes it."""
        import ray

        self._note = note or self._note
        if self._connection is None:
            self._connection = self._open()
        return self.num_workers or self._slots(ray, self._connection[1])

    def dispatch(self, packs: list[list[TrialSpec]], ledger: Ledger, on_eval: OnEval | None = None) -> None:
        """Train ``packs`` on the actors, reporting to ``ledger`` as packs finish; ``on_eval(trial_id, step,
        total)`` as the workers' trials evaluate (every ``_PROGRESS_EVERY_S`` at most)."""
        import ray

        connection, self._connection = self._connection, None
        if not packs:
            if connection and connection[0] and self._held is None:
                ray.shutdown()
            return
        connected, embedded = connection or self._open()
        connected = connected and self._held is None  # a session's Ray stays up until the session ends
        try:
            self._run(ray, packs, ledger, embedded, on_eval)
        finally:
            if connected:
                ray.shutdown()

    def _run(self, ray, packs: list[list[TrialSpec]], ledger: Ledger, embedded: bool = False,
             on_eval: OnEval | None = None) -> None:
        from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

        timeouts, halving = ledger.timeouts, ledger.halving

        held = self._held is not None  # a session's: the sink and the actors stay for its next run
        if on_eval is None or not (held and self._sink is not None):
            self._sink = (ray.remote(_ProgressSink).options(num_cpus=0, max_restarts=0).remote()
                          if on_eval is not None else None)
        last_eval_at: float | None = None
        asked: list = []  # the sink's drain() in flight (one at most), never waited on

        def drain() -> None:
            """Hand the workers' evaluations that the sink holds to ``on_eval``, and ask it again; never blocks."""
            nonlocal last_eval_at
            if self._sink is None:
                return
            try:
                if asked:
                    done, _ = ray.wait(asked, num_returns=1, timeout=0)
                    if not done:
                        return
                    events = ray.get(asked.pop())
                    if events:
                        last_eval_at = time.monotonic()
                    for event in events:
                        on_eval(*event)
                asked.append(self._sink.drain.remote())
            except Exception as e:  # progress is not worth failing a run over; say so once
                log.warning("per-trial progress stopped: %s: %s", type(e).__name__, str(e).splitlines()[0][:200])
                self._sink = None

        # no more actors than packs that can train at once (exclusive packs train one at a time); a run the
        # loop feeds may grow, so it takes every slot
        n_actors = self.num_workers or self._slots(ray, embedded)
        if ledger.feed is None:
            n_actors = min(n_actors, max(1, sum(not is_exclusive(p) for p in packs)))
        actors: dict[int, Any] = self._actors if held else {}
        started: dict[int, dict[str, Any]] = {}  # slot -> describe(), once its actor runs
        load: dict[int, int] = {}
        queue: deque[tuple[list[TrialSpec], int]] = deque((p, 1) for p in packs if not is_exclusive(p))
        timed: deque[tuple[list[TrialSpec], int]] = deque((p, 1) for p in packs if is_exclusive(p))  # last, alone
        # ref -> (slot, pack, attempt); pack None: the ref of the actor's describe()
        inflight: dict[Any, tuple[int, list[TrialSpec] | None, int]] = {}
        order: dict[Any, int] = {}  # ref -> submission number: an actor runs its tasks in this order
        sent_at: dict[Any, float] = {}  # ref -> when it was submitted (for the stall message)
        running_since: dict[int, float] = {}  # slot -> when its actor began its oldest pack in flight
        counter = itertools.count()
        warned: set[str] = set()
        self.nodes_used = {}

        codes = {s.workload: s.code for pack in packs for s in pack if s.code}  # what every node must run

        def requeue(pack: list[TrialSpec], attempt: int) -> None:
            (timed if is_exclusive(pack) else queue).appendleft((pack, attempt))

        def start(i: int, new: bool = True) -> None:
            """Slot ``i`` gets a new actor (``new``; else the session's kept one), which describes itself."""
            if new:
                actors[i] = self._new_actor()
            started.pop(i, None)
            running_since.pop(i, None)
            load[i] = 0
            inflight[actors[i].describe.remote(codes)] = (i, None, 0)

        def oldest(i: int) -> Any | None:
            """Slot ``i``'s oldest pack in flight (the one its actor is running), by ref."""
            mine = [(order[r], r) for r, (j, p, _) in inflight.items() if j == i and p is not None]
            return min(mine)[1] if mine else None

        def lose(i: int) -> None:
            """Slot ``i``'s actor died: start a fresh one (it waits for resources if its node is gone);
            its queued packs go back on the queue without being charged an attempt."""
            with contextlib.suppress(Exception):  # already dead
                ray.kill(actors[i], no_restart=True)
            for ref, (j, pack, attempt) in list(inflight.items()):
                if j == i:
                    del inflight[ref]
                    if pack is not None:
                        requeue(pack, attempt)
            start(i)

        def send(i: int, pack: list[TrialSpec], attempt: int) -> None:
            ref = actors[i].run_pack.remote([s.to_dict() for s in pack], attempt,
                                            {s.trial_id: timeouts[s.trial_id] for s in pack if s.trial_id in timeouts},
                                            {s.trial_id: halving[s.trial_id] for s in pack if s.trial_id in halving})
            if oldest(i) is None:
                running_since[i] = time.monotonic()  # an idle actor begins it at once
            inflight[ref] = (i, pack, attempt)
            order[ref] = next(counter)
            sent_at[ref] = time.monotonic()
            load[i] += 1

        def finished(i: int) -> None:
            """A pack of slot ``i`` came back: its actor begins the next one now."""
            if oldest(i) is not None:
                running_since[i] = time.monotonic()

        def expire(now: float) -> None:
            """Each slot whose running pack is past its limit: record the pack failed, kill its actor (the
            packs queued behind go back uncharged) and start a fresh one."""
            for i in list(actors):
                ref = oldest(i)
                if ref is None or i not in running_since:
                    continue
                _, pack, attempt = inflight[ref]
                seconds = ledger.limit(pack)
                if seconds is None or now - running_since[i] <= seconds:
                    continue
                del inflight[ref]
                lose(i)  # a fresh actor takes the slot
                ledger.expired(pack, attempt, seconds)

        def next_deadline(now: float) -> float:
            """Seconds until the first running pack's limit (inf without one)."""
            left = [running_since[i] + seconds - now for i in actors
                    if (ref := oldest(i)) is not None and i in running_since
                    and (seconds := ledger.limit(inflight[ref][1])) is not None]
            return min(left) if left else math.inf

        def harvest(i: int, failed: Any) -> None:
            """Slot ``i``'s actor died (``failed``: the ref that said so). Packs of it whose results had already
            come back are handled as finished: only a pack that had not can have been running."""
            for o, r in sorted((order[r], r) for r, (j, p, _) in inflight.items()
                               if j == i and p is not None and r is not failed):
                if order[r] > order[failed]:
                    break  # queued behind the failed one: never began
                done, _ = ray.wait([r], timeout=1.0)  # a result sent before the death is delivered by now
                if not done:
                    continue
                try:
                    result = ray.get(r)
                except Exception:
                    continue  # it died with the actor
                _, pack, attempt = inflight.pop(r)
                load[i] -= 1
                ledger.done(pack, attempt, [TrialRecord.from_dict(d) for d in result])

        def submit() -> None:
            for pack in ledger.more():  # the loop's next rounds: they queue behind what is queued
                (timed if is_exclusive(pack) else queue).append((pack, 1))
            for i in sorted(started, key=load.get):
                while queue and load[i] < self.inflight_per_actor:
                    send(i, *queue.popleft())
            # the timing phase: once nothing else is queued or training, one exclusive pack at a time
            if timed and started and not queue and not packs_inflight():
                send(min(started), *timed.popleft())

        def packs_inflight() -> bool:
            return any(pack is not None for _, pack, _ in inflight.values())

        for i in range(n_actors):
            start(i, new=i not in actors)
        waited, warn_at = 0.0, _STALL_WARNING_S
        poll = _PROGRESS_EVERY_S if self._sink is not None else _STALL_WARNING_S
        try:
            while queue or timed or packs_inflight() or ledger.feed is not None:
                t0 = time.monotonic()
                expire(t0)
                if not (queue or timed or packs_inflight()):
                    submit()  # the last outcomes may have let the loop plan more
                    if not (queue or timed or packs_inflight()):
                        break
                if not inflight:  # every pack expired and its actor is being replaced: send what is queued
                    submit()
                    continue
                wait = max(0.05, min(poll, next_deadline(t0)))
                ready, _ = ray.wait(list(inflight), num_returns=1, timeout=wait)
                drain()
                if not ready:
                    waited += time.monotonic() - t0
                    if waited >= warn_at:
                        warn_at += _STALL_WARNING_S
                        waiting = [actors[i] for i in actors if i not in started]
                        pending = _pending_actors(ray, waiting)
                        message = _stall_message(
                            waited, len(actors), pending, len(waiting) - pending, len(queue) + len(timed),
                            [sent_at[r] for r, (_, p, _) in inflight.items() if p is not None], last_eval_at)
                        if self._note:
                            self._note(message)
                        else:
                            log.warning("%s", message)
                    continue
                waited, warn_at = 0.0, _STALL_WARNING_S
                for ref in ready:
                    if ref not in inflight:  # dropped by lose() in this same batch
                        continue
                    i, pack, attempt = inflight.pop(ref)
                    if pack is None:  # the actor started
                        try:
                            info = ray.get(ref)
                        except RayActorError:
                            lose(i)
                            continue
                        if info.get("missing"):  # the workload's package is not importable there: refuse up front
                            name, why = sorted(info["missing"].items())[0]
                            raise UserError(
                                f"workload {name!r} ({codes[name]} on the driver) is not importable on node "
                                f"{info['host']}: {why}", where=f"ray node {info['node_id'][:12]}",
                                fix="ship its package with the job (a wheel built with pip wheel --no-deps, in "
                                    "runtime_env pip: docs/cluster.md, \"Your own workload\") or install it on every "
                                    "node, then rerun")
                        if info.get("mismatched"):  # stale code on a node (an old wheel): refuse before training
                            name, here = sorted(info["mismatched"].items())[0]
                            raise UserError(
                                f"workload {name!r} on node {info['host']} is {here!r}, the driver's is "
                                f"{codes[name]!r}: the cluster would train other code",
                                where=f"ray node {info['node_id'][:12]}",
                                fix="reinstall the workload's package on the workers (a rebuilt wheel needs a new "
                                    "file name or version to be uploaded again), then rerun")
                        started[i] = info
                        self.nodes_used.setdefault(info["node_id"], info)
                        if info["warning"] and info["warning"] not in warned:
                            warned.add(info["warning"])
                            log.warning("%s", info["warning"])
                        continue
                    load[i] -= 1
                    try:
                        records = [TrialRecord.from_dict(d) for d in ray.get(ref)]
                    except RayActorError as e:
                        # All of a dead actor's refs fail at once, in any order, and a pack that finished
                        # just before the death may not have been read yet: keep those (harvest). Of the
                        # rest, only the oldest was running (an actor runs its tasks in submission order):
                        # charge the attempt to that one; the packs queued behind it go back uncharged
                        # (lose() requeues them).
                        inflight[ref] = (i, pack, attempt)
                        harvest(i, ref)
                        del inflight[ref]
                        older = [(order[r], r) for r, (j, p, _) in inflight.items()
                                 if j == i and p is not None and order[r] < order[ref]]
                        if older:
                            requeue(pack, attempt)
                            _, pack, attempt = inflight.pop(min(older)[1])
                        lose(i)
                        again = ledger.lost(pack, attempt,
                                            f"worker died: {type(e).__name__}: {str(e).splitlines()[0][:300]}")
                        if again:
                            requeue(pack, again)
                        continue
                    except (RayTaskError, GetTimeoutError) as e:  # a bug outside train_trial's own catch
                        finished(i)
                        ledger.failed(pack, attempt, f"{type(e).__name__}: {str(e).splitlines()[0][:300]}")
                        continue
                    finished(i)
                    ledger.done(pack, attempt, records)
                submit()
        finally:
            if not held or sys.exc_info()[0] is not None:  # a session keeps them for its next run, unless this one failed
                self._actors = actors
                self._release(ray)  # also those still waiting for resources: leave nothing queued
