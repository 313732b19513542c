"""The CI gate's baseline file: per suite and tier, each claim's verdict, effect, CI and the per-seed
values of the quantities its ``check`` table tracks, with the environment they were measured on.

``claimbench baseline`` writes it (``baseline_entry``, ``commit_baseline``: one writer at a time, under
the file's lock); ``claimbench check`` reads it (``read_baseline``: every number validated) and takes
each suite's entry (``baseline_for``: refused, before any training, when it no longer describes the
suite). ``per_seed_values`` are the values the gate judges (``check.gate``) and ``compare`` reports.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from claimbench.analysis.isolation import strata_of
from claimbench.analysis.quantities import restrict
from claimbench.analysis.selection import best_trials
from claimbench.claims import KINDS, Claim, ClaimResult
from claimbench.claims.protocol import claim_frame, tuned_axes
from claimbench.errors import UserError
from claimbench.store.files import Unreadable, atomic_write_text, read_json_bounded
from claimbench.store.lock import exclusive
from claimbench.suite import ClaimCheck, Suite, expand

BASELINE_SCHEMA = 1
BASELINE_KIND = "claimbench-baseline"

#: The largest baseline file read: far above any real baseline, so that a huge or endless file is refused, not read.
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
    - a metric (``test_acc`` ...): that metric of the trial with the best ``select`` (the claim's, else
      ``val_acc``) among the seed's completed trials of the claim's own cells (its ``where`` and arms) in
      the stratum; and the same per arm (``test_acc[arm=batch_size=64]``: each ``a``/``b`` table, else each
      level of the claim's axis), so that a drop in one arm shows even when the best trial does not move.
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
                    per_seed.setdefault(key, {})[seed] = finite(part.effect)
            for key, values in per_seed.items():
                out[key] = {"seeds": seeds, "values": [values.get(s) for s in seeds]}
        else:
            select = claim.params.get("select", "val_acc")
            keys = strata_of(design, claim.params.get("axis", "")) if "axis" in claim.params else []
            own = claim_frame(claim, frame)  # the claim's where and arms: never another claim's trials
            ok = own[(own["status"] == "completed") & own[select].notna() & own[name].notna()]
            tuned = tuned_axes(claim, design, ok)
            groups = ok.groupby(keys, sort=True) if keys else [((), ok)]
            for key, sub in groups:
                key = key if isinstance(key, tuple) else (key,)
                stratum = dict(zip(keys, (_plain(k) for k in key)))
                for arm, cells in [("", sub), *_arms(claim, sub)]:
                    chosen = best_trials(cells, ["seed"], select, tuned)
                    best = {int(s): float(v) for s, v in zip(chosen["seed"], chosen[name])}
                    label = _name(name, {**({"arm": arm} if arm else {}), **stratum})
                    out[label] = {"seeds": seeds, "values": [best.get(s) for s in seeds]}
    return out


def _arms(claim: Claim, frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The claim's arms within ``frame``, each named: its ``a``/``b`` tables, else each level of its ``axis``
    (where a tracked metric can move while the claim's best trial does not)."""
    p = claim.params
    out = []
    for side in ("a", "b"):
        tables = p.get(side)
        for t in (tables if isinstance(tables, list) else [tables]):
            if isinstance(t, dict) and set(t) <= set(frame.columns):
                out.append((f"{side}: " + ", ".join(f"{k}={v}" for k, v in t.items()), restrict(frame, t)))
    axis = p.get("axis")
    if not out and isinstance(axis, str) and axis in frame.columns:
        out = [(f"{axis}={_plain(level)}", frame[frame[axis] == level]) for level in sorted(frame[axis].unique())]
    return out


def _evaluate_quick(claim: Claim, frame: pd.DataFrame, design) -> ClaimResult:
    return KINDS[claim.kind].evaluate(claim, frame, design)


def _name(quantity: str, stratum: dict) -> str:
    return f"{quantity}[{', '.join(f'{k}={v}' for k, v in stratum.items())}]" if stratum else quantity


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def finite(x: Any) -> float | None:
    """``x`` as a float, or None when it is None or not finite."""
    return float(x) if x is not None and math.isfinite(float(x)) else None


def quantity_of(name: str) -> str:
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
            values["tolerance"] = check.tolerance.get(quantity_of(name))
            values["direction"] = check.direction.get(quantity_of(name), "both")
        claims[r.claim_id] = {
            "kind": r.kind, "paraphrase": r.paraphrase, "verdict": r.verdict,
            "effect": finite(r.effect), "ci": [finite(x) for x in r.ci] if r.ci else None,
            "n_seeds": r.n_seeds, "n_trials": r.n_trials, "summary": r.summary,
            "strata": [{"stratum": s.stratum, "verdict": s.verdict, "effect": finite(s.effect),
                        "ci": [finite(x) for x in s.ci] if s.ci else None} for s in r.strata],
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
