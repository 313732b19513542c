"""Trials in a child process, each with its wall-clock limit: a hang, an exit or a crash of a user's
workload becomes a failed record, never a dead or stuck driver (or Ray worker).

An ``Isolator`` starts a helper process once (``python -c ...``: a fresh interpreter that imports torch
and claimbench's training code and computes nothing) and the helper forks a *trainer*, which trains
the trials it is sent one after another (the workload's package imported once, its data cached). A
fork of a process that has used torch's thread pool hangs in the child's first parallel kernel; a fork
of the helper does not, so the trainer trains on the worker's threads. The parent sends one trial at a
time (its id, the spec it really trains, which a ``corrupt`` fault changes, whether it raises, the device
and torch's threads) and reads JSON events from a pipe: ``pid`` (the helper forked a trainer), ``start``
(the trial's clock starts), ``eval`` (progress), ``record``, and ``exit`` (the trainer died, with its
status). Past its limit the trainer's process group is killed and the trial is recorded failed
("timed out after N s"); a trainer that exits or dies during a trial (``sys.exit``, a segfault) fails
that trial with the exit it made. The helper then forks a fresh trainer for the next trial.

The built-in workloads train in the worker's own process (their data cache is shared across packs),
under the pack's limit (``base.Worker``'s alarm, or the Ray driver's pack deadline). Which faults to inject
is the caller's (``base.Worker``): a child only trains what it is sent.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from typing import Any, Callable

from claimbench.runner.timeouts import STARTUP_S, timed_out_text
from claimbench.trial import TrialRecord
from claimbench.workloads.builtin import TrialSpec
from claimbench.workloads.registry import BUILTIN


def needs_child(spec: TrialSpec) -> bool:
    """A user's workload (an entry-point package, not claimbench's built-ins) trains in a child process."""
    return spec.workload != BUILTIN


def _exit_text(code: int | None) -> str:
    if code is None:
        return "the training process stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the training process was killed by {name}"
    return f"the training process exited with code {code} before the trial ended"


class Isolator:
    """The helper process and its trainer (see the module docstring); started on first use."""

    def __init__(self, startup_s: float = STARTUP_S) -> None:
        self.startup_s = startup_s
        self.proc: subprocess.Popen | None = None
        self.events = -1
        self.buffer = b""
        self.trainer = 0  # the pid of the helper's current trainer (0: none known yet)

    def _start(self) -> None:
        read_fd, write_fd = os.pipe()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p or os.getcwd() for p in sys.path)}
        code = f"from claimbench.runner.child import _helper; _helper({write_fd}, {os.getpid()})"
        try:
            self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=2, stderr=2,
                                         env=env, pass_fds=(write_fd,), start_new_session=True)
        finally:
            os.close(write_fd)
        self.events, self.buffer, self.trainer = read_fd, b"", 0
        event = self._next(time.monotonic() + self.startup_s)
        if not event or "pid" not in event:
            self.close()
            raise _HelperDied(f"the training helper did not start within {self.startup_s:.0f} s" if event is None
                              else "the training helper died as it started")
        self.trainer = event["pid"]

    def close(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
            if self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)  # its trainer dies with it (PR_SET_PDEATHSIG)
            self.proc.wait()
            self.proc = None
        if self.events >= 0:
            os.close(self.events)
            self.events = -1

    def _next(self, deadline: float) -> dict | None:
        """The next event, {} when the helper's pipe closed (it died), None at ``deadline``."""
        while b"\n" not in self.buffer:
            wait = deadline - time.monotonic()
            if wait <= 0:
                return None
            ready, _, _ = select.select([self.events], [], [], min(wait, 1.0))
            if not ready:
                continue
            chunk = os.read(self.events, 1 << 20)
            if not chunk:
                return {}
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        event = json.loads(line)
        if "pid" in event:
            self.trainer = event["pid"]
        return event

    def train(self, spec: TrialSpec, limit: float | None, trained: TrialSpec | None = None, raises: bool = False,
              on_eval: Callable[[str, int, int], None] | None = None, device: str = "cpu",
              threads: int | None = None) -> TrialRecord:
        """One trial in the trainer, within ``limit`` seconds: its record, or a failed one saying what happened.

        ``trained``: the spec that really trains (``spec`` itself unless a ``corrupt`` fault changed it; the
        record is of the trained spec, which the caller files under ``spec``); ``raises``: training raises
        after its first step (a ``raise`` fault). Progress (``on_eval``) is reported under ``spec``'s id."""
        start = time.monotonic()
        try:
            return self._train(spec, limit, trained or spec, raises, on_eval, device, threads)
        except _HelperDied as e:
            self.close()
            record = TrialRecord.failed(spec, str(e))
            record.wall_s = time.monotonic() - start
            return record

    def _train(self, spec, limit, trained, raises, on_eval, device, threads) -> TrialRecord:
        if threads is None:
            import torch

            threads = torch.get_num_threads()
        if self.proc is None or self.proc.poll() is not None:
            self.close()
            self._start()
        job = {"id": spec.trial_id, "train": trained.to_dict(), "raise": raises, "device": device,
               "threads": threads}
        try:
            self.proc.stdin.write((json.dumps(job) + "\n").encode())
            self.proc.stdin.flush()
        except OSError:
            raise _HelperDied("the training helper died") from None
        started = time.monotonic()
        deadline = started + self.startup_s  # until its "start"
        reason, killed = "", False
        while True:
            event = self._next(deadline)
            if event is None:  # past the limit: kill the trainer (and whatever it started); its exit follows
                if killed or not self.trainer:
                    raise _HelperDied(reason or "the training helper stopped answering")
                for kill in (os.killpg, os.kill):  # its group, or itself if it has not made one yet
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        kill(self.trainer, signal.SIGKILL)
                reason = (timed_out_text(limit) if limit is not None and started is not None
                          else "the trainer stopped answering")
                killed, deadline = True, time.monotonic() + 30.0
                continue
            if event == {}:
                raise _HelperDied(reason or "the training helper died")
            if event.get("start") == spec.trial_id:
                started = time.monotonic()
                deadline = started + limit if limit is not None else float("inf")
            elif "eval" in event and on_eval is not None:
                with contextlib.suppress(Exception):
                    on_eval(*event["eval"])
            elif "record" in event:
                return TrialRecord.from_dict(event["record"])
            elif "exit" in event:
                failed = TrialRecord.failed(spec, reason or _exit_text(event["exit"]))
                failed.wall_s = time.monotonic() - started
                return failed


class _HelperDied(Exception):
    """The helper process is gone (or never came up); the message is the trial's one-line error."""


# ------------------------------------------------------------------ the helper and its trainer

def _die_with(parent: int) -> None:
    """Be killed when ``parent`` dies (Linux: PR_SET_PDEATHSIG), so that a worker killed from outside (a Ray
    actor past its pack's limit) leaves no training behind; exit now if it is gone already."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)


#: The exit status of a trainer whose stdin closed (the parent is done): the helper ends too.
_DONE = 100


def _helper(fd: int, parent: int) -> None:
    """Import the training code (computing nothing: a fork must not inherit torch's thread pool), then keep
    one trainer forked; write events to ``fd``."""
    _die_with(parent)
    import torch  # noqa: F401

    import claimbench.train.packed.engine  # noqa: F401  (and the single engine and the policy it imports)
    import claimbench.workloads.data  # noqa: F401
    import claimbench.workloads.spec  # noqa: F401

    def emit(event: dict[str, Any]) -> None:
        data = (json.dumps(event, default=str) + "\n").encode()
        while data:
            data = data[os.write(fd, data):]

    me = os.getpid()
    while True:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.setsid()  # its own group: a kill takes whatever it started (a DataLoader's workers) with it
                _die_with(me)
                _trainer(emit)
                code = _DONE
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        emit({"pid": pid})
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code == _DONE:
            return
        emit({"exit": code})


def _read_line(fd: int = 0) -> bytes:
    """One line of ``fd``, read without read-ahead (a trainer killed mid-trial must leave the next line to its
    successor); b"" at the end."""
    out = bytearray()
    while not out.endswith(b"\n"):
        byte = os.read(fd, 1)
        if not byte:
            return b""
        out += byte
    return bytes(out)


def _trainer(emit: Callable[[dict[str, Any]], None]) -> None:
    """Train the trials read from stdin one after another (their data cached); emit start, progress, record."""
    import torch

    from claimbench.train.pack import train_pack
    from claimbench.train.policy.state import observing
    from claimbench.workloads.data import DataCache

    cache = DataCache()
    while True:
        line = _read_line()
        if not line:
            return
        job = json.loads(line)
        torch.set_num_threads(int(job["threads"]))
        trial_id, train = job["id"], TrialSpec.from_dict(job["train"])
        emit({"start": trial_id})
        last = [0.0]

        def progress(trial_id: str, step: int, total: int) -> None:
            if time.monotonic() - last[0] >= 1.0:
                last[0] = time.monotonic()
                emit({"eval": [trial_id, step, total]})

        with observing(progress):
            record = train_pack([train], cache, job["device"], inject_error=[bool(job["raise"])])[0]
        emit({"record": record.to_dict()})
