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
    if x.is_integer() and abs(x) < 1e6:  # batch sizes, steps: 1024, never 1.02e+03
        return str(int(x))
    return _sig(x, plain=(0.1, 1e4), exponent_digits=2)


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
    if not nonzero or min(nonzero) < 0.01 or max(nonzero) >= 1e6 or max(nonzero) / min(nonzero) > 100:
        # tiny values, or magnitudes too far apart for one number of decimals (a table of different
        # estimates: 277 and 0.892 in one column): 4 significant digits per value
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


# ------------------------------------------------------------------ numbers in their unit

#: How each unit's numbers print: ``signed`` differences (accuracy, steps, correlations) or
#: unsigned magnitudes (ratios, batch sizes), and how many digits.
_FRACTIONS = ("accuracy", "R²", "fraction of trials")
_COUNTS = ("steps", "examples")
_CORRELATIONS = ("Spearman rho", "Kendall tau")

#: What the number means, by unit: shown under the unit in the verdict table.
UNIT_NOTES = {
    "accuracy": "fraction: 0.010 is 1 point",
    "R²": "fraction: 0.010 is 0.01 of R²",
    "fraction of trials": "0.10 is 10% of trials",
    "ratio": "1× is no change",
    "log ratio (natural)": "ln(a / b): +0.10 is 10.5% more",
    "log2 units": "1.0 is a factor of 2",
    "Spearman rho": "rank correlation, −1 to +1",
    "Kendall tau": "rank correlation, −1 to +1",
    "steps": "training steps",
    "examples": "training examples",
    "examples per batch": "a batch size",
}


def in_unit(value: Any, unit: str, signed: bool = True) -> str:
    """A statistic printed the way its unit reads: accuracy-like fractions with 3 decimals (+0.001, never
    +0.000667), steps as whole numbers with separators (+533), correlations with 2 decimals, ratios as
    3 significant digits with × (21.5×, 0.905×, 2.9e-10×), batch sizes as whole numbers."""
    if is_missing(value):
        return DASH
    x = float(value)
    if not math.isfinite(x):
        return "∞" if x > 0 else "−∞"
    if x == 0:
        return "0×" if unit == "ratio" else "0"
    sign = "+" if signed else ""
    if unit in _FRACTIONS:
        return f"{x:{sign}.3f}"
    if unit in _COUNTS:
        return f"{x:{sign},.0f}"
    if unit in _CORRELATIONS:
        return f"{x:{sign}.2f}"
    if unit == "log2 units":
        return f"{x:{sign}.2f}"
    if unit == "log ratio (natural)":
        return f"{x:{sign}.3f}"
    if unit == "ratio":
        return _sig(x) + "×"
    if unit == "examples per batch":
        return f"{x:,.0f}" if abs(x) >= 10 else _sig(x)
    return number(x, signed=signed)


def _sig(x: float, digits: int = 3, plain: tuple[float, float] = (1e-3, 1e5), exponent_digits: int | None = None) -> str:
    """``digits`` significant digits, plain for magnitudes in ``plain``, else a short exponent with
    ``exponent_digits`` significant digits (default ``digits``): 2.9e-10."""
    if x == 0:
        return "0"
    if plain[0] <= abs(x) < plain[1]:
        text = f"{x:.{digits}g}"
        return text if "e" not in text else f"{x:.0f}"
    mantissa, exponent = f"{x:.{(exponent_digits or digits) - 1}e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def unit_is_signed(unit: str) -> bool:
    """Ratios and batch sizes are magnitudes; everything else here is a signed difference or correlation."""
    return unit not in ("ratio", "examples per batch")


def interval_in_unit(ci: Any, unit: str) -> str:
    """A 95% interval in the effect's unit: ``[+0.012, +0.031]``, ``[0.78×, 1.06×]``."""
    if ci is None:
        return DASH
    lo, hi = ci
    if is_missing(lo) or is_missing(hi):
        return DASH
    signed = unit_is_signed(unit)
    return f"[{in_unit(lo, unit, signed)}, {in_unit(hi, unit, signed)}]"


def claimed(band: dict[str, Any] | None, unit: str) -> str:
    """What the claim says of its effect, in the effect's unit: ``> +0.010 (refuted < 0.000)``, ``in [0.25×, 1×]``."""
    if not band:
        return DASH
    signed = unit_is_signed(unit)

    def f(x: Any) -> str:
        if x is None:
            return "0×" if band.get("log") else "−∞"
        return in_unit(x, unit, signed)

    if band["kind"] == "band":
        if band.get("high") is None:
            return f"≥ {f(band.get('low'))}"
        if band.get("low") is None and not band.get("log"):
            return f"≤ {f(band['high'])}"
        return f"in [{f(band.get('low'))}, {f(band['high'])}]"
    op, opposite = (">", "<") if band["kind"] == "greater" else ("<", ">")
    out = f"{op} {f(band.get('support'))}"
    if band.get("refute") != band.get("support"):
        out += f" (refuted {opposite} {f(band.get('refute'))})"
    return out


def protocol_label(robustness: dict | None) -> str:
    """A verdict's robustness label (claims/protocol.py): robust, fragile: flips to X under Y, undecided."""
    return (robustness or {}).get("label", "") or DASH


def protocol_lines(diagnostics: dict | None) -> list[str]:
    """A claim's protocol diagnostics in words, one line each (claims/protocol.py, analysis/diagnostics.py)."""
    d = diagnostics or {}
    if not d:
        return []
    out = [f"not decided — {reason}" for reason in d.get("limits", [])]
    edge = d.get("edge", {})
    if edge.get("cells"):
        sides = "; ".join(f"{a}: {s['low']} at the lower edge, {s['high']} at the upper" for a, s in
                          edge.get("sides", {}).items())
        out.append(f"grid edge: {edge['share']:.0%} of {edge['cells']} selected cells on an extendable edge"
                   + (f" ({sides})" if sides else ""))
    conv = d.get("convergence", {})
    if conv.get("measured"):
        w = conv.get("worst") or {}
        text = f"convergence: the largest gain in {conv['metric']} over the last quarter of the budget is " \
               f"{w.get('gain', float('nan')):.3g} ({w.get('group', '')})"
        if conv.get("spread"):
            text += f"; spread between the groups {conv['spread']['gain']:.3g}"
        out.append(text)
    else:
        out.append("convergence: not measured (no learning curves)")
    ftl = d.get("failed_to_learn", {})
    if ftl.get("count"):
        out.append(f"failed to learn: {ftl['count']} of {ftl['of']} completed trials end no better than at step 0"
                   + (f" ({ftl['where']})" if ftl.get("where") else ""))
    flat = d.get("flat", {})
    if flat.get("groups"):
        out.append(f"flat objective: the tuned value is within seed noise of the best at {', '.join(flat['groups'])}")
    ties = d.get("ties", {})
    if ties.get("cells"):
        out.append(f"ties: {ties['count']} of {ties['cells']} cells have an exact tie on the selection metric "
                   f"(broken by grid order)")
    for e in d.get("extensions", []):
        out.append(f"extended: {e}")
    if d.get("stopped"):
        out.append(f"adaptive: {d['stopped']['text']}")
    if d.get("pruned"):
        out.append(f"adaptive: {d['pruned']} trials of this claim's cells left untrained (for later seeds: tuned values "
                   f"that could not win, or the claim stopped)")
    if d.get("halted"):
        out.append(f"adaptive: {d['halted']} trials of this claim's cells halted at the halving rung (tuned values "
                   f"ranked below the best of their group inside their pack; absent from the frames, as pruned cells)")
    return out
