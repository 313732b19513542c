"""``claimbench compare RUN_A RUN_B``: what changed between two run dirs, claim by claim (``check.compare``)."""

from __future__ import annotations

import click

from claimbench.api import compare_runs
from claimbench.cli.options import selection_of
from claimbench.evaluation import read_group, suite_run_dirs
from claimbench.paths import output_file
from claimbench.report.compare import markdown, text_lines
from claimbench.selection import keep
from claimbench.store.files import atomic_write_text
from claimbench.store.rundir import RunStore
from claimbench.suite import recorded_suite


@click.command()
@click.argument("run_a")
@click.argument("run_b")
@click.option("--markdown", "markdown_path", default=None, help="Also write the comparison as Markdown to this file.")
@click.option("-k", "expr", default=None, metavar="EXPR", help="Compare only these claims (as run's -k).")
def compare(run_a: str, run_b: str, markdown_path: str | None, expr: str | None = None) -> None:
    """Verdict and effect changes from RUN_A to RUN_B (run dirs of a suite or of a group), judged by the
    evidence rules of `check` with RUN_A as the baseline. Informational: exits 0 whatever changed."""
    out = output_file(markdown_path, "--markdown") if markdown_path else None
    selection = selection_of(expr)
    for run_dir in (run_a, run_b):
        # a missing or foreign run dir is one line, before any work
        suites = [recorded_suite(RunStore(d).info()) for d in suite_run_dirs(run_dir, read_group(run_dir))]
        if selection is not None:
            keep(suites, selection)
    comparison = compare_runs(run_a, run_b, selection)
    for line in text_lines(comparison):
        click.echo(line)
    if out is not None:
        atomic_write_text(out, markdown(comparison))
        click.echo(f"markdown: {out}")
