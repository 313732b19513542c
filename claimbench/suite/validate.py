"""Validating a suite table: every key, type, range and limit, the workload's parameters, the claims' parameters
and the columns they read, checked before anything runs; each problem one ``SuiteError`` naming file and key."""

from __future__ import annotations

import json
import math
from typing import Any

from claimbench import limits as lim
from claimbench.analysis.frames import DERIVED, METRICS, RECORD_COLUMNS
from claimbench.analysis.quantities import AXIS_OPS, parse_quantity
from claimbench.claims import KINDS, Claim, check_params
from claimbench.claims.base import ParamError
from claimbench.errors import SuiteError
from claimbench.paths import check_name
from claimbench.suite.expansion import expand
from claimbench.suite.model import (ADAPT_KEYS, AXIS_KEYS, BUDGET_KEYS, CHECK_KEYS, CLAIM_KEYS, DIRECTIONS, GATES,
                                    INTERNAL, MAX_EXTEND, RESOURCE_KEYS, ROLES, SECTIONS, SUITE_KEYS, TIER_KEYS,
                                    TIERS, TOP_KEYS, TRACKABLE, Axis, ClaimCheck, Suite)
from claimbench.runner.faults import ENV as FAULTS_ENV
from claimbench.runner.faults import Fault, corrupted
from claimbench.trial import level_label
from claimbench.workloads.builtin import CHOICES, RANGES, SPEC_FIELDS, TrialSpec
from claimbench.workloads import registry
from claimbench.workloads.settings import PARAM_LIMITS, check_param
from claimbench.workloads.spec import Workload


def parse_suite(raw: dict[str, Any], path: str, tier: str = "default", seeds: int | None = None) -> Suite:
    if not isinstance(raw, dict):
        raise SuiteError(f"a suite must be a table, got {type(raw).__name__}", where=path, fix="write a suite file")
    limits = lim.parse_limits(raw.get("limits", {}), path)  # first: every size below is checked against them
    v = Validator(path, limits)
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

    # Count the matrix before expanding it: a product of 10^9 is refused here, before a single trial is built.
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


def _workload(v: "Validator", table: dict) -> Workload:
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


def check_fault_limits(faults: tuple[Fault, ...], suite: Suite) -> None:
    """Refuse faults whose ``corrupt`` entries make a trial of ``suite`` exceed a limit (limits.py): the
    same checks, and the same one line, as a suite that asked for those values itself."""
    if not any(f.kind == "corrupt" for f in faults):
        return
    table = suite.limit_table()
    trained = []
    for spec in expand(suite):
        bad = corrupted(faults, spec)
        for key in PARAM_LIMITS:
            check_param(key, getattr(bad, key), table, f"{FAULTS_ENV} on {suite.path}")
        trained.append(bad)
    check_specs(suite, trained, fault=FAULTS_ENV)

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
            ok = bool({"classification", "lm"} & tasks)
        elif m.endswith("_bpb"):
            ok = "lm" in tasks
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


def _check_claim_columns(v: "Validator", suite: Suite, specs: list[TrialSpec], base_levels: dict[str, tuple],
                         raw_claims: list[dict]) -> None:
    """Refuse a claim that reads a column no trial produces (``metric = "test_accuracy"``), or an arm or
    ``where`` that asks for a level no trial has: either would train everything, then find nothing.
    Only what the suite writes is checked (a kind's defaults adapt to the task)."""
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


def _parse_adapt(v: "Validator", table: dict, axes: tuple[Axis, ...], base: dict[str, Any]) -> dict[str, Any]:
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
    return out | _parse_compute(v, table)


def _parse_compute(v: "Validator", table: dict) -> dict[str, Any]:
    """[adapt]'s compute rules (looks, futility, futility_from, prune, grow, halve): data, fixed before the run; the
    loop's defaults (``model.LOOKS`` ...) apply to the keys not given."""
    out: dict[str, Any] = {}
    if "looks" in table:
        looks = table["looks"]
        ok = isinstance(looks, list) and all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in looks) \
            and looks == sorted(set(looks)) and len(looks) <= 4
        if not ok:
            raise SuiteError(f"looks must be up to 4 increasing seed counts, got {looks!r}",
                             where=f"{v.path}: adapt.looks", fix="write looks = [3, 5] (or [] for no looks)")
        out["looks"] = list(looks)
    if "futility" in table:
        f = table["futility"]
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not (f == 0 or 0.05 <= f < 1):
            raise SuiteError(f"futility must be 0 (off) or a p-value threshold from 0.05 to below 1, got {f!r}",
                             where=f"{v.path}: adapt.futility", fix="write futility = 0.3")
        out["futility"] = float(f)
    if "halve" in table:
        h = table["halve"]
        if isinstance(h, bool) or not isinstance(h, (int, float)) or not 0 <= h < 1:
            raise SuiteError(f"halve must be 0 (off) or a fraction of the budget above 0 and below 1, got {h!r}",
                             where=f"{v.path}: adapt.halve", fix="write halve = 0.5")
        out["halve"] = float(h)
    for key, low, high, example in (("futility_from", 2, 1024, 5), ("prune", 0, 64, 3), ("grow", 0, 64, 16)):
        if key in table:
            n = table[key]
            if isinstance(n, bool) or not isinstance(n, int) or not low <= n <= high:
                raise SuiteError(f"{key} must be an integer from {low} to {high}, got {n!r}",
                                 where=f"{v.path}: adapt.{key}", fix=f"write {key} = {example}")
            out[key] = n
    return out


def _parse_resources(v: "Validator", table: dict) -> dict[str, float]:
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


def _parse_axes(v: "Validator", raw_axes: dict, tier_axes: dict, tier: str,
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


def _parse_claim(v: "Validator", raw: Any, i: int, axes: tuple[Axis, ...]) -> Claim:
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


def _parse_check(v: "Validator", raw: Any, where: str) -> ClaimCheck:
    """A claim's ``check = { gate, track, tolerance, direction }`` table (docs/ci.md)."""
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


class Validator:
    """Type and range checks that raise SuiteError naming file and key."""

    def __init__(self, path: str, limits: dict[str, int] | None = None):
        self.path = path
        self.limits = limits or dict(lim.DEFAULTS)
        self.workload: Workload = registry.get(registry.BUILTIN)

    def usable(self, key: str) -> bool:
        """Whether the workload reads built-in setting ``key`` (``Workload.reads``; every one for the built-ins)."""
        return self.workload.reads(key)

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
