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

Further rules spend compute where a verdict can still change (defaults below, each overridable in
``[adapt]``; ``--exhaustive`` turns them off and trains every seed of the full matrix in round 0):

- ``looks = [3, 5]`` — seeds come in planned looks: round 0 trains the first 3 seeds, the next look opens
  seeds up to 5, the last all of them. Seeds stay a prefix, so an adaptive and an exhaustive run share their
  trials. No claim is decided before the last look: only futility stops a claim early, and stopping can only
  remove decisions, so the final test keeps its level and its place in the Holm adjustment.
- ``futility = 0.3`` from ``futility_from = 5`` seeds — at a look, a claim whose one-sided p-values against
  both of its boundaries (``p_supported``, ``p_refuted``) are above 0.3 is stopped: it is reported
  inconclusive, with the look and both p-values, and its trials are no longer needed for later seeds.
- ``prune = 3`` — for seeds after a look, a claim whose statistic reads only its selected trial's metric
  (``claims.reads``) needs, in each of its groups, only the tuned values that ranked among the ``prune`` best
  on at least one seed so far; a claim that reads the whole grid (where the best lies, divergence limits,
  range widths, timings) needs every cell. Later seeds train the union of what the claims still running need.
- ``halve = 0.5`` — successive halving inside packs. At plan time each trial whose
  every running claim reads only its selected trial's metric and tunes an axis gets a directive
  (``halving``): the rung ``f``, ``k = prune``, and one group per such claim (its values of the claim's other
  axes and its seed, ``halving_groups``). The directive travels beside the trial to its worker, as its
  timeout does, never in its spec or id; the packer keeps each group in one pack where the width allows.
  At the first evaluation at or after ``f`` of the budget, the worker ranks each group whose members all
  train in that pack on the claim's ``select`` metric, and a trial among the ``k`` best of none of its
  groups leaves the pack ``halted`` (``train.policy.driver.halving_losers``). A halted trial is absent from
  the frames the claims judge (``analysis.frames.without_halted``), ranks last for pruning, is final for an
  adaptive run and pending for an exhaustive one.
- ``grow = n`` (off unless a suite sets it) — after the last look, a claim whose interval still straddles a
  boundary (inconclusive on its statistic, no protocol limit, and the nearer one-sided p-value within the
  futility threshold: ``grows``) gains seeds up to ``n``, continuing the suite's seeds, for its own cells
  (pruned as above). Only the grown claims are judged on the new seeds; every other claim keeps the
  registered seeds. A grown claim had two chances to decide, so in a run with ``grow`` every claim's
  one-sided p-values are doubled (Bonferroni over the two stages, ``two_stage``) before its verdict and
  the Holm adjustment: the false-decision rate stays at its level, at some cost in power, which
  ``claimbench calibrate --design grow`` measures.

Each round's decisions are recorded in the run dir (``adaptive.json``) and shown in the report. The
extensions read only the diagnostics, futility only the p-values, pruning only the selection metric. The
rounds depend only on the records, so the same command gives the same rounds, and a rerun (records
present) trains nothing new. The suites of a run go at their own pace (``Rounds``): a suite whose round
is complete is judged and its next round queued while the other suites' trials train. A claim whose diagnostics still fail after the allowed extensions stays
undecided, with the reason.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from claimbench.analysis.diagnostics import beyond
from claimbench.analysis.inference import ALPHA
from claimbench.analysis.frames import curve_frame, trial_frame, without_halted
from claimbench.analysis.selection import direction
from claimbench.claims import evaluate_claims, reads
from claimbench.claims.protocol import claim_frame, tuned_axes
from claimbench.store.files import atomic_write_text
from claimbench.store.rundir import RunStore
from claimbench.suite import FUTILITY, Axis, Rules, Suite, expand
from claimbench.trial import TrialRecord
from claimbench.runner.packs import DEFAULT_PACK_SIZE, pack_bytes
from claimbench.train.packing import group_key, pack_width, packable
from claimbench.workloads.builtin import SPEC_FIELDS, TrialSpec

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
class Look:
    """What the loop decided at one look: the seeds judged, the claims stopped for futility (id -> why),
    how many cells later seeds keep of how many, and the seeds opened next."""

    round: int
    seeds: int
    stopped: dict[str, dict[str, Any]]
    kept: int
    cells: int
    opened: int
    grown: list[str] = field(default_factory=list)  # claims whose seeds grew at this look

    def text(self) -> str:
        out = f"round {self.round}: look at {self.seeds} seeds"
        if self.grown:
            return out + f"; seeds grown to {self.opened} for {', '.join(self.grown)} ({self.kept} of {self.cells} cells)"
        if self.stopped:
            out += f"; stopped for futility: {', '.join(sorted(self.stopped))}"
        if self.kept < self.cells:
            out += f"; later seeds train {self.kept} of {self.cells} cells"
        return out + f"; seeds opened to {self.opened}"


@dataclass
class Plan:
    """A suite's state in the loop: the suite as now extended, the extensions and looks so far, how many
    seeds are open, and the cells each look let later seeds train (ids of their first seed's trial)."""

    registered: Suite
    suite: Suite
    extensions: list[Extension] = field(default_factory=list)
    rules: Rules = field(default_factory=Rules)
    open: int = 0
    looks: list[Look] = field(default_factory=list)
    #: pruning decisions: (the first seed index they apply to, the cells kept, the cells they ranked); a cell
    #: an extension adds later was not ranked, so it is trained
    keeps: list[tuple[int, set[str], set[str]]] = field(default_factory=list)
    claim_cells: dict[str, set[str]] = field(default_factory=dict)  # each claim's cells, at the last round
    growth: dict[str, dict[str, Any]] = field(default_factory=dict)  # claims grown (``grow_seeds``)
    registered_seeds: int = 0  # the suite's own seed count (seeds beyond it come from ``grow``)
    halted: set[str] = field(default_factory=set)  # trials halving stopped at their rung, as last judged

    def __post_init__(self) -> None:
        if not self.open:
            self.open = self.rules.looks[0] if self.rules.active else len(self.suite.seeds)
        if not self.registered_seeds:
            self.registered_seeds = len(self.registered.seeds)

    def used(self, axis: str, side: str) -> int:
        return sum(len(e.values) if e.axis != "budget" else 1 for e in self.extensions
                   if e.axis == axis and e.side == side)

    @property
    def stopped(self) -> dict[str, dict[str, Any]]:
        return {c: why for look in self.looks for c, why in look.stopped.items()}

    def wanted(self) -> list[TrialSpec]:
        """The trials this plan trains so far: every cell for the seeds before the first look, the kept
        cells (and any cell an extension added since) for the seeds opened after it."""
        seeds = self.suite.seeds
        first = seeds[0]
        index = {s: i for i, s in enumerate(seeds)}
        specs = expand(self.suite)
        out = []
        for s in specs:
            i = index[s.seed]
            if i >= self.open:
                continue
            rule = next((k for k in reversed(self.keeps) if k[0] <= i), None)
            if rule is not None:
                cell = cell_of(s, first)
                if cell in rule[2] and cell not in rule[1]:
                    continue
            out.append(s)
        return out


def cell_of(spec: TrialSpec, first_seed: int) -> str:
    """A trial's cell: the id of the same trial at the suite's first seed."""
    return spec.trial_id if spec.seed == first_seed else dataclasses.replace(spec, seed=first_seed).trial_id


def adaptive(plan: Plan) -> bool:
    s = plan.registered
    return bool(s.adapt.get("extend") or s.adapt.get("budget")) or plan.rules.active or bool(plan.rules.grow) \
        or bool(plan.rules.halve)


def judge_store(suite: Suite, store: RunStore):
    """Every claim of ``suite`` judged on ``store``'s records of its trials (no robustness variants), and the
    frame of those records with the halted trials' rows kept (status "halted"), for the loop's bookkeeping."""
    return judge_records(suite, list(store.records({s.trial_id for s in expand(suite)})))


def judge_records(suite: Suite, records: list):
    tables = {a.name: list(a.values) for a in suite.axes if a.is_table}
    frame = trial_frame(records, tables, halted=True)
    judged = without_halted(frame)  # claims never see a halted trial
    if judged.empty:
        return [], frame
    return evaluate_claims(list(suite.claims), judged, suite.design(), curve_frame(records), variants=False), frame


def take_look(plan: Plan, results: list, frame, round_no: int) -> Look:
    """At a look: stop the claims that are futile, choose the cells later seeds train, open the next seeds."""
    rules, suite = plan.rules, plan.suite
    seeds_seen = plan.open
    stopped = dict(plan.stopped)
    new_stops: dict[str, dict[str, Any]] = {}
    for r in results:
        why = futile(r, rules, seeds_seen) if r.claim_id not in stopped else None
        if why:
            new_stops[r.claim_id] = why | {"look": len(plan.looks) + 1}
    stopped.update(new_stops)
    first = suite.seeds[0]
    cells = set(frame.loc[frame["seed"] == first, "trial_id"]) if len(frame) else set()
    keep: set[str] = set()
    design = suite.design()
    for claim in suite.claims:
        if claim.id in stopped:
            continue
        keep |= needed_cells(claim, frame, design, rules.prune, first)
    nxt = next((k for k in rules.looks if k > seeds_seen), len(suite.seeds))
    look = Look(round_no, seeds_seen, new_stops, len(keep & cells), len(cells), nxt)
    plan.looks.append(look)
    plan.keeps.append((seeds_seen, keep, cells))
    plan.open = nxt
    return look


def grows(result, rules: Rules) -> dict[str, Any] | None:
    """Why ``result``'s seeds grow after the last look (its interval straddles a boundary: inconclusive on its
    statistic, no protocol limit, and its nearer one-sided p-value within the futility threshold, so more
    seeds can decide it), or None."""
    ps, pr = result.p_supported, result.p_refuted
    if not rules.grow or result.verdict != "inconclusive" or ps is None or pr is None:
        return None
    if (result.diagnostics or {}).get("limits") or (result.diagnostics or {}).get("stopped"):
        return None
    near = min(float(ps), float(pr))
    if not np.isfinite(near) or near > (rules.futility or 1.0):
        return None
    return {"p_supported": float(ps), "p_refuted": float(pr)}


def two_stage(results: list, grow: int) -> list:
    """Under ``grow`` (a claim may be judged again on more seeds), each result's one-sided p-values doubled,
    Bonferroni over the two stages; a decision whose doubled p is not below the level becomes inconclusive.
    In place; returns ``results``. Without ``grow``, nothing changes."""
    if not grow:
        return results
    for r in results:
        if r.p_supported is None or r.p_refuted is None:
            continue
        r.p_supported, r.p_refuted = min(1.0, 2 * float(r.p_supported)), min(1.0, 2 * float(r.p_refuted))
        p = r.p_supported if r.verdict == "supported" else r.p_refuted if r.verdict == "refuted" else None
        if p is not None and not p < ALPHA:
            r.diagnostics["two_stage"] = {"text": f"{r.verdict} at one stage's level, but not with its p-value doubled "
                                                  f"({p:.2g}) for the second stage the grow rule allows"}
            r.verdict = "inconclusive"
    return results


def grow_seeds(plan: Plan, results: list, frame, round_no: int) -> Look | None:
    """After the last look: the claims that ``grows`` gain seeds up to ``rules.grow`` (the suite's seeds
    continued), for their own needed cells; None when no claim grows."""
    rules, suite = plan.rules, plan.suite
    n = len(suite.seeds)
    two_stage(results, rules.grow)
    why = {r.claim_id: w for r in results if r.claim_id not in plan.stopped and (w := grows(r, rules))}
    if not why:
        return None
    first = suite.seeds[0]
    cells = set(frame.loc[frame["seed"] == first, "trial_id"]) if len(frame) else set()
    design = suite.design()
    keep: set[str] = set()
    for claim in suite.claims:
        if claim.id in why:
            keep |= needed_cells(claim, frame, design, rules.prune, first)
    new = tuple(range(max(suite.seeds) + 1, max(suite.seeds) + 1 + rules.grow - n))
    plan.suite = dataclasses.replace(suite, seeds=(*suite.seeds, *new))
    for cid, w in why.items():
        plan.growth[cid] = w | {"from": n, "seeds": rules.grow}
    look = Look(round_no, n, {}, len(keep & cells), len(cells), rules.grow, grown=sorted(why))
    plan.looks.append(look)
    plan.keeps.append((n, keep, cells))
    plan.open = rules.grow
    return look


def futile(result, rules: Rules, seeds_seen: int) -> dict[str, Any] | None:
    """Why ``result`` stops for futility at a look with ``seeds_seen`` seeds (both one-sided p-values above the
    threshold, from ``futility_from`` seeds on), or None when it goes on."""
    ps, pr = result.p_supported, result.p_refuted
    if not rules.futility or seeds_seen < rules.futility_from or ps is None or pr is None:
        return None
    if ps > rules.futility and pr > rules.futility:
        return {"seeds": seeds_seen, "p_supported": float(ps), "p_refuted": float(pr), "threshold": rules.futility}
    return None


def replay(frame, claims: list, design, rules: Rules, judge: Callable[[Any], list],
           registered: int | None = None, curves=None) -> tuple[Any, dict[str, dict], dict[str, dict]]:
    """``frame``, a full matrix of trials, as the compute rules would have trained it: the seeds of each look,
    the claims ``judge(trained)`` finds futile at a look, and for later seeds only the cells the claims still
    running need (``needed_cells``; a cell not at the first seed was never ranked, so it stays); then, when
    ``rules.grow`` is on and ``frame`` holds seeds beyond the ``registered`` count (default: all of them),
    the seeds the claims that ``grows`` gain. With ``rules.halve`` and ``curves`` (the frame's curve frame),
    each round's trials are halved inside their packs as the worker would (``halve_frame``: the halted rows
    carry status "halted" and the wall time to their rung; ``judge`` never sees them). The same decisions as
    ``take_look``, ``grow_seeds`` and ``halving``, on a frame instead of a run (the simulator and
    ``benchmarks/adaptive.py``). Returns the rows trained, the claims stopped (id -> why) and the claims grown
    (id -> why); a claim not grown is judged on the first ``registered`` seeds."""
    seeds = sorted(frame["seed"].unique())
    n = min(registered or len(seeds), len(seeds))
    looks = [k for k in rules.looks if 0 < k < n]
    growing = bool(rules.grow) and len(seeds) > n

    def halve(part, stopped: dict):
        return halve_frame(part, [c for c in claims if c.id not in stopped], design, rules, curves)

    if not looks and not growing:
        return halve(frame, {}), {}, {}
    axes = [*design.scientific, *design.nuisance, *design.fixed, *(a for c in claims for a in tuned_axes(c, design, frame))]
    cols = [c for c in dict.fromkeys(axes) if c in frame.columns]
    cell = frame[cols].astype(str).agg("|".join, axis=1) if cols else frame["seed"].map(lambda _: "")
    index = frame["seed"].map({s: i for i, s in enumerate(seeds)})
    opened = looks[0] if looks else n
    trained, stopped, grown = halve(frame[index < opened], {}), {}, {}

    def later(keep: set[str], start: int, stop: int):
        first = trained[trained["seed"] == seeds[0]]
        kept, ranked = set(cell[first.index[first["trial_id"].isin(keep)]]), set(cell[first.index])
        return frame[(index >= start) & (index < stop) & (cell.isin(kept) | ~cell.isin(ranked))]

    look = 0
    while opened < n:
        look += 1
        if rules.futility and opened >= rules.futility_from:
            for r in judge(without_halted(trained)):
                why = futile(r, rules, opened) if r.claim_id not in stopped else None
                if why:
                    stopped[r.claim_id] = why | {"look": look}
        keep = set().union(*(needed_cells(c, trained, design, rules.prune, seeds[0]) for c in claims
                             if c.id not in stopped))
        nxt = next((k for k in looks if k > opened), n)
        trained, opened = pd.concat([trained, halve(later(keep, opened, nxt), stopped)]), nxt
    if growing:
        grown = {r.claim_id: w | {"from": n, "seeds": min(rules.grow, len(seeds))}
                 for r in two_stage(judge(without_halted(trained)), rules.grow)
                 if r.claim_id not in stopped and (w := grows(r, rules))}
        if grown:
            keep = set().union(*(needed_cells(c, trained, design, rules.prune, seeds[0]) for c in claims
                                 if c.id in grown))
            trained = pd.concat([trained, halve(later(keep, n, rules.grow), stopped)])
    return trained, stopped, grown


def halving(plan: Plan, specs: list[TrialSpec]) -> dict[str, dict]:
    """Each trial of ``specs`` (a round's) that successive halving may stop, with its directive (the worker's
    ``train.policy.driver.halving_losers``): {"rung": the fraction of the budget, "k": ``rules.prune``,
    "groups": [[key, select metric, direction, members], ...]}. A trial may halt only when every running claim
    that reads it reads only its selected trial's metric (``claims.reads``) and tunes an axis; its group for
    each such claim is the trials of ``specs`` with its values of the claim's other axes and its seed. Empty
    when the rule is off. Never part of a trial's spec or id: an adaptive and an exhaustive run share ids."""
    rules, suite = plan.rules, plan.suite
    if not rules.halve or not rules.prune or not specs:
        return {}
    tables = {a.name: list(a.values) for a in suite.axes if a.is_table}
    frame = trial_frame([TrialRecord.failed(s, "") for s in specs if not s.exclusive], tables, halted=True)
    if frame.empty:
        return {}
    registered = set(suite.seeds[:plan.registered_seeds])
    claims = [c for c in suite.claims if c.id not in plan.stopped]
    groups = halving_groups(frame, claims, suite.design(), registered, set(plan.growth), suite.name)
    sizes: dict[str, int] = {}
    for gs in groups.values():
        for key, *_ in gs:
            sizes[key] = sizes.get(key, 0) + 1
    return {tid: {"rung": rules.halve, "k": rules.prune, "groups": [[k, sel, sign, sizes[k]] for k, sel, sign in gs]}
            for tid, gs in groups.items()}


def halving_groups(frame, claims: list, design, registered: set | None = None, grown: set | None = None,
                   name: str = "") -> dict[str, list[list[Any]]]:
    """Trial id -> its halving groups, [key, select metric, direction] each, for the trials of ``frame`` that
    halving may stop: every claim of ``claims`` (those still running) that reads the trial reads only its
    selected trial's metric (``claims.reads``) and tunes an axis; the trial's group for such a claim is its
    values of the claim's other axes and its seed. A claim not in ``grown`` reads only the ``registered`` seeds
    (None: every seed). The one group rule of ``halving`` and ``replay``."""
    groups: dict[str, list[list[Any]]] = {}
    blocked: set[str] = set()
    for claim in claims:
        cf = claim_frame(claim, frame)
        if registered is not None and claim.id not in (grown or set()):
            cf = cf[cf["seed"].isin(registered)]
        if cf.empty:
            continue
        tuned = tuned_axes(claim, design, cf)
        select = claim.params.get("select", "val_acc")
        if reads(claim) != "tuned" or not tuned:
            blocked |= set(cf["trial_id"])
            continue
        axes = [a for a in (*design.scientific, *design.nuisance, *design.fixed) if a in cf.columns and a not in tuned]
        keys = cf[[*axes, "seed"]].astype(str).agg("|".join, axis=1)
        for tid, key in zip(cf["trial_id"], keys):
            groups.setdefault(tid, []).append([f"{name}|{claim.id}|{key}", select, int(direction(select))])
    return {tid: gs for tid, gs in groups.items() if tid not in blocked}


def halve_frame(part, claims: list, design, rules: Rules, curves) -> Any:
    """``part`` (trials trained in one round) as halving inside packs would have left it: the rows it stops get
    status "halted" and ``wall_s`` times their rung's share of their steps (the time they trained). The same
    group rule as ``halving`` (``halving_groups``) and the same ranking as the worker's
    (``train.policy.driver.halving_losers``), on ``curves``: each trial's ``select`` metric at its group's rung,
    the first evaluation at or after ``rules.halve`` of the budget (the group's last curve step), before the
    end; a member that stopped before the rung ranks by its last evaluation when completed, else last. A group
    whose members could not share a pack (``train.packing.group_key`` differs, one is not packable, or the
    group is wider than ``runner.packs``' width for it at the default pack size) never halts. ``claims``: those
    still running."""
    if not rules.halve or not rules.prune or curves is None or not len(curves) or not len(part):
        return part
    groups = halving_groups(part, claims, design)
    if not groups:
        return part
    members: dict[str, list[str]] = {}
    for tid, gs in groups.items():
        for key, select, sign in gs:
            members.setdefault(key, []).append(tid)
    rows = part.set_index("trial_id", drop=False)
    packs = _pack_keys(rows.loc[list(groups)])
    cur = curves[curves["trial_id"].isin(set(groups))]
    by_trial = {t: c.sort_values("step") for t, c in cur.groupby("trial_id", sort=False)}
    survivors: set[str] = set()
    rung_of: dict[str, tuple[int, int]] = {}
    for key, tids in members.items():
        select, sign = next((s, d) for k, s, d in groups[tids[0]] if k == key)
        key_of = {packs.get(t, (None, 0))[0] for t in tids}
        if len(key_of) != 1 or None in key_of or len(tids) > packs[tids[0]][1]:
            survivors |= set(tids)
            continue
        steps = sorted({int(x) for t in tids if t in by_trial for x in by_trial[t]["step"]})
        total = steps[-1] if steps else 0
        at = [x for x in steps if x >= rules.halve * total]
        if not at or at[0] >= total or select not in cur.columns:
            survivors |= set(tids)
            continue
        rung = at[0]

        def score(t: str) -> float:
            c = by_trial.get(t)
            if c is None or not len(c):
                return -np.inf
            here = c[c["step"] == rung]
            if len(here):
                v = float(here[select].iloc[0])
            elif rows.at[t, "status"] == "completed" and int(c["step"].iloc[-1]) < rung:
                v = float(c[select].iloc[-1])
            else:
                return -np.inf
            return sign * v if np.isfinite(v) else -np.inf

        order = sorted(tids, key=lambda t: -score(t))  # stable: frame order on ties
        for t in tids:
            alive = t in by_trial and (by_trial[t]["step"] > rung).any()  # still training after the rung
            if not alive or t in order[:rules.prune] or not np.isfinite(score(t)):
                survivors.add(t)
            else:
                rung_of[t] = (rung, total)
    halted = [t for t in groups if t not in survivors and t in rung_of]
    if not halted:
        return part
    out = part.copy()
    mask = out["trial_id"].isin(set(halted))
    share = out.loc[mask, "trial_id"].map(lambda t: rung_of[t][0] / rung_of[t][1])
    out.loc[mask, "status"] = "halted"
    out.loc[mask, "wall_s"] = out.loc[mask, "wall_s"].astype(float) * share
    return out


def _pack_keys(rows) -> dict[str, tuple[Any, int]]:
    """Trial id -> (the key of the packs it can share, ``train.packing.group_key``, and the widest such pack at
    the default pack size); the key is None where it trains alone (not packable) or its spec cannot be
    rebuilt from the frame's columns."""
    out: dict[str, Any] = {}
    for tid, row in zip(rows["trial_id"], rows.to_dict("records")):
        fields = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()
                  if k in SPEC_FIELDS}
        try:
            spec = TrialSpec.from_dict(fields)
            out[tid] = (repr(group_key(spec)), pack_width(spec, DEFAULT_PACK_SIZE, pack_bytes(spec))) \
                if packable(spec) else (None, 0)
        except Exception:  # a frame column the spec does not take as it is: treated as unpackable
            out[tid] = (None, 0)
    return out


def needed_cells(claim, frame, design, prune: int, first_seed: int) -> set[str]:
    """The cells (first-seed trial ids) a running claim needs for later seeds: all of its cells when its
    statistic reads the whole grid or pruning is off; else, per group, every tuned value that ranked among
    the ``prune`` best of its group on at least one seed so far (a value that never did cannot be expected
    to win; one that won on a single seed stays, so a flat objective keeps its spread)."""
    cf = claim_frame(claim, frame)
    base = cf[cf["seed"] == first_seed]
    tuned = tuned_axes(claim, design, cf)
    if not prune or reads(claim) != "tuned" or not tuned:
        return set(base["trial_id"])
    select = claim.params.get("select", "val_acc")
    if select not in cf.columns:
        return set(base["trial_id"])
    axes = [a for a in (*design.scientific, *design.nuisance, *design.fixed) if a in cf.columns]
    groups = [a for a in axes if a not in tuned]
    score = cf[select].astype(float) * direction(select)
    if "status" in cf.columns:
        score = score.where(cf["status"] == "completed")  # diverged or failed trials rank last
    t = cf.assign(_score=score.fillna(-np.inf)).sort_values("_score", ascending=False, kind="stable")
    top = t.groupby([*groups, "seed"], dropna=False, sort=False).head(prune)
    key = [*groups, *tuned]
    chosen = base.merge(top[key].drop_duplicates(), on=key, how="inner")
    return set(chosen["trial_id"])


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
    """``adaptive.json`` in the run dir: the registered rules, every extension and look taken, the claims
    stopped for futility, how many trials of the full matrix the rules left untrained and how many halted."""
    full = expand(plan.suite)
    trained = {s.trial_id for s in plan.wanted()}
    doc = {"schema": 2, "rules": plan.registered.adapt, "compute": dataclasses.asdict(plan.rules),
           "extensions": [dataclasses.asdict(e) | {"text": e.text()} for e in plan.extensions],
           "looks": [dataclasses.asdict(k) | {"text": k.text()} for k in plan.looks],
           "stopped": plan.stopped, "grown": plan.growth, "registered_seeds": plan.registered_seeds,
           "full": len(full), "skipped": sum(s.trial_id not in trained for s in full),
           "skipped_by_claim": skipped_by_claim(plan, full, trained),
           "halted": len(plan.halted & trained), "halted_by_claim": halted_by_claim(plan, full, trained)}
    atomic_write_text(store.dir / ADAPT_FILE, json.dumps(doc, indent=1, default=str) + "\n")


def skipped_by_claim(plan: Plan, full: list[TrialSpec], trained: set[str]) -> dict[str, int]:
    """Per claim, the trials of its cells that the rules left untrained (0 for an exhaustive run)."""
    if len(full) == len(trained):
        return {}
    first = plan.suite.seeds[0]
    by_cell: dict[str, int] = {}
    for s in full:
        if s.trial_id not in trained:
            c = cell_of(s, first)
            by_cell[c] = by_cell.get(c, 0) + 1
    out = {}
    for claim in plan.suite.claims:
        ids = plan.claim_cells.get(claim.id, set())
        out[claim.id] = sum(by_cell.get(c, 0) for c in ids)
    return out


def halted_by_claim(plan: Plan, full: list[TrialSpec], trained: set[str]) -> dict[str, int]:
    """Per claim, the trials of its cells that halving stopped at their rung (empty when none halted)."""
    if not plan.halted:
        return {}
    first = plan.suite.seeds[0]
    by_cell: dict[str, int] = {}
    for s in full:
        if s.trial_id in plan.halted and s.trial_id in trained:
            c = cell_of(s, first)
            by_cell[c] = by_cell.get(c, 0) + 1
    return {claim.id: sum(by_cell.get(c, 0) for c in plan.claim_cells.get(claim.id, set()))
            for claim in plan.suite.claims}


def read_doc(run_dir: str | Path) -> dict[str, Any]:
    """The run dir's ``adaptive.json`` ({} when the run had no rules, or the file is unreadable)."""
    path = Path(run_dir) / ADAPT_FILE
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def read_record(run_dir: str | Path) -> list[dict[str, Any]]:
    """The extensions recorded in a run dir (empty when the run had none, or no adaptive rules)."""
    ext = read_doc(run_dir).get("extensions")
    return [e for e in ext if isinstance(e, dict)] if isinstance(ext, list) else []


class Rounds:
    """The experimenter loop over several suites' plans, each at its own pace (overlapping rounds).

    ``start`` gives every plan's round 0. The trainer reports each record (``arrived``) and asks ``advance``
    for more work whenever it likes: a plan whose round has all its records is judged then, and its next round
    (the registered extensions first; where none applies, the next look or the seeds growing) joins the work
    of the plans still training, so the workers do not wait for a look, and a plan's judging runs while the
    others' trials train. A plan's decisions read only its own records, so each plan gives the same rounds
    whatever the pace of the others."""

    def __init__(self, plans: list[tuple[Plan, RunStore]]) -> None:
        self.plans = plans
        self.rounds = [0] * len(plans)  # rounds each plan has planned after its first
        self.waiting: list[set[str]] = [set() for _ in plans]  # each plan's trials of its round without a record
        self.finished = [False] * len(plans)

    def start(self) -> list[tuple[int, Suite, RunStore, list[TrialSpec], dict[str, dict]]]:
        """Round 0 of every plan: (plan index, its suite, its store, the trials it wants, their halving
        directives: ``halving``)."""
        return [self._todo(i) for i in range(len(self.plans))]

    def _todo(self, i: int) -> tuple[int, Suite, RunStore, list[TrialSpec], dict[str, dict]]:
        plan, store = self.plans[i]
        wanted = plan.wanted()
        return i, plan.suite, store, wanted, halving(plan, wanted)

    def expect(self, i: int, trial_ids) -> None:
        """Plan ``i``'s round waits for these trials' records."""
        self.waiting[i].update(trial_ids)

    def arrived(self, trial_id: str) -> None:
        for waiting in self.waiting:
            waiting.discard(trial_id)

    def advance(self) -> list[tuple[int, Suite, RunStore, list[TrialSpec], dict[str, dict]]]:
        """The next round of each plan whose round has every record, judged now (its ``adaptive.json``
        written); a plan with no rule left to apply is finished. [] when no plan is ready."""
        out = []
        for i, (plan, store) in enumerate(self.plans):
            if self.finished[i] or self.waiting[i]:
                continue
            self.rounds[i] += 1
            going = self.rounds[i] <= MAX_ROUNDS and self._next(plan, store, self.rounds[i])
            write_record(store, plan)  # every run dir says what this run's rules did (an exhaustive run: nothing)
            if going:
                out.append(self._todo(i))
            else:
                self.finished[i] = True
        return out

    @property
    def done(self) -> bool:
        return all(self.finished)

    @staticmethod
    def _next(plan: Plan, store: RunStore, round_no: int) -> bool:
        """Plan ``plan`` after judging its records: whether a rule applies (its next round: ``plan.wanted()``)."""
        if not adaptive(plan):
            return False
        results, frame = judge_store(plan.suite, store)
        plan.claim_cells = claim_cells(plan, frame)
        plan.halted = set(frame.loc[frame["status"] == "halted", "trial_id"]) if len(frame) else set()
        nxt = next_round(plan, results, round_no)
        if nxt is not None:
            plan.suite = nxt
        elif plan.rules.active and plan.open < len(plan.suite.seeds):
            take_look(plan, results, frame, round_no)
        elif not plan.rules.grow or plan.growth or len(plan.suite.seeds) >= plan.rules.grow \
                or grow_seeds(plan, results, frame, round_no) is None:
            return False
        return True


def claim_cells(plan: Plan, frame) -> dict[str, set[str]]:
    """Each claim's cells (first-seed trial ids) in ``frame``."""
    if frame is None or not len(frame):
        return {}
    first = plan.suite.seeds[0]
    out = {}
    for claim in plan.suite.claims:
        cf = claim_frame(claim, frame)
        out[claim.id] = set(cf.loc[cf["seed"] == first, "trial_id"])
    return out


def evaluate(claims: list, frame, design, curves, doc: dict[str, Any], variants: bool = True) -> list:
    """Each claim's result (``claims.evaluate_claims``), in order, with what the loop did for it (``doc``: a
    run dir's ``adaptive.json``, ``read_doc``): a claim stopped for futility is judged on the seeds of its
    look only (later seeds may hold only other claims' cells) and reported inconclusive (``apply_doc``); when
    some claims grew their seeds, every other claim is judged on the registered seeds."""
    at: dict[int, list] = {}
    for c in claims:
        at.setdefault(judged_seeds(c.id, doc), []).append(c)
    by_id = {}
    seeds = sorted(frame["seed"].unique()) if "seed" in frame.columns else []
    for n, group in at.items():
        part = frame if not n else frame[frame["seed"].isin(seeds[:n])]
        cur = curves
        if n and curves is not None and len(curves) and "trial_id" in curves.columns:
            cur = curves[curves["trial_id"].isin(part["trial_id"])]
        for r in evaluate_claims(group, part, design, cur, variants):
            by_id[r.claim_id] = r
    results = two_stage([by_id[c.id] for c in claims], grow_rule(doc))
    apply_doc(results, doc)
    return results


def grow_rule(doc: dict[str, Any]) -> int:
    """The ``grow`` rule a run applied (``doc``: its ``adaptive.json``); 0 when none."""
    compute = doc.get("compute") if isinstance(doc.get("compute"), dict) else {}
    g = compute.get("grow", 0)
    return int(g) if isinstance(g, int) and not isinstance(g, bool) else 0


def judged_seeds(claim_id: str, doc: dict[str, Any]) -> int:
    """How many seeds (a prefix) a claim is judged on, by what the loop did (``doc``); 0: every seed."""
    stopped = doc.get("stopped") if isinstance(doc.get("stopped"), dict) else {}
    grown = doc.get("grown") if isinstance(doc.get("grown"), dict) else {}
    why = stopped.get(claim_id)
    if isinstance(why, dict):
        return int(why.get("seeds", 0))
    registered = doc.get("registered_seeds")
    if grown and claim_id not in grown and isinstance(registered, int) and registered > 0:
        return registered
    return 0


def apply_doc(results: list, doc: dict[str, Any]) -> None:
    """Each result's diagnostics carry what the loop did for its claim (extensions, the look it stopped at,
    the trials pruning skipped); a claim stopped for futility is inconclusive, with the look's p-values."""
    taken = [e for e in doc.get("extensions", []) if isinstance(e, dict)]
    stopped = doc.get("stopped") if isinstance(doc.get("stopped"), dict) else {}
    skipped = doc.get("skipped_by_claim") if isinstance(doc.get("skipped_by_claim"), dict) else {}
    grown = doc.get("grown") if isinstance(doc.get("grown"), dict) else {}
    halted = doc.get("halted_by_claim") if isinstance(doc.get("halted_by_claim"), dict) else {}
    for r in results:
        g = grown.get(r.claim_id)
        if isinstance(g, dict):
            r.diagnostics["grown"] = dict(g) | {"text": (
                f"seeds grown from {g.get('from')} to {g.get('seeds')}: at {g.get('from')} seeds its interval straddled "
                f"a boundary (p_supported {float(g.get('p_supported', 1)):.2g}, p_refuted "
                f"{float(g.get('p_refuted', 1)):.2g})")}
        r.diagnostics.setdefault("extensions", []).extend(e.get("text", "") for e in taken
                                                         if r.claim_id in e.get("claims", []))
        if r.claim_id in skipped:
            r.diagnostics["pruned"] = int(skipped[r.claim_id])
        if int(halted.get(r.claim_id, 0) or 0):
            r.diagnostics["halted"] = int(halted[r.claim_id])
        why = stopped.get(r.claim_id)
        if not isinstance(why, dict):
            continue
        text = (f"stopped for futility at look {why.get('look')} ({why.get('seeds')} seeds): p_supported "
                f"{float(why.get('p_supported', 1)):.2g} and p_refuted {float(why.get('p_refuted', 1)):.2g} "
                f"both above {float(why.get('threshold', FUTILITY)):g}")
        r.diagnostics["stopped"] = dict(why) | {"text": text}
        r.verdict = "inconclusive"
        r.p_supported, r.p_refuted = float(why.get("p_supported", 1.0)), float(why.get("p_refuted", 1.0))
        r.summary = f"{text}; {r.summary}"
        if r.robustness:
            r.robustness = dict(r.robustness) | {"label": "undecided"}
