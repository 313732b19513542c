"""What a claim is, what it evaluates to, and the registry of claim kinds.

A claim is data (``Claim``: kind, parameters, FAQ section, paraphrase) plus a
pure function of a DataFrame (its kind's ``evaluate``). The frame is the one
``analysis.trial_frame`` builds: one row per trial, one column per spec field,
plus ``status`` and the metric columns; see each kind's docstring.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from claimbench.analysis.isolation import Design  # noqa: F401  (re-exported: claims take a Design)

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

    ``effect`` is the claim's statistic on all seeds, ``ci`` its bootstrap
    interval, ``data`` the table behind the figure (records), ``strata`` the
    per-level results when a fixed axis is swept (the top-level verdict then
    combines them).
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

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "strata"}
        d["ci"] = list(self.ci) if self.ci is not None else None
        d["strata"] = [s.to_dict() for s in self.strata]
        return d


REQUIRED = object()


@dataclass(frozen=True)
class Param:
    type: type | tuple[type, ...]
    default: Any = REQUIRED
    doc: str = ""


@dataclass(frozen=True)
class ClaimKind:
    name: str
    params: dict[str, Param]
    evaluate: Callable[..., ClaimResult]  # (claim, frame, design) -> ClaimResult
    statistic: str
    method: str
    axis_params: tuple[str, ...] = ("axis",)  # params that must name a suite axis

    def resolve_params(self, given: dict[str, Any]) -> dict[str, Any]:
        """Defaults filled in. Raises KeyError/TypeError naming the bad key (the loader adds the file)."""
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
                    raise TypeError(f"parameter {key!r} must be {names}, got {value!r}")
                out[key] = value
            elif p.default is REQUIRED:
                raise KeyError(f"missing required parameter {key!r} for claim kind {self.name!r}")
            else:
                out[key] = p.default
        return out


KINDS: dict[str, ClaimKind] = {}


def register(kind: ClaimKind) -> ClaimKind:
    KINDS[kind.name] = kind
    return kind


def combine_verdicts(verdicts: list[str]) -> str:
    """One verdict over strata: unanimous, else inconclusive (the claim depends on the stratum)."""
    unique = set(verdicts)
    return verdicts[0] if len(unique) == 1 else "inconclusive"
