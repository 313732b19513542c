"""``claimbench calibrate``: each claim kind's error rates and power, measured by simulation."""

from __future__ import annotations

import sys
import time

import click

from claimbench import calibrate as calibration
from claimbench.errors import UserError
from claimbench.paths import output_file


@click.command()
@click.argument("kinds", nargs=-1)
@click.option("--seeds", default="2,3,5,8,10", show_default=True,
              help="Comma-separated seed counts (the counts the shipped tiers use).")
@click.option("--reps", default=200, show_default=True, type=click.IntRange(10, 100000),
              help="Simulated frames per (kind, seed count, truth).")
@click.option("--markdown", "markdown_path", default=None, help="Also write the table as Markdown to this file.")
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(1, 64), help="Worker processes.")
@click.option("--grid", default="any", show_default=True, type=click.Choice(["any", "fixed", "per-seed"]),
              help="Only the argbest scenarios whose tuned grid is fixed (one grid for every seed of an experiment, "
                   "as a suite runs) or drawn per seed; any: every scenario.")
@click.option("--adaptive", is_flag=True,
              help="Under the experimenter loop's default compute rules (looks, futility stops, claim-aware "
                   "pruning) instead of every seed of the full matrix; same as --design adaptive.")
@click.option("--design", default="fixed", show_default=True, type=click.Choice(list(calibration.DESIGNS)),
              help="fixed: every seed of the full matrix; adaptive: the loop's default compute rules; grow: "
                   "those rules with seeds growing to twice the count for claims still undecided at the last look.")
@click.option("--quiet", is_flag=True, help="Print only the closing line.")
def calibrate(kinds: tuple[str, ...], seeds: str, reps: int, markdown_path: str | None, jobs: int, grid: str,
              quiet: bool, adaptive: bool = False, design: str = "fixed") -> None:
    """Measure each claim kind's false-supported and false-refuted rates, and its power, by simulation.

    KINDS: claim kinds (default: all). Exits 1 when a null rate exceeds 2.5% + 2 Monte Carlo SE.
    """
    try:
        counts = sorted({int(x) for x in seeds.split(",") if x.strip()})
    except ValueError:
        raise UserError(f"--seeds must be comma-separated integers, got {seeds!r} — fix: e.g. --seeds 3,5,8") from None
    if not counts or min(counts) < 2 or max(counts) > 1000:
        raise UserError(f"--seeds counts must lie in 2..1000, got {seeds!r} — fix: e.g. --seeds 3,5,8")
    known = calibration.scenario_kinds()
    unknown = [k for k in kinds if k not in known]
    if unknown:
        raise UserError(f"no calibration scenario for kind {', '.join(map(repr, unknown))} — fix: use one of "
                        f"{', '.join(known)}")
    out = output_file(markdown_path, "--markdown") if markdown_path else None
    start = time.perf_counter()
    rows = calibration.run(list(kinds) or None, counts, reps, progress=None if quiet else click.echo, jobs=jobs,
                           grid=grid, design="adaptive" if adaptive else design)
    if not rows:
        raise UserError(f"no calibration scenario of {', '.join(kinds) or 'any kind'} has a {grid} grid",
                        where="--grid", fix="fixed takes best_level_in_range, critical_batch, power_law_slope and "
                                            "lr_surge, per-seed the last two; or leave --grid out")
    seconds = time.perf_counter() - start
    if out is not None:
        out.write_text(calibration.markdown(rows, reps, seconds), encoding="utf-8")
    bad = [r for r in rows if r.exceeds]
    if not quiet:
        for line in calibration.power_summary(rows):
            click.echo(f"power at 2 SD: {line}")
    click.echo(f"calibration: {len(rows)} rows, {reps} reps each, {seconds:.0f}s; "
               + ("every null rate within 2.5% + 2 MC SE" if not bad else
                  f"{len(bad)} null row(s) exceed 2.5% + 2 MC SE: "
                  + "; ".join(f"{r.kind} ({r.scenario}) at {r.seeds} seeds" for r in bad)))
    if bad:
        sys.exit(1)
