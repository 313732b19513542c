"""The command line: one function per verb. ``main`` turns a UserError into one line and exit code 2."""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path

import click

from claimbench.errors import UserError
from claimbench.faults import faults_from_env
from claimbench.runner.packs import DEFAULT_PACK_SIZE
from claimbench.suite import TIERS, load_suite, resolve_suite_path, suite_names


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="claimbench")
def cli() -> None:
    """Turn training claims into experiments, run them on Ray, answer each with a verdict."""


@cli.command()
@click.argument("suite")
@click.option("--tier", default="default", show_default=True, help=f"One of: {', '.join(TIERS)}.")
@click.option("--executor", default="ray", show_default=True, help="ray (embedded or --address) or local (in-process).")
@click.option("--address", default=None, help="Attach to a running Ray cluster (auto or HOST:PORT) instead of starting one.")
@click.option("--out", "out", default=None, help="Run directory [default: runs/SUITE-TIER].")
@click.option("--pack-size", default=DEFAULT_PACK_SIZE, show_default=True, type=int, help="Trials per pack sent to a worker.")
@click.option("--quiet", is_flag=True, help="No progress output.")
def run(suite: str, tier: str, executor: str, address: str | None, out: str | None, pack_size: int, quiet: bool) -> None:
    """Run SUITE (a name from `claimbench list`, or a .toml path); only missing trials are trained."""
    from claimbench.api import run_suite

    if pack_size < 1:
        raise UserError(f"--pack-size must be >= 1, got {pack_size}", where="--pack-size", fix="pass a positive integer")
    loaded = load_suite(suite, tier)
    command = "claimbench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    start = time.monotonic()
    summary = run_suite(loaded, out, executor=executor, address=address, pack_size=pack_size,
                        command=command, progress=not quiet, faults=faults_from_env())
    elapsed = time.monotonic() - start
    counts = ", ".join(f"{n} {s}" for s, n in sorted(summary.counts.items()))
    click.echo(f"{loaded.name} [{tier}]: {summary.total} trials ({counts}); trained {summary.trained} now "
               f"in {elapsed:.0f}s; run dir {summary.run_dir}")
    click.echo(f"report: {_report(summary.run_dir)}")


@cli.command()
@click.argument("run_dir")
@click.option("-o", "--output", default=None, help="Where to write the HTML [default: RUN_DIR/report.html].")
def report(run_dir: str, output: str | None) -> None:
    """Rebuild the report of RUN_DIR (no training; needs no Ray and no GPU); also exports Parquet."""
    from claimbench.store import RunStore

    RunStore(run_dir).info()  # a missing or foreign run dir is a user error, before any work
    path = _report(run_dir, output)
    trials, curves = RunStore(run_dir).export_parquet()
    click.echo(f"report: {path}\nframes: {trials}, {curves}")


@cli.command(name="list")
def list_() -> None:
    """Shipped suites and the claims each answers."""
    for name in suite_names():
        s = load_suite(name, "default")
        click.echo(f"{name}: {s.title}  (tiers: {', '.join(_tiers_of(name))})")
        for c in s.claims:
            click.echo(f"  {c.id:<4} FAQ §{c.faq_section:<3} {c.kind:<22} {c.paraphrase}")


@cli.command()
@click.option("-o", "--output", default=None, help="Write the schema to this file instead of stdout.")
def schema(output: str | None) -> None:
    """The JSON Schema of suite files (for editor validation)."""
    from claimbench.suite import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


def _tiers_of(name: str) -> list[str]:
    import tomllib
    raw = tomllib.loads(resolve_suite_path(name).read_text(encoding="utf-8"))
    return ["default", *[t for t in TIERS if t in raw.get("tiers", {}) and t != "default"]]


def _report(run_dir, output: str | None = None) -> Path:
    """Evaluate once, print each verdict, write the HTML; return its path."""
    from claimbench.api import evaluate_run
    from claimbench.report import write_report

    evaluation = evaluate_run(run_dir)
    for r in evaluation.results:
        click.echo(f"  {r.claim_id:<4} {r.verdict:<12} {r.summary}")
    return write_report(run_dir, output, evaluation)


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="claimbench", standalone_mode=False)
    except UserError as e:
        click.echo(f"claimbench: error: {e}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("claimbench: interrupted; finished trials are saved; rerun the same command to resume", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("claimbench: interrupted; finished trials are saved; rerun the same command to resume", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
