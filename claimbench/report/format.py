"""Number and label formatting shared by the HTML tables and the figures.

Every function returns plain text; HTML escaping is the template's job.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from claimbench.trial import level_label

DASH = "—"


def is_missing(value: Any) -> bool:
    """None or a float NaN: a value the run does not have (never shown as 0)."""
    if value is None:
        return True
    try:
        return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def number(value: Any, signed: bool = False) -> str:
    """A statistic for a table: 3 decimals in the usual range, else 3 significant digits."""
    if is_missing(value):
        return DASH
    x = float(value)
    sign = "+" if signed else ""
    if x == 0 or 1e-3 <= abs(x) < 1e3:
        return f"{x:{sign}.3f}"
    return f"{x:{sign}.3g}"


def interval(ci: Any) -> str:
    """A confidence interval ``[lo, hi]`` (signed, like the effect it brackets)."""
    if ci is None:
        return DASH
    lo, hi = ci
    if is_missing(lo) or is_missing(hi):
        return DASH
    return f"[{number(lo, signed=True)}, {number(hi, signed=True)}]"


def p_values(p_supported: float | None, p_refuted: float | None) -> str:
    """The two one-sided p-values of a decision, or "" when the result has none."""
    if p_supported is None and p_refuted is None:
        return ""

    def one(p: float | None) -> str:
        if p is None or p != p:
            return DASH
        return f"{p:.2g}" if p >= 1e-4 else "< 0.0001"

    return f"p(supported side) {one(p_supported)} · p(refuted side) {one(p_refuted)}"


def tick(value: Any) -> str:
    """A short axis label: 2, 32, 0.3, 3 for ordinary values; 3e-3, 1e-4 for small or huge ones."""
    if is_missing(value):
        return DASH
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return str(value)
    x = float(value)
    if x == 0:
        return "0"
    if 0.1 <= abs(x) < 1e4:
        return f"{x:.3g}"
    mantissa, exponent = f"{x:.1e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def cell(value: Any) -> str:
    """A value in the table behind a figure: ints as ints, floats to 4 significant digits."""
    if is_missing(value):
        return DASH
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        x = float(value)
        if x.is_integer() and abs(x) < 1e6:
            return str(int(x))
        return f"{x:.4g}"
    return str(value)


def column(values: list[Any]) -> list[str]:
    """A table column with one format for all its numbers, so that decimals line up.

    Integers stay integers; fractions get the same number of decimals (4
    significant digits of the largest value); a column with tiny values
    (below 0.01, e.g. learning rates) keeps 4 significant digits per value.
    """
    floats = [float(v) for v in values if is_numeric(v) and not is_missing(v)
              and not isinstance(v, numbers.Integral)]
    if not floats or all(x.is_integer() for x in floats):
        return [cell(v) for v in values]
    nonzero = [abs(x) for x in floats if x != 0]
    if not nonzero or min(nonzero) < 0.01 or max(nonzero) >= 1e6:
        return [cell(v) for v in values]
    decimals = min(max(3 - math.floor(math.log10(max(nonzero))), 0), 4)
    return [f"{float(v):.{decimals}f}" if is_numeric(v) and not is_missing(v) else cell(v) for v in values]


def parameter(value: Any) -> str:
    """A claim parameter as written in a suite: 0.01, 2000, batch_size."""
    if isinstance(value, float):
        return f"{value:g}"
    return label(value)


def is_numeric(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def label(value: Any) -> str:
    """An axis level or parameter value as text: dicts as ``k=v,k=v``, numbers via ``tick``."""
    if isinstance(value, dict):
        return level_label(value)
    if is_numeric(value):
        return tick(value) if isinstance(value, float) else str(value)
    return str(value)


def stratum(stratum: dict[str, Any]) -> str:
    """``budget = epochs=10, batchnorm = True``; empty for the single stratum."""
    return ", ".join(f"{k} = {label(v)}" for k, v in stratum.items())
