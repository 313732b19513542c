"""The one best-trial rule: which trial of a cell a claim reads.

A cell (a scientific level, a stratum, a seed) holds one trial per setting of the tuned (nuisance)
axes. Its *selected* trial is the completed trial with the best value of the selection metric, in the
metric's direction (:func:`direction`: losses and errors lower, accuracies and R² higher). An exact
tie on the selection metric goes to the trial that comes first in the tuned axes' grid order
(ascending values, axis by axis), then in the order of its spec without the code fingerprint
(:func:`spec_order`). Nothing depends on row order or on a hash of the code, so reversing or shuffling
a frame, or editing the training code without changing its arithmetic, selects the same trials.

Every place that picks a best trial calls :func:`best_trials` (or :func:`best_index`); frames come in
:func:`sort_frame` order, so even a reader that takes "the first row" sees the same row everywhere.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import math
from typing import Sequence

import numpy as np
import pandas as pd

from claimbench.errors import UserError
from claimbench.trial import HIGHER_IS_BETTER, LOWER_IS_BETTER

#: Metrics selected by their lowest value (losses, errors, latencies, distances to a target), and by their highest.
_LOWER, _HIGHER = LOWER_IS_BETTER, HIGHER_IS_BETTER
#: The columns the spec order breaks ties on: every spec column, never ``trial_id`` or ``code``.
_NOT_SPEC = ("trial_id", "code")


def direction(metric: str) -> int:
    """+1 when a higher ``metric`` is better, −1 when a lower one is; a metric with no known direction is a
    UserError (a suite selecting on it is refused at load)."""
    if not isinstance(metric, str):
        raise UserError(f"a selection metric must be a column name, got {metric!r}", where="select",
                        fix="use e.g. val_acc (higher is better) or val_loss (lower is better)")
    if metric.endswith(_HIGHER):
        return 1
    if metric.endswith(_LOWER):
        return -1
    raise UserError(f"metric {metric!r} has no known direction (higher or lower is better)", where="select",
                    fix="select on an accuracy or R² (higher is better: *_acc, *_r2) or a loss or error "
                        "(lower is better: *_loss, *_mse)")


def spec_order(frame: pd.DataFrame) -> pd.Series:
    """Per row, its spec (every spec column but the code fingerprint) as one canonical string: the last
    tie-break, the same on every machine and for every code revision."""
    from claimbench.workloads.builtin import SPEC_FIELDS

    cols = [c for c in SPEC_FIELDS if c in frame.columns and c not in _NOT_SPEC]
    if frame.empty or not cols:
        return pd.Series([""] * len(frame), index=frame.index, dtype=object)
    values = frame[cols].astype(object).where(frame[cols].notna(), None).to_numpy()
    return pd.Series([json.dumps([_plain(v) for v in row], default=str) for row in values], index=frame.index)


def sort_frame(frame: pd.DataFrame, axes: Sequence[str] = ("seed",)) -> pd.DataFrame:
    """``frame`` in the canonical row order: by ``axes`` (those present), then by spec; index reset."""
    if frame.empty:
        return frame.reset_index(drop=True)
    order = frame.assign(_spec=spec_order(frame))
    keys = [a for a in axes if a in order.columns] + ["_spec"]
    order = order.sort_values(keys, kind="stable", na_position="last")
    return order.drop(columns="_spec").reset_index(drop=True)


def _score(frame: pd.DataFrame, metric: str, sign: int | None) -> pd.Series:
    """``metric`` signed so that lower is better (NaN where missing or not finite)."""
    sign = direction(metric) if sign is None else sign
    values = pd.to_numeric(frame[metric], errors="coerce").astype(float) if metric in frame.columns \
        else pd.Series(np.nan, index=frame.index)
    values = values.where(np.isfinite(values))
    return -sign * values


def _ranked(frame: pd.DataFrame, select: str, sign: int | None = None, then: str | None = None,
            statuses: Sequence[str] = ("completed",)) -> pd.DataFrame:
    """The trials of ``statuses`` with a finite ``select``, with their sort columns: ``_score`` (better
    first), ``_then`` (the secondary metric, better first), ``_spec``."""
    if select not in frame.columns or "status" not in frame.columns:
        sign = direction(select) if sign is None else sign
        return frame.iloc[0:0].assign(_score=[], _then=[], _spec=[])
    score = _score(frame, select, sign)
    ok = frame["status"].isin(list(statuses)) & score.notna()
    out = frame[ok].assign(_score=score[ok])
    out = out.assign(_then=_score(out, then, None).fillna(np.inf) if then else 0.0)
    return out.assign(_spec=spec_order(out))


def best_trials(frame: pd.DataFrame, keys: Sequence[str], select: str, tuned: Sequence[str] = (), *,
                sign: int | None = None, then: str | None = None, statuses: Sequence[str] = ("completed",),
                reverse_ties: bool | None = None) -> pd.DataFrame:
    """Per group of ``keys`` (every row one group without keys), the selected trial's row of ``frame``
    (its index kept), in the groups' sorted order; groups with no trial of ``statuses`` with a finite
    ``select`` are absent.

    The best ``select`` in its direction (``sign`` overrides the metric's: +1 highest, −1 lowest) wins;
    an exact tie goes to the best ``then`` (a secondary metric), then to the first trial in the tuned
    axes' grid order, then in spec order. ``reverse_ties`` (default: the ``tie_order`` in force)
    breaks the remaining ties the other way round: a robustness variant, never the registered protocol.
    """
    ranked = _ranked(frame, select, sign, then, statuses)
    if ranked.empty:
        return frame.iloc[0:0]
    ties = [t for t in tuned if t in ranked.columns and t not in keys]
    order = [*keys, "_score", "_then", *ties, "_spec"]
    flip = _REVERSE.get() if reverse_ties is None else reverse_ties
    asc = [True] * (len(keys) + 2) + [not flip] * (len(ties) + 1)
    ranked = ranked.sort_values(order, ascending=asc, kind="stable", na_position="last")
    best = ranked.groupby(list(keys), sort=True, dropna=False).head(1) if keys else ranked.head(1)
    return frame.loc[best.index]


def best_index(frame: pd.DataFrame, select: str, tuned: Sequence[str] = (), **how):
    """The index label of ``frame``'s selected trial (one cell), or None when none qualifies."""
    best = best_trials(frame, [], select, tuned, **how)
    return None if best.empty else best.index[0]


_REVERSE: contextvars.ContextVar[bool] = contextvars.ContextVar("claimbench_reverse_ties", default=False)


@contextlib.contextmanager
def tie_order(reverse: bool):
    """Within the block, exact ties are broken in reverse grid and spec order (the robustness variant
    "a different tie order"); the registered protocol is ``reverse=False``."""
    token = _REVERSE.set(reverse)
    try:
        yield
    finally:
        _REVERSE.reset(token)


def tie_count(frame: pd.DataFrame, keys: Sequence[str], select: str) -> tuple[int, int]:
    """(cells whose best ``select`` is shared by 2 or more completed trials, cells with a selection)."""
    ranked = _ranked(frame, select)
    if ranked.empty:
        return 0, 0
    groups = ranked.groupby(list(keys), sort=False, dropna=False)["_score"] if keys else None
    if groups is None:
        top = ranked["_score"].min()
        return int((ranked["_score"] == top).sum() > 1), 1
    top = groups.transform("min")
    shared = (ranked["_score"] == top).groupby([ranked[k] for k in keys], dropna=False).sum()
    return int((shared > 1).sum()), int(shared.size)


def _plain(value):
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
