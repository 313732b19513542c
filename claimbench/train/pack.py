"""A pack, the unit of work a worker receives, trained: each group of trials that train jointly on the
packed engine their model family names, every other trial alone on the single-trial engine."""

from __future__ import annotations

import importlib
import inspect

import torch

from claimbench.train.packing import pack_key, packable, packed_engine
from claimbench.train.single import train_trial
from claimbench.trial import TrialRecord
from claimbench.workloads.builtin import TrialSpec
from claimbench.workloads.data import DataCache


def train_pack(specs: list[TrialSpec], cache: DataCache | None = None, device: str | torch.device = "cpu",
               inject_error: list[bool] | None = None, halving: list[dict | None] | None = None) -> list[TrialRecord]:
    """Train ``specs``; one record per spec, in order. Never raises.

    Packable specs (``packing.packable``) with the same ``pack_key`` train jointly, on the packed engine
    their model family names (``packing.packed_engine``: a module that defines ``train_jointly``); every
    other spec, and a pack of one, trains alone with ``train_trial``. ``inject_error[i]`` makes spec i
    fail after its first step (fault injection, see runner/faults.py), leaving its pack-mates to go on.
    ``halving[i]``: spec i's halving directive (``policy.driver.halving_losers``), or None; a trial that trains
    alone never halts.
    """
    cache = cache or DataCache()
    flags = list(inject_error) if inject_error is not None else [False] * len(specs)
    out: list[TrialRecord | None] = [None] * len(specs)
    groups: dict[tuple, list[int]] = {}
    for i, spec in enumerate(specs):
        if packable(spec):
            groups.setdefault(pack_key(spec), []).append(i)
        else:
            out[i] = train_trial(spec, cache, device, inject_error=flags[i])
    for members in groups.values():
        if len(members) == 1:  # nothing to share: the single-trial engine is the reference
            i = members[0]
            out[i] = train_trial(specs[i], cache, device, inject_error=flags[i])
            continue
        engine = importlib.import_module(packed_engine(specs[members[0]]))
        directives = [halving[i] if halving else None for i in members]
        takes = "halving" in inspect.signature(engine.train_jointly).parameters  # a family's own module may not
        extra = {"halving": directives} if any(directives) and takes else {}
        records = engine.train_jointly([specs[i] for i in members], cache, device, [flags[i] for i in members],
                                       **extra)
        for i, record in zip(members, records):
            out[i] = record
    return [r for r in out if r is not None]
