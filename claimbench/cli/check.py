"""``claimbench check SUITE... --baseline FILE``: run (or reuse) the suites and gate each claim against
its baseline (``check.gate``); exit 1 on a regression."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from claimbench.api import load_check_targets, measure
from claimbench.check.baseline import baseline_for, read_baseline
from claimbench.check.gate import check_measured
from claimbench.cli.options import (check_run_options, command_line, plan_options, seed_count, seeds_suffix,
                                    selection_of, tier_option, timeout_seconds, writer_options)
from claimbench.cli.prepare import dry_run_plan, open_run_dirs, ray_address
from claimbench.runner.faults import faults_from_env
from claimbench.paths import inside, output_dir, output_file
from claimbench.report.junit import write_junit
from claimbench.report.markdown import write_markdown
from claimbench.runner.packs import DEFAULT_PACK_SIZE
from claimbench.selection import keep, kept_ids


@click.command()
@click.argument("suites", nargs=-1, required=True)
@click.option("--baseline", "baseline_path", required=True, help="The baseline JSON to compare with (e.g. reports/baseline.json).")
@tier_option("ci")
@click.option("--out", "out", default=None, help="Parent of the run dirs, one per suite [default: runs/check-TIER, "
              "runs/check-TIER-seedsN with --seeds].")
@click.option("--junit", "junit", default=None, help="JUnit XML path [default: OUT/junit.xml].")
@click.option("--markdown", "markdown", default=None, help="Markdown summary path [default: OUT/summary.md]; "
              "also appended to $GITHUB_STEP_SUMMARY when set.")
@click.option("--executor", default="ray", show_default=True, help="ray (embedded or --address) or local (in-process).")
@click.option("--address", default=None, help="Attach to a running Ray cluster (auto or HOST:PORT).")
@click.option("--quiet", is_flag=True, help="No progress output.")
@plan_options
@writer_options
def check(suites: tuple[str, ...], baseline_path: str, tier: str, out: str | None, junit: str | None,
          markdown: str | None, executor: str, address: str | None, quiet: bool, expr: str | None = None,
          dry_run: bool = False, seeds: str | None = None, pack_size: int = DEFAULT_PACK_SIZE,
          cpus_per_trial: float | None = None, gpus_per_trial: float | None = None, force: bool = False,
          wait: bool = False, trial_timeout: str | None = None, cache: str | None = None) -> None:
    """Run (or reuse) SUITE... and compare each claim with the baseline: exit 0 only when every gated claim was
    judged on at least the baseline's evidence and held, 1 otherwise.

    A regression is a gated verdict change (by default: supported -> refuted or inconclusive) or a tracked
    quantity whose interval over seeds of the change shows it beyond its tolerance (see the suite's
    `check` tables). A claim judged on less than the baseline's evidence (more failed trials, fewer records,
    seeds, trials or strata, a missing effect or tracked value) fails too, with the reason. Writes JUnit XML,
    a Markdown summary and each suite's HTML report. With -k, only the selected claims are checked (and need
    a baseline).
    """
    junit_out = output_file(junit, "--junit") if junit else None  # output paths first: one line, before any work
    md_out = output_file(markdown, "--markdown") if markdown else None
    if out:
        output_dir(out, "--out")
    check_run_options(executor, address, pack_size, cpus_per_trial, gpus_per_trial)  # as run checks them
    timeout = timeout_seconds(trial_timeout)
    n_seeds = seed_count(seeds)
    selection = selection_of(expr)
    data = read_baseline(baseline_path)  # a missing or malformed baseline is a usage error, before any training
    loaded, skipped = load_check_targets(list(suites), tier, n_seeds)
    loaded = keep(loaded, selection)
    for s in loaded:
        baseline_for(data, s, baseline_path, kept_ids(s, selection))
    for name in skipped:
        click.echo(f"{name}: no [tiers.{tier}], not checked")
    root = Path(out) if out else inside("runs", f"check-{tier}{seeds_suffix(n_seeds)}")
    if dry_run:
        dry_run_plan([(s, inside(root, s.name)) for s in loaded], tier, pack_size, executor, address,
                     cpus_per_trial, gpus_per_trial, exhaustive=True, cache=cache)  # the gate trains the full matrix
        return
    junit_out = junit_out or root / "junit.xml"
    md_out = md_out or root / "summary.md"
    command = command_line()
    faults = faults_from_env()
    ray_address(executor, address)
    open_run_dirs([(s, inside(root, s.name)) for s in loaded], root, force, wait, faults)
    measured = measure(loaded, root, executor=executor, address=address, command=command,
                       progress=not quiet, faults=faults, pack_size=pack_size, cpus_per_trial=cpus_per_trial,
                       gpus_per_trial=gpus_per_trial, select=selection, trial_timeout=timeout, cache=cache)
    checks = check_measured(measured, data, baseline_path, selection)
    junit_path = write_junit(checks, junit_out)
    md_paths = write_markdown(checks, md_out, baseline_path)
    failed = unjudged = 0
    for sc in checks:
        click.echo(f"{sc.suite} [{sc.tier}]: {sc.total} trials, reused {sc.total - sc.trained}, trained {sc.trained} "
                   f"now; {sc.elapsed_s:.0f}s elapsed; report {sc.report}")
        for o in sc.outcomes:
            mark = {"passed": "ok", "failed": "REGRESSION", "skipped": "skipped"}[o.status]
            if o.status == "failed" and len(o.regressions) == len(o.evidence):
                mark = "FAILED"  # nothing moved: it was not judged on the baseline's evidence
                unjudged += 1
            click.echo(f"  {o.claim_id:<4} {mark:<10} {o.line}")
            failed += o.status == "failed"
    click.echo(f"junit: {junit_path}\nsummary: {', '.join(str(p) for p in md_paths)}")
    if failed:
        moved = failed - unjudged
        names = ", ".join(f"{sc.suite}/{o.claim_id}" for sc in checks for o in sc.outcomes if o.status == "failed")
        what = ([f"{moved} regression{'s' if moved != 1 else ''}"] if moved else []) + \
            ([f"{unjudged} claim{'s' if unjudged != 1 else ''} not judged on the baseline's evidence"] if unjudged else [])
        click.echo(f"claimbench check: {' and '.join(what)} against {baseline_path}: {names}", err=True)
        sys.exit(1)
    click.echo(f"claimbench check: every claim holds against {baseline_path}")
