"""What the quantity-based claim kinds share: common parameters, arms, strata, caveats, verdicts.

An *arm* is a table column -> value (or list of values), e.g. ``{optimizer =
"adam"}``: its trials are the rows matching every key. A claim first keeps the
rows matching its ``where``; its tuned axes are its ``tune`` list (default: the
suite's nuisance axes); its strata are the other swept axes (fixed, scientific,
nuisance not tuned) that are not the claim's own axis or arm keys and take more
than one value. Each stratum is judged on its own and the verdicts combine as in
``common.by_stratum``: unanimous, else inconclusive. Seeds pair the arms (same
seed: same init and data).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from claimbench.analysis.quantities import Quantity, cell_quantities, parse_quantity, require, restrict
from claimbench.analysis.selection import best_index
from claimbench.claims.base import Claim, ClaimResult, Design, Param, combined

#: Parameters every quantity-based kind takes.
COMMON_PARAMS: dict[str, Param] = {
    "quantity": Param(str, "test_acc", "the per-cell quantity (see analysis/quantities.py)"),
    "select": Param(str, "val_acc", "metric that selects the trial of a cell (in its direction: accuracies higher, "
                                    "losses lower)", metric=True),
    "tune": Param(list, None, "axes tuned within a cell (default: the suite's nuisance axes)"),
    "where": Param(dict, None, "column -> value or list of values: keep only these trials"),
    "confidence": Param(float, 0.95, "two-sided confidence of the intervals (each side errs at half the rest)",
                        gt=0.0, lt=1.0),
    "tolerance": Param(float, 0.01, "range_width quantities: good is within this of the best", ge=0.0),
}


def params(exclude: Sequence[str] = (), **own: Param) -> dict[str, Param]:
    """A kind's parameters: its own, then the common ones (its own override a common default)."""
    merged = {**own, **COMMON_PARAMS, **{k: v for k, v in own.items() if k in COMMON_PARAMS}}
    return {k: v for k, v in merged.items() if k not in exclude}


def arm_label(arm: dict[str, Any]) -> str:
    if not arm:
        return "all trials"
    return ", ".join(f"{k}={_text(v)}" for k, v in arm.items())


def _text(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return "|".join(_text(x) for x in v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def check_arm(arm: Any, name: str) -> dict[str, Any]:
    if not isinstance(arm, dict):
        raise TypeError(f"parameter {name!r} must be a table of column = value, got {arm!r}")
    return arm


@dataclass
class Setup:
    """A claim's frame after ``where``, its tuned axes and its strata."""

    frame: pd.DataFrame
    tuned: tuple[str, ...]
    strata: list[str]
    quantity: Quantity
    caveats: list[str]


def prepare(claim: Claim, frame: pd.DataFrame, design: Design, own: Iterable[str] = (),
            quantity: str | None = None, also: Sequence[str] = ()) -> Setup:
    """Apply ``where``; resolve the tuned axes (``tune`` or the nuisance axes, minus ``own``, the
    claim's axis and arm keys) and the strata. ``quantity`` overrides the claim's; ``also`` lists
    further quantities the claim takes. KeyError names a column the frame lacks."""
    p = claim.params
    own = set(own)
    # an arm on a parameter of a table-valued axis (e.g. optimizer of a "setup" axis) picks levels of that axis
    own |= {name for name, keys in design.tables.items() if own & set(keys)}
    q = parse_quantity(quantity or p.get("quantity", "test_acc"))
    sub = restrict(frame, p.get("where"))
    tune = p.get("tune")
    if tune is not None:
        require(frame, tune)
    tuned = tuple(t for t in (design.nuisance if tune is None else tune) if t not in own and t in frame.columns)
    for extra in (q, *(parse_quantity(a) for a in also)):
        if extra.op in ("argbest", "max_stable", "min_diverging", "range_width") and extra.column not in tuned \
                and extra.column not in own:
            tuned = (*tuned, extra.column)  # the axis a quantity looks across varies within the cell
    strata = [a for a in dict.fromkeys((*design.fixed, *design.scientific, *design.nuisance))
              if a not in tuned and a not in own and a in sub.columns and sub[a].nunique(dropna=False) > 1]
    caveats = []
    if p.get("where"):
        caveats.append(f"only trials with {arm_label(p['where'])}")
    return Setup(frame=sub, tuned=tuned, strata=strata, quantity=q, caveats=caveats)


def quantities(setup: Setup, frame: pd.DataFrame, keys: Sequence[str], claim: Claim,
               quantity: Quantity | None = None) -> pd.DataFrame:
    p = claim.params
    return cell_quantities(frame, keys, quantity or setup.quantity, select=p.get("select", "val_acc"),
                           tolerance=p.get("tolerance", 0.01), tuned=setup.tuned)


def per_stratum(claim: Claim, design: Design, setup: Setup,
                evaluate_one: Callable[[pd.DataFrame, dict], ClaimResult], kind: str) -> ClaimResult:
    """``evaluate_one`` on each stratum, combined (unanimous, else inconclusive).

    A stratum's result may carry sub-results of its own (several arms); they are
    lifted into the top-level ``strata`` so that every leaf is shown once.
    """
    if setup.frame.empty:
        result = undecided(claim, kind, "no trial matches the claim's where/arms: the matrix cannot decide")
    elif not setup.strata:
        result = evaluate_one(setup.frame, {})
    else:
        parts = []
        for key, sub in setup.frame.groupby(setup.strata, sort=True, dropna=False):
            key = key if isinstance(key, tuple) else (key,)
            parts.append(evaluate_one(sub, dict(zip(setup.strata, (_plain(k) for k in key)))))
        joint = combined(parts, "all")
        note = "" if len({p.verdict for p in parts}) == 1 else " — the verdict depends on the stratum"
        leaves = [leaf for p in parts for leaf in (p.strata or [p])]
        first = parts[0]
        result = ClaimResult(
            claim_id=claim.id, kind=kind, verdict=joint.verdict, statistic=first.statistic, effect=None, ci=None,
            n_seeds=max(p.n_seeds for p in parts), n_trials=sum(p.n_trials for p in parts), unit=first.unit,
            p_supported=joint.p_supported, p_refuted=joint.p_refuted,
            method=first.method, summary="; ".join(f"{stratum_text(p.stratum)}: {p.verdict}" for p in parts) + note,
            caveats=[f"{stratum_text(p.stratum)}: {c}" for p in parts for c in p.caveats], strata=leaves)
    for leaf in [result, *result.strata]:
        leaf.faq_section, leaf.paraphrase = claim.faq_section, claim.paraphrase
    constants = ", ".join(f"{k}={v}" for k, v in design.constants.items())
    result.caveats[:0] = ([f"held fixed: {constants}"] if constants else []) + setup.caveats
    return result


def undecided(claim: Claim, name: str, reason: str, **fields: Any) -> ClaimResult:
    """An inconclusive result of kind ``name`` that says why the matrix cannot decide; ``fields``
    fill in the rest (data, caveats, counts)."""
    from claimbench.claims.base import KINDS  # the kind is registered by the time a claim is evaluated
    k = KINDS[name]
    base = dict(claim_id=claim.id, kind=name, statistic=k.statistic, method=k.method, n_seeds=0, n_trials=0,
                effect=None, ci=None)
    base.update(fields)
    return ClaimResult(verdict="inconclusive", summary=reason, **base)


def alpha(p: dict[str, Any]) -> float:
    """The one-sided error per side that a claim's ``confidence`` (two-sided, default 0.95) gives."""
    return (1.0 - float(p.get("confidence", 0.95))) / 2


def stratum_text(stratum: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in stratum.items())


def paired_seeds(wide: pd.DataFrame) -> int:
    """Seeds with a value in every column (the rows a paired statistic can use)."""
    return int(np.isfinite(wide.to_numpy(dtype=float)).all(axis=1).sum()) if wide.size else 0


def missing_caveats(long: pd.DataFrame, label: str, q: Quantity) -> list[str]:
    """Cells without a value (every trial diverged or failed) and censored cells."""
    out = []
    if long.empty:
        return out
    empty = long[long["value"].isna() & ~long["censored"].astype(bool)]
    if not empty.empty:
        out.append(f"no value of {q.text} (no usable trial) at "
                   + ", ".join(f"{label}={_text(r[label])}/seed {r['seed']}" for _, r in empty.iterrows()))
    censored = long[long["censored"].astype(bool)]
    if not censored.empty:
        what = {"min": "no trial reached the target: the value is a lower bound (steps run)",
                "max_stable": "the largest stable value is the grid edge or none is stable",
                "min_diverging": "no tested value diverged: the limit lies beyond the grid (NaN)",
                "range_width": "the good range touches the grid edge: its true width may be larger"}.get(q.op, "censored")
        levels = sorted({_text(v) for v in censored[label]})
        where = "" if levels == ["all trials"] else f" ({label} = {', '.join(levels)})"
        out.append(f"{q.text} censored in {len(censored)} of {len(long)} cells{where}: {what}")
    return out


def edge_caveats(long: pd.DataFrame, frame: pd.DataFrame, tuned: Sequence[str], label: str) -> list[str]:
    """The selected trial's tuned value lies on the edge of its grid for most seeds of a level."""
    out = []
    if long.empty:
        return out
    for n in tuned:
        if n not in long.columns or n not in frame.columns:
            continue
        grid = sorted(frame[n].dropna().unique())
        if len(grid) < 3 or not all(isinstance(g, (int, float, np.number)) and not isinstance(g, bool) for g in grid):
            continue
        for edge, name in ((grid[0], "lowest"), (grid[-1], "highest")):
            levels = [lv for lv, cells in long.groupby(label, sort=True)
                      if (cells[n] == edge).sum() * 2 > cells["seed"].nunique()]
            if levels:
                out.append(f"the best {n} is the {name} tested ({edge:g}) at {label} = "
                           f"{', '.join(_text(lv) for lv in levels)}: the optimum may lie outside the grid")
    return out


# ------------------------------------------------------------------ plain data

def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Records of plain Python values (numpy scalars unwrapped) for ``ClaimResult.data``."""
    return [{str(k): _plain(v) for k, v in row.items()} for row in df.to_dict("records")]


def _plain(value: Any) -> Any:
    if isinstance(value, (np.generic,)):
        return value.item()
    return value


def fmt_num(x: float, signed: bool = False) -> str:
    if x is None or not math.isfinite(x):
        return "n/a" if x is None or math.isnan(x) else ("inf" if x > 0 else "-inf")
    return f"{x:+.4g}" if signed else f"{x:.4g}"


def fmt_ci(ci: tuple[float, float], signed: bool = False) -> str:
    return f"CI {fmt_num(ci[0], signed)} to {fmt_num(ci[1], signed)}"


def with_stratum(result: ClaimResult, **extra: Any) -> ClaimResult:
    return replace(result, stratum={**result.stratum, **extra})


# ------------------------------------------------------------------ levels of an axis

def ordered_levels(values: Iterable[Any], order: Sequence[Any] | None = None) -> tuple[list[Any], list[Any]]:
    """The levels in the claim's order (``order`` when given, else sorted by value) and those
    present in the frame but not in ``order`` (left out)."""
    present = list(dict.fromkeys(_plain(v) for v in values))
    if order:
        listed = [_plain(v) for v in order]
        return [v for v in listed if v in present], [v for v in present if v not in listed]
    try:
        return sorted(present, key=lambda v: float(v)), []
    except (TypeError, ValueError):
        return sorted(present, key=str), []


def is_numeric(levels: Sequence[Any]) -> bool:
    return bool(levels) and all(isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_))
                                for v in levels)


# ------------------------------------------------------------------ arms paired by seed

def arm_cells(setup: Setup, sub: pd.DataFrame, claim: Claim, arm: dict[str, Any],
              quantity: Quantity | None = None) -> pd.DataFrame:
    """One row per seed: the quantity over the arm's trials of this stratum (``arm`` column: its label)."""
    long = quantities(setup, restrict(sub, arm), ["seed"], claim, quantity)
    return long.assign(arm=arm_label(arm))


def selected_trials(cells: pd.DataFrame, arm_frame: pd.DataFrame, group: str, q: Quantity,
                    **extra: Any) -> list[dict[str, Any]]:
    """Per seed, the trials behind a cell's value (``ClaimResult.selected``): the selected trial of a
    selecting quantity (``cells``' ``trial_id``); for ``min:``/``max:`` the completed trial attaining it;
    for other reductions every completed trial of the cell. Each entry names the quantity; ``extra``
    (e.g. ``level``) is added to each."""
    out = []
    tag = {"quantity": q.text, **extra}
    if "trial_id" in cells.columns:
        for _, row in cells.iterrows():
            if row["trial_id"] is not None and row["trial_id"] == row["trial_id"]:
                out.append({"group": group, "seed": int(row["seed"]), "trial_ids": [str(row["trial_id"])], **tag})
        return out
    ok = arm_frame[arm_frame["status"] == "completed"]
    if q.column not in ok.columns:
        return out
    for seed, cell in ok.groupby("seed", sort=True):
        values = pd.to_numeric(cell[q.column], errors="coerce")
        if q.op in ("min", "max") and values.notna().any():
            ids = [str(cell.loc[best_index(cell, q.column, sign=1 if q.op == "max" else -1), "trial_id"])]
        else:
            ids = [str(t) for t in cell.loc[values.notna(), "trial_id"]]
        if ids:
            out.append({"group": group, "seed": int(seed), "trial_ids": ids, **tag})
    return out


def level_selected(long: pd.DataFrame, frame: pd.DataFrame, axis: str, levels: Sequence[Any],
                   q: Quantity) -> list[dict[str, Any]]:
    """``selected_trials`` per level of ``axis`` (``long``: the cells keyed by axis and seed; ``frame``:
    the stratum's trials), each group named ``axis=level``."""
    out = []
    for lv in levels:
        cells = long[long[axis] == lv] if axis in long.columns else long.iloc[0:0]
        trials = frame[frame[axis] == lv] if axis in frame.columns else frame.iloc[0:0]
        out += selected_trials(cells, trials, f"{axis}={_text(lv)}", q, level=_plain(lv))
    return out


#: How ``analysis.stats.seed_mean_ci`` intervals are computed (the ``method`` of per-level estimates).
SEED_MEAN_METHOD = "mean over seeds; Student t interval over seeds"


def mean_method(p: dict[str, Any]) -> str:
    """The method of a ``seed_mean_ci`` table at the claim's ``confidence``."""
    return f"{SEED_MEAN_METHOD} ({float(p.get('confidence', 0.95)):.0%}, two-sided)"


def estimates(per_level: pd.DataFrame, method: str = SEED_MEAN_METHOD, label: str | None = None,
              key: str = "level") -> list[dict[str, Any]]:
    """``ClaimResult.estimates`` from a per-level (or per-arm) table with ``mean``, ``lo``, ``hi``, ``n``
    (``seed_mean_ci``'s columns, and any the kind adds): its records, each with its ``group``
    (``label=value``, or the value when ``label`` is None) and the interval's ``method``."""
    out = []
    for row in records(per_level):
        value = row.get(key)
        group = _text(value) if label is None else f"{label}={_text(value)}"
        out.append({"group": group, **row, "method": method})
    return out


def arm_estimates(wide: pd.DataFrame, labels: dict[str, str], p: dict[str, Any]) -> list[dict[str, Any]]:
    """``ClaimResult.estimates`` of two arms paired by seed (``wide``: seeds x ``a``, ``b``): each arm's
    mean over its seeds with its Student t interval, ``side`` naming the arm and ``group`` its label."""
    from claimbench.analysis.stats import seed_mean_ci

    sides = [s for s in ("a", "b") if s in wide.columns]
    if not sides or wide.empty:
        return []
    per_arm = seed_mean_ci(wide[sides].astype(float), p.get("confidence", 0.95)).rename(columns={"level": "side"})
    out = estimates(per_arm, mean_method(p), key="side")
    for row in out:
        row["group"] = f"{row['side']}: {labels.get(row['side'], row['side'])}"
    return out


def paired(cells: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Seeds x arms of ``value``: the union of the arms' seeds, NaN where an arm lacks one."""
    seeds = sorted({s for long in cells.values() for s in long["seed"]})
    return pd.DataFrame({name: long.set_index("seed")["value"].reindex(seeds).astype(float)
                         for name, long in cells.items()}, index=pd.Index(seeds, name="seed"))


def arm_keys(*arms_: Any) -> set[str]:
    out: set[str] = set()
    for arm in arms_:
        for a in (arm if isinstance(arm, list) else [arm]):
            if isinstance(a, dict):
                out |= set(a)
    return out


def empty_arm_reason(cells: dict[str, pd.DataFrame], labels: dict[str, str]) -> str | None:
    for name, long in cells.items():
        if long.empty:
            return f"arm {name} ({labels[name]}) has no trials: the matrix cannot decide"
    return None


# ------------------------------------------------------------------ load-time checks

ENUMS = {"direction": ("increasing", "decreasing"), "goal": ("higher", "lower"),
         "test": ("superiority", "noninferiority")}
QUANTITY_KINDS = ("monotone_trend", "ranking", "paired_comparison", "ratio_in_range", "range_width_comparison",
                  "equivalence", "timing_ratio")


def check_params(kind: str, p: dict[str, Any], columns: set[str]) -> None:
    """Checks a suite loader runs on a quantity-based claim's resolved params: the quantity grammar,
    the choices, the margins and bounds, and that every ``where``/arm/``tune`` key names a column
    (``columns``: the spec fields and the suite's axes). ValueError naming the parameter."""
    if kind not in QUANTITY_KINDS:
        return

    def columns_of(name: str, table: Any) -> None:
        if not isinstance(table, dict):
            raise ValueError(f"parameter {name!r} must be a table of column = value, got {table!r}")
        unknown = [k for k in table if k not in columns]
        if unknown:
            raise ValueError(f"parameter {name!r} names {', '.join(map(repr, unknown))}, which is not a trial "
                             f"parameter or axis")

    def quantity(name: str, text: Any) -> None:
        try:
            parse_quantity(text)
        except ValueError as e:
            raise ValueError(f"parameter {name!r}: {e}") from None

    if p.get("quantity") is not None:
        quantity("quantity", p["quantity"])
    for key, allowed in ENUMS.items():
        if key in p and p[key] not in allowed:
            raise ValueError(f"parameter {key!r} must be one of {', '.join(allowed)}, got {p[key]!r}")
    if p.get("margin") is not None and p["margin"] < 0:
        raise ValueError(f"parameter 'margin' must be >= 0, got {p['margin']!r}")
    if "low" in p and not (0 <= p["low"] <= p["high"]):
        raise ValueError(f"0 <= low <= high must hold, got low={p['low']!r}, high={p['high']!r}")
    if p.get("where"):
        columns_of("where", p["where"])
    for t in p.get("tune") or []:
        if t not in columns:
            raise ValueError(f"parameter 'tune' names {t!r}, which is not a trial parameter or axis")
    a = p.get("a")
    for i, arm in enumerate(a if isinstance(a, list) else [a] if a is not None else []):
        columns_of(f"a[{i}]" if isinstance(a, list) else "a", arm)
    if isinstance(a, list) and not a:
        raise ValueError("parameter 'a' lists no arm")
    b = p.get("b")
    if b == "best":
        if not p.get("axis"):
            raise ValueError('b = "best" needs axis = "<the axis whose best level a is compared with>"')
    elif isinstance(b, list):
        if not isinstance(a, list) or len(a) != len(b):
            raise ValueError(f"a list b pairs with a list a of the same length: a has "
                             f"{len(a) if isinstance(a, list) else 'one arm'}, b has {len(b)}")
        for i, arm in enumerate(b):
            columns_of(f"b[{i}]", arm)
    elif b is not None:
        columns_of("b", b)
    if p.get("axis") and p["axis"] not in columns:
        raise ValueError(f"parameter 'axis' names {p['axis']!r}, which is not a trial parameter or axis")
    for side in ("num", "den"):
        if side in p:
            spec = p[side]
            if not isinstance(spec, dict) or set(spec) - {"where", "quantity"}:
                raise ValueError(f"parameter {side!r} must be a table {{where = {{...}}, quantity = \"...\"}}, "
                                 f"got {spec!r}")
            columns_of(f"{side}.where", spec.get("where") or {})
            if spec.get("quantity") is not None:
                quantity(f"{side}.quantity", spec["quantity"])
