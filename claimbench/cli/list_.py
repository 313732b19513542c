"""``claimbench list``: the shipped groups and suites with their claims, or the installed workloads."""

from __future__ import annotations

from pathlib import Path

import click

from claimbench.errors import UserError
from claimbench.suite import TIERS, group_names, load_group, read_toml, resolve_suite_path, suite_names
from claimbench.workloads import registry


@click.command(name="list")
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
    validates), so that the whole catalog lists without validating every suite."""
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
