"""Quantities: one scalar per cell, the unit every claim kind compares.

A *cell* is one (strata..., arm or level, seed): the trials in it differ only in
the tuned axes (the suite's nuisance axes, or a claim's ``tune`` list). A
*quantity* string says which scalar to take from a cell's trials:

``<col>``
    ``col`` of the trial selected by ``select`` (its best value in its direction, default
    ``val_acc``, over the completed trials where it is finite; ties broken as
    ``analysis/selection.py`` says): select on
    validation, report on test (the tuning playbook's protocol).
``min:<col>``, ``max:<col>``, ``mean:<col>``, ``median:<col>``
    over the cell's completed trials (NaN values ignored). ``min:steps_to_target``
    and ``min:examples_to_target`` are *censored* in a cell where no trial
    reached the target: the value is then the largest ``steps_done`` (resp.
    ``examples_done``) in the cell, a lower bound.
``argbest:<axis>``
    ``axis`` of the selected trial (e.g. the tuned best learning rate).
``max_stable:<axis>``
    the largest ``axis`` value none of whose trials diverged (censored when it
    is the largest value tested: the true limit may lie beyond the grid; NaN
    and censored when every value diverged).
``min_diverging:<axis>``
    the smallest ``axis`` value some trial of which diverged (NaN and censored
    when none diverged).
``range_width:<axis>``
    width in log2 units of the set of ``axis`` values whose best completed
    trial reached within ``tolerance`` of the cell's best ``select``: log2(max
    / min) plus one grid step (censored when the set touches the grid edge).
``rate:<status>``
    the fraction of the cell's trials with that status (``rate:diverged``).

``cell_quantities`` returns the long table (one row per cell); ``to_wide``
pivots it to seeds x levels for the paired intervals of ``analysis.inference``.
"""

from __future__ import annotations

import math

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from claimbench.analysis.selection import best_index, best_trials

REDUCERS = ("min", "max", "mean", "median")
AXIS_OPS = ("argbest", "max_stable", "min_diverging", "range_width")
STATUSES = ("completed", "diverged", "failed")
#: min over these is censored where no trial reached the target: (column, the lower bound's column)
TO_TARGET = {"steps_to_target": "steps_done", "examples_to_target": "examples_done",
             "tokens_to_target": "tokens_done"}


@dataclass(frozen=True)
class Quantity:
    """A parsed quantity string: ``op`` is ``select`` for a bare column name."""

    op: str
    column: str
    text: str

    @property
    def selects(self) -> bool:
        """Whether the value comes from the one trial that ``select`` picks."""
        return self.op in ("select", "argbest")

    @property
    def unit(self) -> str:
        """The unit of the quantity's values (and of differences of them)."""
        if self.op == "range_width":
            return "log2 units"
        if self.op == "rate":
            return "fraction of trials"
        return column_unit(self.column)

    def describe(self, select: str = "val_acc") -> str:
        """A phrase for summaries and captions."""
        if self.op == "select":
            return f"{self.column} (of the trial best on {select})"
        if self.op == "argbest":
            return f"best {self.column} (chosen on {select})"
        if self.op in REDUCERS:
            return f"{self.op} {self.column}"
        if self.op == "max_stable":
            return f"largest stable {self.column}"
        if self.op == "min_diverging":
            return f"smallest diverging {self.column}"
        if self.op == "range_width":
            return f"width of the good {self.column} range (log2)"
        return f"fraction of trials {self.column}"


def column_unit(column: str) -> str:
    """The unit of a trial column: accuracy as a fraction (0.01 = 1 point), losses, R², steps, ..."""
    if column.endswith("_acc") or column == "gap":
        return "accuracy"
    if column.endswith("_r2"):
        return "R²"
    if column.endswith("_loss") or column.endswith("_mse"):
        return column.rsplit("_", 1)[-1]
    if column.endswith("_s"):
        return "s"
    if column.startswith("steps") or column in ("best_step", "diverged_step"):
        return "steps"
    if column.startswith("examples"):
        return "examples"
    if column in ("lr",) or column.endswith("_lr"):
        return "learning rate"
    if column.startswith("b_simple") or column == "batch_size":
        return "examples per batch"
    return ""


def parse_quantity(text: str) -> Quantity:
    """``"test_acc"`` or ``"op:column"``; ValueError naming the grammar for anything else."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"a quantity must be a non-empty string, got {text!r}")
    op, sep, column = text.strip().partition(":")
    if not sep:
        return Quantity("select", op, text)
    if op not in (*REDUCERS, *AXIS_OPS, "rate") or not column:
        raise ValueError(f"unknown quantity {text!r}: write <col>, min|max|mean|median:<col>, "
                         f"argbest|max_stable|min_diverging|range_width:<axis> or rate:diverged")
    if op == "rate" and column not in STATUSES:
        raise ValueError(f"rate:{column} is not a status: use rate:{'|'.join(STATUSES)}")
    return Quantity(op, column, text)


def require(frame: pd.DataFrame, columns: Iterable[str]) -> None:
    """KeyError naming the first column the frame lacks."""
    for c in columns:
        if c not in frame.columns:
            raise KeyError(f"column {c!r} is not in the trial frame (it has: {', '.join(map(str, frame.columns))})")


def restrict(frame: pd.DataFrame, where: dict[str, Any] | None) -> pd.DataFrame:
    """The rows whose ``column`` equals the value (or is one of the listed values) for every key."""
    if not where:
        return frame
    require(frame, where)
    mask = pd.Series(True, index=frame.index)
    for col, value in where.items():
        values = list(value) if isinstance(value, (list, tuple, set)) else [value]
        mask &= frame[col].isin(values)
    return frame[mask]


def cell_quantities(frame: pd.DataFrame, keys: Sequence[str], quantity: str | Quantity,
                    select: str = "val_acc", tolerance: float = 0.01,
                    tuned: Sequence[str] = ()) -> pd.DataFrame:
    """One row per cell (a group of ``keys``): the keys, ``value``, ``censored``, ``n_trials``,
    ``n_diverged``; for a selecting quantity also ``trial_id`` and the selected trial's ``tuned``
    values; for ``range_width`` also ``lo``, ``hi`` and ``n_good`` of the good set.

    Raises KeyError naming a column the frame lacks.
    """
    q = parse_quantity(quantity) if isinstance(quantity, str) else quantity
    keys = list(keys)
    require(frame, [*keys, "status"])
    need = {"select": [q.column, select], "argbest": [q.column, select], "range_width": [q.column, select],
            "max_stable": [q.column], "min_diverging": [q.column], "rate": []}.get(q.op, [q.column])
    require(frame, need)
    tuned = [t for t in tuned if t in frame.columns and t not in keys]
    columns = [*keys, "value", "censored", "n_trials", "n_diverged"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    if q.selects and keys:
        return _selected_cells(frame, keys, q, select, tuned, columns)
    grid = None
    if q.op == "range_width":
        grid = np.array(sorted(pd.to_numeric(frame[q.column]).dropna().unique()), dtype=float)
    rows = []
    for key, cell in frame.groupby(keys, sort=True, dropna=False) if keys else [((), frame)]:
        key = key if isinstance(key, tuple) else (key,)
        row: dict[str, Any] = dict(zip(keys, (_plain(k) for k in key)))
        row["n_trials"] = int(len(cell))
        row["n_diverged"] = int((cell["status"] == "diverged").sum())
        row.update(_one_cell(cell, q, select, tolerance, tuned, grid))
        rows.append(row)
    out = pd.DataFrame(rows)
    return out[[*columns, *[c for c in out.columns if c not in columns]]]


def _selected_cells(frame: pd.DataFrame, keys: list[str], q: Quantity, select: str, tuned: list[str],
                    columns: list[str]) -> pd.DataFrame:
    """``cell_quantities`` for a selecting quantity, in one grouped pass: per cell the selected trial
    (``analysis/selection.py``) gives the value."""
    groups = frame.groupby(keys, sort=True, dropna=False)
    counts = pd.DataFrame({"n_trials": groups.size(),
                           "n_diverged": groups["status"].agg(lambda s: int((s == "diverged").sum()))})
    best = best_trials(frame, keys, select, tuned)
    lookup = {tuple(_missing_key(v) for v in key): i
              for i, key in zip(best.index, best[keys].itertuples(index=False, name=None))}
    rows = []
    for key, n in counts.iterrows():
        key = key if isinstance(key, tuple) else (key,)
        i = lookup.get(tuple(_missing_key(v) for v in key))
        row: dict[str, Any] = dict(zip(keys, (_plain(k) for k in key)))
        if i is None or (isinstance(i, float) and math.isnan(i)):
            row.update(value=float("nan"), censored=False, trial_id=None, **{t: None for t in tuned})
        else:
            best = frame.loc[i]
            row.update(value=_number(best[q.column], q.text), censored=False, trial_id=best.get("trial_id"),
                       **{t: _plain(best[t]) for t in tuned})
        row["n_trials"], row["n_diverged"] = int(n["n_trials"]), int(n["n_diverged"])
        rows.append(row)
    out = pd.DataFrame(rows)
    return out[[*columns, *[c for c in out.columns if c not in columns]]]


def _missing_key(value: Any) -> Any:
    """A group key with None and NaN made one hashable value (groupby(dropna=False) keeps both as keys)."""
    return "\0missing" if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _one_cell(cell: pd.DataFrame, q: Quantity, select: str, tolerance: float, tuned: list[str],
              grid: np.ndarray | None) -> dict[str, Any]:
    completed = cell[cell["status"] == "completed"]
    nan = float("nan")
    if q.selects:
        out: dict[str, Any] = {"censored": False}
        i = best_index(cell, select, tuned)
        if i is None:
            out.update(value=nan, trial_id=None, **{t: None for t in tuned})
            return out
        best = cell.loc[i]
        out.update(value=_number(best[q.column], q.text), trial_id=best.get("trial_id"),
                   **{t: _plain(best[t]) for t in tuned})
        return out
    if q.op in REDUCERS:
        values = pd.to_numeric(completed[q.column], errors="coerce").dropna()
        if q.op == "min" and q.column in TO_TARGET and values.empty:
            bound_col = TO_TARGET[q.column]
            bound = _lower_bound(cell, bound_col)
            return {"value": bound, "censored": True}
        return {"value": float(getattr(values, q.op)()) if not values.empty else nan, "censored": False}
    if q.op == "rate":
        return {"value": float((cell["status"] == q.column).mean()), "censored": False}
    if q.op in ("max_stable", "min_diverging"):
        ran = cell[cell["status"].isin(("completed", "diverged"))]
        if ran.empty:
            return {"value": nan, "censored": False}
        values = pd.to_numeric(ran[q.column])
        diverged = values[ran["status"] == "diverged"]
        if q.op == "min_diverging":
            return {"value": float(diverged.min()), "censored": False} if len(diverged) else \
                {"value": nan, "censored": True}
        stable = values[~values.isin(set(diverged))]
        if stable.empty:
            return {"value": nan, "censored": True}
        top = float(stable.max())
        return {"value": top, "censored": bool(top >= float(values.max()))}
    # range_width
    lo, hi, width, n_good, censored = good_range(cell, q.column, select, tolerance, grid)
    return {"value": width, "censored": censored, "lo": lo, "hi": hi, "n_good": n_good}


def good_range(cell: pd.DataFrame, range_axis: str, metric: str, tolerance: float,
               grid: np.ndarray) -> tuple[float, float, float, int, bool]:
    """The good set of ``range_axis`` in one cell: (lo, hi, width in log2 units, n_good, censored).

    A value is good when its best completed trial (over any other tuned axes)
    reaches within ``tolerance`` of the cell's best ``metric``. Width is
    log2(hi / lo) plus one grid step (a single good value has the width of one
    grid cell); 0 when nothing is good. Censored: the set touches the grid edge.
    """
    step = float(np.median(np.diff(np.log2(grid)))) if grid.size > 1 else 1.0
    ok = cell[(cell["status"] == "completed") & pd.to_numeric(cell[metric], errors="coerce").notna()]
    if ok.empty:
        return float("nan"), float("nan"), 0.0, 0, False
    best_per_value = ok.groupby(range_axis)[metric].max()
    good = best_per_value[best_per_value >= best_per_value.max() - tolerance].index.to_numpy(dtype=float)
    lo, hi = float(good.min()), float(good.max())
    return lo, hi, float(np.log2(hi / lo) + step), int(good.size), bool(lo == grid[0] or hi == grid[-1])


def to_wide(long: pd.DataFrame, columns: str, order: Sequence[Any] | None = None,
            index: str = "seed") -> pd.DataFrame:
    """Seeds x levels of ``value`` (NaN where a cell has none), columns in ``order`` when given."""
    require(long, [index, columns, "value"])
    if long.empty:
        return pd.DataFrame(index=pd.Index([], name=index), columns=list(order or []), dtype=float)
    wide = long.pivot_table(index=index, columns=columns, values="value", aggfunc="first", dropna=False)
    wide = wide.reindex(index=sorted(long[index].unique()))
    if order is not None:
        wide = wide.reindex(columns=list(order))
    return wide.astype(float)


def _lower_bound(cell: pd.DataFrame, column: str) -> float:
    if column in cell.columns:
        values = pd.to_numeric(cell[column], errors="coerce").dropna()
        if not values.empty and values.max() > 0:
            return float(values.max())
    if column == "examples_done" and {"steps_done", "batch_size"} <= set(cell.columns):
        values = (pd.to_numeric(cell["steps_done"], errors="coerce")
                  * pd.to_numeric(cell["batch_size"], errors="coerce")).dropna()
        if not values.empty:
            return float(values.max())
    return float("nan")


def _number(value: Any, what: str) -> float:
    if value is None:
        return float("nan")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"quantity {what!r} is not numeric: got {value!r}") from None


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
