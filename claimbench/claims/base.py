"""What a claim is, what it evaluates to, and the registry of claim kinds.

A claim is data (``Claim``: kind, parameters, FAQ section, paraphrase) plus a
pure function of a DataFrame (its kind's ``evaluate``). The frame is the one
``analysis.trial_frame`` builds: one row per trial, one column per spec field,
plus ``status`` and the metric columns; see each kind's docstring.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from claimbench.analysis import inference
from claimbench.analysis.inference import Decision, Evidence, Hypothesis
from claimbench.analysis.isolation import Design  # noqa: F401  (re-exported: claims take a Design)

if TYPE_CHECKING:  # the calibration types' annotations only
    import numpy as np
    import pandas as pd

VERDICTS = ("supported", "refuted", "inconclusive")


@dataclass(frozen=True)
class Claim:
    id: str
    kind: str
    faq_section: str
    paraphrase: str
    params: dict[str, Any]


@dataclass
class ClaimResult:
    """The answer to one claim, as plain data for the report and the CI gate.

    ``effect`` is the claim's statistic on all seeds (in ``unit``), ``ci`` its
    95% interval (``method`` says how), ``p_supported`` / ``p_refuted`` the
    one-sided p-values against the claim's boundaries (analysis/inference.py),
    ``mde`` how far beyond a boundary the truth must lie for this design to
    decide with 80% power (``detectable`` says it in words), ``data`` the table
    behind the figure (records), ``strata`` the per-level results when a fixed
    axis is swept (the top-level verdict then combines them). ``band`` is the
    decision rule's boundaries in ``unit`` (``band_of``): what the claim says of
    ``effect``, for the report's "claimed" column and its summary figure.
    ``selected`` names the trials the statistic was computed from, one entry per
    level or arm and seed: ``{"group": "optimizer=adam", "seed": 0, "trial_ids":
    [...], "quantity": "test_acc"}`` (the trial each cell selected, or for a reduced quantity such as
    ``min:steps_to_target`` the one that attains it; ``quantity``: the quantity it was selected for,
    ``level``: the level, when the group is one); the learning curves draw them.
    ``estimates`` are the per-level (or per-arm) estimates the figure draws, one record each:
    ``group``, ``level`` or ``arm``, ``mean``, ``lo``, ``hi`` (the interval), ``n`` (seeds) and
    ``method`` (how the interval was computed), plus what the kind adds (``censored``, ``inside``,
    ``observed_rank`` ...). ``figure_data`` holds anything else the figure draws, by name, computed
    here (a heatmap's cells, a grid's edges, a fitted line): a figure draws only what the result
    hands it, so that it cannot disagree with the verdict beside it. ``diagnostics`` (grid edge,
    convergence, failed to learn, flat objective, ties, and the ``limits`` that left it undecided) and
    ``robustness`` (``label``: robust / fragile: flips to X under Y / undecided; the variants' verdicts)
    come from ``claims/protocol.py``.
    """

    claim_id: str
    kind: str
    verdict: str
    statistic: str
    effect: float | None
    ci: tuple[float, float] | None
    n_seeds: int
    n_trials: int
    method: str
    summary: str
    faq_section: str = ""
    paraphrase: str = ""
    stratum: dict[str, Any] = field(default_factory=dict)
    caveats: list[str] = field(default_factory=list)
    data: list[dict[str, Any]] = field(default_factory=list)
    strata: list["ClaimResult"] = field(default_factory=list)
    unit: str = ""
    p_supported: float | None = None
    p_refuted: float | None = None
    mde: float | None = None
    detectable: str = ""
    band: dict[str, Any] | None = None
    selected: list[dict[str, Any]] = field(default_factory=list)
    estimates: list[dict[str, Any]] = field(default_factory=list)
    figure_data: dict[str, Any] = field(default_factory=dict)
    #: protocol diagnostics and robustness (claims/protocol.py; empty when the claim was evaluated alone)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    robustness: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "strata"}
        d["ci"] = list(self.ci) if self.ci is not None else None
        d["strata"] = [s.to_dict() for s in self.strata]
        return d


REQUIRED = object()
#: How deep a parameter's tables and lists may nest (``where``, arms, ``order``): a claim's own are 2 deep.
MAX_PARAM_DEPTH = 8


class ParamError(ValueError):
    """A claim parameter that breaks its declaration; ``key`` names it (the loader adds the file)."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(message)


@dataclass(frozen=True)
class Param:
    """One parameter of a claim kind, declared once: its type, default and every rule its value obeys.

    Every number is finite unless ``infinite`` (NaN never is); ``ge``/``gt``/``le``/``lt`` bound it;
    ``choices`` lists the values a string may take; ``metric`` says it names a metric whose better
    direction is known (``analysis.selection.direction``: losses lower, accuracies higher); ``at_most``
    names the parameter it may not exceed (``low`` <= ``high``), and the two may not both be infinite.
    ``ClaimKind.resolve_params`` applies them all when a suite loads, before anything trains."""

    type: type | tuple[type, ...]
    default: Any = REQUIRED
    doc: str = ""
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    infinite: bool = False
    choices: tuple[Any, ...] = ()
    metric: bool = False
    at_most: str = ""

    def problem(self, value: Any) -> str:
        """Why ``value`` breaks this declaration ("" when it does not). None is a default's "not set"."""
        if value is None:
            return ""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if math.isnan(value):
                return "must be a number, got nan"
            if math.isinf(value) and not self.infinite:
                return f"must be finite, got {value!r}"
            for bound, ok, word in ((self.ge, lambda b: value >= b, ">="), (self.gt, lambda b: value > b, ">"),
                                    (self.le, lambda b: value <= b, "<="), (self.lt, lambda b: value < b, "<")):
                if bound is not None and not ok(bound):
                    return f"must be {word} {bound:g}, got {value!r}"
        if self.choices and value not in self.choices:
            return f"must be one of {', '.join(map(str, self.choices))}, got {str(value)[:60]!r}"
        if self.metric:
            from claimbench.analysis.selection import direction
            from claimbench.errors import UserError

            try:
                direction(value)
            except UserError:
                return (f"must name a metric whose better direction is known (higher: *_acc, *_r2; lower: *_loss, "
                        f"*_mse), got {str(value)[:60]!r}")
        return _nested_problem(value)


def _nested_problem(value: Any, depth: int = 0) -> str:
    """NaN anywhere inside a table or list (an arm, ``where``, ``order``), or nesting beyond MAX_PARAM_DEPTH."""
    if isinstance(value, float) and math.isnan(value):
        return "holds nan, which matches no level"
    if isinstance(value, (dict, list)):
        if depth >= MAX_PARAM_DEPTH:
            return f"nests more than {MAX_PARAM_DEPTH} tables or lists deep"
        for item in (value.values() if isinstance(value, dict) else value):
            problem = _nested_problem(item, depth + 1)
            if problem:
                return problem
    return ""


@dataclass(frozen=True)
class Truth:
    """One truth of a scenario: ``theta`` in SD units (or a function of the scenario's SD giving it), and which
    verdict would be false or right there."""

    label: str
    theta: float | Callable[[float], float]
    null: bool  # on a boundary: both verdicts count as errors to bound
    right: str = ""  # for an effect: the verdict that is right (its rate is the power)


@dataclass(frozen=True)
class Scenario:
    kind: str
    name: str
    params: dict[str, Any]
    #: (rng, seeds, theta in SD units, sd) -> (frame, design)
    build: Callable[[np.random.Generator, int, float, float], tuple[pd.DataFrame, Design]]
    sd: Callable[[], float]
    truths: tuple[Truth, ...]
    note: str = ""
    #: the tuned grid of an argbest kind: "per-seed" (its offset drawn per seed), "fixed" (one grid for every
    #: seed of an experiment, as a suite runs it); "" where the kind reads no tuned grid's argbest
    grid: str = ""



@dataclass(frozen=True)
class ClaimKind:
    name: str
    params: dict[str, Param]
    evaluate: Callable[..., ClaimResult]  # (claim, frame, design) -> ClaimResult
    statistic: str
    method: str
    axis_params: tuple[str, ...] = ("axis",)  # params that must name a suite axis
    #: Which trials of a cell the statistic reads: "tuned" (only the trial selected over the tuned axes, so
    #: the experimenter loop may prune tuned values that cannot win), "grid" (every trial: divergence limits,
    #: range widths, timings, reductions over the cell) or "quantity" (decided by the claim's quantities,
    #: ``reads``). A kind that says nothing is never pruned.
    reads: str = "grid"
    #: The kind's calibration scenarios (``Scenario``: simulated frames whose truth is known), for
    #: ``claimbench calibrate``; the built-in kinds' live in ``calibrate/scenarios.py``, a new kind brings its own.
    scenarios: Callable[[], list["Scenario"]] | None = None

    def resolve_params(self, given: dict[str, Any]) -> dict[str, Any]:
        """Defaults filled in, every value checked against its ``Param`` declaration. Raises KeyError
        or TypeError naming the bad key, ParamError (a ValueError, with ``key``) for a value that breaks
        a rule (the loader adds the file)."""
        out = {}
        for key in given:
            if key not in self.params:
                raise KeyError(f"unknown parameter {key!r} for claim kind {self.name!r}; known: {', '.join(sorted(self.params))}")
        for key, p in self.params.items():
            if key in given:
                value = given[key]
                ok_types = p.type if isinstance(p.type, tuple) else (p.type,)
                if float in ok_types and isinstance(value, int) and not isinstance(value, bool):
                    value = float(value)
                if isinstance(value, bool) and bool not in ok_types or not isinstance(value, ok_types):
                    names = "/".join(t.__name__ for t in ok_types)
                    raise TypeError(f"parameter {key!r} must be {names}, got {str(value)[:60]!r}")
                problem = p.problem(value)
                if problem:
                    raise ParamError(key, f"parameter {key!r} {problem}")
                out[key] = value
            elif p.default is REQUIRED:
                raise KeyError(f"missing required parameter {key!r} for claim kind {self.name!r}")
            else:
                out[key] = p.default
        for key, p in self.params.items():
            other = p.at_most
            low, high = out.get(key), out.get(other)
            if not other or not isinstance(low, (int, float)) or not isinstance(high, (int, float)):
                continue
            if low > high:
                raise ParamError(key, f"{key} <= {other} must hold, got {key}={low!r}, {other}={high!r}")
            if math.isinf(low) and math.isinf(high):
                raise ParamError(key, f"{key} and {other} cannot both be infinite: the claim must bound something")
        return out


KINDS: dict[str, ClaimKind] = {}


def reads(claim: Claim) -> str:
    """``"tuned"`` when the claim's statistic reads only the metric of each cell's selected trial (a bare
    column), else ``"grid"`` (where the best lies, ``argbest:``, moves with every value a flat objective
    offers): what the experimenter loop may prune for it (``loop.needed_cells``)."""
    kind = KINDS.get(claim.kind)
    if kind is None or kind.reads != "quantity":
        return "grid" if kind is None else kind.reads
    p = claim.params
    texts = [p[k] for k in ("quantity", "metric") if isinstance(p.get(k), str)]
    texts += [p[s]["quantity"] for s in ("num", "den") if isinstance(p.get(s), dict)
              and isinstance(p[s].get("quantity"), str)]
    selected = all(":" not in t for t in texts)  # where the best lies (argbest:) reads the whole grid
    return "tuned" if texts and selected and not any(t.split(":")[-1] in TIMINGS for t in texts) else "grid"


#: Per-trial timing columns: a timing is a property of every trial, never of a selection.
TIMINGS = ("time_per_step_s", "examples_per_s", "wall_s")


def register(kind: ClaimKind) -> ClaimKind:
    KINDS[kind.name] = kind
    return kind


def evidence(result: ClaimResult) -> Evidence:
    """What of a result combines and adjusts: its verdict and its one-sided p-values (1 when unknown)."""
    return Evidence(result.verdict, 1.0 if result.p_supported is None else result.p_supported,
                    1.0 if result.p_refuted is None else result.p_refuted)


def combined(parts: list[ClaimResult], how: str = "all") -> Evidence:
    """One verdict and its p-values over strata (``all``: unanimous) or arms (``any`` refutes)."""
    return inference.combine([evidence(p) for p in parts], how)


def decided(decision: Decision, hypothesis: Hypothesis, unit: str, transform=None, **fields: Any) -> ClaimResult:
    """A ClaimResult from an inference Decision. ``transform`` maps the statistic's scale to the
    reported one (``math.exp`` for a mean log ratio); ``fields`` fill in the rest (claim_id, kind,
    statistic, summary, counts, data, caveats). The method is the decision's unless given."""
    t = transform or (lambda x: x)
    lo, hi = decision.ci
    ci = (float(t(lo)), float(t(hi))) if math.isfinite(lo) and math.isfinite(hi) else None
    fields.setdefault("method", decision.method)
    est = float(t(decision.estimate)) if math.isfinite(decision.estimate) else None
    fields.setdefault("band", band_of(hypothesis, log=transform is math.exp))
    return ClaimResult(verdict=decision.verdict, effect=est, ci=ci, unit=unit,
                       p_supported=decision.p_supported, p_refuted=decision.p_refuted,
                       mde=decision.mde if math.isfinite(decision.mde) else None,
                       detectable=detectable_text(decision, hypothesis, unit, t), **fields)


def band_of(h: Hypothesis, log: bool = False) -> dict[str, Any]:
    """A hypothesis's boundaries as plain data in the reported scale: ``kind`` (greater | less | band),
    ``support`` and ``refute`` (one-sided) or ``low`` and ``high`` (a band); ``log``: the statistic is the
    log of the reported value (a ratio), so the boundaries were exponentiated and compare on a log scale."""
    def t(x: float) -> float | None:
        if log:
            x = math.exp(x) if x < 700 else math.inf
        return float(x) if math.isfinite(x) else None

    if h.kind == "band":
        return {"kind": "band", "low": t(h.low), "high": t(h.high), "log": log}
    return {"kind": h.kind, "support": t(h.support), "refute": t(h.refute), "log": log}


def detectable_text(decision: Decision, h: Hypothesis, unit: str, transform=None) -> str:
    """What the design would have detected with 80% power, in the claim's units."""
    t = transform or (lambda x: x)
    m = decision.mde
    if not math.isfinite(m):
        return ""
    u = f" {unit}" if unit else ""
    n = f"at these {decision.n} seeds"
    power = f"{inference.POWER:.0%}"

    def f(x: float) -> str:
        return f"{t(x):.3g}"

    if h.kind == "greater":
        return (f"{n}, a true effect above {f(h.support + m)}{u} would be supported and one below "
                f"{f(h.refute - m)}{u} refuted {power} of the time")
    if h.kind == "less":
        return (f"{n}, a true effect below {f(h.support - m)}{u} would be supported and one above "
                f"{f(h.refute + m)}{u} refuted {power} of the time")
    inner = (f"; one inside [{f(h.low + m)}, {f(h.high - m)}]{u} supported" if h.low + m <= h.high - m
             else "; the band is narrower than this design resolves, so it cannot be supported at this power")
    return (f"{n}, a true effect outside [{f(h.low - m)}, {f(h.high + m)}]{u} would be refuted "
            f"{power} of the time" + inner)
