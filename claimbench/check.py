"""The CI gate: baselines of claim results, and the comparison of a new run against one.

``claimbench baseline`` evaluates suites and writes, per suite and tier, each
claim's verdict, effect, CI and (for the quantities its ``check`` table tracks)
the per-seed values, into a versioned JSON file together with the environment
it was measured on. ``claimbench check`` evaluates the same suites again and
compares, claim by claim:

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

Everything here is a plain function over plain data; the CLI (``cli.py``)
runs the suites and writes the outputs (``report.junit``, ``report.markdown``).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from claimbench.analysis.isolation import strata_of
from claimbench.analysis.selection import best_trials
from claimbench.analysis.inference import CHANGE_TEST, decide_change
from claimbench.claims import KINDS, Claim, ClaimResult
from claimbench.errors import UserError
from claimbench.runner.packs import DEFAULT_PACK_SIZE
from claimbench.store.files import atomic_write_text
from claimbench.suite import ClaimCheck, Suite, expand

BASELINE_SCHEMA = 1
BASELINE_KIND = "claimbench-baseline"
MIN_SEEDS = 3  # fewer seeds than this: a tracked quantity is shown, not judged

TEST_TEXT = CHANGE_TEST  # stated once, in analysis/inference.py


#: The largest baseline file read (the committed one, of every suite and tier, is a few hundred KiB).
MAX_BASELINE_BYTES = 64 * 2**20

#: The largest magnitude a baseline number may have: anything beyond is damage, not a measurement
#: (``1e308`` would make a mean overflow to inf and every comparison vacuous).
ABSURD = 1e12


class BaselineError(UserError):
    """A baseline file that is missing, unreadable, of another schema, or lacks a suite."""


def _number_problem(x: Any, nullable: bool = True) -> str:
    """Why ``x`` is not a baseline number ("" when it is): finite, |x| <= ABSURD, or null where allowed."""
    if x is None:
        return "" if nullable else "must be a number, got null"
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return f"must be a number{' or null' if nullable else ''}, got {type(x).__name__} {str(x)[:40]!r}"
    if not math.isfinite(x) or abs(x) > ABSURD:
        return f"must be finite and at most {ABSURD:g} in magnitude, got {x!r}"
    return ""


def _check_claim_entry(c: dict[str, Any], where: str, fix: str) -> None:
    """Every number of one claim's baseline entry: effect, ci (a pair), strata, tracked per-seed values."""
    def need(problem: str, key: str) -> None:
        if problem:
            raise BaselineError(problem, where=f"{where}.{key}", fix=f"correct it, or {fix}")

    def ci(value: Any, key: str) -> None:
        if value is None:
            return
        if not isinstance(value, list) or len(value) != 2:
            need(f"must be a pair [low, high] or null, got {str(value)[:40]}", key)
        for i, x in enumerate(value):
            need(_number_problem(x), f"{key}[{i}]")

    need(_number_problem(c.get("effect")), "effect")
    ci(c.get("ci"), "ci")
    for key in ("n_seeds", "n_trials"):
        if key in c and (isinstance(c[key], bool) or not isinstance(c[key], int) or c[key] < 0):
            need(f"must be a count, got {str(c[key])[:40]!r}", key)
    strata = c.get("strata", [])
    if not isinstance(strata, list) or not all(isinstance(st, dict) for st in strata):
        need("must be a list of objects", "strata")
    for i, st in enumerate(strata):
        need(_number_problem(st.get("effect")), f"strata[{i}].effect")
        ci(st.get("ci"), f"strata[{i}].ci")
    for name, t in c.get("tracked", {}).items():
        seeds = t["seeds"]
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in seeds) or len(set(seeds)) != len(seeds):
            need("seeds must be distinct integers", f"tracked.{name}.seeds")
        for i, x in enumerate(t["values"]):
            need(_number_problem(x), f"tracked.{name}.values[{i}]")
        if t.get("tolerance") is not None:
            need(_number_problem(t["tolerance"]) or ("must be >= 0" if t["tolerance"] < 0 else ""),
                 f"tracked.{name}.tolerance")


# ------------------------------------------------------------------ per-seed values

def tracked_values(suite: Suite, claim: Claim, frame: pd.DataFrame) -> dict[str, dict[str, list]]:
    """The per-seed values of every quantity ``claim``'s check table tracks.

    Returns ``{name: {"seeds": [...], "values": [...]}}``; a stratified claim gives
    one name per stratum, e.g. ``effect[budget=steps=1500]``. A value is None where
    a seed has none (e.g. every trial diverged).

    - ``effect``: the claim's statistic evaluated on that seed's trials alone.
    - a metric (``test_acc`` ...): that metric of the trial with the best ``select``
      (the claim's, else ``val_acc``) among the seed's completed trials in the stratum.
    """
    return per_seed_values(suite, claim, frame, suite.checks.get(claim.id, ClaimCheck()).track)


def per_seed_values(suite: Suite, claim: Claim, frame: pd.DataFrame,
                    names: tuple[str, ...] | list[str]) -> dict[str, dict[str, list]]:
    """The per-seed values of the quantities ``names`` (as ``tracked_values`` describes them) of
    ``claim``, whatever its check table tracks: what `check` judges and `compare` reports."""
    out: dict[str, dict[str, list]] = {}
    if not names or frame.empty:
        return out
    seeds = sorted(int(s) for s in frame["seed"].unique())
    design = suite.design()
    for name in names:
        if name == "effect":
            per_seed: dict[str, dict[int, float | None]] = {}
            for seed in seeds:
                result = _evaluate_quick(claim, frame[frame["seed"] == seed], design)
                parts = result.strata or [result]
                for part in parts:
                    key = _name("effect", part.stratum if result.strata else {})
                    per_seed.setdefault(key, {})[seed] = _finite(part.effect)
            for key, values in per_seed.items():
                out[key] = {"seeds": seeds, "values": [values.get(s) for s in seeds]}
        else:
            select = claim.params.get("select", "val_acc")
            keys = strata_of(design, claim.params.get("axis", "")) if "axis" in claim.params else []
            ok = frame[(frame["status"] == "completed") & frame[select].notna() & frame[name].notna()]
            groups = ok.groupby(keys, sort=True) if keys else [((), ok)]
            for key, sub in groups:
                key = key if isinstance(key, tuple) else (key,)
                label = _name(name, dict(zip(keys, (_plain(k) for k in key))))
                chosen = best_trials(sub, ["seed"], select, design.nuisance)
                best = {int(s): float(v) for s, v in zip(chosen["seed"], chosen[name])}
                out[label] = {"seeds": seeds, "values": [best.get(s) for s in seeds]}
    return out


def _evaluate_quick(claim: Claim, frame: pd.DataFrame, design) -> ClaimResult:
    return KINDS[claim.kind].evaluate(claim, frame, design)


def _name(quantity: str, stratum: dict) -> str:
    return f"{quantity}[{', '.join(f'{k}={v}' for k, v in stratum.items())}]" if stratum else quantity


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _finite(x: Any) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def _quantity(name: str) -> str:
    """``effect[budget=steps=1500]`` -> ``effect``: the tracked quantity a per-stratum name belongs to."""
    return name.split("[", 1)[0]


# ------------------------------------------------------------------ baseline file

def matrix_fingerprint(suite: Suite) -> str:
    """A hash of the suite's resolved specs (``config_id``: the trial ids without the code fingerprint): it
    changes when the matrix or the training revision does, not when the training code does (then `check`
    retrains and compares with the baseline)."""
    ids = sorted(s.config_id for s in expand(suite))
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def baseline_entry(suite: Suite, results: list[ClaimResult], frame: pd.DataFrame,
                   environment: dict[str, Any]) -> dict[str, Any]:
    """One suite's entry (for one tier) in a baseline file."""
    claims = {}
    by_id = {c.id: c for c in suite.claims}
    for r in results:
        check = suite.checks.get(r.claim_id, ClaimCheck())
        tracked = tracked_values(suite, by_id[r.claim_id], frame)
        for name, values in tracked.items():
            values["tolerance"] = check.tolerance.get(_quantity(name))
            values["direction"] = check.direction.get(_quantity(name), "both")
        claims[r.claim_id] = {
            "kind": r.kind, "paraphrase": r.paraphrase, "verdict": r.verdict,
            "effect": _finite(r.effect), "ci": [_finite(x) for x in r.ci] if r.ci else None,
            "n_seeds": r.n_seeds, "n_trials": r.n_trials, "summary": r.summary,
            "strata": [{"stratum": s.stratum, "verdict": s.verdict, "effect": _finite(s.effect),
                        "ci": [_finite(x) for x in s.ci] if s.ci else None} for s in r.strata],
            "check": check.to_dict(), "tracked": tracked,
        }
    statuses = frame["status"].value_counts().to_dict() if len(frame) else {}
    path = Path(suite.path)
    with_cwd = path.resolve().is_relative_to(Path.cwd()) if path.is_absolute() else False
    return {"tier": suite.tier, "suite_path": str(path.resolve().relative_to(Path.cwd())) if with_cwd else str(path), "measured": _now(), "environment": environment,
            "matrix": matrix_fingerprint(suite), "n_trials": int(len(frame)),
            "statuses": {str(k): int(v) for k, v in statuses.items()}, "claims": claims}


def new_baseline() -> dict[str, Any]:
    return {"schema": BASELINE_SCHEMA, "kind": BASELINE_KIND, "created": _now(), "updated": _now(),
            "environment": {}, "suites": {}}


def read_baseline(path: str | Path, must_exist: bool = True) -> dict[str, Any]:
    """A baseline file, validated; a missing one is a ``BaselineError`` (or a new one, if not ``must_exist``)."""
    p = Path(path)
    fix_new = f"write one with `claimbench baseline SUITE... -o {p}`"
    if not p.exists() and not p.is_symlink():
        if must_exist:
            raise BaselineError("baseline file not found", where=str(p), fix=fix_new)
        return new_baseline()
    from claimbench.store.files import Unreadable, read_json_bounded

    try:  # without blocking, a regular file, bounded (a FIFO or a symlink to a device is refused, not read)
        data = read_json_bounded(p, MAX_BASELINE_BYTES)
    except Unreadable as e:
        raise BaselineError(str(e), where=str(p), fix=f"give the baseline file itself: {fix_new}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BaselineError(f"not valid JSON ({str(e).splitlines()[0]})", where=str(p),
                            fix=f"restore it from version control, or rewrite it: {fix_new}") from None
    except RecursionError:
        raise BaselineError("nested too deeply to be a baseline", where=str(p),
                            fix=f"restore it from version control, or rewrite it: {fix_new}") from None
    except OSError as e:
        raise BaselineError(f"cannot read it ({e.strerror})", where=str(p), fix=fix_new) from None
    if not isinstance(data, dict) or data.get("kind") != BASELINE_KIND:
        raise BaselineError(f"not a claimbench baseline (no \"kind\": \"{BASELINE_KIND}\")", where=str(p),
                            fix=f"give the file `claimbench baseline` wrote, or {fix_new}")
    if data.get("schema") != BASELINE_SCHEMA:
        raise BaselineError(f"baseline schema {data.get('schema')!r}; this claimbench reads schema {BASELINE_SCHEMA}",
                            where=str(p), fix=f"rewrite it with this version: {fix_new}")
    suites = data.get("suites")
    if not isinstance(suites, dict):
        raise BaselineError("\"suites\" must be an object", where=f"{p}: suites", fix=fix_new)
    for name, tiers in suites.items():
        if not isinstance(tiers, dict):
            raise BaselineError("must be an object of tiers", where=f"{p}: suites.{name}", fix=fix_new)
        for tier, entry in tiers.items():
            where = f"{p}: suites.{name}.{tier}"
            if not isinstance(entry, dict) or not isinstance(entry.get("claims"), dict):
                raise BaselineError("must be an object with \"claims\"", where=where, fix=fix_new)
            if not entry["claims"]:
                raise BaselineError("\"claims\" is empty: nothing to gate, so nothing could fail", where=f"{where}.claims",
                                    fix=f"re-record it: claimbench baseline {name} --tier {tier} -o {p}")
            for cid, c in entry["claims"].items():
                if not isinstance(c, dict) or c.get("verdict") not in ("supported", "refuted", "inconclusive"):
                    raise BaselineError("verdict must be supported, refuted or inconclusive, got "
                                        f"{c.get('verdict') if isinstance(c, dict) else c!r}",
                                        where=f"{where}.claims.{cid}.verdict", fix="correct the verdict, or " + fix_new)
                tracked = c.get("tracked", {})
                if not isinstance(tracked, dict) or not all(
                        isinstance(t, dict) and isinstance(t.get("seeds"), list) and isinstance(t.get("values"), list)
                        and len(t["seeds"]) == len(t["values"]) for t in tracked.values()):
                    raise BaselineError("tracked values must be {\"seeds\": [...], \"values\": [...]} of equal length",
                                        where=f"{where}.claims.{cid}.tracked", fix=fix_new)
                _check_claim_entry(c, f"{where}.claims.{cid}", fix_new)
            if "matrix" in entry and not isinstance(entry["matrix"], str):
                raise BaselineError("must be the trial matrix's fingerprint (a string)", where=f"{where}.matrix",
                                    fix=fix_new)
    return data


def update_baseline(data: dict[str, Any], entries: list[tuple[str, dict[str, Any]]],
                    environment: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the entries of the named suites (and tiers) replaced; other entries are kept."""
    for name, entry in entries:
        data["suites"].setdefault(name, {})[entry["tier"]] = entry
    data["updated"] = _now()
    data["environment"] = environment
    data["suites"] = {k: data["suites"][k] for k in sorted(data["suites"])}
    return data


def merge_entry(data: dict[str, Any], suite: Suite, entry: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``entry`` (of some of ``suite``'s claims: ``baseline -k``) with the other claims of the suite's
    entry in ``data`` kept, in the suite's order, when that entry measured the same trial matrix; and
    the ids of the suite's claims the result still lacks (`check` without ``-k`` refuses it until then)."""
    old = data["suites"].get(suite.name, {}).get(suite.tier)
    if old is not None and old.get("matrix") == entry["matrix"]:
        merged = {**old.get("claims", {}), **entry["claims"]}
        entry = {**entry, "claims": {c.id: merged[c.id] for c in suite.claims if c.id in merged}}
    return entry, [c.id for c in suite.claims if c.id not in entry["claims"]]


def write_baseline(path: str | Path, data: dict[str, Any]) -> Path:
    p = Path(path)
    atomic_write_text(p, json.dumps(data, indent=1, sort_keys=False, default=str) + "\n")
    return p


def commit_baseline(path: str | Path, entries: list[tuple[Suite, dict[str, Any]]], environment: dict[str, Any],
                    merge: bool = False) -> Path:
    """Put the suites' ``entries`` into the baseline file ``path``, as its one writer: under an exclusive
    lock (``store.exclusive``) the file is read again, the entries replace those of their suites and tiers
    (with ``merge``, ``baseline -k``: merged into the suite's entry, ``merge_entry``) and it is written
    atomically. So two `baseline` commands for different suites that write one file at once both land;
    read at the start of a long run, the file would lose the entry of whichever wrote first."""
    from claimbench.store.lock import exclusive

    with exclusive(path):
        data = read_baseline(path, must_exist=False)
        named = [(suite.name, merge_entry(data, suite, entry)[0] if merge else entry) for suite, entry in entries]
        return write_baseline(path, update_baseline(data, named, environment))


def baseline_for(data: dict[str, Any], suite: Suite, path: str | Path,
                 claim_ids: list[str] | None = None) -> dict[str, Any]:
    """The entry of ``suite`` at its tier, or a BaselineError naming the fix; ``claim_ids`` (``-k``) are
    the claims it must hold (default: every claim of the suite).

    Fails closed, before any training: an entry whose claims are not exactly the suite's (a claim
    missing from the baseline, or one the suite no longer has), or whose trial-matrix fingerprint is
    not the suite's (the suite or the training revision changed), is a usage error: the baseline no
    longer describes this suite, so no comparison with it could mean "holds"."""
    entry = data["suites"].get(suite.name, {}).get(suite.tier)
    fix = f"re-record it: claimbench baseline {suite.name} --tier {suite.tier} -o {path}"
    if entry is None:
        have = ", ".join(f"{n}[{t}]" for n, ts in data["suites"].items() for t in ts) or "nothing"
        raise BaselineError(f"no baseline for suite {suite.name!r} at tier {suite.tier!r} (it holds {have})",
                            where=str(path), fix=f"add it: claimbench baseline {suite.name} --tier {suite.tier} -o {path}")
    where = f"{path}: suites.{suite.name}.{suite.tier}"
    ids = [c.id for c in suite.claims]
    missing = [c for c in (ids if claim_ids is None else claim_ids) if c not in entry["claims"]]
    extra = [c for c in entry["claims"] if c not in ids]
    if missing:
        raise BaselineError(f"no baseline for claim{'s' if len(missing) > 1 else ''} {', '.join(missing)} of the suite",
                            where=f"{where}.claims", fix=fix)
    if extra:
        raise BaselineError(f"claim{'s' if len(extra) > 1 else ''} {', '.join(extra)} of the baseline "
                            f"{'are' if len(extra) > 1 else 'is'} no longer in the suite", where=f"{where}.claims", fix=fix)
    if not entry.get("matrix"):
        raise BaselineError("no trial-matrix fingerprint: cannot tell whether it measured this suite",
                            where=f"{where}.matrix", fix=fix)
    now = matrix_fingerprint(suite)
    if entry["matrix"] != now:
        raise BaselineError(f"the suite's trial matrix ({now}) is not the baseline's ({str(entry['matrix'])[:40]}): "
                            "the suite or the training revision changed", where=f"{where}.matrix", fix=fix)
    return entry


# ------------------------------------------------------------------ comparison

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
    if base.get("effect") is not None and _finite(result.effect) is None and not result.strata:
        out.append(f"no effect now (the baseline's: {base['effect']:+.4g})")
    now_by = {json.dumps(s.stratum, sort_keys=True, default=str): s for s in result.strata}
    for st in then_strata:
        if not isinstance(st, dict) or st.get("effect") is None:
            continue
        part = now_by.get(json.dumps(st.get("stratum"), sort_keys=True, default=str))
        if part is not None and _finite(part.effect) is None:
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
    for name in sorted(set(current) | {k for k in base_tracked if _quantity(k) in check.track}):
        q = _quantity(name)
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


# ------------------------------------------------------------------ running

@dataclass
class Measured:
    """A suite run into its check run dir and evaluated."""

    suite: Suite
    run_dir: Path
    results: list[ClaimResult]
    frame: pd.DataFrame
    environment: dict[str, Any]
    report: Path | None
    total: int
    trained: int
    elapsed_s: float


def load_check_targets(names: list[str], tier: str, seeds: int | None = None) -> tuple[list[Suite], list[str]]:
    """The suites ``names`` (suites, paths or groups) at ``tier`` (with ``seeds``, when given: ``--seeds``),
    and the names of those skipped because they define no such tier (so that a group checks only its
    suites that have, e.g., a ci tier)."""
    import tomllib

    from claimbench.suite import load_targets

    suites = load_targets(list(names), tier, seeds)
    if tier == "default":
        return suites, []
    keep, skipped = [], []
    for s in suites:
        if tier in tomllib.loads(Path(s.path).read_text(encoding="utf-8")).get("tiers", {}):
            keep.append(s)
        else:
            skipped.append(s.name)
    if not keep:
        raise UserError(f"no suite among {', '.join(names)} defines tier {tier!r}", where="--tier",
                        fix=f"add [tiers.{tier}] to the suite, or pass --tier default")
    return keep, skipped


def measure(suites: list[Suite], out: str | Path, executor: str = "ray", address: str | None = None,
            command: str = "", progress: bool = True, faults: tuple = (), html: bool = True,
            pack_size: int = DEFAULT_PACK_SIZE, cpus_per_trial: float | None = None,
            gpus_per_trial: float | None = None, select=None, trial_timeout: float | None = None) -> list[Measured]:
    """Run the suites through one executor, each into ``out/<suite>/`` (only missing trials train),
    then evaluate each (only the claims ``select(suite, claim_id)`` keeps, when given: ``-k``) and write
    its HTML report. ``elapsed_s`` is the whole run's wall time. ``pack_size`` and the slot resources
    are ``run``'s (``api.run_suites``)."""
    import time

    from claimbench.api import evaluate_run, run_suites

    from claimbench.paths import inside

    out = Path(out)
    start = time.monotonic()
    summaries = run_suites([(s, inside(out, s.name)) for s in suites], executor=executor, address=address,
                           command=command, progress=progress, faults=faults, pack_size=pack_size,
                           cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial, trial_timeout=trial_timeout)
    measured = []
    for s, summary in zip(suites, summaries):
        ev = evaluate_run(summary.run_dir, select)
        report = None
        if html:
            from claimbench.report import write_report
            report = write_report(summary.run_dir, None, ev)
        measured.append(Measured(suite=s, run_dir=summary.run_dir, results=ev.results, frame=ev.frame,
                                 environment=ev.environment, report=report, total=summary.total,
                                 trained=summary.trained, elapsed_s=0.0))
    for m in measured:
        m.elapsed_s = time.monotonic() - start
    return measured


def check_measured(measured: list[Measured], data: dict[str, Any], baseline_path: str | Path,
                   select=None) -> list[SuiteCheck]:
    """Each measured suite against its baseline entry; with ``select`` (``-k``) only the claims it keeps."""
    import time

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
