"""The store fails closed: a record is verified by a digest of its content and read without blocking (a FIFO
or /dev/zero in its place is quarantined, never a hang); a write the file system refuses is one line, and
the records already written stay whole."""

from __future__ import annotations

import errno
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

from claimbench.store.rundir import RunStore
from tests.conftest import cli, one_line


def test_an_edited_metric_is_quarantined_by_the_content_digest(made_run):
    _, run = made_run
    path = sorted((run / "trials").glob("*.json"))[0]
    data = json.loads(path.read_text())
    assert len(data["digest"]) == 64
    data["metrics"]["test_acc"] = 0.99  # the spec (and so the trial id) intact, a result edited
    path.write_text(json.dumps(data))
    store = RunStore(run)
    assert len(store.records()) == 3
    assert [d.reason for d in store.quarantined] == ["its content does not match its digest (an edited record)"]
    del data["digest"]  # and without a digest at all
    other = sorted((run / "trials").glob("*.json"))[0]
    other.write_text(json.dumps({**json.loads(other.read_text()), "digest": None}))
    assert len(RunStore(run).records()) == 2


def test_a_fifo_and_a_symlink_to_dev_zero_in_place_of_records_are_quarantined_without_hanging(made_run):
    """Run in a child with 20 s and 2 GiB of address space: before, the FIFO blocked the reader forever and
    /dev/zero (size 0 by stat) was read until memory ran out."""
    _, run = made_run
    first, second = sorted((run / "trials").glob("*.json"))[:2]
    first.unlink()
    os.mkfifo(first)
    second.unlink()
    second.symlink_to("/dev/zero")

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))

    code = ("import sys; from claimbench.store.rundir import RunStore; s = RunStore(sys.argv[1]); "
            "print(len(s.records()), sorted(d.reason for d in s.quarantined))")
    done = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True, text=True, timeout=20,
                          preexec_fn=limit, cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2 ['is a FIFO, not a regular file', 'is a device, not a regular file']"
    assert not first.exists() and not second.is_symlink()  # moved to trials/.damaged/, never deleted


def _full_disk(monkeypatch, when):
    """Make every atomic replace (and the lock's pwrite) whose target satisfies ``when`` fail with ENOSPC."""
    real_replace, real_pwrite = os.replace, os.pwrite

    def replace(src, dst, *a, **k):
        if when(str(dst)):
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real_replace(src, dst, *a, **k)

    def pwrite(fd, data, offset):
        if when(os.readlink(f"/proc/self/fd/{fd}")):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "pwrite", pwrite)


def test_a_full_disk_when_the_lock_is_written_is_one_line(made_run, monkeypatch, tmp_path):
    suite_path, _ = made_run
    out = tmp_path / "new"
    _full_disk(monkeypatch, lambda p: p.endswith(".claimbench.lock"))
    code, _, err = cli("run", str(suite_path), "--executor", "local", "--quiet", "--out", str(out))
    one_line(code, err, str(out / ".claimbench.lock"), "no space left", "fix: free space")


def test_a_report_that_does_not_fit_after_training_is_one_line_and_the_records_stay_whole(made_run, monkeypatch,
                                                                                          tmp_path):
    suite_path, run = made_run
    _full_disk(monkeypatch, lambda p: p.endswith(".html"))
    code, _, err = cli("run", str(suite_path), "--executor", "local", "--quiet", "--out", str(run))
    one_line(code, err, str(run / "report.html"), "no space left")
    assert len(RunStore(run).records()) == 4 and not (run / "report.html").exists()
    code, _, err = cli("report", str(run), "-o", str(tmp_path / "elsewhere.html"))
    one_line(code, err, str(tmp_path / "elsewhere.html"), "no space left")
    assert not list(tmp_path.glob(".elsewhere.html.*"))  # no half-written temporary left behind


