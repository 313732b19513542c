"""The CI gate's rule: a run's claim results compared with their baseline entry (``check.baseline``).

Pure comparison of values: nothing here trains or writes (``api.measure`` runs the suites and writes
their reports; ``report.junit`` and ``report.markdown`` write the outcome). Claim by claim:

- **verdict gate** (``check.gate``): ``supported`` (default) — a claim that was
  supported and is now refuted or inconclusive is a regression; ``decided`` —
  any change of a supported or refuted verdict is; ``off`` — verdicts are
  reported, never gated.
- **tracked quantities** (``check.track``, ``check.tolerance``,
  ``check.direction``): the claim's statistic (``effect``, per stratum) or a
  metric of the best trial per seed (``test_acc`` ...). Each is a value per
  seed; the difference now − baseline of the mean over seeds gets a 95%
  Student t interval (analysis/inference.py; paired by seed when both sides
  have the same seeds, else Welch's). A regression is a CI that lies wholly beyond the tolerance
  in the gated direction (``both``, or only a ``decrease`` or an ``increase``):
  evidence over seeds, never one number. With fewer than ``MIN_SEEDS`` seeds a
  quantity is reported but not judged.
- **evidence**: fails closed: a gated claim judged on less than the baseline's evidence (more failed
  trials, fewer records, seeds, trials or strata, a missing effect or tracked value) fails, with the reason.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from claimbench.analysis.inference import CHANGE_TEST, decide_change
from claimbench.check.baseline import baseline_for, finite, matrix_fingerprint, quantity_of, tracked_values
from claimbench.claims import Claim, ClaimResult
from claimbench.errors import UserError
from claimbench.suite import ClaimCheck, Suite

MIN_SEEDS = 3  # fewer seeds than this: a tracked quantity is shown, not judged

TEST_TEXT = CHANGE_TEST  # stated once, in analysis/inference.py


@dataclass
class Finding:
    """One tracked quantity, compared over seeds."""

    name: str
    tolerance: float
    direction: str
    status: str  # ok | regression | not judged
    baseline_mean: float | None = None
    current_mean: float | None = None
    diff: float | None = None
    ci: tuple[float, float] | None = None
    n: int = 0
    paired: bool = False
    text: str = ""


@dataclass
class ClaimOutcome:
    """The check of one claim: ``failed`` on a regression, ``skipped`` without a baseline to compare."""

    suite: str
    tier: str
    claim_id: str
    paraphrase: str
    status: str  # passed | failed | skipped
    verdict: str | None
    baseline_verdict: str | None
    gate: str
    regressions: list[str] = field(default_factory=list)  # one line each: what moved, with its evidence
    evidence: list[str] = field(default_factory=list)  # why it was not judged on the baseline's evidence (also
    # in ``regressions``, first): failed trials, missing tracked values, fewer seeds, strata or trials
    notes: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    summary: str = ""  # the claim's own result line
    time_s: float = 0.0
    robustness: str = ""  # the verdict's robustness label (claims/protocol.py), printed beside it

    @property
    def headline(self) -> str:
        """One line: the first regression, else what held."""
        if self.regressions:
            return self.regressions[0]
        if self.status == "skipped":
            return self.notes[0] if self.notes else "skipped"
        return f"verdict {self.verdict} (baseline {self.baseline_verdict})" + \
            "".join(f"; {f.name} within tolerance" for f in self.findings if f.status == "ok")

    @property
    def line(self) -> str:
        """The headline with the verdict's robustness label beside it."""
        return self.headline + (f" [{self.robustness}]" if self.robustness else "")


@dataclass
class SuiteCheck:
    suite: str
    tier: str
    run_dir: Path
    report: Path | None
    outcomes: list[ClaimOutcome]
    elapsed_s: float = 0.0
    trained: int = 0
    total: int = 0
    baseline_measured: str = ""
    baseline_environment: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return any(o.status == "failed" for o in self.outcomes)


def compare_suite(suite: Suite, results: list[ClaimResult], frame: pd.DataFrame, entry: dict[str, Any],
                  run_dir: Path, report: Path | None = None) -> SuiteCheck:
    """Every claim of ``suite`` (now: ``results`` over ``frame``) against its baseline ``entry``."""
    outcomes = []
    by_id = {c.id: c for c in suite.claims}
    base_claims = entry.get("claims", {})
    matrix_note = None
    if entry.get("matrix") and entry["matrix"] != matrix_fingerprint(suite):
        matrix_note = ("the suite's trial matrix differs from the baseline's (suite or training revision changed): "
                       "differences may come from that; if intended, update the baseline")
    shortfall = trial_shortfall(frame, entry)
    for r in results:
        check = suite.checks.get(r.claim_id, ClaimCheck())
        base = base_claims.get(r.claim_id)
        if base is None:
            outcomes.append(ClaimOutcome(
                suite=suite.name, tier=suite.tier, claim_id=r.claim_id, paraphrase=r.paraphrase, status="skipped",
                verdict=r.verdict, baseline_verdict=None, gate=check.gate, summary=r.summary,
                notes=[f"no baseline for claim {r.claim_id} (new claim?): now {r.verdict}; "
                       f"add it with `claimbench baseline {suite.name} --tier {suite.tier}`"]))
            continue
        outcome = compare_claim(suite, by_id[r.claim_id], r, frame, base, check, shortfall)
        if matrix_note:
            outcome.notes.append(matrix_note)
        outcomes.append(outcome)
    for cid, base in base_claims.items():
        if cid not in by_id:
            outcomes.append(ClaimOutcome(
                suite=suite.name, tier=suite.tier, claim_id=cid, paraphrase=base.get("paraphrase", ""),
                status="skipped", verdict=None, baseline_verdict=base["verdict"], gate="",
                notes=[f"claim {cid} is in the baseline but no longer in the suite; update the baseline"]))
    return SuiteCheck(suite=suite.name, tier=suite.tier, run_dir=run_dir, report=report, outcomes=outcomes,
                      baseline_measured=entry.get("measured", ""), baseline_environment=entry.get("environment", {}))


def trial_shortfall(frame: pd.DataFrame, entry: dict[str, Any]) -> list[str]:
    """Why the run's trials are less evidence than the baseline's (one line each; none when they are not):
    more failed trials than the baseline had, or fewer trials with a record."""
    out = []
    statuses = entry.get("statuses") if isinstance(entry.get("statuses"), dict) else {}
    then_failed = statuses.get("failed", 0) if isinstance(statuses.get("failed", 0), int) else 0
    now_failed = int((frame["status"] == "failed").sum()) if len(frame) and "status" in frame.columns else 0
    if now_failed > then_failed:
        errors = frame.loc[frame["status"] == "failed", "error"] if "error" in frame.columns else pd.Series([], dtype=object)
        first = next((str(e) for e in errors if isinstance(e, str) and e), "no error recorded")
        out.append(f"{now_failed} of {len(frame)} trials failed (the baseline had {then_failed}; first error: "
                   f"{first[:200]}); fix the failure and rerun: failed trials retrain")
    then_n = entry.get("n_trials")
    if isinstance(then_n, int) and not isinstance(then_n, bool) and len(frame) < then_n:
        out.append(f"only {len(frame)} trials have a record, the baseline had {then_n}; rerun to train the rest")
    return out


def claim_shortfall(result: ClaimResult, base: dict[str, Any]) -> list[str]:
    """Why ``result`` was judged on less than the baseline's evidence for the claim: fewer seeds, trials or
    strata, or an effect (overall or per stratum) the baseline had and the run has not."""
    out = []
    for key, what in (("n_seeds", "seeds"), ("n_trials", "trials")):
        then, now = base.get(key), getattr(result, key)
        if isinstance(then, int) and not isinstance(then, bool) and now < then:
            out.append(f"judged on {now} {what}, the baseline on {then}")
    then_strata = base.get("strata") if isinstance(base.get("strata"), list) else []
    if len(result.strata) < len(then_strata):
        out.append(f"judged in {len(result.strata)} strata, the baseline in {len(then_strata)}")
    if base.get("effect") is not None and finite(result.effect) is None and not result.strata:
        out.append(f"no effect now (the baseline's: {base['effect']:+.4g})")
    now_by = {json.dumps(s.stratum, sort_keys=True, default=str): s for s in result.strata}
    for st in then_strata:
        if not isinstance(st, dict) or st.get("effect") is None:
            continue
        part = now_by.get(json.dumps(st.get("stratum"), sort_keys=True, default=str))
        if part is not None and finite(part.effect) is None:
            label = ", ".join(f"{k}={v}" for k, v in (st.get("stratum") or {}).items())
            out.append(f"no effect now at {label} (the baseline's: {st['effect']:+.4g})")
    return out


def _values(t: dict[str, list]) -> int:
    """How many seeds of a tracked quantity's per-seed values have a finite value."""
    return sum(1 for v in t.get("values", []) if isinstance(v, (int, float)) and math.isfinite(v))


def gated(check: ClaimCheck) -> bool:
    """Whether `check` can fail the claim: a verdict gate other than ``off``, or a tracked quantity."""
    return check.gate != "off" or bool(check.track)


def compare_claim(suite: Suite, claim: Claim, result: ClaimResult, frame: pd.DataFrame, base: dict[str, Any],
                  check: ClaimCheck, shortfall: list[str] | None = None) -> ClaimOutcome:
    """One claim against its baseline entry. Fails closed: a gated claim fails (with its reason) unless it
    was judged on at least the baseline's evidence — no more failed trials, as many seeds, trials and
    strata, an effect wherever the baseline had one, and every tracked quantity measured on as many
    seeds — and held. ``shortfall``: the suite's own (``trial_shortfall``)."""
    now, then = result.verdict, base["verdict"]
    out = ClaimOutcome(suite=suite.name, tier=suite.tier, claim_id=claim.id, paraphrase=result.paraphrase,
                       status="passed", verdict=now, baseline_verdict=then, gate=check.gate, summary=result.summary,
                       robustness=(result.robustness or {}).get("label", ""))
    out.evidence = [*(shortfall or []), *claim_shortfall(result, base)]
    effect_text = _effect_text(result)
    if now != then:
        regression = (check.gate == "supported" and then == "supported") or \
            (check.gate == "decided" and then in ("supported", "refuted"))
        line = (f"verdict {then} -> {now}: {effect_text}; baseline: "
                f"{_effect_text_base(base)}")
        if regression:
            out.regressions.append(line + f" (gate = {check.gate!r})")
        else:
            out.notes.append(line + f" — not a regression under gate = {check.gate!r}; update the baseline if intended")
    current = tracked_values(suite, claim, frame) if check.track else {}
    base_tracked = base.get("tracked", {})
    for name in sorted(set(current) | {k for k in base_tracked if quantity_of(k) in check.track}):
        q = quantity_of(name)
        if name not in base_tracked:
            out.notes.append(f"{name}: the baseline has no per-seed values; update the baseline to track it")
            continue
        had = _values(base_tracked[name])
        if name not in current:
            if had:
                out.evidence.append(f"{name}: no value now for any seed (the baseline has {had})")
            else:
                out.notes.append(f"{name}: in the baseline but not measured now (the strata changed?)")
            continue
        if _values(current[name]) < had:
            out.evidence.append(f"{name}: values for {_values(current[name])} seeds now, the baseline has {had}")
        finding = compare_values(name, base_tracked[name], current[name], check.tolerance[q],
                                 check.direction.get(q, "both"))
        out.findings.append(finding)
        if finding.status == "regression":
            out.regressions.append(finding.text)
        elif finding.status == "not judged":
            out.notes.append(finding.text)
    if out.evidence:
        lines = [f"not judged on the baseline's evidence: {e}" for e in out.evidence]
        if gated(check):
            out.regressions[:0] = lines
        else:
            out.notes[:0] = [line + " (gate = 'off' and nothing tracked: not gated)" for line in lines]
    if out.regressions:
        out.status = "failed"
    return out


def _effect_text(r: ClaimResult) -> str:
    if r.effect is not None and r.ci is not None:
        return f"effect {r.effect:+.4f} (CI {r.ci[0]:+.4f} to {r.ci[1]:+.4f}, {r.n_seeds} seeds)"
    return r.summary


def _effect_text_base(base: dict[str, Any]) -> str:
    e, ci = base.get("effect"), base.get("ci")
    if e is not None and ci and None not in ci:
        return f"effect {e:+.4f} (CI {ci[0]:+.4f} to {ci[1]:+.4f}, {base.get('n_seeds')} seeds)"
    return base.get("summary", "")


def compare_values(name: str, base: dict[str, list], now: dict[str, list], tolerance: float,
                   direction: str = "both") -> Finding:
    """Baseline vs current per-seed values of one quantity: the Student t interval of the difference of means.

    Paired by seed when both sides hold the same seeds (t on the per-seed changes); otherwise Welch's
    interval. A regression needs the whole CI beyond ``tolerance`` on the gated side.
    """
    b = {int(s): v for s, v in zip(base["seeds"], base["values"]) if v is not None and math.isfinite(v)}
    c = {int(s): v for s, v in zip(now["seeds"], now["values"]) if v is not None and math.isfinite(v)}
    paired = set(base["seeds"]) == set(now["seeds"])
    f = Finding(name=name, tolerance=tolerance, direction=direction, status="ok", paired=paired)
    if paired:
        common = sorted(set(b) & set(c))
        bv, cv = np.array([b[s] for s in common]), np.array([c[s] for s in common])
        f.n = len(common)
    else:
        bv, cv = np.array(list(b.values())), np.array(list(c.values()))
        f.n = min(len(bv), len(cv))
    decision = None
    if f.n:
        f.baseline_mean, f.current_mean = float(bv.mean()), float(cv.mean())
        f.diff = f.current_mean - f.baseline_mean
        decision = decide_change(bv, cv, tolerance, direction, paired)
        f.ci = decision.ci
    how = f"{'paired' if paired else 'unpaired'}, n={f.n} seeds"
    if f.n < MIN_SEEDS:
        f.status = "not judged"
        f.text = (f"{name}: only {f.n} seed(s) with a value on both sides (need {MIN_SEEDS}) — shown, not judged"
                  + (f"; mean {f.baseline_mean:+.4f} -> {f.current_mean:+.4f}" if f.n else ""))
        return f
    lo, hi = f.ci
    bad = decision is not None and decision.verdict == "refuted"
    side = {"both": f"|Δ| > {tolerance:g}", "increase": f"Δ > +{tolerance:g}", "decrease": f"Δ < -{tolerance:g}"}[direction]
    f.status = "regression" if bad else "ok"
    verdict = "beyond tolerance" if bad else "within tolerance"
    f.text = (f"{name}: mean over seeds {f.baseline_mean:+.4f} -> {f.current_mean:+.4f}, "
              f"Δ {f.diff:+.4f} (95% CI {lo:+.4f} to {hi:+.4f}; {how}); regression if the CI lies wholly at "
              f"{side}: {verdict} [test: {TEST_TEXT}]")
    return f


@dataclass
class Measured:
    """A suite run into its check run dir and evaluated (``api.measure``): what the gate compares."""

    suite: Suite
    run_dir: Path
    results: list[ClaimResult]
    frame: pd.DataFrame
    environment: dict[str, Any]
    report: Path | None
    total: int
    trained: int
    elapsed_s: float


def check_measured(measured: list[Measured], data: dict[str, Any], baseline_path: str | Path,
                   select=None) -> list[SuiteCheck]:
    """Each measured suite against its baseline entry; with ``select`` (``-k``) only the claims it keeps."""
    checks = []
    for m in measured:
        start = time.monotonic()
        ids = None if select is None else [c.id for c in m.suite.claims if select(m.suite.name, c.id)]
        entry = baseline_for(data, m.suite, baseline_path, ids)
        sc = compare_suite(m.suite, m.results, m.frame, entry, m.run_dir, m.report)
        sc.elapsed_s, sc.trained, sc.total = m.elapsed_s, m.trained, m.total
        per_claim = (time.monotonic() - start) / max(1, len(sc.outcomes))
        for o in sc.outcomes:
            o.time_s = per_claim
        checks.append(sc)
    if not any(o.status in ("passed", "failed") for sc in checks for o in sc.outcomes):
        raise UserError("no claim was compared with the baseline: nothing was checked", where=str(baseline_path),
                        fix="check suites whose claims the baseline holds")  # emptiness never reads as "holds"
    return checks
