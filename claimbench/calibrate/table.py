"""The calibration table: one ``Row`` per (scenario, seed count, truth), printed one line each or as Markdown."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

from claimbench.analysis.inference import ALPHA


@dataclass
class Row:
    kind: str
    scenario: str
    seeds: int
    truth: str
    null: bool
    right: str
    reps: int
    supported: float
    refuted: float
    sd: float
    seconds: float
    exceeds: list[str] = field(default_factory=list)
    design: str = "fixed"  # or "adaptive" / "grow": under the experimenter loop's compute rules (simulator.DESIGNS)

    def se(self, p: float) -> float:
        return math.sqrt(max(p * (1 - p), 1e-12) / self.reps)

    @property
    def power(self) -> float | None:
        return {"supported": self.supported, "refuted": self.refuted}.get(self.right)


def power_summary(rows: Sequence[Row], effect: str = "2 SD", target: float = 0.8) -> list[str]:
    """Per scenario: the power at each seed count for its ``effect`` row(s) on the supported side, and the
    smallest seed count that reaches ``target``."""
    out = []
    for name in dict.fromkeys((r.kind, r.scenario) for r in rows):
        sub = [r for r in rows if (r.kind, r.scenario) == name and r.right and effect in r.truth]
        if not sub:
            continue
        by_n = {}
        for r in sub:
            by_n.setdefault(r.seeds, []).append(r.power or 0.0)
        powers = {n: min(v) for n, v in sorted(by_n.items())}
        enough = [n for n, pw in powers.items() if pw >= target]
        out.append(f"{name[0]} ({name[1]}): " + ", ".join(f"{n} seeds {pw:.0%}" for n, pw in powers.items())
                   + (f"; {target:.0%} power from {enough[0]} seeds" if enough else f"; under {target:.0%} at every count"))
    return out


#: The "grow" design's seed count, as a multiple of the registered count.
GROW_FACTOR = 2


def design_label(r: Row) -> str:
    """How a row's seeds were spent: "adaptive", or "grow to N" (the seed count the rule may reach)."""
    return f"adaptive, grow to {GROW_FACTOR * r.seeds}" if r.design == "grow" else r.design


def format_row(r: Row) -> str:
    power = "" if r.power is None else f"  power {r.power:6.1%}"
    flag = f"  EXCEEDS ({', '.join(r.exceeds)})" if r.exceeds else ""
    design = f" {design_label(r)}" if r.design != "fixed" else ""
    return (f"{r.kind:<24} {r.scenario[:40]:<40} seeds={r.seeds:<3}{design} {r.truth[:46]:<46} "
            f"supported {r.supported:6.1%}  refuted {r.refuted:6.1%}  (MC SE {r.se(max(r.supported, r.refuted, ALPHA)):.1%})"
            f"{power}{flag}")


def markdown(rows: Sequence[Row], reps: int, seconds: float) -> str:
    """The full table as Markdown, for reports/calibration.md."""
    lines = ["| kind | scenario | seeds | truth | supported | refuted | MC SE | within target |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        se = r.se(max(r.supported, r.refuted, ALPHA))
        ok = ("yes" if not r.exceeds else f"**no** ({', '.join(r.exceeds)})") if r.null else \
            f"power {r.power:.1%}" if r.power is not None else ""
        seeds = f"{r.seeds} {design_label(r)}" if r.design != "fixed" else r.seeds
        lines.append(f"| {r.kind} | {r.scenario} | {seeds} | {r.truth} | {r.supported:.1%} | {r.refuted:.1%} | "
                     f"{se:.1%} | {ok} |")
    bad = [r for r in rows if r.exceeds]
    lines += ["", "Power for a 2-SD effect (the smaller of the supported and refuted sides), per seed count:", ""]
    lines += [f"- {line}" for line in power_summary(rows)]
    lines += ["", f"{len(rows)} rows, {reps} repetitions each, {seconds:.0f} s. Target: every null row's supported "
                  f"and refuted rates at most {ALPHA:.1%} + 2 Monte Carlo SE ({ALPHA + 2 * math.sqrt(ALPHA * (1 - ALPHA) / reps):.1%} "
                  f"at {reps} repetitions). "
              + ("Every null row meets it." if not bad else f"{len(bad)} null row(s) exceed it.")]
    return "\n".join(lines) + "\n"
