"""Packs: the unit of work sent to a worker — trials that share a dataset and model shape."""

from __future__ import annotations

from itertools import groupby

from claimbench.trial import TrialSpec

DEFAULT_PACK_SIZE = 4


def cost(spec: TrialSpec) -> float:
    """A rough relative cost: steps x (fixed per-step overhead + per-example work)."""
    steps = spec.steps or spec.epochs * max(1, 4000 // spec.batch_size)
    return steps * (1.0 + spec.batch_size / 256) * (spec.depth * spec.width / 200)


def make_packs(specs: list[TrialSpec], pack_size: int = DEFAULT_PACK_SIZE) -> list[list[TrialSpec]]:
    """Group by shape, chunk into packs of at most ``pack_size`` trials of similar cost,
    most expensive first (so the long trials do not start last)."""
    if pack_size < 1:
        raise ValueError(f"pack_size must be >= 1, got {pack_size}")
    packs = []
    ordered = sorted(specs, key=lambda s: (s.shape_key(), -cost(s)))
    for _, group in groupby(ordered, key=lambda s: s.shape_key()):
        group = list(group)
        packs += [group[i:i + pack_size] for i in range(0, len(group), pack_size)]
    return sorted(packs, key=lambda p: -sum(cost(s) for s in p))
