"""A run's results as data beside its report: ``verdicts.json`` and three Parquet frames.

``write_exports(run_dir, evaluations)`` writes, beside ``report.html``:

- ``verdicts.json`` — one row per claim and per stratum of a claim (``level`` = ``claim`` | ``stratum``):
  ``suite``, ``claim_id``, ``kind``, ``faq_section``, ``paraphrase``, ``stratum`` (text, "" for a claim),
  ``verdict``, ``adjusted_verdict`` (Holm over every claim of the report, as the HTML shows it; null for
  a stratum, which is not adjusted on its own), ``effect``, ``unit``, ``ci_low``, ``ci_high``, ``method``
  (how the interval and p-values were computed), ``p_supported``, ``p_refuted``, ``n_seeds``, ``n_trials``,
  ``mde`` (the statistic's minimum detectable effect at 80% power, on the statistic's scale),
  ``detectable`` (the same in words, in the unit), ``claimed`` (the decision band in words), ``statistic``
  and ``summary``; for a claim also ``robustness`` (robust / fragile: flips to X under Y / undecided),
  ``robust``, ``registered_verdict`` (what the statistic alone gave), ``protocol_limits`` (why it is not
  decided), ``diagnostics`` and ``variants`` (the verdict under each robustness variant; claims/protocol.py). Versioned (``schema``) and carrying the run's environment.
- per suite run dir: ``trials.parquet`` (the trial frame), ``curves.parquet`` (one row per trial and
  evaluation) and ``range_curves.parquet`` (one row per trial and LR of the range test's sweep:
  ``trial_id``, ``seed``, ``lr``, ``loss``, ``smoothed``).

``read_verdicts(run_dir)`` reads the rows back (``claimbench.load_verdicts`` makes them a DataFrame).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from claimbench.analysis import inference
from claimbench.claims.base import ClaimResult, evidence
from claimbench.errors import StoreError
from claimbench.evaluation import Evaluation
from claimbench.paths import inside
from claimbench.report import format as fmt
from claimbench.store.files import atomic_write_text

VERDICTS_NAME = "verdicts.json"
VERDICTS_KIND = "claimbench-verdicts"
VERDICTS_SCHEMA = 1
FRAME_NAMES = ("trials.parquet", "curves.parquet", "range_curves.parquet")


def _number(x: Any) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def _row(r: ClaimResult, suite: str, level: str, adjusted: str | None) -> dict[str, Any]:
    lo, hi = r.ci if r.ci is not None else (None, None)
    return {
        "suite": suite, "claim_id": r.claim_id, "level": level, "stratum": fmt.stratum(r.stratum),
        "kind": r.kind, "faq_section": r.faq_section, "paraphrase": r.paraphrase,
        "verdict": r.verdict, "adjusted_verdict": adjusted,
        "effect": _number(r.effect), "unit": r.unit, "ci_low": _number(lo), "ci_high": _number(hi),
        "method": r.method, "p_supported": _number(r.p_supported), "p_refuted": _number(r.p_refuted),
        "n_seeds": int(r.n_seeds), "n_trials": int(r.n_trials), "mde": _number(r.mde),
        "detectable": r.detectable, "claimed": fmt.claimed(r.band, r.unit) if r.band else "",
        "statistic": r.statistic, "summary": r.summary,
        "robustness": fmt.protocol_label(r.robustness) if r.robustness else None,
        "robust": (r.robustness or {}).get("robust") if r.robustness else None,
        "registered_verdict": (r.diagnostics or {}).get("registered_verdict"),
        "protocol_limits": list((r.diagnostics or {}).get("limits", [])),
        "diagnostics": _plain(r.diagnostics) if r.diagnostics else None,
        "variants": _plain((r.robustness or {}).get("variants")) if r.robustness else None,
    }


def _plain(x: Any) -> Any:
    """``x`` with numpy scalars and non-finite floats made JSON-plain (None for NaN)."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items() if k != "trial_ids"}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if hasattr(x, "item"):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def verdict_rows(evaluations: Evaluation | list[Evaluation]) -> list[dict[str, Any]]:
    """One row per claim, then its strata, of every evaluation (columns: the module docstring)."""
    evaluations = evaluations if isinstance(evaluations, list) else [evaluations]
    results = [(ev.suite.name, r) for ev in evaluations for r in ev.results]
    adjusted = inference.adjust([evidence(r) for _, r in results]) if results else []
    rows = []
    for (suite, r), adj in zip(results, adjusted):
        rows.append(_row(r, suite, "claim", adj))
        rows += [_row(s, suite, "stratum", None) for s in r.strata]
    return rows


def write_exports(run_dir: str | Path, evaluations: Evaluation | list[Evaluation]) -> list[Path]:
    """``verdicts.json`` in ``run_dir`` and the three frames in each evaluation's run dir; the paths written."""
    evaluations = evaluations if isinstance(evaluations, list) else [evaluations]
    root = Path(run_dir)
    written = []
    doc = {"schema": VERDICTS_SCHEMA, "kind": VERDICTS_KIND,
           "suites": [{"name": ev.suite.name, "tier": ev.suite.tier, "created": ev.created,
                       "command": ev.command, "environment": ev.environment} for ev in evaluations],
           "verdicts": verdict_rows(evaluations)}
    path = inside(root, VERDICTS_NAME)
    atomic_write_text(path, json.dumps(doc, indent=1, default=str) + "\n")
    written.append(path)
    for ev in evaluations:
        where = ev.run_dir if ev.run_dir is not None else None
        if where is None:
            continue
        trials = ev.frame.copy()
        trials.attrs = {}
        curves, ranges = ev.curves(), ev.range_curves()
        for name, frame in zip(FRAME_NAMES, (trials, curves, ranges)):
            out = inside(where, name)
            tmp = out.with_name(f".{name}.tmp")
            frame.to_parquet(tmp, index=False)
            tmp.replace(out)  # atomic: a reader never sees half a file
            written.append(out)
    return written


def read_verdicts(run_dir: str | Path) -> list[dict[str, Any]] | None:
    """The rows of ``RUN_DIR/verdicts.json``, or None when there is none."""
    if not (Path(run_dir) / VERDICTS_NAME).is_file():
        return None
    return list(read_verdicts_doc(run_dir).get("verdicts", []))


def read_verdicts_doc(run_dir: str | Path) -> dict[str, Any]:
    """``RUN_DIR/verdicts.json`` whole (its suites, with their environments, and its rows)."""
    path = Path(run_dir) / VERDICTS_NAME
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise StoreError(f"unreadable verdicts file ({str(e).splitlines()[0]})", where=str(path),
                         fix=f"rewrite it: claimbench report {run_dir}") from None
    if not isinstance(doc, dict) or doc.get("kind") != VERDICTS_KIND or doc.get("schema") != VERDICTS_SCHEMA:
        raise StoreError(f"not a claimbench verdicts file of schema {VERDICTS_SCHEMA}", where=str(path),
                         fix=f"rewrite it with this version: claimbench report {run_dir}")
    return doc
