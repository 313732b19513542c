"""``claimbench baseline SUITE...``: run (or reuse) the suites and record their results as the CI
gate's baseline (``check.baseline``)."""

from __future__ import annotations

from pathlib import Path

import click

from claimbench.api import code_sources, load_check_targets, measure
from claimbench.check.baseline import baseline_entry, commit_baseline, merge_entry, read_baseline
from claimbench.cli.options import (check_run_options, command_line, plan_options, seed_count, seeds_suffix,
                                    selection_of, tier_option, timeout_seconds, writer_options)
from claimbench.cli.prepare import dry_run_plan, open_run_dirs, ray_address
from claimbench.env import environment
from claimbench.runner.faults import faults_from_env
from claimbench.paths import inside, output_dir, output_file
from claimbench.runner.packs import DEFAULT_PACK_SIZE
from claimbench.selection import keep


@click.command()
@click.argument("suites", nargs=-1, required=True)
@click.option("-o", "--output", default="reports/baseline.json", show_default=True,
              help="Baseline JSON to write or update (entries of other suites and tiers are kept).")
@tier_option("ci")
@click.option("--out", "out", default=None, help="Parent of the run dirs, one per suite [default: runs/check-TIER, "
              "runs/check-TIER-seedsN with --seeds].")
@click.option("--executor", default="ray", show_default=True, help="ray (embedded or --address) or local (in-process).")
@click.option("--address", default=None, help="Attach to a running Ray cluster (auto or HOST:PORT).")
@click.option("--quiet", is_flag=True, help="No progress output.")
@plan_options
@writer_options
def baseline(suites: tuple[str, ...], output: str, tier: str, out: str | None, executor: str, address: str | None,
             quiet: bool, expr: str | None = None, dry_run: bool = False, seeds: str | None = None,
             pack_size: int = DEFAULT_PACK_SIZE, cpus_per_trial: float | None = None,
             gpus_per_trial: float | None = None, force: bool = False, wait: bool = False,
             trial_timeout: str | None = None, cache: str | None = None) -> None:
    """Run (or reuse) SUITE... and write their verdicts, effects and tracked per-seed values as the baseline.

    With -k, only the selected claims' entries are replaced; the suite's other claims are kept from the
    file when it measured the same trial matrix."""
    output_file(output, "-o")
    if out:
        output_dir(out, "--out")
    check_run_options(executor, address, pack_size, cpus_per_trial, gpus_per_trial)  # as run checks them
    timeout = timeout_seconds(trial_timeout)
    n_seeds = seed_count(seeds)
    selection = selection_of(expr)
    data = read_baseline(output, must_exist=False)  # an unreadable existing file is refused, never overwritten
    loaded, skipped = load_check_targets(list(suites), tier, n_seeds)
    loaded = keep(loaded, selection)
    for name in skipped:
        click.echo(f"{name}: no [tiers.{tier}], no baseline written")
    root = Path(out) if out else inside("runs", f"check-{tier}{seeds_suffix(n_seeds)}")
    if dry_run:
        dry_run_plan([(s, inside(root, s.name)) for s in loaded], tier, pack_size, executor, address,
                     cpus_per_trial, gpus_per_trial, exhaustive=True, cache=cache)  # the gate trains the full matrix
        return
    command = command_line()
    faults = faults_from_env()
    ray_address(executor, address)
    open_run_dirs([(s, inside(root, s.name)) for s in loaded], root, force, wait, faults)
    measured = measure(loaded, root, executor=executor, address=address, command=command,
                       progress=not quiet, faults=faults, pack_size=pack_size, cpus_per_trial=cpus_per_trial,
                       gpus_per_trial=gpus_per_trial, select=selection, trial_timeout=timeout, cache=cache)
    entries = []
    for m in measured:
        entry = baseline_entry(m.suite, m.results, m.frame, m.environment)
        if selection is not None:
            _, lacking = merge_entry(data, m.suite, entry)  # the note; the merge itself is commit_baseline's
            if lacking:
                click.echo(f"{m.suite.name}: note: the baseline has no entry for {', '.join(lacking)} yet; "
                           f"`check` without -k refuses it until `claimbench baseline {m.suite.name} --tier {tier} -o {output}` "
                           "records them")
        entries.append((m.suite, entry))
        click.echo(f"{m.suite.name} [{tier}]: {m.total} trials, reused {m.total - m.trained}, trained {m.trained} now; "
                   f"{m.elapsed_s:.0f}s elapsed; report {m.report}")
        for r in m.results:
            click.echo(f"  {r.claim_id:<4} {r.verdict:<12} {r.summary}")
    # re-read, merged and written under the file's lock: another `baseline` may have written it meanwhile
    path = commit_baseline(output, entries, environment(command, sources=code_sources(loaded)), merge=selection is not None)
    click.echo(f"baseline: {path}")
