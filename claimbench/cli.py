"""The command line: one function per verb. ``main`` turns a UserError into one line and exit code 2."""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from pathlib import Path

import click

from claimbench.errors import UserError
from claimbench.faults import check_fault_limits, faults_from_env
from claimbench.paths import check_name, inside, output_dir, output_file
from claimbench.runner.packs import DEFAULT_PACK_SIZE
from claimbench.suite import (TIERS, group_names, load_group, load_suite, load_targets, read_toml, resolve_suite_path,
                              suite_names)

#: Options of every verb that writes run dirs (run, check, baseline).
_FORCE_HELP = "Write into an --out that exists, is not empty and holds no claimbench run (refused without it)."
_WAIT_HELP = "If another claimbench is writing the same run dir, wait for it to finish (default: exit 2)."


def _writer_options(f):
    f = click.option("--wait", is_flag=True, help=_WAIT_HELP)(f)
    return click.option("--force", is_flag=True, help=_FORCE_HELP)(f)


class _Tier(click.Choice):
    """``--tier``: one of TIERS; anything else is one UserError line (exit 2), not click's usage block."""

    def __init__(self) -> None:
        super().__init__(TIERS)

    def convert(self, value, param, ctx):
        if value in TIERS:
            return value
        raise UserError(f"unknown tier {value!r}", where="--tier", fix=f"use one of: {', '.join(TIERS)}")


class _Count(click.ParamType):
    """A whole number option (``--pack-size``): anything else is one UserError line (exit 2), not click's usage block."""

    name = "integer"

    def __init__(self, flag: str) -> None:
        self.flag = flag

    def convert(self, value, param, ctx):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            raise UserError(f"must be a whole number, got {str(value)[:40]!r}", where=self.flag,
                            fix=f"pass a count, e.g. {self.flag} 8") from None


def _tier_option(default: str):
    return click.option("--tier", default=default, show_default=True, type=_Tier(),
                        help="The suites' scale: smoke (seconds), ci, default (a laptop CPU) or full (a GPU cluster).")


_K_HELP = ("Only claims whose id or suite name contains a word of EXPR (pytest-like: 'B2', 'B2 or L3', "
           "'batch and not B3', 'B1,B4'); only the suites holding one are trained.")
_SEEDS_HELP = "Seeds 0..N-1 instead of the tier's (within the suite's limits); the default --out gets -seedsN."
_DRY_HELP = "Print the trials (cached and new), the packs and an estimate of the time; train and write nothing."


def _plan_options(f):
    """Options of every verb that trains (run, check, baseline): the same names, checked by the same code."""
    f = click.option("--gpus-per-trial", type=float, default=None,
                     help="GPUs of one trial's Ray slot; fractions share a GPU [default: the suite's [resources], else 0].")(f)
    f = click.option("--cpus-per-trial", type=float, default=None,
                     help="CPUs of one trial's Ray slot (torch threads) [default: the suite's [resources], else 1].")(f)
    f = click.option("--pack-size", default=DEFAULT_PACK_SIZE, show_default=True, type=_Count("--pack-size"),
                     help="The most trials per pack sent to a worker (packs are as wide as the measured width, "
                          "memory and load balance allow, up to this).")(f)
    f = click.option("--trial-timeout", "trial_timeout", default=None, metavar="SECONDS",
                     help="Each trial's wall-clock limit: past it, it is recorded failed and the run goes on "
                          "[default: the suite's [limits] trial_timeout, else its estimate x 10, at least 300 s].")(f)
    f = click.option("--dry-run", "dry_run", is_flag=True, help=_DRY_HELP)(f)
    f = click.option("--seeds", "seeds", default=None, metavar="N", help=_SEEDS_HELP)(f)
    return click.option("-k", "expr", default=None, metavar="EXPR", help=_K_HELP)(f)


def _check_run_options(executor: str, address: str | None, pack_size: int, cpus_per_trial: float | None,
                       gpus_per_trial: float | None) -> None:
    """The executor, pack size and slot resources of run, check and baseline: one check for all three."""
    from claimbench.runner import check_executor_options

    if pack_size < 1:
        raise UserError(f"--pack-size must be >= 1, got {pack_size}", where="--pack-size", fix="pass a positive integer")
    check_executor_options(executor, address, cpus_per_trial, gpus_per_trial)


def _seed_count(seeds: str | None) -> int | None:
    """``--seeds N`` as a count (>= 1; the suites' limits check the rest when they load), or None."""
    if seeds is None:
        return None
    try:
        n = int(seeds)
    except ValueError:
        n = 0
    if n < 1 or str(seeds).strip() != str(n):
        raise UserError(f"must be a whole number of seeds >= 1, got {seeds!r}", where="--seeds",
                        fix="pass a count, e.g. --seeds 5")
    return n


def _seconds(value: str | None) -> float | None:
    """``--trial-timeout SECONDS`` as a number > 0 (finite), or None."""
    import math

    if value is None:
        return None
    try:
        x = float(value)
    except ValueError:
        x = math.nan
    if not (math.isfinite(x) and x > 0):
        raise UserError(f"must be a number of seconds > 0, got {str(value)[:40]!r}", where="--trial-timeout",
                        fix="pass e.g. --trial-timeout 600")
    return x


def _seeds_suffix(seeds: int | None) -> str:
    """The default out dir of a --seeds run differs from the tier's: it never mixes with a normal run's report."""
    return "" if seeds is None else f"-seeds{seeds}"


def _selection(expr: str | None):
    from claimbench.selection import parse

    return None if expr is None else parse(expr)


def _dry_run(targets: list, tier: str, pack_size: int, executor: str, address: str | None,
             cpus_per_trial: float | None, gpus_per_trial: float | None) -> None:
    """--dry-run: the plan (claimbench/plan.py) printed; nothing started or written."""
    from claimbench.api import slot_resources
    from claimbench.plan import describe, plan

    cpus, gpus = slot_resources([s for s, _ in targets], cpus_per_trial, gpus_per_trial)
    for line in describe(plan(targets, pack_size, executor, address, cpus, gpus), tier):
        click.echo(line)


def _ray_address(executor: str, address: str | None) -> None:
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


def _open_run_dirs(targets: list, root: Path, force: bool, wait: bool, faults: tuple,
                   group_file: str | None = None) -> None:
    """Before any training: each run dir can be written and is held by this driver (one writer at a time),
    the faults fit the limits, and damaged records are quarantined (one stderr line per run dir)."""
    from claimbench.store import RunStore

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
    from claimbench.suite import expand

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
    from claimbench.workloads.builtin import TrialSpec

    try:
        return TrialSpec.from_dict(spec).config_id
    except (TypeError, ValueError):
        return ""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="claimbench")
def cli() -> None:
    """Turn training claims into experiments, run them on Ray, answer each with a verdict."""


@cli.command()
@click.argument("suite")
@_tier_option("default")
@click.option("--executor", default="ray", show_default=True, help="ray (embedded or --address) or local (in-process).")
@click.option("--address", default=None, help="Attach to a running Ray cluster (auto or HOST:PORT) instead of starting one.")
@click.option("--out", "out", default=None, help="Run directory [default: runs/SUITE-TIER, runs/SUITE-TIER-seedsN with --seeds].")
@click.option("--quiet", is_flag=True, help="No progress output.")
@_plan_options
@_writer_options
def run(suite: str, tier: str, executor: str, address: str | None, out: str | None, pack_size: int, quiet: bool,
        cpus_per_trial: float | None, gpus_per_trial: float | None, expr: str | None = None, dry_run: bool = False,
        seeds: str | None = None, force: bool = False, wait: bool = False, trial_timeout: str | None = None) -> None:
    """Run SUITE (a suite or group name from `claimbench list`, or a .toml path); only missing trials are trained.

    A group (e.g. `faq`) runs all its suites through one executor into RUN_DIR/<suite>/ and writes one report.
    With -k, only the suites holding a selected claim train, and only the selected claims are reported.
    """
    from claimbench.selection import keep

    _check_run_options(executor, address, pack_size, cpus_per_trial, gpus_per_trial)  # flags first: before any work
    timeout = _seconds(trial_timeout)
    n_seeds = _seed_count(seeds)
    selection = _selection(expr)
    group = load_group(suite)
    members: list[str] = []
    if group is not None:
        every = load_targets([suite], tier, n_seeds)
        members = [s.name for s in every]  # group.json lists them all: a -k run trains some, a later run the rest
        suites = keep(every, selection)
        root = Path(out) if out else inside("runs", f"{group.name}-{tier}{_seeds_suffix(n_seeds)}")
        targets = [(s, inside(root, s.name)) for s in suites]
    else:
        loaded = keep([load_suite(suite, tier, n_seeds)], selection)[0]
        root = Path(out) if out else inside("runs", f"{loaded.name}-{tier}{_seeds_suffix(n_seeds)}")
        targets = [(loaded, root)]
    command = "claimbench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    faults = faults_from_env()
    if dry_run:
        _dry_run(targets, tier, pack_size, executor, address, cpus_per_trial, gpus_per_trial)
        return
    _ray_address(executor, address)
    _open_run_dirs(targets, root, force, wait, faults, "group.json" if group is not None else None)
    from claimbench.api import run_suites, write_group  # after the checks: refusals come before seconds of imports

    start = time.monotonic()
    if group is not None:
        write_group(root, group, tier, members)
    summaries = run_suites(targets, executor=executor, address=address, pack_size=pack_size,
                           command=command, progress=not quiet, faults=faults,
                           cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial, trial_timeout=timeout)
    elapsed = time.monotonic() - start
    for (s, _), summary in zip(targets, summaries):
        counts = ", ".join(f"{n} {st}" for st, n in sorted(summary.counts.items()))
        click.echo(f"{s.name} [{tier}]: {summary.total} trials ({counts}); {summary.trained} new; "
                   f"{summary.total - summary.trained} reused; run dir {summary.run_dir}")
        for line in summary.extensions:
            click.echo(f"  adaptive: {line}")
    click.echo(f"report: {_report(root, select=selection)}")
    _echo_data(root, [Path(summary.run_dir) for summary in summaries])
    from claimbench.runner.progress import command_elapsed, timing_line
    wall = command_elapsed() or time.monotonic() - start
    click.echo(timing_line(summaries[0].trained_total, wall, summaries[0].ray_startup_s, elapsed))


def _echo_data(root: Path, run_dirs: list[Path]) -> None:
    """Where the report's data went (report.exports.write_exports, called by write_report)."""
    click.echo(f"data: {root / 'verdicts.json'}; trials, curves and range_curves .parquet in "
               + ", ".join(str(d) for d in run_dirs))


@cli.command()
@click.argument("run_dir")
@click.option("-o", "--output", default=None, help="Where to write the HTML, and nothing else [default: "
              "RUN_DIR/report.html, with verdicts.json and the Parquet frames beside it].")
@click.option("-k", "expr", default=None, metavar="EXPR", help="Report only these claims (as run's -k).")
def report(run_dir: str, output: str | None, expr: str | None = None) -> None:
    """Rebuild the report of RUN_DIR (no training; needs no Ray and no GPU), with its data: verdicts.json and
    the trials, curves and range_curves Parquet frames."""
    from claimbench.api import is_published, read_group
    from claimbench.selection import keep
    from claimbench.store import RunStore

    if output:
        output_file(output, "-o")
    if is_published(run_dir):  # a published report dir: judged again from its frames, nothing trained
        path = _report(run_dir, output, _selection(expr))
        click.echo(f"report: {path}")
        return
    try:
        group = read_group(run_dir)
    except (RecursionError, AttributeError, TypeError):  # a hand-made group.json nested or shaped oddly
        raise UserError("group.json is not a claimbench group file", where=str(Path(run_dir) / "group.json"),
                        fix="delete it and rerun the group") from None
    gfile = str(Path(run_dir) / "group.json")
    subs = [inside(run_dir, check_name(s, f"{gfile}: suites", "suite name")) for s in group["suites"]] if group else []
    dirs = [d for d in subs if (d / "run.json").is_file()] if group else [Path(run_dir)]
    infos = [RunStore(d).info() for d in dirs]  # a missing or foreign run dir is a user error, before any work
    selection = _selection(expr)
    keep([i.suite for i in infos], selection)
    path = _report(run_dir, output, selection)
    click.echo(f"report: {path}")
    if output is None:  # with -o, only the file it names is written: nothing goes into the run dir
        _echo_data(Path(run_dir), dirs)


@cli.command(name="list")
@click.option("--workloads", "workloads", is_flag=True, help="List the installed workloads instead.")
def list_(workloads: bool = False) -> None:
    """Every shipped group with its member suites, then the suites in no group; under each suite, one line
    per claim: id, FAQ section, kind, paraphrase. With --workloads, the installed workloads."""
    if workloads:
        _list_workloads()
        return
    broken: list[str] = []
    shown: set[Path] = set()
    for name in group_names():  # driven by the group files: a new group and its suites/<group>/ need no code
        g = load_group(name)
        click.echo(f"{name} (group): {g.title}  ({len(g.suites)} suites)")
        for member in g.suites:
            _list_suite(member, "  ", shown, broken)
    rest = [n for n in suite_names() if resolve_suite_path(n).resolve() not in shown]
    if rest:
        click.echo("suites in no group:")
    for name in rest:
        _list_suite(name, "  ", shown, broken)
    if broken:
        raise UserError(f"{len(broken)} shipped suite{'s' if len(broken) != 1 else ''} did not load: "
                        f"{'; '.join(broken)}", fix="correct them (see each one's line above)")


def _list_suite(name_or_path: str, indent: str, shown: set[Path], broken: list[str]) -> None:
    """One suite's line (its name, title and tiers), then one line per claim; a suite listed before
    (in another group) is named again without its claims. Read from the TOML alone (a listing; `run`
    validates): the whole catalog lists in a fraction of a second."""
    path = resolve_suite_path(name_or_path).resolve()
    try:
        raw = read_toml(path)
        meta, claims = raw["suite"], raw.get("claims", [])
        name = str(meta["name"])
        rows = [(str(c["id"]), str(c["faq_section"]), str(c["kind"]), str(c["paraphrase"])) for c in claims]
    except UserError as e:
        click.echo(f"{indent}{path.stem}: does not load ({e})")
        broken.append(path.stem)
        return
    except (KeyError, TypeError) as e:
        click.echo(f"{indent}{path.stem}: does not load ({path}: lacks {e}; `claimbench run {path}` says more)")
        broken.append(path.stem)
        return
    if path in shown:
        click.echo(f"{indent}{name}: listed above")
        return
    shown.add(path)
    tiers = ["default", *[t for t in TIERS if t in raw.get("tiers", {}) and t != "default"]]
    click.echo(f"{indent}{name}: {meta.get('title', name)}  (tiers: {', '.join(tiers)})")
    for cid, section, kind, paraphrase in rows:
        where = f"FAQ §{section}" if section.isdigit() else section
        click.echo(f"{indent}  {cid:<4} {where:<8} {kind:<22} {paraphrase}")


def _list_workloads() -> None:
    """Each installed workload: name, level, task, package and version, parameters, the settings it reads."""
    from claimbench.workloads import registry

    for name in registry.installed():
        w = registry.get(name)
        package, version = registry.distribution(name)
        click.echo(f"{name}: {w.level}{', ' + w.task if w.task else ''}; package {package} {version}"
                   f"{'  ' + w.description if w.description else ''}")
        for p in w.params:
            rule = f"one of {', '.join(map(str, p.choices))}" if p.choices else p.rule()
            click.echo(f"  {p.name} ({p.type.__name__}, default {p.default!r}, {rule}){'  ' + p.help if p.help else ''}")
        if not w.builtin and w.uses:
            click.echo(f"  reads: {', '.join(w.uses)}")
    click.echo(f"register another: {registry.HOW_TO_REGISTER}")


@cli.command()
@click.option("-o", "--output", default=None, help="Write the schema to this file instead of stdout.")
@click.option("--workloads", "workloads", is_flag=True,
              help="Include the [workload] sections of every installed workload (the shipped file has the built-ins).")
def schema(output: str | None, workloads: bool = False) -> None:
    """The JSON Schema of suite files (for editor validation)."""
    from claimbench.suite import json_schema
    from claimbench.workloads import registry

    installed = [registry.get(n) for n in registry.installed()] if workloads else []
    text = json.dumps(json_schema(installed), indent=2) + "\n"
    if output:
        output_file(output, "-o").write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


@cli.command()
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
@click.option("--quiet", is_flag=True, help="Print only the closing line.")
def calibrate(kinds: tuple[str, ...], seeds: str, reps: int, markdown_path: str | None, jobs: int, grid: str,
              quiet: bool) -> None:
    """Measure each claim kind's false-supported and false-refuted rates, and its power, by simulation.

    KINDS: claim kinds (default: all). Exits 1 when a null rate exceeds 2.5% + 2 Monte Carlo SE.
    """

    from claimbench.analysis import calibration

    try:
        counts = sorted({int(x) for x in seeds.split(",") if x.strip()})
    except ValueError:
        raise UserError(f"--seeds must be comma-separated integers, got {seeds!r} — fix: e.g. --seeds 3,5,8") from None
    if not counts or min(counts) < 2 or max(counts) > 1000:
        raise UserError(f"--seeds counts must lie in 2..1000, got {seeds!r} — fix: e.g. --seeds 3,5,8")
    unknown = [k for k in kinds if k not in calibration.SCENARIO_KINDS]
    if unknown:
        raise UserError(f"no calibration scenario for kind {', '.join(map(repr, unknown))} — fix: use one of "
                        f"{', '.join(calibration.SCENARIO_KINDS)}")
    out = output_file(markdown_path, "--markdown") if markdown_path else None
    start = time.perf_counter()
    rows = calibration.run(list(kinds) or None, counts, reps, progress=None if quiet else click.echo, jobs=jobs,
                           grid=grid)
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


_TARGETS_HELP = "SUITE...: suite names, .toml paths or group names (see `claimbench list`)."


@cli.command()
@click.argument("suites", nargs=-1, required=True)
@click.option("--baseline", "baseline_path", required=True, help="The baseline JSON to compare with (e.g. reports/baseline.json).")
@_tier_option("ci")
@click.option("--out", "out", default=None, help="Parent of the run dirs, one per suite [default: runs/check-TIER, "
              "runs/check-TIER-seedsN with --seeds].")
@click.option("--junit", "junit", default=None, help="JUnit XML path [default: OUT/junit.xml].")
@click.option("--markdown", "markdown", default=None, help="Markdown summary path [default: OUT/summary.md]; "
              "also appended to $GITHUB_STEP_SUMMARY when set.")
@click.option("--executor", default="ray", show_default=True, help="ray (embedded or --address) or local (in-process).")
@click.option("--address", default=None, help="Attach to a running Ray cluster (auto or HOST:PORT).")
@click.option("--quiet", is_flag=True, help="No progress output.")
@_plan_options
@_writer_options
def check(suites: tuple[str, ...], baseline_path: str, tier: str, out: str | None, junit: str | None,
          markdown: str | None, executor: str, address: str | None, quiet: bool, expr: str | None = None,
          dry_run: bool = False, seeds: str | None = None, pack_size: int = DEFAULT_PACK_SIZE,
          cpus_per_trial: float | None = None, gpus_per_trial: float | None = None, force: bool = False,
          wait: bool = False, trial_timeout: str | None = None) -> None:
    """Run (or reuse) SUITE... and compare each claim with the baseline: exit 0 only when every gated claim was
    judged on at least the baseline's evidence and held, 1 otherwise.

    A regression is a gated verdict change (by default: supported -> refuted or inconclusive) or a tracked
    quantity whose interval over seeds of the change shows it beyond its tolerance (see the suite's
    `check` tables). A claim judged on less than the baseline's evidence (more failed trials, fewer records,
    seeds, trials or strata, a missing effect or tracked value) fails too, with the reason. Writes JUnit XML,
    a Markdown summary and each suite's HTML report. With -k, only the selected claims are checked (and need
    a baseline).
    """
    from claimbench.check import baseline_for, check_measured, load_check_targets, measure, read_baseline
    from claimbench.report.junit import write_junit
    from claimbench.report.markdown import write_markdown
    from claimbench.selection import keep, kept_ids

    junit_out = output_file(junit, "--junit") if junit else None  # output paths first: one line, before any work
    md_out = output_file(markdown, "--markdown") if markdown else None
    if out:
        output_dir(out, "--out")
    _check_run_options(executor, address, pack_size, cpus_per_trial, gpus_per_trial)  # as run checks them
    timeout = _seconds(trial_timeout)
    n_seeds = _seed_count(seeds)
    selection = _selection(expr)
    data = read_baseline(baseline_path)  # a missing or malformed baseline is a usage error, before any training
    loaded, skipped = load_check_targets(list(suites), tier, n_seeds)
    loaded = keep(loaded, selection)
    for s in loaded:
        baseline_for(data, s, baseline_path, kept_ids(s, selection))
    for name in skipped:
        click.echo(f"{name}: no [tiers.{tier}], not checked")
    root = Path(out) if out else inside("runs", f"check-{tier}{_seeds_suffix(n_seeds)}")
    if dry_run:
        _dry_run([(s, inside(root, s.name)) for s in loaded], tier, pack_size, executor, address,
                 cpus_per_trial, gpus_per_trial)
        return
    junit_out = junit_out or root / "junit.xml"
    md_out = md_out or root / "summary.md"
    command = "claimbench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    faults = faults_from_env()
    _ray_address(executor, address)
    _open_run_dirs([(s, inside(root, s.name)) for s in loaded], root, force, wait, faults)
    measured = measure(loaded, root, executor=executor, address=address, command=command,
                       progress=not quiet, faults=faults, pack_size=pack_size, cpus_per_trial=cpus_per_trial,
                       gpus_per_trial=gpus_per_trial, select=selection, trial_timeout=timeout)
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


@cli.command()
@click.argument("suites", nargs=-1, required=True)
@click.option("-o", "--output", default="reports/baseline.json", show_default=True,
              help="Baseline JSON to write or update (entries of other suites and tiers are kept).")
@_tier_option("ci")
@click.option("--out", "out", default=None, help="Parent of the run dirs, one per suite [default: runs/check-TIER, "
              "runs/check-TIER-seedsN with --seeds].")
@click.option("--executor", default="ray", show_default=True, help="ray (embedded or --address) or local (in-process).")
@click.option("--address", default=None, help="Attach to a running Ray cluster (auto or HOST:PORT).")
@click.option("--quiet", is_flag=True, help="No progress output.")
@_plan_options
@_writer_options
def baseline(suites: tuple[str, ...], output: str, tier: str, out: str | None, executor: str, address: str | None,
             quiet: bool, expr: str | None = None, dry_run: bool = False, seeds: str | None = None,
             pack_size: int = DEFAULT_PACK_SIZE, cpus_per_trial: float | None = None,
             gpus_per_trial: float | None = None, force: bool = False, wait: bool = False,
             trial_timeout: str | None = None) -> None:
    """Run (or reuse) SUITE... and write their verdicts, effects and tracked per-seed values as the baseline.

    With -k, only the selected claims' entries are replaced; the suite's other claims are kept from the
    file when it measured the same trial matrix."""
    from claimbench.check import baseline_entry, commit_baseline, load_check_targets, measure, merge_entry, read_baseline
    from claimbench.env import environment
    from claimbench.selection import keep

    output_file(output, "-o")
    if out:
        output_dir(out, "--out")
    _check_run_options(executor, address, pack_size, cpus_per_trial, gpus_per_trial)  # as run checks them
    timeout = _seconds(trial_timeout)
    n_seeds = _seed_count(seeds)
    selection = _selection(expr)
    data = read_baseline(output, must_exist=False)  # an unreadable existing file is refused, never overwritten
    loaded, skipped = load_check_targets(list(suites), tier, n_seeds)
    loaded = keep(loaded, selection)
    for name in skipped:
        click.echo(f"{name}: no [tiers.{tier}], no baseline written")
    root = Path(out) if out else inside("runs", f"check-{tier}{_seeds_suffix(n_seeds)}")
    if dry_run:
        _dry_run([(s, inside(root, s.name)) for s in loaded], tier, pack_size, executor, address,
                 cpus_per_trial, gpus_per_trial)
        return
    command = "claimbench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    faults = faults_from_env()
    _ray_address(executor, address)
    _open_run_dirs([(s, inside(root, s.name)) for s in loaded], root, force, wait, faults)
    measured = measure(loaded, root, executor=executor, address=address, command=command,
                       progress=not quiet, faults=faults, pack_size=pack_size, cpus_per_trial=cpus_per_trial,
                       gpus_per_trial=gpus_per_trial, select=selection, trial_timeout=timeout)
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
    path = commit_baseline(output, entries, environment(command), merge=selection is not None)
    click.echo(f"baseline: {path}")


@cli.command()
@click.argument("run_a")
@click.argument("run_b")
@click.option("--markdown", "markdown_path", default=None, help="Also write the comparison as Markdown to this file.")
@click.option("-k", "expr", default=None, metavar="EXPR", help="Compare only these claims (as run's -k).")
def compare(run_a: str, run_b: str, markdown_path: str | None, expr: str | None = None) -> None:
    """Verdict and effect changes from RUN_A to RUN_B (run dirs of a suite or of a group), judged by the
    evidence rules of `check` with RUN_A as the baseline. Informational: exits 0 whatever changed."""
    from claimbench.compare import compare_runs, markdown, text_lines
    from claimbench.selection import keep

    out = output_file(markdown_path, "--markdown") if markdown_path else None
    selection = _selection(expr)
    for run_dir in (run_a, run_b):
        suites = _run_dir_suites(run_dir)  # a missing or foreign run dir is one line, before any work
        if selection is not None:
            keep(suites, selection)
    comparison = compare_runs(run_a, run_b, selection)
    for line in text_lines(comparison):
        click.echo(line)
    if out is not None:
        from claimbench.store import atomic_write_text

        atomic_write_text(out, markdown(comparison))
        click.echo(f"markdown: {out}")


def _run_dir_suites(run_dir: str) -> list:
    """The suites a run dir (a suite's, or a group's sub run dirs) holds; a UserError when it is none."""
    from claimbench.api import read_group
    from claimbench.store import RunStore

    group = read_group(run_dir)
    if group is None:
        return [RunStore(run_dir).info().suite]
    gfile = str(Path(run_dir) / "group.json")
    subs = [inside(run_dir, check_name(s, f"{gfile}: suites", "suite name")) for s in group["suites"]]
    found = [RunStore(d).info().suite for d in subs if (d / "run.json").is_file()]
    if not found:
        raise UserError("the group has no suite run dirs yet", where=str(run_dir),
                        fix=f"run it first: claimbench run {group['group']} --tier {group['tier']}")
    return found


def _report(run_dir, output: str | None = None, select=None) -> Path:
    """Evaluate once (only the claims ``select`` keeps, with -k), print each verdict, write the HTML; return its path."""
    from claimbench.api import evaluate_target
    from claimbench.report import write_report

    from claimbench.analysis import inference
    from claimbench.claims import evidence

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
    return write_report(run_dir, output, evaluations, exports=output is None)


cli.add_command(__import__("claimbench.export.cli", fromlist=["export"]).export)  # `claimbench export mlflow|tensorboard`


def _storage_error(e: OSError):
    """The one line of a write the file system refused (store.STORAGE_ERRNOS); pyarrow's errors carry no errno,
    so their message is read. None for any other OSError (a bug: its traceback stays)."""
    import errno

    from claimbench.store import storage_error

    if e.errno is None:
        text = str(e)
        for code, words in ((errno.ENOSPC, "No space left"), (errno.EDQUOT, "quota exceeded"),
                            (errno.EROFS, "Read-only file system"), (errno.EACCES, "Permission denied")):
            if words.lower() in text.lower():
                return storage_error(OSError(code, words, getattr(e, "filename", None)), _path_in(text))
        return None
    return storage_error(e)


def _path_in(text: str) -> str | None:
    """The first absolute path in an error message (pyarrow names the file it failed on), else None."""
    import re

    m = re.search(r"(/[^\s'\"]+)", text)
    return m.group(1).rstrip(".,:;") if m else None


def main(argv: list[str] | None = None) -> None:
    from claimbench.store import release_all

    try:
        cli.main(args=argv, prog_name="claimbench", standalone_mode=False)
    except UserError as e:
        click.echo(f"claimbench: error: {e}", err=True)
        sys.exit(2)
    except (PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError) as e:
        # the file system refused a write the checks up front did not foresee (e.g. a dir made read-only
        # mid-run): the user's to fix, so one line, not a traceback
        click.echo(f"claimbench: error: {e.filename or ''}: {e.strerror} — fix: make it writable, or choose "
                   "another output path", err=True)
        sys.exit(2)
    except OSError as e:  # a full disk, a quota or a read-only file system under a write no check foresaw
        error = _storage_error(e)
        if error is None:
            raise
        click.echo(f"claimbench: error: {error}", err=True)
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
    finally:
        release_all()


if __name__ == "__main__":
    main()
