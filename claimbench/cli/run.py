"""``claimbench run SUITE``: train a suite's (or a group's) missing trials, then report."""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from claimbench.api import run_suites
from claimbench.cli.options import (check_run_options, command_line, plan_options, seed_count, seeds_suffix,
                                    selection_of, tier_option, timeout_seconds, writer_options)
from claimbench.cli.prepare import dry_run_plan, open_run_dirs, ray_address
from claimbench.cli.report import echo_data, report_run_dir
from claimbench.evaluation import GROUP_FILE, write_group
from claimbench.runner.faults import faults_from_env
from claimbench.paths import inside
from claimbench.runner.progress import command_elapsed, timing_line
from claimbench.selection import keep
from claimbench.suite import expand, load_group, load_suite, load_targets
from claimbench.workloads.builtin.datasets import require_files


@click.command()
@click.argument("suite")
@tier_option("default")
@click.option("--executor", default="ray", show_default=True, help="ray (embedded or --address) or local (in-process).")
@click.option("--address", default=None, help="Attach to a running Ray cluster (auto or HOST:PORT) instead of starting one.")
@click.option("--out", "out", default=None, help="Run directory [default: runs/SUITE-TIER, runs/SUITE-TIER-seedsN with --seeds].")
@click.option("--quiet", is_flag=True, help="No progress output.")
@click.option("--exhaustive", is_flag=True,
              help="Train every seed of the full matrix in one round: no looks, futility stops or pruning.")
@plan_options
@writer_options
def run(suite: str, tier: str, executor: str, address: str | None, out: str | None, pack_size: int, quiet: bool,
        cpus_per_trial: float | None, gpus_per_trial: float | None, expr: str | None = None, dry_run: bool = False,
        seeds: str | None = None, force: bool = False, wait: bool = False, trial_timeout: str | None = None,
        exhaustive: bool = False, cache: str | None = None) -> None:
    """Run SUITE (a suite or group name from `claimbench list`, or a .toml path); only missing trials are trained.

    A group (e.g. `faq`) runs all its suites through one executor into RUN_DIR/<suite>/ and writes one report.
    With -k, only the suites holding a selected claim train, and only the selected claims are reported.
    """
    check_run_options(executor, address, pack_size, cpus_per_trial, gpus_per_trial)  # flags first: before any work
    timeout = timeout_seconds(trial_timeout)
    n_seeds = seed_count(seeds)
    selection = selection_of(expr)
    group = load_group(suite)
    members: list[str] = []
    if group is not None:
        every = load_targets([suite], tier, n_seeds)
        members = [s.name for s in every]  # group.json lists them all: a -k run trains some, a later run the rest
        suites = keep(every, selection)
        root = Path(out) if out else inside("runs", f"{group.name}-{tier}{seeds_suffix(n_seeds)}")
        targets = [(s, inside(root, s.name)) for s in suites]
    else:
        loaded = keep([load_suite(suite, tier, n_seeds)], selection)[0]
        root = Path(out) if out else inside("runs", f"{loaded.name}-{tier}{seeds_suffix(n_seeds)}")
        targets = [(loaded, root)]
    command = command_line()
    faults = faults_from_env()
    if dry_run:
        dry_run_plan(targets, tier, pack_size, executor, address, cpus_per_trial, gpus_per_trial, exhaustive,
                     cache)
        return
    ray_address(executor, address)
    if executor == "local" or (address is None and not os.environ.get("RAY_ADDRESS")):
        # the trials train on this machine: a data file they need and that is not here stops the run (exit 2)
        require_files({s.dataset for target, _ in targets for s in expand(target) if s.builtin})
    open_run_dirs(targets, root, force, wait, faults, GROUP_FILE if group is not None else None)
    start = time.monotonic()
    if group is not None:
        write_group(root, group, tier, members)
    summaries = run_suites(targets, executor=executor, address=address, pack_size=pack_size,
                           command=command, progress=not quiet, faults=faults,
                           cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial, trial_timeout=timeout,
                           exhaustive=exhaustive, cache=cache)
    elapsed = time.monotonic() - start
    for (s, _), summary in zip(targets, summaries):
        counts = ", ".join(f"{n} {st}" for st, n in sorted(summary.counts.items()))
        held = summary.total - summary.skipped
        skipped = f" ({summary.skipped} of {summary.total} left untrained by the adaptive rules)" if summary.skipped else ""
        if summary.from_cache:
            skipped += f"; {summary.from_cache} from the trial cache"
        click.echo(f"{s.name} [{tier}]: {held} trials ({counts}){skipped}; {summary.trained} new; "
                   f"{held - summary.trained} reused; run dir {summary.run_dir}")
        for line in summary.extensions:
            click.echo(f"  adaptive: {line}")
    click.echo(f"report: {report_run_dir(root, select=selection)}")
    echo_data(root, [Path(summary.run_dir) for summary in summaries])
    wall = command_elapsed() or time.monotonic() - start
    click.echo(timing_line(summaries[0].trained_total, wall, summaries[0].ray_startup_s, elapsed))
