"""`claimbench compare RUN_A RUN_B`: what changed between two run dirs, claim by claim (asv compare).

Run A plays the baseline and run B the new run, and the evidence rules are the CI gate's
(``check.py``), called, not copied: A's results become a baseline entry (``baseline_entry``) and
B's are compared with it (``compare_suite``), so a claim is a **regression** exactly where
``claimbench check`` would fail it (its verdict gate; its tracked quantities' t interval over seeds
wholly beyond their tolerance). Every claim's effect is compared too, tracked or not: its per-seed
values on both sides (``per_seed_values``), judged by ``compare_values`` with the suite's tolerance
for ``effect`` (0 when its check table gives none), in both directions — **changed** when the 95%
interval of the change lies wholly beyond it. Fewer than ``check.MIN_SEEDS`` seeds with a value on
both sides: shown, not judged. Informational: the CLI exits 0 whatever changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from claimbench.check import (ClaimOutcome, Finding, _quantity, baseline_entry, compare_suite, compare_values,
                              matrix_fingerprint, per_seed_values)
from claimbench.suite import ClaimCheck

#: What each line's status means, in the order the summary counts them.
STATUSES = ("regression", "changed", "not judged", "same", "only in A", "only in B")


@dataclass
class ClaimChange:
    """One claim of A against the same claim of B."""

    suite: str
    claim_id: str
    paraphrase: str
    status: str  # one of STATUSES
    verdict_a: str | None
    verdict_b: str | None
    effect_a: float | None = None
    effect_b: float | None = None
    unit: str = ""
    findings: list[Finding] = field(default_factory=list)  # the effect's (and tracked quantities') comparisons
    regressions: list[str] = field(default_factory=list)  # as `check` words them
    notes: list[str] = field(default_factory=list)


@dataclass
class Comparison:
    run_a: Path
    run_b: Path
    changes: list[ClaimChange]
    notes: list[str] = field(default_factory=list)  # per suite: tiers or trial matrices that differ

    def counts(self) -> dict[str, int]:
        return {s: sum(c.status == s for c in self.changes) for s in STATUSES}


def compare_runs(run_a: str | Path, run_b: str | Path,
                 select: Callable[[str, str], bool] | None = None) -> Comparison:
    """Every claim of the run dirs (a suite's or a group's) ``run_a`` and ``run_b``, paired by suite
    name and claim id; ``select(suite, claim_id)`` keeps some (``selection``)."""
    from claimbench.api import evaluate_target

    a = {ev.suite.name: ev for ev in evaluate_target(run_a, select)}
    b = {ev.suite.name: ev for ev in evaluate_target(run_b, select)}
    changes, notes = [], []
    for name in [*a, *(n for n in b if n not in a)]:
        if name not in b or name not in a:
            ev, side = (a[name], "only in A") if name in a else (b[name], "only in B")
            for r in ev.results:
                changes.append(ClaimChange(
                    suite=name, claim_id=r.claim_id, paraphrase=r.paraphrase, status=side,
                    verdict_a=r.verdict if side == "only in A" else None,
                    verdict_b=r.verdict if side == "only in B" else None, unit=r.unit,
                    **{"effect_a" if side == "only in A" else "effect_b": r.effect}))
            continue
        ea, eb = a[name], b[name]
        if matrix_fingerprint(ea.suite) != matrix_fingerprint(eb.suite):
            notes.append(f"{name}: the trial matrices differ (A: tier {ea.suite.tier}, {len(ea.suite.seeds)} seeds; "
                         f"B: tier {eb.suite.tier}, {len(eb.suite.seeds)} seeds; or levels or the training "
                         "revision): changes may come from that")
        changes += _compare_suite(ea, eb)
    return Comparison(run_a=Path(run_a), run_b=Path(run_b), changes=changes, notes=notes)


def _compare_suite(ea, eb) -> list[ClaimChange]:
    """B's claims against A's, through the gate's own comparison, plus each claim's effect."""
    entry = baseline_entry(ea.suite, ea.results, ea.frame, ea.environment)
    check = compare_suite(eb.suite, eb.results, eb.frame, entry, eb.run_dir or Path("."))
    by_id_a = {r.claim_id: r for r in ea.results}
    by_id_b = {r.claim_id: r for r in eb.results}
    claims_a = {c.id: c for c in ea.suite.claims}
    claims_b = {c.id: c for c in eb.suite.claims}
    out = []
    for o in check.outcomes:
        ra, rb = by_id_a.get(o.claim_id), by_id_b.get(o.claim_id)
        if ra is None or rb is None:  # a claim that only one side has (results, or the suite)
            side = "only in A" if rb is None else "only in B"
            r = ra or rb
            out.append(ClaimChange(suite=o.suite, claim_id=o.claim_id, paraphrase=o.paraphrase, status=side,
                                   verdict_a=ra.verdict if ra else None, verdict_b=rb.verdict if rb else None,
                                   effect_a=ra.effect if ra else None, effect_b=rb.effect if rb else None,
                                   unit=r.unit if r else ""))
            continue
        check_b = eb.suite.checks.get(o.claim_id, ClaimCheck())
        findings = list(o.findings)
        if "effect" not in check_b.track:  # the gate does not judge this effect: compare it anyway
            tolerance = check_b.tolerance.get("effect", 0.0)
            va = per_seed_values(ea.suite, claims_a[o.claim_id], ea.frame, ("effect",))
            vb = per_seed_values(eb.suite, claims_b[o.claim_id], eb.frame, ("effect",))
            for key in [k for k in vb if k in va]:
                findings.append(compare_values(key, va[key], vb[key], tolerance, "both"))
        out.append(ClaimChange(
            suite=o.suite, claim_id=o.claim_id, paraphrase=o.paraphrase, status=_status(o, findings),
            verdict_a=o.baseline_verdict, verdict_b=o.verdict, effect_a=ra.effect, effect_b=rb.effect,
            unit=rb.unit, findings=findings, regressions=list(o.regressions), notes=list(o.notes)))
    return out


def _status(o: ClaimOutcome, findings: list[Finding]) -> str:
    if o.status == "failed":
        return "regression"
    if o.verdict != o.baseline_verdict or any(f.status == "regression" for f in findings):
        return "changed"
    effect = [f for f in findings if _quantity(f.name) == "effect"]
    if effect and all(f.status == "not judged" for f in effect):
        return "not judged"
    return "same"


# ------------------------------------------------------------------ text

def _verdicts(c: ClaimChange) -> str:
    if c.verdict_a == c.verdict_b:
        return f"{c.verdict_a}"
    return f"{c.verdict_a or '—'} -> {c.verdict_b or '—'}"


def _effect(c: ClaimChange) -> str:
    from claimbench.report.format import in_unit, number

    signed = c.unit not in ("ratio", "examples per batch")
    head = f"effect {in_unit(c.effect_a, c.unit, signed)} -> {in_unit(c.effect_b, c.unit, signed)}" + \
        (f" ({c.unit})" if c.unit else "")
    parts = []
    for f in c.findings:
        if f.status == "not judged":
            parts.append(f"{f.name}: {f.n} seed(s) on both sides, not judged")
        elif f.ci is not None:
            what = "beyond" if f.status == "regression" else "within"
            parts.append(f"{f.name} per seed Δ {number(f.diff, signed=True)} (95% CI {number(f.ci[0], signed=True)} "
                         f"to {number(f.ci[1], signed=True)}; {'paired' if f.paired else 'unpaired'}, n={f.n}) "
                         f"{what} ±{f.tolerance:g}")
    return head + ("; " + "; ".join(parts) if parts else "")


def summary_line(comparison: Comparison) -> str:
    counts = comparison.counts()
    n = len(comparison.changes)
    return (f"compare: {n} claim{'s' if n != 1 else ''}: "
            + ", ".join(f"{n} {s}" for s, n in counts.items() if n or s in ("regression", "changed", "same")))


def text_lines(comparison: Comparison) -> list[str]:
    """The comparison for a terminal: one line per claim under its suite, then the counts."""
    lines = [f"compare {comparison.run_a} (A) -> {comparison.run_b} (B)"]
    lines += [f"note: {n}" for n in comparison.notes]
    suite = None
    for c in comparison.changes:
        if c.suite != suite:
            suite = c.suite
            lines.append(f"{suite}:")
        line = f"  {c.claim_id:<4} {c.status:<10} verdict {_verdicts(c)}; {_effect(c)}"
        if c.regressions:  # what `check` would fail on, by name (its full lines: `claimbench check`)
            line += f" [check would fail: {'; '.join(dict.fromkeys(r.split(':')[0] for r in c.regressions))}]"
        lines.append(line)
    lines.append(summary_line(comparison) + " (regression: where `claimbench check` with A as the baseline would "
                 "fail; changed: another verdict, or a per-seed change whose 95% CI lies beyond the tolerance)")
    return lines


def markdown(comparison: Comparison) -> str:
    """The comparison as a Markdown table (for a pull request or $GITHUB_STEP_SUMMARY)."""
    def esc(text: Any) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    out = [f"## claimbench compare: `{esc(comparison.run_a)}` → `{esc(comparison.run_b)}`", "",
           summary_line(comparison), ""]
    out += [f"- {esc(n)}" for n in comparison.notes]
    out += ["", "| status | suite | claim | verdict A → B | effect |", "|---|---|---|---|---|"]
    for c in comparison.changes:
        out.append(f"| {c.status} | {esc(c.suite)} | {esc(c.claim_id)} | {esc(_verdicts(c))} | {esc(_effect(c))} |")
    out += ["", "Regression: where `claimbench check` with A as its baseline would fail (the suite's verdict "
            "gate and tracked quantities). Changed: another verdict, or a per-seed change of the effect whose "
            "95% Student t interval (paired by seed, else Welch) lies wholly beyond the tolerance.", ""]
    return "\n".join(out)
