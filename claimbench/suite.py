"""Suites: TOML files -> validated ``Suite`` -> ``expand()`` -> [TrialSpec].

A suite is data, never code. Layout (see suites/batch_size.toml and
claimbench/suite.schema.json)::

    [suite]       name, title, description, seeds (a count or a list)
    [workload]    name (a registered workload; default "claimbench", the built-ins: dataset, model
                  and their parameters), and the parameters the workload declares
    [train]       optimizer, schedule, clipping, early stopping, evaluation
    [budget]      epochs = N  or  steps = N
    [axes.NAME]   role = scientific | nuisance | fixed;
                  values = [...]  or  logspace = {start, stop, num}
                  (a value may be a table that sets several parameters,
                  e.g. values = [{epochs = 10}, {steps = 2000}] for axis "budget")
    [tiers.T]     seeds, budget, params, axes: overrides for tier T
    [resources]   cpus_per_trial, gpus_per_trial: one Ray slot per trial (run-level; not in trial ids)
    [limits]      raise a size limit for this suite (claimbench/limits.py), e.g. trials = 200000
    [[claims]]    id, kind, faq_section, paraphrase, params;
                  check = {gate, track, tolerance, direction}: how `claimbench check` gates it

A suite names a registered workload, never a module path: loading it imports the installed package
that registers the name (workloads/registry.py) and executes nothing from the suite. Another
workload's suite sets its declared parameters (validated by their ``Param`` rules) and only the
built-in settings that workload reads (its ``uses``, and for a training function the settings its
trial policy implements; workloads/spec.py); its code fingerprint is resolved here (``Suite.code``)
and goes into every trial id.

Every problem is a ``SuiteError`` naming the file and the key. Names (suite, group, claim id) are
names, never paths (``paths.check_name``); every size is checked against ``limits.py`` before the
matrix is expanded.
"""

from __future__ import annotations

import itertools
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from claimbench import limits as lim
from claimbench.errors import SuiteError, UserError
from claimbench.paths import NAME_MAX, NAME_PATTERN, check_name
from claimbench.trial import DERIVED, METRICS, RECORD_COLUMNS, level_label
from claimbench.workloads import registry
from claimbench.workloads.builtin import CHOICES, FIELDS, RANGES, SPEC_FIELDS, TrialSpec
from claimbench.workloads.settings import check_param
from claimbench.workloads.spec import LOOP_FIELDS, MODEL_FIELDS, POLICY_FIELDS, Workload

if TYPE_CHECKING:  # claims (and with them scipy) load only once a suite's claims are parsed, so that a
    # suite refused for its size is refused before those seconds of imports
    from claimbench.claims import Claim, Design

TIERS = ("smoke", "ci", "default", "full")
ROLES = ("scientific", "nuisance", "fixed")
#: The keys of each section: the spec fields it sets (``trial.Field.section``); [workload] also names the workload.
SECTIONS = {section: (("name",) if section == "workload" else ()) + tuple(n for n, f in FIELDS.items()
                                                                          if f.section == section)
            for section in ("workload", "train", "budget")}
BUDGET_KEYS = frozenset(SECTIONS["budget"])
#: Spec fields a suite never sets: the seed comes from [suite] seeds; the workload, its parameters and its
#: code fingerprint from [workload] and the registry.
INTERNAL = tuple(n for n, f in FIELDS.items() if not f.section)
TOP_KEYS = ("suite", "workload", "train", "budget", "axes", "tiers", "claims", "resources", "limits", "adapt")
#: [adapt]: the adaptive rules the experimenter loop (claimbench/loop.py) may apply, fixed before the run:
#: ``extend = { lr = 2 }`` lets a nuisance axis gain up to 2 values beyond each edge where claims are
#: edge-limited; ``budget = 1`` lets the budget double once where a comparison is budget-limited.
ADAPT_KEYS = ("extend", "budget")
MAX_EXTEND = 4
#: [resources]: one Ray slot (actor) per trial in flight; run-level, so never part of a trial id.
#: cpus_per_trial > 0 (default 1), gpus_per_trial >= 0 (default 0; fractions share a GPU).
RESOURCE_KEYS = ("cpus_per_trial", "gpus_per_trial")
SUITE_KEYS = ("name", "title", "description", "seeds", "faq_sections")
AXIS_KEYS = ("role", "values", "logspace")
TIER_KEYS = ("seeds", "budget", "params", "axes")
CLAIM_KEYS = ("id", "kind", "faq_section", "paraphrase", "params", "check")
CHECK_KEYS = ("gate", "track", "tolerance", "direction")
#: What `claimbench check` fails on, per claim: a supported claim that stops being supported
#: (the default), any change of a decided verdict (supported or refuted), or nothing (track only).
GATES = ("supported", "decided", "off")
#: Which moves of a tracked quantity are regressions: either way, only down, or only up.
DIRECTIONS = ("both", "decrease", "increase")
#: Quantities a claim may track: its statistic (per stratum), or a metric of the best trial per seed.
TRACKABLE = ("effect", "test_acc", "val_acc", "train_acc", "test_loss", "val_loss", "train_loss")


def suites_dir() -> Path:
    """Shipped suites: inside the wheel (claimbench/suites), or the repo's suites/ in a checkout."""
    here = Path(__file__).parent
    for candidate in (here / "suites", here.parent / "suites"):
        if candidate.is_dir():
            return candidate
    return here / "suites"


@dataclass(frozen=True)
class Axis:
    name: str
    role: str
    values: tuple[Any, ...]  # scalars, or dicts of parameter -> value

    @property
    def is_table(self) -> bool:
        return any(isinstance(v, dict) for v in self.values)

    @property
    def params(self) -> set[str]:
        """The parameters this axis sets: its own name, or the keys of its table levels."""
        if not self.is_table:
            return {self.name}
        return {k for v in self.values for k in v}

    @property
    def sets_budget(self) -> bool:
        return bool(self.params & BUDGET_KEYS)


@dataclass(frozen=True)
class ClaimCheck:
    """How `claimbench check` gates one claim against a baseline (a claim's ``check = {...}`` table).

    ``track`` names quantities compared over seeds with ``tolerance[name]`` (absolute units of the
    quantity) and ``direction``; ``gate`` says which verdict changes are regressions.
    """

    gate: str = "supported"
    track: tuple[str, ...] = ()
    tolerance: dict[str, float] = field(default_factory=dict)  # tracked quantity -> tolerance
    direction: dict[str, str] = field(default_factory=dict)  # tracked quantity -> direction (default "both")

    def to_dict(self) -> dict[str, Any]:
        return {"gate": self.gate, "track": list(self.track), "tolerance": dict(self.tolerance),
                "direction": dict(self.direction)}


@dataclass(frozen=True)
class Suite:
    name: str
    title: str
    description: str
    path: str
    tier: str
    base: dict[str, Any]  # parameter -> value, before axes
    axes: tuple[Axis, ...]
    seeds: tuple[int, ...]
    claims: tuple[Claim, ...]
    faq_sections: tuple[str, ...] = field(default_factory=tuple)
    checks: dict[str, ClaimCheck] = field(default_factory=dict)  # claim id -> its check table, when given
    resources: dict[str, float] = field(default_factory=dict)  # [resources]: cpus/gpus per trial, when given
    limits: dict[str, int] = field(default_factory=dict)  # [limits]: the limits this suite raises (limits.py)
    code: str = ""  # the workload's code fingerprint when loaded (registry.fingerprint): in every trial id
    workload: dict[str, Any] = field(default_factory=dict)  # another workload: name, level, task, package, version
    adapt: dict[str, Any] = field(default_factory=dict)  # [adapt]: {"extend": {axis: n}, "budget": n}

    @property
    def task(self) -> str:
        """Another workload's task ("" for the built-ins, whose task is each dataset's)."""
        return self.workload.get("task", "")

    def limit_table(self) -> dict[str, int]:
        """Every limit that applies to this suite: the defaults of limits.py, raised by its [limits]."""
        return {**lim.DEFAULTS, **self.limits}

    def axis(self, name: str) -> Axis:
        return next(a for a in self.axes if a.name == name)

    def design(self) -> Design:
        from claimbench.claims import Design

        by_role = {r: tuple(a.name for a in self.axes if a.role == r) for r in ROLES}
        swept = {k for a in self.axes for k in a.params}
        if swept & BUDGET_KEYS:
            swept |= BUDGET_KEYS
        constants = {k: v for k, v in self.base.items() if k not in swept}
        fixed_swept = tuple(a.name for a in self.axes if a.role == "fixed" and len(a.values) > 1)
        for a in self.axes:
            if a.role == "fixed" and len(a.values) == 1:
                constants[a.name] = level_label(a.values[0])
        tables = {a.name: tuple(sorted(a.params)) for a in self.axes if a.is_table}
        return Design(scientific=by_role["scientific"], nuisance=by_role["nuisance"],
                      fixed=fixed_swept, constants=constants, tables=tables)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "title": self.title, "description": self.description,
            "path": self.path, "tier": self.tier, "base": self.base,
            "axes": [{"name": a.name, "role": a.role, "values": list(a.values)} for a in self.axes],
            "seeds": list(self.seeds), "faq_sections": list(self.faq_sections),
            "claims": [c.__dict__ for c in self.claims],
            "checks": {k: c.to_dict() for k, c in self.checks.items()},
            "resources": dict(self.resources), "limits": dict(self.limits),
            "code": self.code, "workload": dict(self.workload), "adapt": dict(self.adapt),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Suite":
        from claimbench.claims import Claim

        return cls(
            name=d["name"], title=d["title"], description=d["description"], path=d["path"],
            tier=d["tier"], base=d["base"],
            axes=tuple(Axis(a["name"], a["role"], tuple(a["values"])) for a in d["axes"]),
            seeds=tuple(d["seeds"]), faq_sections=tuple(d.get("faq_sections", ())),
            claims=tuple(Claim(**c) for c in d["claims"]),
            checks={k: ClaimCheck(c["gate"], tuple(c["track"]), c["tolerance"], c["direction"])
                    for k, c in d.get("checks", {}).items()},
            resources=dict(d.get("resources", {})), limits=dict(d.get("limits", {})),
            code=d.get("code", ""), workload=dict(d.get("workload", {})), adapt=dict(d.get("adapt", {})),
        )


# ---------------------------------------------------------------- loading

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


@dataclass(frozen=True)
class Group:
    """A named list of suites run together into one run dir and one report (e.g. ``faq``)."""

    name: str
    title: str
    description: str
    suites: tuple[str, ...]
    path: str


#: The most bytes a suite or group file may have: TOML is parsed whole, before any limit applies.
MAX_FILE_BYTES = 4 * 2**20


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file as a dict; every way it can fail to parse is one ``SuiteError`` line."""
    from claimbench.store import Unreadable, read_bounded

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
    v = _Validator(str(path))
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


def parse_suite(raw: dict[str, Any], path: str, tier: str = "default", seeds: int | None = None) -> Suite:
    if not isinstance(raw, dict):
        raise SuiteError(f"a suite must be a table, got {type(raw).__name__}", where=path, fix="write a suite file")
    limits = lim.parse_limits(raw.get("limits", {}), path)  # first: every size below is checked against them
    v = _Validator(path, limits)
    v.keys(raw, TOP_KEYS, "")
    workload = _workload(v, v.table(raw, "workload"))
    v.workload = workload
    meta = v.table(raw, "suite", required=True)
    v.keys(meta, SUITE_KEYS, "suite")
    name = check_name(v.string(meta, "name", "suite", required=True), f"{path}: suite.name", "suite name")
    if tier not in TIERS:
        raise SuiteError(f"unknown tier {tier!r}", where=f"{path}",
                         fix=f"use one of: {', '.join(TIERS)}")
    tiers = v.table(raw, "tiers")
    for t in tiers:
        if t not in TIERS:
            raise SuiteError(f"unknown tier {t!r}", where=f"{path}: tiers.{t}", fix=f"name tiers {', '.join(TIERS)}")
        v.keys(v.table(tiers, t, where="tiers"), TIER_KEYS, f"tiers.{t}")
    override = tiers.get(tier, {})

    base: dict[str, Any] = {} if workload.builtin else {"workload": workload.name, **workload.defaults()}
    for section, allowed in SECTIONS.items():
        table = v.table(raw, section, required=section == "budget")
        keys = v.section_keys(section, allowed)
        for key in table:
            if key not in keys and key in allowed:
                v.param(key, table[key], f"{section}.{key}")  # raises: the workload does not read it
        v.keys(table, keys, section)
        for key, value in table.items():
            if section == "workload" and key == "name":
                continue
            base[key] = v.param(key, value, f"{section}.{key}")
    if "budget" in override:
        budget = v.table(override, "budget", where=f"tiers.{tier}")
        v.keys(budget, SECTIONS["budget"], f"tiers.{tier}.budget")
        base.pop("epochs", None)
        base.pop("steps", None)
        for key, value in budget.items():
            base[key] = v.param(key, value, f"tiers.{tier}.budget.{key}")
    params = v.table(override, "params", where=f"tiers.{tier}")
    for key, value in params.items():
        if not v.known(key):
            raise SuiteError(f"unknown parameter {key!r}", where=f"{path}: tiers.{tier}.params.{key}",
                             fix=f"use a parameter name: {', '.join(v.names())}")
        base[key] = v.param(key, value, f"tiers.{tier}.params.{key}")

    base_levels: dict[str, tuple] = {}
    axes = _parse_axes(v, v.table(raw, "axes"), v.table(override, "axes", where=f"tiers.{tier}"), tier, base_levels)
    if seeds is not None:  # --seeds N: a count, checked against the suite's limits like a written one
        seeds = v.seeds(seeds, "--seeds")
    else:
        seeds_raw = override.get("seeds", meta.get("seeds", 3))
        seeds = v.seeds(seeds_raw, f"tiers.{tier}.seeds" if "seeds" in override else "suite.seeds")

    budget_keys = {k for k in BUDGET_KEYS if base.get(k)}
    if len(budget_keys) != 1 and not any(a.sets_budget for a in axes):
        raise SuiteError("the budget must set exactly one of epochs and steps, as a positive integer",
                         where=f"{path}: budget", fix="write [budget] with epochs = N or steps = N")
    if workload.level == "function" and (base.get("epochs") or any("epochs" in a.params for a in axes)):
        raise SuiteError(f"workload {workload.name!r} is a training function, whose budget is steps, not epochs",
                         where=f"{path}: budget", fix="write [budget] steps = N")

    # Count the matrix before expanding it: a product of 10^9 is refused here, in microseconds.
    n_trials = math.prod(len(a.values) for a in axes) * len(seeds)
    shape = " x ".join([*(f"{len(a.values)} {a.name}" for a in axes), f"{len(seeds)} seeds"])
    lim.check_count("trials", n_trials, limits, f"{path}: axes",
                    f"the matrix has {shape} = {n_trials:.3g} trials" if n_trials >= 10**7
                    else f"the matrix has {shape} = {n_trials} trials")

    claims = tuple(_parse_claim(v, c, i, axes) for i, c in enumerate(v.array(raw, "claims")))
    seen = set()
    for c in claims:
        if c.id in seen:
            raise SuiteError(f"claim id {c.id!r} appears twice", where=f"{path}: claims", fix="give each claim its own id")
        seen.add(c.id)
    checks = {c.id: _parse_check(v, r["check"], f"claims[{i}].check")
              for i, (c, r) in enumerate(zip(claims, v.array(raw, "claims"))) if "check" in r}

    suite = Suite(
        name=name, title=v.string(meta, "title", "suite") or name,
        description=v.string(meta, "description", "suite") or "",
        path=path, tier=tier, base=base, axes=axes, seeds=seeds, claims=claims,
        faq_sections=tuple(str(s) for s in meta.get("faq_sections", [])), checks=checks,
        resources=_parse_resources(v, v.table(raw, "resources")),
        limits={k: n for k, n in limits.items() if n != lim.DEFAULTS[k]},
        code=registry.fingerprint(workload.name), workload=_workload_info(workload),
        adapt=_parse_adapt(v, v.table(raw, "adapt"), axes, base),
    )
    # Resolve every trial once now, so that a bad combination fails at load time, naming the file.
    try:
        specs = expand(suite)
    except ValueError as e:
        budget = "epochs and steps" in str(e)  # the other messages name their own fix
        raise SuiteError(f"invalid combination: {e}", where=path,
                         fix="give [budget] exactly one of epochs/steps, or sweep it in one axis" if budget else
                         "change the values named above in [workload], [train] or the axis levels") from None
    check_specs(suite, specs)
    _check_claim_columns(v, suite, specs, base_levels, v.array(raw, "claims"))
    return suite


def _workload(v: "_Validator", table: dict) -> Workload:
    """The workload [workload] names (the built-ins when it names none), from the registry."""
    name = table.get("name", registry.BUILTIN)
    if not isinstance(name, str) or not name.strip():
        raise v.fail("workload.name", f"must be the name of a registered workload, got {name!r}",
                     f'write name = "myteam.resnet"; installed: {", ".join(registry.installed())}')
    return registry.get(name, where=v.where("workload.name"))


def _workload_info(w: Workload) -> dict[str, Any]:
    """What a run dir records of another workload (the report names it); {} for the built-ins."""
    if w.builtin:
        return {}
    package, version = registry.distribution(w.name)
    return {"name": w.name, "level": w.level, "task": w.task, "package": package, "version": version,
            "params": {p.name: p.default for p in w.params}}


def _source(suite: Suite, param: str) -> str:
    """The suite key a parameter's values come from: the axis that sweeps it, else its section."""
    for a in suite.axes:
        if param in a.params:
            return f"axes.{a.name}"
    section = next((name for name, keys in SECTIONS.items() if param in keys), "params")
    return f"{section}.{param}"


def check_specs(suite: Suite, specs: list[TrialSpec], fault: str = "") -> None:
    """Every spec against its workload's size checks (``Workload.check``: for the built-ins, the dataset and
    memory limits), once per model and data shape. ``fault``: the specs are those a fault makes train (the
    error line says so)."""
    limits = suite.limit_table()
    seen = set()
    for spec in specs:
        # what a size check reads: the workload and its parameters, the data and model shape, the batch, and
        # what a model's parameter count adds per layer (BatchNorm, PReLU's slope)
        key = (spec.workload, spec.workload_params, *spec.shape_key(), spec.batch_size, spec.batchnorm,
               spec.activation)
        if key in seen:
            continue
        seen.add(key)
        check = registry.get(spec.workload).check
        if check is not None:
            check(spec, limits, lambda param: f"{fault} on {suite.path}" if fault
                  else f"{suite.path}: {_source(suite, param)}")


def _produced_columns(suite: Suite, specs: list[TrialSpec]) -> set[str]:
    """The frame columns that some trial of ``specs`` can give a value (analysis/frames.py's columns)."""
    tasks = {s.task or suite.task for s in specs}
    cols = {"trial_id", "budget", *SPEC_FIELDS, *RECORD_COLUMNS, *(a.name for a in suite.axes),
            *(k for s in specs[:1] for k in s.params)}
    needs = {  # metric -> whether a trial of these specs reports it
        "forward_latency_s": any(s.measure_latency for s in specs),
        "b_simple": any(s.measure_noise_scale for s in specs),
        "b_simple_at_target": any(s.measure_noise_scale for s in specs),
        "gap": "classification" in tasks,
    }
    for m in (*METRICS, *DERIVED):
        if m.endswith("_acc"):
            ok = "classification" in tasks
        elif m.endswith(("_mse", "_r2")):
            ok = "regression" in tasks
        elif m.startswith("range_"):
            ok = any(s.kind == "range_test" for s in specs)
        else:
            ok = needs.get(m, True)
        if ok:
            cols.add(m)
    return cols


def _level_values(suite: Suite, specs: list[TrialSpec], column: str,
                  base_levels: dict[str, tuple]) -> set[Any] | None:
    """The values ``column`` (an axis or a parameter) can have: the axis's levels in this tier or in the
    suite's base (a smaller tier may drop a level a claim names), else the trials' values; None when the
    column is neither."""
    for a in suite.axes:
        if a.name == column:
            levels = {level_label(x) for x in (*a.values, *base_levels.get(a.name, ()))}
            if a.is_table and column in SPEC_FIELDS:
                levels |= {getattr(s, column) for s in specs}
            return levels
    if column == "budget":
        return {level_label({"epochs": s.epochs} if s.epochs else {"steps": s.steps}) for s in specs}
    if column in SPEC_FIELDS:
        return {getattr(s, column) for s in specs}
    if specs and column in specs[0].params:
        return {s.params.get(column) for s in specs}
    return None


def _arms(params: dict[str, Any]) -> list[tuple[str, dict]]:
    """Every ``column = value`` table of a claim's params, with its key: where, a, b (or lists of them), num/den.where."""
    out = []
    for key in ("where", "a", "b"):
        value = params.get(key)
        if isinstance(value, dict):
            out.append((key, value))
        elif isinstance(value, list):
            out += [(f"{key}[{i}]", t) for i, t in enumerate(value) if isinstance(t, dict)]
    for side in ("num", "den"):
        if isinstance(params.get(side), dict) and isinstance(params[side].get("where"), dict):
            out.append((f"{side}.where", params[side]["where"]))
    return out


def _check_claim_columns(v: "_Validator", suite: Suite, specs: list[TrialSpec], base_levels: dict[str, tuple],
                         raw_claims: list[dict]) -> None:
    """Refuse a claim that reads a column no trial produces (``metric = "test_accuracy"``), or an arm or
    ``where`` that asks for a level no trial has: either would train everything, then find nothing.
    Only what the suite writes is checked (a kind's defaults adapt to the task)."""
    from claimbench.analysis.quantities import AXIS_OPS, parse_quantity

    produced = _produced_columns(suite, specs)
    metrics = sorted(c for c in produced if c.endswith(("_acc", "_loss", "_mse", "_r2")) or c in ("gap",))
    for i, raw in enumerate(raw_claims):
        params = raw.get("params", {})
        where = f"claims[{i}].params"
        for key in ("metric", "select"):
            col = params.get(key)
            if isinstance(col, str) and col not in produced:
                raise v.fail(f"{where}.{key}", f"no trial of this suite produces column {col!r}",
                             f"use one of: {', '.join(metrics)}")
        quantities = [("quantity", params.get("quantity"))]
        quantities += [(f"{s}.quantity", params[s].get("quantity")) for s in ("num", "den")
                       if isinstance(params.get(s), dict)]
        for key, text in quantities:
            if not isinstance(text, str):
                continue
            try:
                q = parse_quantity(text)
            except ValueError:
                continue  # the claim's own check_params reports the grammar
            if q.op != "rate" and q.op not in AXIS_OPS and q.column not in produced:
                raise v.fail(f"{where}.{key}", f"quantity {text!r} reads column {q.column!r}, which no trial "
                             f"of this suite produces", f"use one of: {', '.join(metrics)}, or a spec column")
        for key, table in _arms(params):
            for col, value in table.items():
                have = _level_values(suite, specs, col, base_levels)
                if have is None:
                    continue  # check_params names unknown columns
                wanted = value if isinstance(value, list) else [value]
                for x in wanted:
                    if not _in(x, have):
                        shown = ", ".join(sorted(map(str, have)))[:200]
                        raise v.fail(f"{where}.{key}.{col}", f"{col} = {x!r} is not a level any trial has "
                                     f"(levels: {shown})", f"use one of those levels, or add {x!r} to the axis")


def _in(x: Any, have: set[Any]) -> bool:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return x in have
    return any(isinstance(h, (int, float)) and not isinstance(h, bool) and math.isclose(x, h, rel_tol=1e-9)
               for h in have)


def _parse_adapt(v: "_Validator", table: dict, axes: tuple[Axis, ...], base: dict[str, Any]) -> dict[str, Any]:
    """[adapt]: which nuisance axes may extend beyond an edge (and by how many values), and how many times the
    budget may double. Data, fixed before the run; the loop (claimbench/loop.py) applies it."""
    v.keys(table, ADAPT_KEYS, "adapt")
    out: dict[str, Any] = {}
    extend = v.table(table, "extend", where="adapt")
    for name, n in extend.items():
        where = f"{v.path}: adapt.extend.{name}"
        axis = next((a for a in axes if a.name == name), None)
        if axis is None or axis.role != "nuisance" or axis.is_table:
            raise SuiteError(f"{name!r} is not a nuisance axis with plain values", where=where,
                             fix="extend only a nuisance axis of the suite, e.g. extend = { lr = 2 }")
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in axis.values):
            raise SuiteError(f"axis {name!r} needs numeric values to extend", where=where,
                             fix="extend an axis of numbers (a tier's grid of fewer than 3 values never extends)")
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_EXTEND:
            raise SuiteError(f"extend must be an integer from 1 to {MAX_EXTEND}, got {n!r}", where=where,
                             fix=f"write e.g. extend = {{ {name} = 2 }}")
        out.setdefault("extend", {})[name] = n
    if "budget" in table:
        n = table["budget"]
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 2:
            raise SuiteError(f"budget must be 0, 1 or 2 doublings, got {n!r}", where=f"{v.path}: adapt.budget",
                             fix="write budget = 1 (double the budget once when the comparison is still moving)")
        if n and not any(base.get(k) for k in BUDGET_KEYS):
            raise SuiteError("a budget swept by an axis cannot extend", where=f"{v.path}: adapt.budget",
                             fix="set [budget] epochs or steps, or remove adapt.budget")
        if n:
            out["budget"] = n
    return out


def _parse_resources(v: "_Validator", table: dict) -> dict[str, float]:
    """[resources]: the Ray slot of one trial. Not TrialSpec fields: changing them reruns nothing."""
    v.keys(table, RESOURCE_KEYS, "resources")
    out = {}
    for key, value in table.items():
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
            and (value > 0 if key == "cpus_per_trial" else value >= 0)
        if not ok:
            rule = "> 0" if key == "cpus_per_trial" else ">= 0"
            raise v.fail(f"resources.{key}", f"{key} must be a number {rule}, got {value!r}",
                         f"write {key} = 1 (fractions such as 0.5 are allowed)")
        out[key] = float(value)
    return out


def _parse_axes(v: "_Validator", raw_axes: dict, tier_axes: dict, tier: str,
                base_levels: dict[str, tuple] | None = None) -> tuple[Axis, ...]:
    """The axes at ``tier``; ``base_levels`` (when given) receives each axis's levels before the tier."""
    axes = []
    for name, spec in raw_axes.items():
        where = f"axes.{name}"
        spec = v.table(raw_axes, name, where="axes")
        v.keys(spec, AXIS_KEYS, where)
        role = spec.get("role")
        if role not in ROLES:
            raise SuiteError(f"role must be one of {', '.join(ROLES)}, got {role!r}", where=f"{v.path}: {where}.role",
                             fix='set role = "scientific", "nuisance" or "fixed"')
        values = v.axis_values(name, spec, where)  # the base is validated even where a tier replaces it
        if base_levels is not None:
            base_levels[name] = values
        if name in tier_axes:
            values = v.axis_values(name, tier_axes[name], f"tiers.{tier}.axes.{name}")
        axes.append(Axis(name, role, values))
    for name in tier_axes:
        if name not in raw_axes:
            raise SuiteError(f"tier overrides axis {name!r}, which the suite does not define",
                             where=f"{v.path}: tiers.{tier}.axes.{name}", fix=f"define [axes.{name}] or remove it")
    return tuple(axes)


def _parse_claim(v: "_Validator", raw: Any, i: int, axes: tuple[Axis, ...]) -> Claim:
    from claimbench.claims import KINDS, Claim, check_params
    from claimbench.claims.base import ParamError

    where = f"claims[{i}]"
    if not isinstance(raw, dict):
        raise SuiteError("each claim must be a table", where=f"{v.path}: {where}", fix="write [[claims]] tables")
    v.keys(raw, CLAIM_KEYS, where)
    cid = check_name(v.string(raw, "id", where, required=True), f"{v.path}: {where}.id", "claim id")
    kind_name = v.string(raw, "kind", where, required=True)
    if kind_name not in KINDS:
        raise SuiteError(f"unknown claim kind {kind_name!r}", where=f"{v.path}: {where}.kind",
                         fix=f"use one of: {', '.join(sorted(KINDS))}")
    kind = KINDS[kind_name]
    try:  # every value against its kind's one declaration (claims/base.py Param): type, finite, range, order
        params = kind.resolve_params(v.table(raw, "params", where=where))
    except ParamError as e:
        declared = kind.params[e.key]
        raise SuiteError(str(e), where=f"{v.path}: {where}.params.{e.key}",
                         fix=_param_fix(e.key, declared)) from None
    except (KeyError, TypeError) as e:
        raise SuiteError(str(e).strip("'\""), where=f"{v.path}: {where}.params",
                         fix=f"parameters of {kind_name}: {', '.join(sorted(kind.params))}") from None
    axis_names = {a.name for a in axes}
    for p in kind.axis_params:
        if params.get(p) not in axis_names:
            raise SuiteError(f"claim parameter {p}={params.get(p)!r} is not an axis of this suite",
                             where=f"{v.path}: {where}.params.{p}", fix=f"use one of: {', '.join(sorted(axis_names))}")
    try:  # quantity grammar, choices, and where/arm/tune keys that must name a parameter or an axis
        check_params(kind_name, params, axis_names | set(SPEC_FIELDS) | {p.name for p in v.workload.params})
    except ValueError as e:
        raise SuiteError(str(e), where=f"{v.path}: {where}.params",
                         fix="see the claim kind's docstring in claimbench/claims/ for its parameters") from None
    section = raw.get("faq_section", "")
    if not isinstance(section, (str, int)) or isinstance(section, bool):
        raise SuiteError("faq_section must be a string or an integer", where=f"{v.path}: {where}.faq_section",
                         fix='write faq_section = 6 or "6"')
    return Claim(id=cid, kind=kind_name, faq_section=str(section),
                 paraphrase=v.string(raw, "paraphrase", where) or "", params=params)


def _param_fix(key: str, p: Any) -> str:
    """The fix of a claim parameter that breaks its declaration: what the declaration allows."""
    if p.metric:
        return f"set {key} to a metric such as val_acc (higher is better) or val_loss (lower is better)"
    if p.choices:
        return f"set {key} to one of: {', '.join(map(str, p.choices))}"
    rules = [f"{word} {b:g}" for b, word in ((p.ge, ">="), (p.gt, ">"), (p.le, "<="), (p.lt, "<")) if b is not None]
    if p.at_most:
        rules.append(f"<= {p.at_most}")
    types = p.type if isinstance(p.type, tuple) else (p.type,)
    if not {int, float} & set(types):
        return f"write {key} as its kind declares it: {p.doc}"
    what = "a number (inf allowed, nan never)" if p.infinite else "a finite number"
    return f"set {key} to {what}" + (f" {' and '.join(rules)}" if rules else "")


def _parse_check(v: "_Validator", raw: Any, where: str) -> ClaimCheck:
    """A claim's ``check = { gate, track, tolerance, direction }`` table (see README, `claimbench check`)."""
    example = 'check = { track = ["effect"], tolerance = 0.02 }'
    if not isinstance(raw, dict):
        raise v.fail(where, f"must be a table, got {raw!r}", f"write {example}")
    v.keys(raw, CHECK_KEYS, where)
    gate = raw.get("gate", "supported")
    if gate not in GATES:
        raise v.fail(f"{where}.gate", f"unknown gate {gate!r}", f"use one of: {', '.join(GATES)}")
    track = raw.get("track", [])
    if not isinstance(track, list) or any(t not in TRACKABLE for t in track) or len(set(track)) != len(track):
        raise v.fail(f"{where}.track", f"must list distinct quantities from {', '.join(TRACKABLE)}, got {track!r}",
                     'write track = ["effect"] or track = ["effect", "test_acc"]')
    raw_dir = raw.get("direction", "both")
    directions = raw_dir if isinstance(raw_dir, dict) else {t: raw_dir for t in track}
    for t, d in directions.items():
        if t not in track or d not in DIRECTIONS:
            key = f"{where}.direction" + (f".{t}" if isinstance(raw_dir, dict) else "")
            raise v.fail(key, f"must be one of {', '.join(DIRECTIONS)} for a tracked quantity, got {d!r}",
                         'write direction = "both" or direction = { test_acc = "decrease" }')
    tol = raw.get("tolerance")

    def number(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x >= 0

    if tol is None:
        if track:
            raise v.fail(f"{where}.tolerance", "a tracked quantity needs a tolerance",
                         "add tolerance = 0.02 (one for all) or tolerance = { effect = 0.02 }")
        tolerance: dict[str, float] = {}
    elif number(tol):
        tolerance = {t: float(tol) for t in track}
    elif isinstance(tol, dict):
        for t, x in tol.items():
            if t not in track or not number(x):
                raise v.fail(f"{where}.tolerance.{t}", f"must be a number >= 0 for a tracked quantity, got {x!r}",
                             f"give tolerances only for {', '.join(track) or 'tracked quantities'}")
        missing = [t for t in track if t not in tol]
        if missing:
            raise v.fail(f"{where}.tolerance", f"no tolerance for {', '.join(missing)}",
                         f"add {missing[0]} = <number> to the tolerance table")
        tolerance = {t: float(tol[t]) for t in track}
    else:
        raise v.fail(f"{where}.tolerance", f"must be a number >= 0 or a table of them, got {tol!r}",
                     "write tolerance = 0.02 or tolerance = { effect = 0.02 }")
    return ClaimCheck(gate=gate, track=tuple(track), tolerance=tolerance,
                      direction={t: directions.get(t, "both") for t in track})


class _Validator:
    """Type and range checks that raise SuiteError naming file and key."""

    def __init__(self, path: str, limits: dict[str, int] | None = None):
        self.path = path
        self.limits = limits or dict(lim.DEFAULTS)
        self.workload: Workload = registry.get(registry.BUILTIN)

    def usable(self, key: str) -> bool:
        """Whether the workload reads built-in setting ``key`` (every one for the built-ins)."""
        w = self.workload
        if w.builtin or key == "data_seed":  # every workload's data take their seed
            return True
        if key in MODEL_FIELDS or key in LOOP_FIELDS and w.level == "function":
            return key in w.uses
        if w.level == "function":
            return key in POLICY_FIELDS or key in BUDGET_KEYS
        return key not in ("dataset", "model")

    def known(self, key: str) -> bool:
        """Whether ``key`` is a parameter a suite may set: a usable spec field, or the workload's own."""
        return self.workload.param(key) is not None or (key in SPEC_FIELDS and key not in INTERNAL)

    def names(self) -> list[str]:
        return [p.name for p in self.workload.params] + [k for k in SPEC_FIELDS if k not in INTERNAL and self.usable(k)]

    def section_keys(self, section: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
        """The keys [section] accepts: for another workload, its parameters and the settings it reads."""
        if self.workload.builtin:
            return allowed
        keys = tuple(k for k in allowed if k == "name" or self.usable(k))
        return keys + tuple(p.name for p in self.workload.params) if section == "workload" else keys

    def where(self, key: str) -> str:
        return f"{self.path}: {key}" if key else self.path

    def fail(self, key: str, message: str, fix: str) -> SuiteError:
        return SuiteError(message, where=f"{self.path}: {key}" if key else self.path, fix=fix)

    def keys(self, table: dict, allowed: tuple[str, ...], where: str) -> None:
        for key in table:
            if key not in allowed:
                full = f"{where}.{key}" if where else key
                raise self.fail(full, f"unknown key {key!r}", f"use one of: {', '.join(allowed)}")

    def table(self, parent: dict, key: str, *, required: bool = False, where: str = "") -> dict:
        full = f"{where}.{key}" if where else key
        if key not in parent:
            if required:
                raise self.fail(full, "missing table", f"add a [{full}] table")
            return {}
        value = parent[key]
        if not isinstance(value, dict):
            raise self.fail(full, f"must be a table, got {type(value).__name__} {value!r}", f"write [{full}] with key = value lines")
        return value

    def array(self, parent: dict, key: str) -> list:
        value = parent.get(key, [])
        if not isinstance(value, list):
            raise self.fail(key, f"must be an array of tables, got {type(value).__name__}", f"write [[{key}]] tables")
        return value

    def string(self, table: dict, key: str, where: str, required: bool = False) -> str | None:
        if key not in table:
            if required:
                raise self.fail(f"{where}.{key}", "missing key", f'add {key} = "..."')
            return None
        value = table[key]
        if not isinstance(value, str) or (required and not value.strip()):
            raise self.fail(f"{where}.{key}", f"must be a non-empty string, got {value!r}", f'write {key} = "..."')
        return value

    def seeds(self, value: Any, where: str) -> tuple[int, ...]:
        if isinstance(value, (int, list)) and not isinstance(value, bool):
            lim.check_count("seeds", value if isinstance(value, int) else len(value), self.limits, self.where(where))
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return tuple(range(value))
        if isinstance(value, list) and value and all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**32 for s in value):
            if len(set(value)) != len(value):
                raise self.fail(where, f"seeds repeat: {value}", "list each seed once")
            return tuple(value)
        raise self.fail(where, f"seeds must be a positive count or a non-empty list of integers from 0 to 2^32-1, "
                        f"got {value!r}",
                        "write seeds = 3 or seeds = [0, 1, 2]")

    def param(self, key: str, value: Any, where: str) -> Any:
        declared = self.workload.param(key)
        if declared is not None:
            try:
                return declared.check(value)
            except ValueError as e:
                raise self.fail(where, f"{e} (a parameter of workload {self.workload.name!r})",
                                f"set {key} to a value {declared.rule()}" if not declared.choices
                                else f"use one of: {', '.join(map(str, declared.choices))}") from None
        if key not in SPEC_FIELDS or key in INTERNAL:
            fix = "see claimbench/suite.schema.json for the parameter names" if self.workload.builtin \
                else f"use one of: {', '.join(self.names())}"
            raise self.fail(where, f"unknown parameter {key!r}", fix)
        if not self.usable(key):
            raise self.fail(where, f"workload {self.workload.name!r} ({self.workload.level}) does not read {key}",
                            f"use its parameters or the settings it reads: {', '.join(self.names())}")
        want = SPEC_FIELDS[key]
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise self.fail(where, f"{key} must be {want.__name__}, got {type(value).__name__} {value!r}",
                            f"write {key} as a {'number' if want in (int, float) else want.__name__}")
        if key in CHOICES and value not in CHOICES[key]:
            raise self.fail(where, f"unknown {key} {value!r}", f"use one of: {', '.join(CHOICES[key])}")
        if key in RANGES:
            lo, hi, lo_inc, hi_inc = RANGES[key]
            bad = (isinstance(value, float) and not math.isfinite(value)) \
                or (lo is not None and (value < lo or (value == lo and not lo_inc))) \
                or (hi is not None and (value > hi or (value == hi and not hi_inc)))
            if bad:
                rule = _range_text(lo, hi, lo_inc, hi_inc)
                raise self.fail(where, f"{key} must be {rule}, got {value!r}", f"set {key} to a value {rule}")
        check_param(key, value, self.limits, self.where(where))
        return value

    def axis_values(self, name: str, spec: Any, where: str) -> tuple[Any, ...]:
        if isinstance(spec, list):  # a tier override: the values themselves
            spec = {"values": spec}
        if not isinstance(spec, dict):
            raise self.fail(where, f"must be a list of values or a table, got {spec!r}", "write values = [...]")
        if ("values" in spec) == ("logspace" in spec):
            raise self.fail(where, "an axis needs exactly one of values and logspace", "write values = [...] or logspace = {start, stop, num}")
        if "logspace" in spec:
            ls = spec["logspace"]
            ok = isinstance(ls, dict) and set(ls) == {"start", "stop", "num"} \
                and all(isinstance(ls[k], (int, float)) and not isinstance(ls[k], bool) for k in ls) \
                and all(math.isfinite(ls[k]) for k in ls) \
                and ls["start"] > 0 and ls["stop"] > 0 and isinstance(ls["num"], int) and ls["num"] >= 1
            if not ok:
                raise self.fail(f"{where}.logspace", f"must be {{start > 0, stop > 0, num >= 1}}, finite, got {ls!r}",
                                "write logspace = {start = 1e-3, stop = 1.0, num = 7}")
            n = ls["num"]
            lim.check_count("levels", n, self.limits, self.where(f"{where}.logspace.num"))
            a, b = math.log10(ls["start"]), math.log10(ls["stop"])
            raw_values = [float(f"{10 ** (a + (b - a) * i / max(n - 1, 1)):.6g}") for i in range(n)]
        else:
            raw_values = spec["values"]
        if not isinstance(raw_values, list) or not raw_values:
            raise self.fail(f"{where}.values", f"an axis needs at least one value, got {raw_values!r}",
                            "list one or more values, e.g. values = [8, 32]")
        lim.check_count("levels", len(raw_values), self.limits, self.where(f"{where}.values"))
        out = []
        for i, value in enumerate(raw_values):
            vw = f"{where}.values[{i}]"
            if isinstance(value, dict):
                if not value:
                    raise self.fail(vw, "an empty table sets nothing", "write {param = value, ...}")
                out.append({k: self.param(k, x, f"{vw}.{k}") for k, x in value.items()})
            else:
                if not self.known(name):
                    raise self.fail(vw, f"axis {name!r} is not a parameter, so its values must be tables",
                                    f"rename the axis to a parameter name, or write values as {{param = value}}")
                out.append(self.param(name, value, vw))
        labels = [json.dumps(x, sort_keys=True) for x in out]
        if len(set(labels)) != len(labels):
            raise self.fail(f"{where}.values", f"values repeat: {raw_values}", "list each value once")
        return tuple(out)


def _range_text(lo, hi, lo_inc, hi_inc) -> str:
    parts = []
    if lo is not None:
        parts.append(f"{'>=' if lo_inc else '>'} {lo}")
    if hi is not None:
        parts.append(f"{'<=' if hi_inc else '<'} {hi}")
    return " and ".join(parts)


# ---------------------------------------------------------------- expansion

def expand(suite: Suite) -> list[TrialSpec]:
    """The cartesian product of the axes and the seeds, as TrialSpecs (seed innermost).

    Settings that have no effect on a trial are reset to their defaults first
    (``canonical``), so that combinations that train the same thing are one
    trial, run once (e.g. a range-test trial for every value of an lr axis).

    The trials a timing claim compares (``TIMED_KINDS``: its arms ``a`` and ``b``, within its
    ``where``) are ``exclusive``: timed alone (runner/packs.py), unless the suite sets ``exclusive``.
    """
    timed = [] if "exclusive" in suite.base else [
        {**(c.params.get("where") or {}), **arm} for c in suite.claims if c.kind in TIMED_KINDS
        for side in ("a", "b") for arm in (c.params[side] if isinstance(c.params[side], list) else [c.params[side]])]
    specs, seen = [], set()
    for levels in itertools.product(*(a.values for a in suite.axes)):
        params = dict(suite.base)
        for axis, value in zip(suite.axes, levels):
            level = value if isinstance(value, dict) else {axis.name: value}
            if set(level) & BUDGET_KEYS:  # a level that sets the budget replaces it whole
                for key in BUDGET_KEYS:
                    params.pop(key, None)
            params.update(level)
        labels = {axis.name: level_label(value) for axis, value in zip(suite.axes, levels)}
        if any(_selects(table, {**_DEFAULTS, **params, **labels}) for table in timed):
            params["exclusive"] = True
        resolved = _resolve_workload(canonical(params), suite.code)
        for seed in suite.seeds:
            spec = TrialSpec(seed=seed, **resolved)
            if spec.trial_id not in seen:
                seen.add(spec.trial_id)
                specs.append(spec)
    return specs


def _resolve_workload(params: dict[str, Any], code: str) -> dict[str, Any]:
    """TrialSpec keyword arguments: the spec fields, another workload's parameters as canonical JSON
    (``workload_params``; dataset and model "", since the data and model are the workload's own), and the
    code fingerprint."""
    out = {k: v for k, v in params.items() if k in SPEC_FIELDS}
    own = {k: v for k, v in params.items() if k not in SPEC_FIELDS}
    if out.get("workload", registry.BUILTIN) != registry.BUILTIN:
        out["dataset"], out["model"] = "", ""
        out["workload_params"] = json.dumps(own, sort_keys=True, separators=(",", ":")) if own else ""
    return {**out, "code": code}


_DEFAULTS = TrialSpec(steps=1).to_dict()
#: Claim kinds whose statistic is a timing: the trials they compare are timed alone (``expand``).
TIMED_KINDS = ("timing_ratio",)


def _selects(table: dict[str, Any], values: dict[str, Any]) -> bool:
    """Whether a trial with these parameter values and axis labels is in a claim's ``where`` table
    (a value, or a list of values, per key; as analysis.quantities.restrict reads it)."""
    return all(values.get(k) in (v if isinstance(v, (list, tuple)) else [v]) for k, v in table.items())


def canonical(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with the settings the trial ignores reset to their defaults.

    A range-test trial picks its own LR (``lr`` is ignored); Nesterov needs
    momentum; dropout placement and kind mean nothing without dropout.
    """
    out = {k: v for k, v in params.items() if k != "seed"}
    if out.get("kind") == "range_test":
        out["lr"] = _DEFAULTS["lr"]
    if not out.get("momentum"):
        out["nesterov"] = False
    if not out.get("dropout"):
        out["dropout_position"], out["dropout_kind"] = _DEFAULTS["dropout_position"], _DEFAULTS["dropout_kind"]
    return out


# ---------------------------------------------------------------- JSON schema

def json_schema(workloads: tuple[Workload, ...] | list[Workload] = ()) -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) for suite files, for editors (e.g. taplo, Even Better TOML).

    ``workloads``: other workloads whose [workload] sections (name, declared parameters and the settings
    they read) it includes too (``claimbench schema`` passes every installed one); the shipped file
    claimbench/suite.schema.json has the built-ins alone."""
    from claimbench.claims import KINDS

    def param_schema(name: str) -> dict[str, Any]:
        t = SPEC_FIELDS[name]
        s: dict[str, Any] = {"bool": {"type": "boolean"}, "int": {"type": "integer"},
                             "float": {"type": "number"}, "str": {"type": "string"}}[t.__name__]
        if name in CHOICES:
            s["enum"] = list(CHOICES[name])
        if name in RANGES:
            lo, hi, lo_inc, hi_inc = RANGES[name]
            if lo is not None:
                s["minimum" if lo_inc else "exclusiveMinimum"] = lo
            if hi is not None:
                s["maximum" if hi_inc else "exclusiveMaximum"] = hi
        return s

    def own_schema(p) -> dict[str, Any]:
        s: dict[str, Any] = {bool: {"type": "boolean"}, int: {"type": "integer"}, float: {"type": "number"},
                             str: {"type": "string"}}[p.type]
        if p.choices:
            s["enum"] = list(p.choices)
        if p.low is not None:
            s["minimum"] = p.low
        if p.high is not None:
            s["maximum"] = p.high
        if p.help:
            s["description"] = p.help
        return s

    params = {k: param_schema(k) for k in SPEC_FIELDS if k not in INTERNAL}
    params["name"] = {"type": "string", "minLength": 1,
                      "description": "a registered workload (claimbench list --workloads); default: claimbench"}
    for w in workloads:
        for p in w.params:
            params[p.name] = own_schema(p)
    name = {"type": "string", "pattern": f"^{NAME_PATTERN.pattern}$", "maxLength": NAME_MAX}

    def section(keys):
        return {"type": "object", "additionalProperties": False, "properties": {k: params[k] for k in keys}}

    def workload_section(w: Workload) -> dict[str, Any]:
        v = _Validator("schema")
        v.workload = w
        keys = v.section_keys("workload", SECTIONS["workload"])
        out = section(keys)
        out["properties"]["name"] = {"const": w.name}
        out["required"] = ["name"]
        return out

    workload_schema = section(SECTIONS["workload"])
    if workloads:
        workload_schema = {"anyOf": [workload_schema, *(workload_section(w) for w in workloads if not w.builtin)]}

    seeds = {"oneOf": [{"type": "integer", "minimum": 1},
                       {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1}]}
    settable = {k: x for k, x in params.items() if k != "name"}
    value_table = {"type": "object", "minProperties": 1, "additionalProperties": False, "properties": settable}
    values = {"type": "array", "minItems": 1,
              "items": {"anyOf": [{"type": ["number", "string", "boolean"]}, value_table]}}
    logspace = {"type": "object", "additionalProperties": False, "required": ["start", "stop", "num"],
                "properties": {"start": {"type": "number", "exclusiveMinimum": 0},
                               "stop": {"type": "number", "exclusiveMinimum": 0},
                               "num": {"type": "integer", "minimum": 1}}}
    axis = {"type": "object", "additionalProperties": False, "required": ["role"],
            "properties": {"role": {"enum": list(ROLES)}, "values": values, "logspace": logspace}}
    tier = {"type": "object", "additionalProperties": False, "properties": {
        "seeds": seeds, "budget": section(SECTIONS["budget"]), "params": section(tuple(settable)),
        "axes": {"type": "object", "additionalProperties": {"anyOf": [values, {"type": "object", "properties": {"values": values, "logspace": logspace}, "additionalProperties": False}]}}}}
    claim = {"type": "object", "additionalProperties": False, "required": ["id", "kind"], "properties": {
        "id": name, "kind": {"enum": sorted(KINDS)},
        "faq_section": {"type": ["string", "integer"]}, "paraphrase": {"type": "string"},
        "params": {"type": "object"},
        "check": {"type": "object", "additionalProperties": False, "properties": {
            "gate": {"enum": list(GATES)},
            "direction": {"anyOf": [{"enum": list(DIRECTIONS)},
                                    {"type": "object", "additionalProperties": {"enum": list(DIRECTIONS)}}]},
            "track": {"type": "array", "uniqueItems": True, "items": {"enum": list(TRACKABLE)}},
            "tolerance": {"anyOf": [{"type": "number", "minimum": 0},
                                    {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}}]}}}}}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://claimbench.dev/suite.schema.json",
        "title": "claimbench suite",
        "type": "object", "additionalProperties": False, "required": ["suite", "budget"],
        "properties": {
            "suite": {"type": "object", "additionalProperties": False, "required": ["name"], "properties": {
                "name": name, "title": {"type": "string"},
                "description": {"type": "string"}, "seeds": seeds,
                "faq_sections": {"type": "array", "items": {"type": ["string", "integer"]}}}},
            "workload": workload_schema, "train": section(SECTIONS["train"]),
            "budget": section(SECTIONS["budget"]),
            "axes": {"type": "object", "additionalProperties": axis},
            "tiers": {"type": "object", "additionalProperties": False, "properties": {t: tier for t in TIERS}},
            "claims": {"type": "array", "items": claim},
            "resources": {"type": "object", "additionalProperties": False, "properties": {
                "cpus_per_trial": {"type": "number", "exclusiveMinimum": 0},
                "gpus_per_trial": {"type": "number", "minimum": 0}}},
            "limits": {"type": "object", "additionalProperties": False, "properties": {
                k: {"type": "integer", "minimum": 1, "maximum": x.ceiling, "description": x.what}
                for k, x in lim.LIMITS.items()}},
            "adapt": {"type": "object", "additionalProperties": False,
                      "description": "adaptive rules the experimenter loop applies (claimbench/loop.py)",
                      "properties": {
                          "extend": {"type": "object", "description": "nuisance axis -> values it may gain "
                                     "beyond each edge where a claim is edge-limited",
                                     "additionalProperties": {"type": "integer", "minimum": 1,
                                                              "maximum": MAX_EXTEND}},
                          "budget": {"type": "integer", "minimum": 0, "maximum": 2,
                                     "description": "times the budget may double where a comparison is "
                                                    "budget-limited"}}},
        },
    }
