"""What run, check and baseline do before any training: the dry-run plan, Ray's address, and the run
dirs opened for writing (held, quarantined, the code changes that retrain named)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from claimbench.api import slot_resources
from claimbench.errors import UserError
from claimbench.suite import check_fault_limits
from claimbench.paths import output_dir
from claimbench.plan import describe, plan
from claimbench.store.rundir import RunStore
from claimbench.suite import expand
from claimbench.workloads.builtin import TrialSpec


def dry_run_plan(targets: list, tier: str, pack_size: int, executor: str, address: str | None,
                 cpus_per_trial: float | None, gpus_per_trial: float | None, exhaustive: bool = False,
                 cache: str | None = None) -> None:
    """--dry-run: the plan (claimbench/plan.py) printed; nothing started or written."""
    cpus, gpus = slot_resources([s for s, _ in targets], cpus_per_trial, gpus_per_trial)
    for line in describe(plan(targets, pack_size, executor, address, cpus, gpus, exhaustive, cache), tier):
        click.echo(line)


def ray_address(executor: str, address: str | None) -> None:
    """An inherited RAY_ADDRESS is used only with ``--address auto`` or inside a Ray job (the job supervisor
    sets RAY_JOB_CONFIG_JSON_ENV_VAR in the entrypoint's environment; RAY_JOB_ID is accepted too); otherwise it
    is dropped, so that the embedded Ray starts, and a note says so."""
    inherited = os.environ.get("RAY_ADDRESS")
    in_job = os.environ.get("RAY_JOB_ID") or os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")
    if executor != "ray" or not inherited or address == "auto" or in_job:
        return
    os.environ.pop("RAY_ADDRESS")
    if address is None:
        click.echo(f"claimbench: note: RAY_ADDRESS={inherited} is set but ignored: starting the embedded Ray; "
                   "pass --address auto to attach to it", err=True)


def open_run_dirs(targets: list, root: Path, force: bool, wait: bool, faults: tuple,
                  group_file: str | None = None) -> None:
    """Before any training: each run dir can be written and is held by this driver (one writer at a time),
    the faults fit the limits, and damaged records are quarantined (one stderr line per run dir)."""
    output_dir(root, "--out")
    if group_file and root.is_dir() and not (root / group_file).is_file() and not force:
        foreign = sorted(p.name for p in root.iterdir())
        if foreign:
            raise UserError(f"exists, is not empty ({', '.join(foreign[:3])}) and holds no claimbench group run "
                            f"(no {group_file})", where=str(root), fix="choose another --out, or pass --force")
    for suite, _ in targets:
        check_fault_limits(faults, suite)
    for suite, run_dir in targets:
        store = RunStore(run_dir)
        for note in store.open_for_writing(force=force, wait=wait):
            click.echo(f"claimbench: note: {note}", err=True)
        if store.exists():
            damaged = store.verify()  # first: reading the records (code_change_note) would quarantine them unsaid
            if damaged:
                which = "; ".join(f"{d.file[:-5]}: {d.reason}" for d in damaged[:5])
                click.echo(f"claimbench: {run_dir}: quarantined {len(damaged)} damaged record"
                           f"{'s' if len(damaged) != 1 else ''} to trials/.damaged/, retraining them ({which}"
                           f"{'; ...' if len(damaged) > 5 else ''})", err=True)
            note = code_change_note(store, suite)
            if note:
                click.echo(f"{suite.name}: {note}")


def code_change_note(store, suite) -> str:
    """Why trials of ``suite`` that this run dir holds under another code fingerprint retrain (a trial id
    holds its workload's code: workloads/registry.py), or "" when none do."""
    old, done = {}, set()
    for r in store.records():
        if r.status.is_final():
            done.add(r.trial_id)
            code = r.spec.get("code", "")
            if code != suite.code:
                old.setdefault(_config_id(r.spec), code)
    if not old:
        return ""
    hit = [s for s in expand(suite) if s.trial_id not in done and s.config_id in old]
    if not hit:
        return ""
    before = sorted({old[s.config_id] or "not recorded (before code fingerprints)" for s in hit})
    return (f"{len(hit)} trial{'s' if len(hit) != 1 else ''} retrain: the code of workload "
            f"{hit[0].workload} changed ({'; '.join(before)} -> {suite.code}); the old records are kept")


def _config_id(spec: dict) -> str:
    try:
        return TrialSpec.from_dict(spec).config_id
    except (TypeError, ValueError):
        return ""
