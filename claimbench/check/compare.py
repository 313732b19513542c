"""What changed between two evaluated runs, claim by claim (``claimbench compare RUN_A RUN_B``, asv compare).

Run A plays the baseline and run B the new run, and the evidence rules are the CI gate's
(``check.gate``), called, not copied: A's results become a baseline entry (``baseline_entry``) and
B's are compared with it (``compare_suite``), so a claim is a **regression** exactly where
``claimbench check`` would fail it (its verdict gate; its tracked quantities' t interval over seeds
wholly beyond their tolerance). Every claim's effect is compared too, tracked or not: its per-seed
values on both sides (``per_seed_values``), judged by ``compare_values`` with the suite's tolerance
for ``effect`` (0 when its check table gives none), in both directions — **changed** when the 95%
interval of the change lies wholly beyond it. Fewer than ``gate.MIN_SEEDS`` seeds with a value on
both sides: shown, not judged. Informational: the CLI exits 0 whatever changed. ``api.compare_runs``
evaluates the two run dirs; ``report.compare`` words the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from claimbench.check.baseline import baseline_entry, matrix_fingerprint, per_seed_values, quantity_of
from claimbench.check.gate import ClaimOutcome, Finding, compare_suite, compare_values
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


def compare_evaluations(run_a: str | Path, run_b: str | Path, evaluations_a: list, evaluations_b: list) -> Comparison:
    """Every claim of the evaluations (``evaluation.Evaluation``: one per suite) of the run dirs ``run_a`` and
    ``run_b``, paired by suite name and claim id."""
    a = {ev.suite.name: ev for ev in evaluations_a}
    b = {ev.suite.name: ev for ev in evaluations_b}
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
    effect = [f for f in findings if quantity_of(f.name) == "effect"]
    if effect and all(f.status == "not judged" for f in effect):
        return "not judged"
    return "same"
