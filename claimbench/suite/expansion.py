"""A suite's matrix as trials: the product of its axes and seeds -> [TrialSpec], settings without effect reset."""

from __future__ import annotations

import itertools
import json
from typing import Any

from claimbench.suite.model import BUDGET_KEYS, Suite
from claimbench.trial import level_label
from claimbench.workloads.builtin import SPEC_FIELDS, TrialSpec, datasets
from claimbench.workloads import registry


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
    (``workload_params``; dataset and model "", since the data and model are the workload's own), the
    code fingerprint, and the hash of a built-in dataset's shipped bytes (``data_hash``)."""
    out = {k: v for k, v in params.items() if k in SPEC_FIELDS}
    own = {k: v for k, v in params.items() if k not in SPEC_FIELDS}
    if out.get("workload", registry.BUILTIN) != registry.BUILTIN:
        out["dataset"], out["model"] = "", ""
        out["workload_params"] = json.dumps(own, sort_keys=True, separators=(",", ":")) if own else ""
    else:
        out["data_hash"] = datasets.content_hash(out.get("dataset", _DEFAULTS["dataset"]))
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
