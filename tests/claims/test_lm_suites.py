"""The LM claims of the frontier group (suites/frontier/lm_*.toml): every tier loads with every claim, -k LM
selects exactly them, and the beta2 levels keep their half-life in tokens."""

from __future__ import annotations

import pytest

LM_SUITES = ("lm_beta2_halflife.toml", "lm_critical_batch.toml", "lm_mup_transfer.toml", "lm_muon.toml", "lm_seesaw.toml")
LM_CLAIMS = {"LM-B6", "LM-B6b", "LM-CB", "LM-BNOISE", "LM-W1", "LM-W1b", "LM-MUON", "LM-MUONb", "LM-SEESAW"}


def _lm_paths():
    from claimbench.suite import load_group
    paths = [p for p in load_group("frontier").suites if p.rsplit("/", 1)[-1] in LM_SUITES]
    assert len(paths) == len(LM_SUITES)
    return paths


@pytest.mark.parametrize("tier", ["smoke", "ci", "default", "full"])
def test_lm_suites_load_at_every_tier_with_their_claims(tier):
    from claimbench.suite import expand, load_suite
    ids = set()
    for path in _lm_paths():
        suite = load_suite(path, tier=tier)
        ids |= {c.id for c in suite.claims}
        specs = expand(suite)
        assert specs and all(s.model == "transformer" for s in specs)
        if tier == "default":  # the default tier trains on the corpus that ships with the install
            assert {s.dataset for s in specs} == {"pysource"} and len(suite.seeds) == 4
    assert ids == LM_CLAIMS


def test_k_lm_selects_the_lm_claims_only():
    from claimbench.selection import kept_ids, parse
    from claimbench.suite import load_group, load_suite
    selection = parse("LM")
    chosen = {cid for path in load_group("frontier").suites for cid in kept_ids(load_suite(path, tier="smoke"), selection)}
    assert chosen == LM_CLAIMS


def test_scaled_beta2_keeps_its_half_life_in_tokens():
    from claimbench.suite import expand, load_suite
    path = next(p for p in _lm_paths() if p.endswith("lm_beta2_halflife.toml"))
    for tier in ("default", "full"):
        scaled = {(s.batch_size, s.beta2) for s in expand(load_suite(path, tier=tier))
                  if not (s.beta2 == 0.95 and s.batch_size < 32)}
        assert len(scaled) >= 3
        for batch, beta2 in scaled:  # beta2' = 0.95 ^ (B' / 32), to 8 decimals
            assert beta2 == pytest.approx(0.95 ** (batch / 32), abs=1e-8)
