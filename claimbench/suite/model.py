"""The suite's types: ``Suite`` (a validated suite at one tier), its ``Axis`` and ``ClaimCheck`` tables, ``Group``,
and the keys and names a suite file may use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from claimbench import limits as lim
from claimbench.claims import Claim, Design
from claimbench.trial import level_label
from claimbench.workloads.builtin import FIELDS

TIERS = ("smoke", "ci", "default", "full")
ROLES = ("scientific", "nuisance", "fixed")
#: The keys of each section: the spec fields it sets (``trial.Field.section``); [workload] also names the workload.
SECTIONS = {section: (("name",) if section == "workload" else ()) + tuple(n for n, f in FIELDS.items()
                                                                          if f.section == section)
            for section in ("workload", "train", "budget")}
BUDGET_KEYS = frozenset(SECTIONS["budget"])
#: Spec fields a suite never sets: the seed comes from [suite] seeds; the workload, its parameters and its
#: code fingerprint from [workload] and the registry.
INTERNAL = tuple(n for n, f in FIELDS.items() if not f.section)
TOP_KEYS = ("suite", "workload", "train", "budget", "axes", "tiers", "claims", "resources", "limits", "adapt")
#: [adapt]: the adaptive rules the experimenter loop (claimbench/loop.py) may apply, fixed before the run:
#: ``extend = { lr = 2 }`` lets a nuisance axis gain up to 2 values beyond each edge where claims are
#: edge-limited; ``budget = 1`` lets the budget double once where a comparison is budget-limited.
ADAPT_KEYS = ("extend", "budget", "looks", "futility", "futility_from", "prune", "grow", "halve")
MAX_EXTEND = 4
#: [resources]: one Ray slot (actor) per trial in flight; run-level, so never part of a trial id.
#: cpus_per_trial > 0 (default 1), gpus_per_trial >= 0 (default 0; fractions share a GPU).
RESOURCE_KEYS = ("cpus_per_trial", "gpus_per_trial")
SUITE_KEYS = ("name", "title", "description", "seeds", "faq_sections")
AXIS_KEYS = ("role", "values", "logspace")
TIER_KEYS = ("seeds", "budget", "params", "axes")
CLAIM_KEYS = ("id", "kind", "faq_section", "paraphrase", "params", "check")
CHECK_KEYS = ("gate", "track", "tolerance", "direction")
#: What `claimbench check` fails on, per claim: a supported claim that stops being supported
#: (the default), any change of a decided verdict (supported or refuted), or nothing (track only).
GATES = ("supported", "decided", "off")
#: Which moves of a tracked quantity are regressions: either way, only down, or only up.
DIRECTIONS = ("both", "decrease", "increase")
#: Quantities a claim may track: its statistic (per stratum), or a metric of the best trial per seed.
TRACKABLE = ("effect", "test_acc", "val_acc", "train_acc", "test_loss", "val_loss", "train_loss")


#: The experimenter loop's compute rules (loop.py), with their defaults: a suite's ``[adapt]`` overrides each
#: (``validate.py``); ``run --exhaustive`` turns them off. Chosen on the published faq-default frames (futility at 5 seeds with 0.3, and top-3 pruning,
#: changed no verdict there); ``claimbench calibrate --adaptive`` measures their error rates.
LOOKS = (3, 5)
FUTILITY = 0.3
FUTILITY_FROM = 5
PRUNE = 3
#: Successive halving inside packs: the fraction of the budget at which a trial ranked below its groups' top
#: ``prune`` leaves its pack (0: off). Replayed on the published faq-default and frontier-default frames with
#: the rules above, 0.5 changed no verdict, raw or Holm-adjusted (benchmarks/adaptive.py --replay --halve 0.5).
HALVE = 0.5


@dataclass(frozen=True)
class Rules:
    """The compute rules a run applies: the seed counts judged before the last look, the futility threshold
    (0: off) and the first look it applies at, how many tuned values per group later seeds keep (0: off), and
    the seed count a claim whose interval still straddles a boundary at the last look grows to (0: off), and the
    fraction of the budget at which successive halving inside a pack stops a tuned value that ranks below the
    ``prune`` best of its group (0: off)."""

    looks: tuple[int, ...] = ()
    futility: float = 0.0
    futility_from: int = FUTILITY_FROM
    prune: int = 0
    grow: int = 0  # seeds a claim still undecided at the last look may grow to (0: off)
    halve: float = 0.0  # the rung, a fraction of the budget, where halving inside a pack stops losers (0: off)

    @property
    def active(self) -> bool:
        return bool(self.looks)


#: The rules of a suite whose [adapt] sets none of them (``Suite.rules``, before its seed count trims the looks).
DEFAULT_RULES = Rules(looks=LOOKS, futility=FUTILITY, futility_from=FUTILITY_FROM, prune=PRUNE, halve=HALVE)


@dataclass(frozen=True)
class Axis:
    name: str
    role: str
    values: tuple[Any, ...]  # scalars, or dicts of parameter -> value

    @property
    def is_table(self) -> bool:
        return any(isinstance(v, dict) for v in self.values)

    @property
    def params(self) -> set[str]:
        """The parameters this axis sets: its own name, or the keys of its table levels."""
        if not self.is_table:
            return {self.name}
        return {k for v in self.values for k in v}

    @property
    def sets_budget(self) -> bool:
        return bool(self.params & BUDGET_KEYS)


@dataclass(frozen=True)
class ClaimCheck:
    """How `claimbench check` gates one claim against a baseline (a claim's ``check = {...}`` table).

    ``track`` names quantities compared over seeds with ``tolerance[name]`` (absolute units of the
    quantity) and ``direction``; ``gate`` says which verdict changes are regressions.
    """

    gate: str = "supported"
    track: tuple[str, ...] = ()
    tolerance: dict[str, float] = field(default_factory=dict)  # tracked quantity -> tolerance
    direction: dict[str, str] = field(default_factory=dict)  # tracked quantity -> direction (default "both")

    def to_dict(self) -> dict[str, Any]:
        return {"gate": self.gate, "track": list(self.track), "tolerance": dict(self.tolerance),
                "direction": dict(self.direction)}


@dataclass(frozen=True)
class Suite:
    name: str
    title: str
    description: str
    path: str
    tier: str
    base: dict[str, Any]  # parameter -> value, before axes
    axes: tuple[Axis, ...]
    seeds: tuple[int, ...]
    claims: tuple[Claim, ...]
    faq_sections: tuple[str, ...] = field(default_factory=tuple)
    checks: dict[str, ClaimCheck] = field(default_factory=dict)  # claim id -> its check table, when given
    resources: dict[str, float] = field(default_factory=dict)  # [resources]: cpus/gpus per trial, when given
    limits: dict[str, int] = field(default_factory=dict)  # [limits]: the limits this suite raises (limits.py)
    code: str = ""  # the workload's code fingerprint when loaded (registry.fingerprint): in every trial id
    workload: dict[str, Any] = field(default_factory=dict)  # another workload: name, level, task, package, version
    adapt: dict[str, Any] = field(default_factory=dict)  # [adapt]: {"extend": {axis: n}, "budget": n}

    @property
    def task(self) -> str:
        """Another workload's task ("" for the built-ins, whose task is each dataset's)."""
        return self.workload.get("task", "")

    def limit_table(self) -> dict[str, int]:
        """Every limit that applies to this suite: the defaults of limits.py, raised by its [limits]."""
        return {**lim.DEFAULTS, **self.limits}

    def axis(self, name: str) -> Axis:
        return next(a for a in self.axes if a.name == name)

    def rules(self, exhaustive: bool = False) -> Rules:
        """The compute rules this suite registers (its ``[adapt]``, else the defaults), for its seed count;
        none when ``exhaustive``, and only the registered ``grow`` and ``halve`` when it has too few seeds for a look."""
        if exhaustive:
            return Rules()
        a = self.adapt
        looks = tuple(k for k in a.get("looks", LOOKS) if 0 < k < len(self.seeds))
        grow = int(a.get("grow", 0))
        grow = grow if grow > len(self.seeds) else 0
        halve = float(a.get("halve", HALVE))
        if not looks and not grow and not a.get("halve"):  # too few seeds for a look: a rule only where registered
            return Rules()
        return Rules(looks=looks, futility=float(a.get("futility", FUTILITY)),
                     futility_from=int(a.get("futility_from", FUTILITY_FROM)), prune=int(a.get("prune", PRUNE)),
                     grow=grow, halve=halve)

    def design(self) -> Design:
        by_role = {r: tuple(a.name for a in self.axes if a.role == r) for r in ROLES}
        swept = {k for a in self.axes for k in a.params}
        if swept & BUDGET_KEYS:
            swept |= BUDGET_KEYS
        constants = {k: v for k, v in self.base.items() if k not in swept}
        fixed_swept = tuple(a.name for a in self.axes if a.role == "fixed" and len(a.values) > 1)
        for a in self.axes:
            if a.role == "fixed" and len(a.values) == 1:
                constants[a.name] = level_label(a.values[0])
        tables = {a.name: tuple(sorted(a.params)) for a in self.axes if a.is_table}
        grids = {a.name: tuple(a.values) for a in self.axes if not a.is_table}
        return Design(scientific=by_role["scientific"], nuisance=by_role["nuisance"],
                      fixed=fixed_swept, constants=constants, tables=tables, grids=grids)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "title": self.title, "description": self.description,
            "path": self.path, "tier": self.tier, "base": self.base,
            "axes": [{"name": a.name, "role": a.role, "values": list(a.values)} for a in self.axes],
            "seeds": list(self.seeds), "faq_sections": list(self.faq_sections),
            "claims": [c.__dict__ for c in self.claims],
            "checks": {k: c.to_dict() for k, c in self.checks.items()},
            "resources": dict(self.resources), "limits": dict(self.limits),
            "code": self.code, "workload": dict(self.workload), "adapt": dict(self.adapt),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Suite":
        return cls(
            name=d["name"], title=d["title"], description=d["description"], path=d["path"],
            tier=d["tier"], base=d["base"],
            axes=tuple(Axis(a["name"], a["role"], tuple(a["values"])) for a in d["axes"]),
            seeds=tuple(d["seeds"]), faq_sections=tuple(d.get("faq_sections", ())),
            claims=tuple(Claim(**c) for c in d["claims"]),
            checks={k: ClaimCheck(c["gate"], tuple(c["track"]), c["tolerance"], c["direction"])
                    for k, c in d.get("checks", {}).items()},
            resources=dict(d.get("resources", {})), limits=dict(d.get("limits", {})),
            code=d.get("code", ""), workload=dict(d.get("workload", {})), adapt=dict(d.get("adapt", {})),
        )


@dataclass(frozen=True)
class Group:
    """A named list of suites run together into one run dir and one report (e.g. ``faq``)."""

    name: str
    title: str
    description: str
    suites: tuple[str, ...]
    path: str
