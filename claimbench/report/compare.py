"""A ``claimbench compare`` (``check.compare.Comparison``) in words: lines for a terminal and a Markdown
table for a pull request."""

from __future__ import annotations

from typing import Any

from claimbench.check.compare import ClaimChange, Comparison
from claimbench.report.format import in_unit, number


def _verdicts(c: ClaimChange) -> str:
    if c.verdict_a == c.verdict_b:
        return f"{c.verdict_a}"
    return f"{c.verdict_a or '—'} -> {c.verdict_b or '—'}"


def _effect(c: ClaimChange) -> str:
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
