"""Finding and reading suite files: the shipped suites and groups, a name or a path, TOML read with a size bound."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

from claimbench.errors import StoreError, SuiteError
from claimbench.paths import check_name
from claimbench.store.files import Unreadable, read_bounded
from claimbench.store.rundir import FIX_REWRITE, RunInfo
from claimbench.suite.expansion import expand
from claimbench.suite.model import Group, Suite
from claimbench.suite.validate import Validator, parse_suite


def suites_dir() -> Path:
    """Shipped suites: inside the wheel (claimbench/suites), or the repo's suites/ in a checkout."""
    here = Path(__file__).parents[1]  # the claimbench package
    for candidate in (here / "suites", here.parent / "suites"):
        if candidate.is_dir():
            return candidate
    return here / "suites"


def resolve_suite_path(name_or_path: str) -> Path:
    """A path to a TOML file, or the name of a suite shipped in claimbench/suites/."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        if not p.is_file():
            raise SuiteError("suite file not found", where=str(p),
                             fix=f"give a path to a .toml file or one of: {', '.join(suite_names())}")
        return p
    shipped = suites_dir() / f"{name_or_path}.toml"
    if shipped.is_file():
        return shipped
    raise SuiteError(f"no suite named {name_or_path!r}", where=name_or_path,
                     fix=f"use one of: {', '.join(suite_names())}, or a path to a .toml file")


def resolve_published_suite(name: str) -> str:
    """The shipped suite file of a suite name as a report records it (``frontier_weight_decay_scaling`` lives in
    ``suites/frontier/weight_decay_scaling.toml``): searched among the shipped suites and their groups."""
    check_name(name, "verdicts.json: suites", "suite name")
    root = suites_dir()
    for path in sorted(root.rglob("*.toml")):
        try:
            raw = read_toml(path)
        except SuiteError:
            continue
        meta = raw.get("suite") if isinstance(raw, dict) else None
        if isinstance(meta, dict) and meta.get("name") == name:
            return str(path)
    raise SuiteError(f"no shipped suite is named {name!r}", where=str(root),
                     fix="give a report made from the shipped suites")


def suite_names() -> list[str]:
    """Shipped suites (not groups)."""
    return sorted(p.stem for p in suites_dir().glob("*.toml") if not _is_group_file(p))


def group_names() -> list[str]:
    """Shipped groups: files with a [group] table listing suites, e.g. ``faq``."""
    return sorted(p.stem for p in suites_dir().glob("*.toml") if _is_group_file(p))


#: The most bytes a suite or group file may have: TOML is parsed whole, before any limit applies.
MAX_FILE_BYTES = 4 * 2**20


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file as a dict; every way it can fail to parse is one ``SuiteError`` line."""
    p = Path(path)
    try:  # without blocking, a regular file, at most MAX_FILE_BYTES read (a FIFO or /dev/zero is refused)
        return tomllib.loads(read_bounded(p, MAX_FILE_BYTES).decode("utf-8"))
    except Unreadable as e:
        fix = ("write the matrix with axes and logspace, not listed values" if "larger" in str(e)
               else "give a .toml file")
        raise SuiteError(f"the suite {e}", where=str(p), fix=fix) from None
    except tomllib.TOMLDecodeError as e:
        raise SuiteError(f"TOML syntax error: {e}", where=str(p), fix="correct the TOML syntax at that line") from None
    except UnicodeDecodeError:
        raise SuiteError("not UTF-8 text", where=str(p), fix="save the suite as UTF-8") from None
    except RecursionError:
        raise SuiteError("tables or arrays nested too deeply to parse", where=str(p),
                         fix="a suite nests a few levels at most; flatten the file") from None
    except OSError as e:
        raise SuiteError(f"cannot read the file ({e.strerror})", where=str(p), fix="give a readable .toml file") from None


def _is_group_file(path: Path) -> bool:
    try:
        return "group" in read_toml(path)
    except SuiteError:
        return False  # not a group; loading it as a suite reports why it does not parse


def load_group(name_or_path: str | Path) -> Group | None:
    """The group a name or path names, or None when it names a suite."""
    p = Path(name_or_path)
    path = p if (p.suffix == ".toml" or p.exists()) else suites_dir() / f"{name_or_path}.toml"
    if not path.is_file() or not _is_group_file(path):
        return None
    raw = read_toml(path)
    v = Validator(str(path))
    v.keys(raw, ("group",), "")
    g = v.table(raw, "group", required=True)
    v.keys(g, ("name", "title", "description", "suites"), "group")
    suites = g.get("suites")
    if not isinstance(suites, list) or not suites or not all(isinstance(s, str) and s for s in suites):
        raise v.fail("group.suites", f"must be a non-empty list of suite names, got {suites!r}",
                     'write suites = ["batch_size", ...]')
    known = suite_names()
    resolved = []
    for s in suites:  # a shipped suite name, or a .toml path relative to the group file
        if s.endswith(".toml"):
            if not (path.parent / s).is_file():
                raise v.fail("group.suites", f"suite file {s!r} not found next to the group file",
                             "give a path relative to the group file, or a shipped suite name")
            resolved.append(str(path.parent / s))
        elif s in known:
            resolved.append(s)
        else:
            raise v.fail("group.suites", f"no suite named {s!r}", f"use one of: {', '.join(known)}")
    if len(set(resolved)) != len(resolved):
        raise v.fail("group.suites", f"suites repeat: {suites}", "list each suite once")
    name = check_name(v.string(g, "name", "group", required=True), f"{path}: group.name", "group name")
    return Group(name=name, title=v.string(g, "title", "group") or name,
                 description=v.string(g, "description", "group") or "", suites=tuple(resolved), path=str(path))


def load_targets(names: list[str] | tuple[str, ...], tier: str = "default", seeds: int | None = None) -> list[Suite]:
    """Suites named by suite names, suite paths or group names (a group expands to its suites), in order, once each;
    ``seeds`` (``--seeds``) overrides each one's seed count at ``tier``."""
    out: list[Suite] = []
    for name in names:
        group = load_group(name)
        for s in (group.suites if group else (name,)):
            suite = load_suite(s, tier, seeds)
            same = next((x for x in out if x.name == suite.name), None)
            if same is None:
                out.append(suite)
            elif Path(same.path).resolve() != Path(suite.path).resolve():  # one name, one run dir: never two suites
                where = f"{group.path}: group.suites" if group else suite.path
                raise SuiteError(f"two suites are named {suite.name!r} ({same.path} and {suite.path})", where=where,
                                 fix="give each suite its own [suite] name")
    return out


def load_suite(name_or_path: str | Path, tier: str = "default", seeds: int | None = None) -> Suite:
    """The suite at ``tier``; ``seeds`` (``--seeds N``) replaces the tier's seeds by 0..N-1, within the limits."""
    path = resolve_suite_path(str(name_or_path))
    raw = read_toml(path)
    if "group" in raw:
        raise SuiteError("this file is a group of suites, not a suite", where=str(path),
                         fix=f"run the group with `claimbench run {path.stem}`, or name one of its suites")
    return parse_suite(raw, str(path), tier, seeds)


def recorded_suite(info: RunInfo) -> Suite:
    """The suite a run dir recorded (``RunStore.info().suite``, JSON) read back; StoreError (one line naming
    run.json) when it does not resolve, its matrix is above its limit, or a trial of it no longer expands."""
    where = f"{info.path}: suite"
    try:
        suite = Suite.from_dict(info.suite)
        n = math.prod(len(a.values) for a in suite.axes) * len(suite.seeds)
        if n > suite.limit_table()["trials"]:
            raise ValueError(f"its matrix has {n:.3g} trials, above the limit of {suite.limit_table()['trials']}")
        specs = expand(suite)  # every trial of the recorded suite must still resolve
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as e:
        what = f"lacks {e}" if isinstance(e, KeyError) else f"is malformed ({type(e).__name__}: {str(e)[:120]})"
        raise StoreError(f"run.json's suite {what}", where=where, fix=FIX_REWRITE) from None
    if not (isinstance(suite.name, str) and isinstance(suite.title, str) and specs is not None):
        raise StoreError("run.json's suite needs a name and a title (strings)", where=where, fix=FIX_REWRITE)
    return suite
