"""The CI gate gates what it says: every shipped claim kind's tracked ``effect`` has a value per seed.

The fixture is the published default-tier frames (``reports/*-default/<suite>/trials.parquet``, real
trials) cut to 3 seeds; per kind the first shipped claim of that kind is tracked with ``track =
["effect"]``. A kind whose one-seed evaluation drops its statistic (a null per seed) would make the
gate silently judge nothing for it.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pandas as pd
import pytest

from claimbench.check.baseline import tracked_values
from claimbench.check.gate import compare_values
from claimbench.claims import KINDS
from claimbench.suite import ClaimCheck, load_suite, suites_dir

ROOT = Path(__file__).resolve().parents[2]  # the repository: tests/check/ is two levels down
SEEDS = (0, 1, 2)


def _shipped_suites():
    paths = sorted(suites_dir().glob("*.toml")) + sorted(suites_dir().glob("*/*.toml"))
    for path in paths:
        if "[group]" in path.read_text(encoding="utf-8"):
            continue
        yield load_suite(str(path), "default")


def _published_frame(name: str) -> pd.DataFrame | None:
    for path in sorted(ROOT.glob(f"reports/*-default/{name}/trials.parquet")):
        frame = pd.read_parquet(path)
        return frame[frame["seed"].isin(SEEDS)]
    return None


def _one_claim_per_kind():
    seen = {}
    for suite in _shipped_suites():
        frame = None
        for claim in suite.claims:
            if claim.kind in seen:
                continue
            frame = _published_frame(suite.name) if frame is None else frame
            if frame is not None and not frame.empty:
                seen[claim.kind] = (suite, claim, frame)
    return seen


CASES = _one_claim_per_kind()


def test_every_shipped_kind_has_a_published_3_seed_fixture():
    assert set(CASES) == set(KINDS), f"kinds without a fixture: {sorted(set(KINDS) - set(CASES))}"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_tracked_effect_has_a_value_for_every_seed(kind):
    suite, claim, frame = CASES[kind]
    tracked_suite = dataclasses.replace(suite, checks={claim.id: ClaimCheck(track=("effect",))})
    tracked = tracked_values(tracked_suite, claim, frame)
    assert tracked, f"{claim.id} ({kind}): nothing tracked"
    for name, per_seed in tracked.items():
        assert per_seed["seeds"] == list(SEEDS)
        assert all(v is not None and math.isfinite(v) for v in per_seed["values"]), \
            f"{claim.id} ({kind}) {name}: per-seed effect {per_seed['values']}"
        # and the gate judges it: the same values hold, a shift far beyond the spread is a regression
        same = compare_values(name, per_seed, per_seed, tolerance=0.0)
        assert same.status == "ok" and same.n == len(SEEDS)
        spread = max(per_seed["values"]) - min(per_seed["values"])
        shift = 10 * (spread + max(abs(v) for v in per_seed["values"]) + 1)
        # a constant shift per seed: the paired interval is a point, beyond any tolerance below the shift
        shifted = {"seeds": per_seed["seeds"], "values": [v - shift + 0.01 * i for i, v in enumerate(per_seed["values"])]}
        assert compare_values(name, per_seed, shifted, tolerance=1.0).status == "regression"


def test_baseline_of_paired_and_ratio_claims_holds_numbers_and_a_shift_fails():
    """A 3-seed suite tracking the effect of a paired_comparison and a ratio_in_range: the baseline holds a
    value per seed, the same frame passes, and a frame whose arm a lost 5 points of accuracy fails."""
    import copy

    from claimbench.check.baseline import baseline_entry
    from claimbench.check.gate import compare_suite
    from claimbench.claims import evaluate_claims
    from claimbench.suite import parse_suite
    from tests.claims.test_kinds import FIGURE_SUITE, fake_kind_record

    raw = copy.deepcopy(FIGURE_SUITE)
    raw["axes"]["batch_size"]["values"] = [32]  # one stratum: small and fast
    raw["claims"] = [dict(c, check={"track": ["effect"], "tolerance": 0.01}) for c in raw["claims"]
                     if c["id"] in ("K3", "K4")]
    raw["claims"][0]["params"] = {"a": {"optimizer": "adam"}, "b": {"optimizer": "sgd"}}
    raw["claims"][1]["params"] = {"num": {"where": {"optimizer": "adam"}}, "den": {"where": {"optimizer": "sgd"}},
                                  "low": 0.9, "high": 1.1}
    suite = parse_suite(raw, "gate.toml", "default")
    from claimbench.analysis.frames import trial_frame
    from claimbench.suite import expand
    frame = trial_frame([fake_kind_record(s) for s in expand(suite)])
    results = evaluate_claims(suite.claims, frame, suite.design())
    entry = baseline_entry(suite, results, frame, {})
    for cid in ("K3", "K4"):
        tracked = entry["claims"][cid]["tracked"]
        assert tracked and all(len(t["values"]) == 3 and None not in t["values"] for t in tracked.values()), tracked
    same = compare_suite(suite, results, frame, entry, Path("."))
    assert not same.failed
    shifted = frame.copy()
    adam = shifted["optimizer"] == "adam"
    # a loss of 4 to 6 points, seed by seed (a shift identical on all 3 seeds is p = 1/8 under the exact
    # sign-flip test: 3 seeds never claim certainty, in the gate as in every claim)
    for col in ("test_acc", "val_acc"):
        shifted.loc[adam, col] -= 0.04 + 0.01 * shifted.loc[adam, "seed"]
    now = compare_suite(suite, evaluate_claims(suite.claims, shifted, suite.design()), shifted, entry, Path("."))
    failed = {o.claim_id for o in now.outcomes if o.status == "failed"}
    assert failed == {"K3", "K4"}, [o.regressions for o in now.outcomes]
