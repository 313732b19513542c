"""The experimenter loop: plan, train, diagnose, plan again.

A run is rounds. Round 0 trains the suite as registered. After each round every claim is judged under its
protocol (``claims/protocol.py``, without the robustness variants) and the suite's ``[adapt]`` rules,
fixed before the run, decide what the next round trains:

- ``extend = { axis = n }`` — where some claim is edge-limited on ``axis`` (its tuned value sits on an
  extendable edge of the grid beyond a flat objective's chance), the axis gains the next value beyond that
  edge, at the grid's spacing (``analysis.diagnostics.beyond``), for every level and seed; at most ``n``
  values beyond each edge over the run.
- ``budget = n`` — where some comparison is budget-limited (its groups' gains over the last quarter of the
  budget spread by more than ``CONVERGENCE_GAIN``), the budget doubles; at most ``n`` times.

Each round's decisions are recorded in the run dir (``adaptive.json``) and shown in the report. Nothing here
reads a verdict: only the diagnostics. The rounds depend only on the records, so the same command gives the
same extensions, and a rerun (records present) trains nothing new. A claim whose diagnostics still fail
after the allowed extensions stays undecided, with the reason. Later adaptive rules (seeds at planned looks,
futility, pruning) are further planners of the same loop.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from claimbench.analysis.diagnostics import beyond
from claimbench.analysis.frames import curve_frame, trial_frame
from claimbench.store.files import atomic_write_text
from claimbench.store.rundir import RunStore
from claimbench.suite import Axis, Suite, expand

ADAPT_FILE = "adaptive.json"
#: Rounds after the first at most: every rule is bounded on its own; this bounds their sum.
MAX_ROUNDS = 12


@dataclass
class Extension:
    """One decision of the loop: ``axis`` ("budget" for the budget) gains ``values`` beyond ``side``."""

    round: int
    axis: str
    side: str  # low | high | budget
    values: list[Any]
    claims: list[str]
    reason: str

    def text(self) -> str:
        if self.axis == "budget":
            return f"round {self.round}: budget doubled to {self.values[0]} ({', '.join(self.claims)}: {self.reason})"
        where = "upward" if self.side == "high" else "downward"
        return (f"round {self.round}: {self.axis} grid extended {where} with {', '.join(f'{x:g}' for x in self.values)}"
                f" ({', '.join(self.claims)}: {self.reason})")


@dataclass
class Plan:
    """A suite's state in the loop: the suite as now extended and the extensions so far."""

    registered: Suite
    suite: Suite
    extensions: list[Extension] = field(default_factory=list)

    def used(self, axis: str, side: str) -> int:
        return sum(len(e.values) if e.axis != "budget" else 1 for e in self.extensions
                   if e.axis == axis and e.side == side)


def adaptive(suite: Suite) -> bool:
    return bool(suite.adapt.get("extend") or suite.adapt.get("budget"))


def judge_store(suite: Suite, store: RunStore):
    """Every claim of ``suite`` judged on ``store``'s records of its trials (no robustness variants)."""
    from claimbench.claims import evaluate_claims

    ids = {s.trial_id for s in expand(suite)}
    records = list(store.records(ids))
    tables = {a.name: list(a.values) for a in suite.axes if a.is_table}
    frame = trial_frame(records, tables)
    if frame.empty:
        return []
    return evaluate_claims(list(suite.claims), frame, suite.design(), curve_frame(records), variants=False)


def next_round(plan: Plan, results: list, round_no: int) -> Suite | None:
    """The suite the next round trains, or None when no rule applies; appends the round's extensions."""
    suite = plan.suite
    extend = suite.adapt.get("extend", {})
    wanted: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for r in results:
        d = r.diagnostics or {}
        if not d.get("limiting"):
            continue
        for axis, entry in d["edge"].get("sides", {}).items():
            for hit in entry.get("limited", []):
                if axis in extend:
                    wanted.setdefault((axis, hit["side"]), []).append(
                        (r.claim_id, f"{hit['cells']} of {hit['of']} cells of {hit['group']} on the "
                                     f"{'lower' if hit['side'] == 'low' else 'upper'} edge"))
        if d["convergence"].get("moving") and suite.adapt.get("budget"):
            s = d["convergence"]["spread"]
            wanted.setdefault(("budget", "budget"), []).append(
                (r.claim_id, f"gains over the last quarter spread by {s['gain']:.3g} ({s['most']} vs {s['least']})"))
    axes, base, new = list(suite.axes), dict(suite.base), []
    for (axis, side), why in sorted(wanted.items()):
        claims = sorted({c for c, _ in why})
        if axis == "budget":
            if plan.used("budget", "budget") >= suite.adapt["budget"]:
                continue
            key = "epochs" if base.get("epochs") else "steps"
            base[key] = int(base[key]) * 2
            new.append(Extension(round_no, "budget", "budget", [f"{key} = {base[key]}"], claims, why[0][1]))
            continue
        if plan.used(axis, side) >= extend[axis]:
            continue
        i = next(k for k, a in enumerate(axes) if a.name == axis)
        values = beyond(axes[i].values, side, 1, axis)
        if not values:
            continue
        merged = tuple(sorted({*axes[i].values, *values}))
        axes[i] = Axis(axes[i].name, axes[i].role, merged)
        new.append(Extension(round_no, axis, side, values, claims, why[0][1]))
    if not new:
        return None
    plan.extensions += new
    return dataclasses.replace(suite, axes=tuple(axes), base=base)


def write_record(store: RunStore, plan: Plan) -> None:
    """``adaptive.json`` in the run dir: the registered rules and every extension taken."""
    doc = {"schema": 1, "rules": plan.registered.adapt,
           "extensions": [dataclasses.asdict(e) | {"text": e.text()} for e in plan.extensions]}
    atomic_write_text(store.dir / ADAPT_FILE, json.dumps(doc, indent=1, default=str) + "\n")


def read_record(run_dir: str | Path) -> list[dict[str, Any]]:
    """The extensions recorded in a run dir (empty when the run had none, or no adaptive rules)."""
    path = Path(run_dir) / ADAPT_FILE
    if not path.is_file():
        return []
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    ext = doc.get("extensions") if isinstance(doc, dict) else None
    return [e for e in ext if isinstance(e, dict)] if isinstance(ext, list) else []


def run_rounds(plans: list[tuple[Plan, RunStore]], train: Callable[[list[tuple[Suite, RunStore]]], None]) -> None:
    """Round 0 has been trained by the caller; plan and train further rounds until no rule applies."""
    for round_no in range(1, MAX_ROUNDS + 1):
        todo = []
        for plan, store in plans:
            if not adaptive(plan.registered):
                continue
            nxt = next_round(plan, judge_store(plan.suite, store), round_no)
            if nxt is not None:
                plan.suite = nxt
                todo.append((nxt, store))
        for plan, store in plans:
            if adaptive(plan.registered):
                write_record(store, plan)
        if not todo:
            return
        train(todo)
