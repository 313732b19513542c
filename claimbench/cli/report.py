"""``claimbench report RUN_DIR``: rebuild a run dir's report and its data from its records (no training)."""

from __future__ import annotations

from pathlib import Path

import click

from claimbench.analysis import inference
from claimbench.api import evaluate_target, is_published
from claimbench.claims import evidence
from claimbench.cli.options import selection_of
from claimbench.errors import UserError
from claimbench.evaluation import GROUP_FILE, read_group, suite_run_dirs
from claimbench.paths import output_file
from claimbench.report import write_report
from claimbench.report.exports import VERDICTS_NAME
from claimbench.selection import keep
from claimbench.store.rundir import RunStore
from claimbench.suite import recorded_suite


@click.command()
@click.argument("run_dir")
@click.option("-o", "--output", default=None, help="Where to write the HTML, and nothing else [default: "
              "RUN_DIR/report.html, with verdicts.json and the Parquet frames beside it].")
@click.option("-k", "expr", default=None, metavar="EXPR", help="Report only these claims (as run's -k).")
def report(run_dir: str, output: str | None, expr: str | None = None) -> None:
    """Rebuild the report of RUN_DIR (no training; needs no Ray and no GPU), with its data: verdicts.json and
    the trials, curves and range_curves Parquet frames."""
    if output:
        output_file(output, "-o")
    if is_published(run_dir):  # a published report dir: judged again from its frames, nothing trained
        path = report_run_dir(run_dir, output, selection_of(expr))
        click.echo(f"report: {path}")
        return
    try:
        group = read_group(run_dir)
    except (RecursionError, AttributeError, TypeError):  # a hand-made group.json nested or shaped oddly
        raise UserError("group.json is not a claimbench group file", where=str(Path(run_dir) / GROUP_FILE),
                        fix="delete it and rerun the group") from None
    dirs = suite_run_dirs(run_dir, group)
    suites = [recorded_suite(RunStore(d).info()) for d in dirs]  # a missing or foreign run dir: a user error, first
    selection = selection_of(expr)
    keep(suites, selection)
    path = report_run_dir(run_dir, output, selection)
    click.echo(f"report: {path}")
    if output is None:  # with -o, only the file it names is written: nothing goes into the run dir
        echo_data(Path(run_dir), dirs)


def report_run_dir(run_dir, output: str | None = None, select=None) -> Path:
    """Evaluate once (only the claims ``select`` keeps, with -k), print each verdict, write the HTML; return its path."""
    evaluations = evaluate_target(run_dir, select)
    results = [r for ev in evaluations for r in ev.results]
    for r in results:
        label = (r.robustness or {}).get("label", "")
        click.echo(f"  {r.claim_id:<4} {r.verdict:<12} {f'[{label}] ' if label else ''}{r.summary}")
    if results:
        raw = {v: sum(r.verdict == v for r in results) for v in ("supported", "refuted", "inconclusive")}
        adjusted = inference.adjust([evidence(r) for r in results])
        adj = {v: adjusted.count(v) for v in ("supported", "refuted", "inconclusive")}
        click.echo(f"  ({len(results)} claims: " + ", ".join(f"{n} {v}" for v, n in raw.items())
                   + "; Holm-adjusted: " + ", ".join(f"{n} {v}" for v, n in adj.items())
                   + f"; chance alone would decide about {inference.chance_decisions(len(results)):.1f})")
    # the data beside the report (verdicts.json, the Parquet frames) go into the run dir only with the report
    # itself: `report -o FILE` writes FILE alone, so a read-only run dir can be reported elsewhere
    return write_report(run_dir, evaluations, output, exports=output is None)


def echo_data(root: Path, run_dirs: list[Path]) -> None:
    """Where the report's data went (report.exports.write_exports, called by write_report)."""
    click.echo(f"data: {root / VERDICTS_NAME}; trials, curves and range_curves .parquet in "
               + ", ".join(str(d) for d in run_dirs))
