"""The JSON Schema of suite files, for editors; ``claimbench schema`` prints it, claimbench/suite.schema.json ships it."""

from __future__ import annotations

from typing import Any

from claimbench import limits as lim
from claimbench.claims import KINDS
from claimbench.claims.base import REQUIRED, Param
from claimbench.paths import NAME_MAX, NAME_PATTERN
from claimbench.suite.model import DIRECTIONS, GATES, INTERNAL, MAX_EXTEND, ROLES, SECTIONS, TIERS, TRACKABLE
from claimbench.suite.validate import Validator
from claimbench.workloads.builtin import CHOICES, RANGES, SPEC_FIELDS
from claimbench.workloads.spec import Workload


def json_schema(workloads: tuple[Workload, ...] | list[Workload] = ()) -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) for suite files, for editors (e.g. taplo, Even Better TOML).

    ``workloads``: other workloads whose [workload] sections (name, declared parameters and the settings
    they read) it includes too (``claimbench schema`` passes every installed one); the shipped file
    claimbench/suite.schema.json has the built-ins alone."""
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
        v = Validator("schema")
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
        "params": {"type": "object"},  # each kind's own: the allOf below
        "check": {"type": "object", "additionalProperties": False, "properties": {
            "gate": {"enum": list(GATES)},
            "direction": {"anyOf": [{"enum": list(DIRECTIONS)},
                                    {"type": "object", "additionalProperties": {"enum": list(DIRECTIONS)}}]},
            "track": {"type": "array", "uniqueItems": True, "items": {"enum": list(TRACKABLE)}},
            "tolerance": {"anyOf": [{"type": "number", "minimum": 0},
                                    {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}}]}}}}}
    claim["allOf"] = [{"if": {"properties": {"kind": {"const": k}}, "required": ["kind"]},
                       "then": {"properties": {"params": kind_params_schema(k)}}} for k in sorted(KINDS)]
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
                                                    "budget-limited"},
                          "looks": {"type": "array", "maxItems": 4, "items": {"type": "integer", "minimum": 1},
                                    "description": "seed counts judged before the last look (default [3, 5])"},
                          "futility": {"type": "number", "minimum": 0, "exclusiveMaximum": 1,
                                       "description": "stop a claim at a look when both one-sided p-values "
                                                      "exceed this (default 0.3; 0: off)"},
                          "futility_from": {"type": "integer", "minimum": 2, "maximum": 1024,
                                            "description": "the first seed count futility applies at (default 5)"},
                          "prune": {"type": "integer", "minimum": 0, "maximum": 64,
                                    "description": "tuned values per group that later seeds keep for claims "
                                                   "reading only the tuned value (default 3; 0: off)"},
                          "grow": {"type": "integer", "minimum": 0, "maximum": 64,
                                   "description": "the seed count a claim still undecided by its interval at "
                                                  "the last look grows to, beyond the suite's seeds "
                                                  "(default 0: off)"},
                          "halve": {"type": "number", "minimum": 0, "exclusiveMaximum": 1,
                                    "description": "the fraction of the budget at which a trial ranked below "
                                                   "the prune best of its group inside its pack stops, for "
                                                   "claims reading only the tuned value (default 0.5; 0: off)"}}},
        },
    }


_JSON_TYPES = {str: "string", float: "number", int: "integer", bool: "boolean", dict: "object", list: "array",
               tuple: "array"}


def _param_schema(p: Param) -> dict[str, Any]:
    """One claim parameter's JSON Schema, from its declaration: type, default, bounds, choices, description."""
    types = p.type if isinstance(p.type, tuple) else (p.type,)
    names = sorted({_JSON_TYPES.get(t, "string") for t in types})
    if "number" in names and "integer" not in names:
        names.append("integer")  # a whole number is a float parameter's value too
    out: dict[str, Any] = {"type": names[0] if len(names) == 1 else sorted(names)}
    if p.doc:
        out["description"] = p.doc
    if p.default is not REQUIRED and p.default is not None and not callable(p.default):
        out["default"] = list(p.default) if isinstance(p.default, tuple) else p.default
    if p.choices:
        out["enum"] = list(p.choices)
    for key, bound in (("minimum", p.ge), ("exclusiveMinimum", p.gt), ("maximum", p.le), ("exclusiveMaximum", p.lt)):
        if bound is not None:
            out[key] = bound
    return out


def kind_params_schema(kind: str) -> dict[str, Any]:
    """A claim kind's ``params`` table as JSON Schema: its declared parameters, the required ones, no others."""
    params = KINDS[kind].params
    return {"type": "object", "additionalProperties": False,
            "properties": {name: _param_schema(p) for name, p in params.items()},
            "required": sorted(n for n, p in params.items() if p.default is REQUIRED)}


def claims_reference() -> str:
    """Every claim kind's statistic, decision rule and parameters, from their declarations (docs/claims.md,
    ``claimbench schema --claims``)."""
    lines = ["# Claim kinds", "",
             "Each kind's parameters, as its module declares them (type, default; \"required\" has none). A quantity",
             "parameter takes the grammar in [suites.md](suites.md); `select` and `metric` name a metric whose direction",
             "is known. The suite loader and the JSON Schema (`claimbench/suite.schema.json`) check every parameter",
             "against these declarations. Generated by `claimbench schema --claims -o docs/claims.md`.", ""]
    for name in sorted(KINDS):
        k = KINDS[name]
        lines += [f"## {name}", "", f"**Statistic:** {k.statistic.rstrip('.')}. **Decision:** {k.method.rstrip('.')}.",
                  f"**Reads:** {'the selected trial of each cell' if k.reads == 'tuned' else 'every trial of a cell' if k.reads == 'grid' else 'depends on its quantities'}.", ""]
        for pname, p in k.params.items():
            types = p.type if isinstance(p.type, tuple) else (p.type,)
            default = "required" if p.default is REQUIRED else "none" if p.default is None else repr(p.default).replace("'", '"')
            lines.append(f"- `{pname}` ({' or '.join(t.__name__ for t in types)}, {default}): {p.doc}")
        lines.append("")
    return "\n".join(lines)
