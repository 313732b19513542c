"""Isolation: compare scientific levels after re-tuning the nuisance axes.

Per stratum, scientific level and seed, the best trial over the nuisance axes
is chosen on the validation metric (``analysis/selection.py``: the one rule) and reported on the test metric (the tuning
playbook's protocol). Diverged and failed trials cannot be chosen; a cell whose
trials all diverged has no value (NaN) and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from claimbench.analysis.selection import best_index


@dataclass(frozen=True)
class Design:
    """The roles of a suite's axes, which claims need to isolate their effect."""

    scientific: tuple[str, ...]
    nuisance: tuple[str, ...]
    fixed: tuple[str, ...]  # swept fixed axes: each level is a stratum
    constants: dict[str, Any] = field(default_factory=dict)  # everything held fixed, for caveats
    #: table-valued axes -> the parameters each sets (an arm on those parameters is a choice of that axis)
    tables: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: each swept axis -> its registered values, the grid's extent (a value a rule left untrained, by pruning or
    #: halving, is absent from the frames but still bounds the grid)
    grids: dict[str, tuple[Any, ...]] = field(default_factory=dict)


def strata_of(design: Design, axis: str) -> list[str]:
    """Columns that split the frame into separately evaluated groups for a claim on ``axis``."""
    return [a for a in (*design.fixed, *design.scientific) if a != axis]


def isolate(frame: pd.DataFrame, axis: str, design: Design, select: str = "val_acc",
            report: str = "test_acc") -> pd.DataFrame:
    """Best-over-nuisance table: one row per (stratum..., axis level, seed).

    Columns: the strata, ``axis``, ``seed``, ``value`` (``report`` of the chosen
    trial), ``selected`` (its ``select`` value), ``trial_id``, the chosen
    nuisance values, ``n_trials`` and ``n_diverged`` of the cell.
    """
    keys = [*strata_of(design, axis), axis, "seed"]
    out = []
    for key, cell in frame.groupby(keys, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(keys, key))
        row["n_trials"] = len(cell)
        row["n_diverged"] = int((cell["status"] == "diverged").sum())
        i = best_index(cell, select, design.nuisance)
        if i is None:
            row.update(value=float("nan"), selected=float("nan"), trial_id=None)
            row.update({n: None for n in design.nuisance})
        else:
            best = cell.loc[i]
            row.update(value=float(best[report]), selected=float(best[select]), trial_id=best["trial_id"])
            row.update({n: best[n] for n in design.nuisance})
        out.append(row)
    return pd.DataFrame(out)
