"""The Markdown summary of a `claimbench check` (for $GITHUB_STEP_SUMMARY and PR comments).

One line of totals, one table row per claim (suite, claim, baseline verdict ->
verdict, tracked quantities, result), then the evidence of every regression and
the notes, then where the reports are.
"""

from __future__ import annotations

import os
from pathlib import Path

from claimbench.analysis.inference import CHANGE_TEST
from claimbench.check.gate import ClaimOutcome, SuiteCheck
from claimbench.store.files import atomic_write_text

MARK = {"passed": "✅ pass", "failed": "❌ regression", "skipped": "⚪ skipped"}


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _tracked(o: ClaimOutcome) -> str:
    parts = []
    for f in o.findings:
        if f.ci is None:
            parts.append(f"{f.name}: n={f.n}, not judged")
        else:
            parts.append(f"{f.name}: Δ {f.diff:+.4f} (CI {f.ci[0]:+.4f} to {f.ci[1]:+.4f}; tol {f.tolerance:g})"
                         + ("" if f.status != "not judged" else ", not judged"))
    return "; ".join(parts) or "—"


def render_markdown(checks: list[SuiteCheck], baseline: str | Path = "") -> str:
    outcomes = [o for sc in checks for o in sc.outcomes]
    failed = sum(o.status == "failed" for o in outcomes)
    skipped = sum(o.status == "skipped" for o in outcomes)
    tiers = sorted({sc.tier for sc in checks})
    head = "❌" if failed else "✅"
    lines = [f"## {head} claimbench check: {failed} regression{'s' if failed != 1 else ''} in {len(outcomes)} "
             f"claim{'s' if len(outcomes) != 1 else ''} (tier {', '.join(tiers)}"
             + (f"; {skipped} skipped" if skipped else "") + ")", ""]
    if baseline:
        lines += [f"Baseline: `{baseline}`", ""]
    lines += ["| result | suite | claim | baseline → now | tracked (now − baseline over seeds) |",
              "|---|---|---|---|---|"]
    for o in outcomes:
        lines.append(f"| {MARK[o.status]} | {_cell(o.suite)} | {_cell(o.claim_id)} | "
                     f"{o.baseline_verdict or '—'} → {o.verdict or '—'} | {_cell(_tracked(o))} |")
    regressions = [o for o in outcomes if o.regressions]
    if regressions:
        lines += ["", "### Regressions", ""]
        for o in regressions:
            lines.append(f"- **{_cell(o.suite)} {_cell(o.claim_id)}** ({_cell(o.paraphrase)})")
            lines += [f"  - {_cell(r)}" for r in o.regressions]
    notes = [(o, n) for o in outcomes for n in o.notes]
    if notes:
        lines += ["", "### Notes", ""]
        lines += [f"- {_cell(o.suite)} {_cell(o.claim_id)}: {_cell(n)}" for o, n in notes]
    lines += ["", f"Tracked quantities: a regression needs the {CHANGE_TEST} to show the change beyond the "
              "tolerance on the gated side.", ""]
    for sc in checks:
        lines.append(f"- {_cell(sc.suite)} [{sc.tier}]: {sc.total} trials ({sc.trained} trained now, "
                     f"{sc.elapsed_s:.0f}s); report `{sc.report}`")
    return "\n".join(lines) + "\n"


def write_markdown(checks: list[SuiteCheck], path: str | Path | None, baseline: str | Path = "") -> list[Path]:
    """Write the summary to ``path`` (when given) and append it to $GITHUB_STEP_SUMMARY (when set)."""
    text = render_markdown(checks, baseline)
    written = []
    if path:
        atomic_write_text(Path(path), text)
        written.append(Path(path))
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as f:
            f.write(text)
        written.append(Path(summary))
    return written
