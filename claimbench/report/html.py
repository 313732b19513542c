"""The HTML report: an ``Evaluation`` -> plain view data -> one self-contained HTML file.

The view data (``build_context``) holds only text, numbers and the figures'
SVG; the Jinja2 template (``templates/report.html.j2``) lays it out with
autoescaping on, so every string from a suite or a run is escaped. Only the
SVG that ``figures`` draws is marked safe.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing as mp
import os
import pickle
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from collections import Counter
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from claimbench.analysis import inference
from claimbench.claims.base import VERDICTS, Claim, ClaimResult, evidence
from claimbench.evaluation import Evaluation, read_group
from claimbench.loop import read_doc
from claimbench.report import figures as figs
from claimbench.report import format as fmt
from claimbench.report.exports import write_exports
from claimbench.report.figures.summary import summary_figure
from claimbench.store.files import atomic_write_text
from claimbench.suite import Suite, expand

log = logging.getLogger(__name__)

REPORT_NAME = "report.html"
STATUSES = ("completed", "diverged", "failed")

TIER_NOTES = {
    "smoke": "smoke tier: seconds-scale settings for tests; its verdicts say nothing about the claims",
    "ci": "ci tier: the claims that decide in minutes on a CPU; the CI gate",
    "default": "default tier: a laptop CPU, the whole matrix in minutes",
    "full": "full tier: GPU cluster, real image datasets, more seeds",
}

#: Column headers of the table behind a claim's figure, by claim kind, then generic.
#: ``{axis}``, ``{metric}``, ``{range_axis}`` are filled in from the claim's parameters.
TABLE_LABELS: dict[str, dict[str, str]] = {
    "best_level_in_range": {"mean": "mean {metric}", "n": "seeds", "inside": "in claimed range"},
    "range_width_trend": {"mean": "mean width (log2)", "lo": "width CI low", "hi": "width CI high", "n": "seeds",
                          "range_lo": "good {range_axis} low", "range_hi": "good {range_axis} high",
                          "range_lo_per_level": "low {range_axis} / {axis}",
                          "range_hi_per_level": "high {range_axis} / {axis}", "censored": "censored"},
}
GENERIC_LABELS = {"level": "{axis}", "mean": "mean", "lo": "CI low", "hi": "CI high", "n": "n"}


# ------------------------------------------------------------------ public

def render_html(evaluations: Evaluation | list[Evaluation], group: dict[str, Any] | None = None) -> str:
    """The report of one evaluated run, or of a group's runs, as one self-contained HTML document."""
    return _template().render(**build_context(evaluations, group))


def write_report(run_dir: str | Path, evaluation: Evaluation | list[Evaluation], out: str | Path | None = None,
                 exports: bool = True) -> Path:
    """Write the report of ``run_dir`` (a suite's or a group's), whose ``evaluation`` is what
    ``api.evaluate_target`` (or ``evaluate_run``) returns, to ``out`` (default ``RUN_DIR/report.html``), and
    with ``exports`` its data beside it: ``RUN_DIR/verdicts.json`` and each suite run dir's
    ``trials.parquet``, ``curves.parquet``, ``range_curves.parquet`` (``report.exports``)."""
    path = Path(out) if out is not None else Path(run_dir) / REPORT_NAME
    atomic_write_text(path, render_html(evaluation, read_group(run_dir)))
    if exports:
        write_exports(run_dir, evaluation)
    return path


# ------------------------------------------------------------------ view data

#: FAQ section titles (our own words), for grouping the verdict table.
FAQ_SECTIONS = {
    "1": "Network structure", "2": "Input neurons", "3": "Output neurons", "4": "Hidden layers and units",
    "5": "Loss functions", "6": "Batch size", "7": "Epochs", "8": "Learning rate", "9": "Momentum",
    "10": "Vanishing and exploding gradients", "11": "Hidden-layer activations", "12": "Output activations",
    "13": "Weight initialization", "14": "Batch normalization", "15": "Gradient clipping",
    "16": "Early stopping", "17": "Dropout", "18": "Optimizers", "19": "Learning-rate schedules",
}


def _section_key(section: str) -> tuple:
    return (0, int(section), "") if section.isdigit() else (1, 0, section)


def build_context(evaluations: Evaluation | list[Evaluation], group: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything the template shows, as plain data (figures as ``Markup`` SVG).

    Claims of every suite are grouped by FAQ section in the verdict table; each
    suite keeps its own methodology and reproduce command.
    """
    evaluations = evaluations if isinstance(evaluations, list) else [evaluations]
    rendered = _render_all(evaluations)
    claims, suites = [], []
    for evaluation in evaluations:
        suite = evaluation.suite
        results = {r.claim_id: r for r in evaluation.results}
        views = [_claim_view(c, results.get(c.id), evaluation, rendered) for c in suite.claims]
        # results of claims the suite no longer lists (cannot happen with evaluate_run; shown rather than lost)
        known = {c.id for c in suite.claims}
        views += [_claim_view(None, r, evaluation) for r in evaluation.results if r.claim_id not in known]
        command = evaluation.command or evaluation.environment.get("command") or ""
        for v in views:
            v.update(suite=suite.name, suite_title=suite.title, command=command)
        claims += views
        suites.append({"name": suite.name, "title": suite.title, "description": suite.description,
                       "path": suite.path, "tier": suite.tier, "tier_note": TIER_NOTES.get(suite.tier, ""),
                       "methodology": _methodology(evaluation), "command": command,
                       "claim_ids": [v["id"] for v in views]})
    sections: dict[str, list[dict]] = {}
    for c in claims:
        sections.setdefault(c["faq_section"], []).append(c)
    ordered = [{"id": s, "title": FAQ_SECTIONS.get(s, ""), "claims": sections[s]}
               for s in sorted(sections, key=_section_key)]
    claims = [c for sec in ordered for c in sec["claims"]]
    multiplicity = _adjust(claims)
    overview, overview_error = _overview(ordered)
    verdicts = Counter(c["verdict"] for c in claims)
    tiers = sorted({s["tier"] for s in suites})
    tier = tiers[0] if len(tiers) == 1 else ", ".join(tiers)
    first = suites[0] if suites else {"name": "", "title": "", "description": "", "path": ""}
    # suites of a group share trials (one trial id, one record): the header counts distinct trials
    n_records = len({t for e in evaluations if "trial_id" in e.frame.columns for t in e.frame["trial_id"]})
    per_suite = sum(s["methodology"]["n_records"] for s in suites)
    expected_ids = _expected_ids(evaluations)
    return {
        "title": group["title"] if group else first["title"],
        "description": group.get("description", "") if group else first["description"],
        "group": group["group"] if group else None,
        "suites": suites,
        "tier": tier, "tier_note": TIER_NOTES.get(tier, ""),
        "created": max((e.created or "" for e in evaluations), default=""),
        "summary": _summary_line(claims, verdicts),
        "multiplicity": multiplicity,
        "overview": overview, "overview_error": overview_error,
        "verdict_counts": [(v, verdicts.get(v, 0)) for v in VERDICTS],
        "claims": claims,
        "sections": ordered,
        "n_records": n_records,
        "n_records_per_suite": per_suite if per_suite != n_records else None,
        "expected": None if expected_ids is None else len(expected_ids),
        "n_seeds": sorted({s["methodology"]["n_seeds"] for s in suites}),
        "environment": _environment(evaluations[0].environment, first.get("command", "")) if evaluations
        else _environment({}, ""),
    }


def _overview(sections: list[dict]) -> tuple[dict[str, Any] | None, str]:
    """The summary forest plot of every claim and stratum (``figures.summary``), or why it failed."""
    rows = []
    for sec in sections:
        label = f"FAQ §{sec['id']}" + (f" · {sec['title']}" if sec["title"] else "") if sec["id"] else "Other claims"
        for c in sec["claims"]:
            result = c.get("result")
            if result is None:
                continue
            rows += [(label, c["id"], result)] if not result.strata else \
                [(label, f"{c['id']} {fmt.stratum(s.stratum)}", s) for s in result.strata]
    try:
        figure = summary_figure(rows)
    except Exception as e:  # the overview must not cost the reader the report
        log.warning("summary figure failed", exc_info=True)
        return None, f"{type(e).__name__}: {e}"
    if figure is None:
        return None, ""
    return {"title": figure.title[:1].upper() + figure.title[1:], "caption": figure.caption,
            "svg": Markup(figure.svg)}, ""


def _adjust(claims: list[dict]) -> dict[str, Any] | None:
    """Holm-adjusted verdicts across the report's evaluated claims (set on each view as ``adjusted``), the
    counts, and how many decided verdicts chance alone would give (analysis/inference.py)."""
    judged = [c for c in claims if c.get("evidence") is not None]
    if not judged:
        return None
    adjusted = inference.adjust([c["evidence"] for c in judged])
    for c, a in zip(judged, adjusted):
        c["adjusted"] = a
    counts = Counter(adjusted)
    n = len(judged)
    return {"n": n, "counts": [(v, counts.get(v, 0)) for v in VERDICTS],
            "chance": inference.chance_decisions(n), "alpha": inference.ALPHA,
            "changed": [c["id"] for c in judged if c["adjusted"] != c["verdict"]]}


def _summary_line(claims: list[dict], verdicts: Counter) -> str:
    if not claims:
        return "This suite states no claims."
    n = len(claims)
    parts = [f"{verdicts.get(v, 0)} {v}" for v in VERDICTS]
    pending = verdicts.get("pending", 0)
    if pending:
        parts.append(f"{pending} not evaluated (no trial records yet)")
    line = f"{n} claim{'s' if n != 1 else ''}: " + ", ".join(parts) + "."
    decided = [c for c in claims if c["verdict"] in ("supported", "refuted") and c.get("robust") is not None]
    if decided:
        robust = sum(1 for c in decided if c["robust"])
        line += f" Robust to the protocol: {robust} of the {len(decided)} decided ({len(decided) - robust} fragile)."
    limited = [c["id"] for c in claims if c.get("result") is not None
               and (c["result"].diagnostics or {}).get("limits")
               and c["result"].diagnostics.get("registered_verdict") in ("supported", "refuted")]
    if limited:
        line += f" Not decided for their protocol (edge- or budget-limited): {', '.join(limited)}."
    return line


#: Figures are drawn in this many processes at once (forked, each drawing whole claims; the SVG is the same
#: as drawn serially: every figure's ids are salted by its own name). 1 draws in this process.
_JOBS_ENV = os.environ.get("CLAIMBENCH_REPORT_JOBS", "").strip()
REPORT_JOBS = int(_JOBS_ENV) if _JOBS_ENV.isdigit() and int(_JOBS_ENV) > 0 else min(os.cpu_count() or 1, 8)
_PARALLEL_FROM = 8  # claims: below this a pool costs more than it saves
_TO_DRAW: list[tuple[Claim, ClaimResult, Evaluation]] = []  # what the forked workers draw (inherited)


def _figures(claim: Claim, result: ClaimResult, evaluation: Evaluation) -> tuple[list[figs.RenderedFigure] | None, str]:
    """One claim's figures and "", or None and the error that stopped them."""
    try:
        return figs.figures_for(claim, result, evaluation), ""
    except Exception as e:  # a figure must not cost the reader the rest of the report
        log.warning("figure for claim %s failed", claim.id, exc_info=True)
        return None, f"{type(e).__name__}: {e}"


def _draw(i: int) -> tuple[list[figs.RenderedFigure] | None, str]:
    """The pool's task: the i-th claim of ``_TO_DRAW`` (inherited by the forked worker, not pickled)."""
    return _figures(*_TO_DRAW[i])


def _render_all(evaluations: list[Evaluation]) -> dict[tuple[int, str], tuple[list | None, str]]:
    """Every claim's figures (or its error), keyed by (id of its evaluation, claim id): drawn in a pool of
    forked processes when there are enough claims and cores (matplotlib holds the GIL: threads would not
    help), else here. A pool that cannot start or breaks leaves the rest to be drawn here."""
    todo = []
    for evaluation in evaluations:
        results = {r.claim_id: r for r in evaluation.results}
        todo += [(c, results[c.id], evaluation) for c in evaluation.suite.claims if c.id in results]
    keys = [(id(e), c.id) for c, _, e in todo]
    _TO_DRAW[:] = todo
    out: dict[tuple[int, str], tuple[list | None, str]] = {}
    try:
        if REPORT_JOBS > 1 and len(todo) >= _PARALLEL_FROM and "fork" in mp.get_all_start_methods():
            try:
                with ProcessPoolExecutor(min(REPORT_JOBS, len(todo)), mp_context=mp.get_context("fork")) as pool:
                    out.update(zip(keys, pool.map(_draw, range(len(todo)))))
            except (OSError, BrokenProcessPool, pickle.PicklingError) as e:  # a dead worker raises, never hangs
                log.warning("drawing figures in parallel failed (%s); drawing them here", e)
                out.clear()
        for key, task in zip(keys, todo):
            if key not in out:
                out[key] = _figures(*task)
    finally:
        _TO_DRAW.clear()
    return out


def _claim_view(claim: Claim | None, result: ClaimResult | None, evaluation: Evaluation,
                rendered: dict[tuple[int, str], tuple[list | None, str]] | None = None) -> dict[str, Any]:
    params = dict(claim.params) if claim else {}
    view: dict[str, Any] = {
        "id": claim.id if claim else result.claim_id,
        "kind": claim.kind if claim else result.kind,
        "faq_section": (claim.faq_section if claim else result.faq_section) or "",
        "paraphrase": (claim.paraphrase if claim else result.paraphrase) or "",
        "params": [(k, fmt.parameter(v)) for k, v in params.items()],
        "verdict": "pending", "statistic": "", "method": "", "summary": "no trial records yet: nothing to evaluate",
        "effect": fmt.DASH, "ci": fmt.DASH, "n_seeds": 0, "n_trials": 0, "caveats": [], "strata": [],
        "figures": [], "figure_error": "", "tables": [], "unit": "", "unit_note": "", "claimed": fmt.DASH,
        "p_values": "", "detectable": "", "robustness": "", "robust": None, "protocol": [],
        "evidence": None, "adjusted": "", "result": None,
    }
    if result is None:
        return view
    view.update(
        verdict=result.verdict, statistic=result.statistic, method=result.method, summary=result.summary,
        effect=_effect(result), ci=fmt.interval_in_unit(result.ci, result.unit), unit=result.unit,
        unit_note=fmt.UNIT_NOTES.get(result.unit, ""), claimed=fmt.claimed(result.band, result.unit),
        n_seeds=result.n_seeds, n_trials=result.n_trials, caveats=list(result.caveats),
        p_values=fmt.p_values(result.p_supported, result.p_refuted), detectable=result.detectable,
        evidence=evidence(result), result=result,
        robustness=fmt.protocol_label(result.robustness) if result.robustness else "",
        robust=(result.robustness or {}).get("robust"), protocol=fmt.protocol_lines(result.diagnostics),
        strata=[{"label": fmt.stratum(s.stratum), "verdict": s.verdict, "summary": s.summary,
                 "effect": _effect(s), "ci": fmt.interval_in_unit(s.ci, s.unit), "unit": s.unit,
                 "claimed": fmt.claimed(s.band, s.unit),
                 "p_values": fmt.p_values(s.p_supported, s.p_refuted), "detectable": s.detectable,
                 "n_seeds": s.n_seeds, "n_trials": s.n_trials} for s in result.strata],
        tables=_tables(result, params),
    )
    if claim is not None:
        drawn = (rendered or {}).get((id(evaluation), claim.id))
        figures, view["figure_error"] = drawn if drawn is not None else _figures(claim, result, evaluation)
        view["figures"] = [{"title": f.title[:1].upper() + f.title[1:], "caption": f.caption, "svg": Markup(f.svg)}
                           for f in figures or ()]
    return view


def _effect(result: ClaimResult) -> str:
    return fmt.in_unit(result.effect, result.unit, fmt.unit_is_signed(result.unit))


def _tables(result: ClaimResult, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The records behind the figure, one table per shape of record (a kind may keep per-level rows and
    estimate rows: two tables, not one with the other's columns empty), one group per stratum."""
    parts = list(result.strata) or [result]
    shapes: list[tuple[str, ...]] = []
    for part in parts:
        for record in part.data:
            key = tuple(record)
            if key not in shapes:
                shapes.append(key)
    tables = []
    for shape in shapes:
        subset = [ClaimResult(**{**_fields(p), "data": [r for r in p.data if tuple(r) == shape]}) for p in parts]
        table = _table(subset, result.kind, params)
        if table is not None:
            tables.append(table)
    return tables


def _fields(part: ClaimResult) -> dict[str, Any]:
    return {k: v for k, v in part.__dict__.items() if k not in ("data", "strata")}


def _table(parts: list[ClaimResult], kind: str, params: dict[str, Any]) -> dict[str, Any] | None:
    """One table: records of the same keys, grouped by stratum."""
    keys: list[str] = []
    for part in parts:
        for record in part.data:
            keys.extend(k for k in record if k not in keys)
    if not keys:
        return None
    labels = {**GENERIC_LABELS, **TABLE_LABELS.get(kind, {})}
    fill = {"axis": params.get("axis", "level"), "metric": params.get("metric", "metric"),
            "range_axis": params.get("range_axis", "")}
    columns = []
    for k in keys:
        values = [r.get(k) for p in parts for r in p.data]
        numeric = any(fmt.is_numeric(v) for v in values) or all(fmt.is_missing(v) for v in values)
        header = labels.get(k, k)
        try:
            header = header.format(**fill)
        except (KeyError, IndexError, ValueError):
            pass
        columns.append({"header": header, "numeric": numeric})
    # format whole columns over all strata, so that decimals line up down the table
    formatted = {k: fmt.column([r.get(k) for p in parts for r in p.data]) for k in keys}
    groups, start = [], 0
    for p in parts:
        if not p.data:
            continue
        rows = [[formatted[k][start + i] for k in keys] for i in range(len(p.data))]
        groups.append({"label": fmt.stratum(p.stratum), "rows": rows})
        start += len(p.data)
    return {"columns": columns, "groups": groups}


def _methodology(evaluation: Evaluation) -> dict[str, Any]:
    suite = evaluation.suite
    design = suite.design()
    frame = evaluation.frame
    counts = Counter(frame["status"]) if "status" in frame.columns else Counter()
    expected = _expected_trials(suite)
    doc = read_doc(evaluation.run_dir) if evaluation.run_dir is not None else {}
    skipped = int(doc.get("skipped", 0) or 0)  # trials the adaptive rules chose not to train (loop.py)
    halted = int(doc.get("halted", 0) or 0)  # trials halving stopped at their rung: not in the frame
    status_rows = [(s, counts.get(s, 0)) for s in STATUSES]
    status_rows += [(s, n) for s, n in sorted(counts.items()) if s not in STATUSES]
    damaged = frame.attrs.get("damaged", [])  # store.RunStore.frame: records quarantined in this run dir
    if damaged:
        which = ", ".join(f"{d['file'].removesuffix('.json')} ({d['reason']})" for d in damaged[:10])
        status_rows.append((f"damaged records, quarantined to trials/.damaged/ and retrained: {which}"
                            f"{', ...' if len(damaged) > 10 else ''}", len(damaged)))
    return {
        "axes": [{"name": a.name, "role": a.role, "n": len(a.values),  # no key "values": Jinja would find dict.values
                  "levels": ", ".join(fmt.label(v) for v in a.values)} for a in suite.axes],
        "seeds": ", ".join(str(s) for s in suite.seeds), "n_seeds": len(suite.seeds),
        "budget": _budget_text(suite),
        "tier": suite.tier,
        "nuisance": ", ".join(design.nuisance),
        "scientific": ", ".join(design.scientific),
        "strata": ", ".join(design.fixed),
        "constants": [(k, fmt.parameter(v)) for k, v in design.constants.items()],
        "not_applicable": list(frame.attrs.get("not_applicable", [])),  # settings the workload does not read
        "status_rows": status_rows,
        "n_records": int(len(frame)),
        "expected": expected,
        "missing": max(expected - int(len(frame)) - skipped - halted, 0) if expected is not None else None,
        "skipped": skipped,
        "halted": halted,
        "adaptive": [str(k.get("text", "")) for k in doc.get("looks", []) if isinstance(k, dict)],
    }


def _expected_ids(evaluations: list[Evaluation]) -> set[str] | None:
    """The distinct trial ids every suite's matrix asks for (None when a suite no longer expands)."""
    ids: set[str] = set()
    for e in evaluations:
        try:
            ids |= {s.trial_id for s in expand(e.suite)}
        except Exception:
            return None
    return ids


def _expected_trials(suite: Suite) -> int | None:
    try:
        return len(expand(suite))
    except Exception:  # a suite that no longer expands still gets a report of what was recorded
        return None


def _budget_text(suite: Suite) -> str:
    swept = [a for a in suite.axes if a.sets_budget]
    if swept:
        return "; ".join(f"swept by axis {a.name}: " + ", ".join(fmt.label(v) if isinstance(v, dict)
                                                                  else f"{a.name}={v}" for v in a.values)
                         for a in swept)
    return ", ".join(f"{k} = {suite.base[k]}" for k in ("epochs", "steps") if suite.base.get(k)) or fmt.DASH


def _environment(env: dict[str, Any], command: str) -> dict[str, Any]:
    gpus = env.get("gpus") or []
    rows = [
        ("python", env.get("python")), ("platform", env.get("platform")), ("cpu", env.get("cpu")),
        ("cpu count", env.get("cpu_count")), ("GPUs", ", ".join(map(str, gpus)) if gpus else "none"),
        ("git revision", env.get("git_sha") or "unknown"),
        ("command", command or env.get("command") or "not recorded"),
    ]
    known = {"python", "platform", "cpu", "cpu_count", "gpus", "packages", "git_sha", "command", "repositories"}
    rows += [(k, v) for k, v in env.items() if k not in known]
    rows += [(f"git revision of the {label}", sha or "not a git checkout")
             for label, sha in (env.get("repositories") or {}).items()]
    packages = env.get("packages") or {}
    return {
        "rows": [(k, fmt.DASH if v is None or v == "" else str(v)) for k, v in rows],
        "packages": [(name, version or "not installed") for name, version in sorted(packages.items())],
    }


# ------------------------------------------------------------------ template

@functools.lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,  # every suite and run string is escaped; figure SVG is Markup
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("report.html.j2")
