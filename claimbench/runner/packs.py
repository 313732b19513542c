"""Packs: the unit of work sent to a worker — trials that share a dataset and model shape.

Which trials train together and how wide a pack may be are train/packing.py's rules (inside the code
fingerprint); this module makes the packs of a run with them, without importing torch, so the driver
never needs it: it estimates each trial's cost and memory, groups trials by ``group_key``, and splits
and orders the groups.

How wide (``make_packs``): a group of jointly trainable trials goes out in packs as wide as
``pack_width`` allows — bounded by ``pack_size`` and by this module's memory estimate (``pack_bytes``)
— and is split further only when one pack would hold more than a worker's fair share of the run's
work (then splitting keeps every worker busy).

Halving groups (``halving_units``: trials that successive halving ranks together) stay in one pack where the
width allows, since a group split across packs never halts; a run without halving packs as if there were none.

Exclusive trials (``TrialSpec.exclusive``: timing trials) never share a pack with anything else.
``timing_blocks`` puts each with its comparison arm — the exclusive trials that differ from it
only in the timed factor — into one block, a pack the executors run last, one block at a time,
with nothing else training.
"""

from __future__ import annotations

import json
import math
from itertools import groupby

from claimbench.train.packing import group_key, pack_width
from claimbench.workloads.builtin import TrialSpec, geometry, shapes

#: Upper bound on a pack's width (``--pack-size`` sets it). The width itself comes from
#: ``train.packing.pack_width`` (the width table and the memory bound) and the load balance.
DEFAULT_PACK_SIZE = 64


def cost(spec: TrialSpec) -> float:
    """A rough relative cost: steps x (fixed per-step overhead + per-example work)."""
    steps = spec.steps or spec.epochs * max(1, 4000 // spec.batch_size)
    return steps * (1.0 + spec.batch_size / 256) * (spec.depth * spec.width / 200)


#: Optimizer state per parameter, in parameter-sized tensors.
_OPT_STATE = {"sgd": 1, "adam": 2, "adamw": 2, "nadam": 2, "rmsprop": 2, "adamax": 2}
#: Examples per evaluation forward (train/metrics.py evaluates in chunks of at most this many).
_EVAL_EXAMPLES = 8192


def pack_bytes(spec: TrialSpec) -> int:
    """An upper estimate of the bytes one trial of ``spec`` adds to a pack (float32): parameters,
    gradients, optimizer state and a best-state copy, plus the activations of a training step
    (kept for backward, with their gradients) and of one evaluation chunk."""
    shape, n_out = shapes.io_shape(spec) or ((1000,), 10)  # a dataset not built in: 1000 features, 10 outputs
    widths = geometry.layer_widths(spec.depth, spec.width, spec.shape)
    params, acts = 0, 0  # acts: floats per example
    if spec.model == "cnn":
        c, hw = (shape[0], shape[1] * shape[2]) if len(shape) == 3 else (1, math.prod(shape))
        for w in widths:
            params += c * w * 9 + 3 * w
            acts += 4 * w * hw  # conv out, BatchNorm, activation, dropout
            c, hw = w, max(1, hw // 4) if hw >= 4 else hw
        params += c * n_out + n_out
    elif spec.model in ("rnn", "lstm"):
        gates = 4 if spec.model == "lstm" else 1
        steps, f = (shape[0], shape[-1]) if len(shape) == 2 else (1, math.prod(shape))
        for w in widths:
            params += gates * (f * w + w * w + 2 * w)
            acts += 2 * gates * w * steps
            f = w
        params += f * n_out + n_out
    else:
        f = math.prod(shape)
        for w in widths:
            params += f * w + 3 * w
            acts += 4 * w
            f = w
        params += f * n_out + n_out
    state = _OPT_STATE.get(spec.optimizer, 2) - (spec.optimizer == "sgd" and spec.momentum == 0)
    tensors = 2 + state + (spec.patience > 0 and spec.restore_best)
    eval_examples = 16 if spec.model == "cnn" else _EVAL_EXAMPLES  # 16: eval_chunk's smallest chunk
    batch = spec.batch_size * (spec.batch_factor ** 2 if spec.batch_schedule == "step" else 1)  # the largest
    return 4 * (params * tensors + acts * (2 * batch + eval_examples))


def _chunks(group: list[TrialSpec], n: int) -> list[list[TrialSpec]]:
    """``group`` in ``n`` consecutive chunks whose sizes differ by at most one."""
    size, extra = divmod(len(group), n)
    out, i = [], 0
    for k in range(n):
        j = i + size + (k < extra)
        out.append(group[i:j])
        i = j
    return out


def timing_blocks(specs: list[TrialSpec]) -> list[list[TrialSpec]]:
    """Exclusive trials in blocks, each a trial and its comparison arm, to be run back to back.

    Trials that differ in exactly one field other than the seed are connected; within a connected
    set the *timed factor* is the varying field with the fewest values (A2: activation, 2 values,
    not lr, 5; N4: batchnorm; B1: batch_size, the only one). A block is the trials that differ only
    in that factor (same seed, same LR, ...). Blocks alternate the order of the factor's values, so
    that neither arm always runs first. Deterministic: the same specs give the same blocks.
    """
    def row(spec: TrialSpec) -> dict[str, str]:
        return {k: json.dumps(v, sort_keys=True) for k, v in spec.to_dict().items()}

    def without(r: dict[str, str], name: str) -> str:
        return json.dumps({k: v for k, v in r.items() if k != name}, sort_keys=True)

    if not specs:
        return []
    pairs = sorted(((row(s), s) for s in specs), key=lambda p: json.dumps(p[0], sort_keys=True))
    rows = [r for r, _ in pairs]
    fields = [k for k in rows[0] if k != "seed"]
    parent = list(range(len(rows)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for f in fields:  # rows equal but for field f are connected
        first: dict[str, int] = {}
        for i, r in enumerate(rows):
            j = first.setdefault(without(r, f), i)
            parent[find(i)] = find(j)
    components: dict[int, list[int]] = {}
    for i in range(len(rows)):
        components.setdefault(find(i), []).append(i)
    blocks = []
    for members in components.values():
        counts = {f: len({rows[i][f] for i in members}) for f in fields}
        varying = sorted((n, f) for f, n in counts.items() if n > 1)
        factor = varying[0][1] if varying else "seed"
        ordered = sorted(members, key=lambda i: without(rows[i], factor))
        for n, (_, block) in enumerate(groupby(ordered, key=lambda i: without(rows[i], factor))):
            block = sorted(block, key=lambda i: rows[i][factor], reverse=bool(n % 2))
            blocks.append([pairs[i][1] for i in block])
    return blocks


def halving_units(halving: dict[str, dict]) -> dict[str, str]:
    """Trial id -> its unit: the trials connected through shared halving groups (a trial may rank in several
    groups, one per claim), named by the smallest group key among them; only trials with a directive."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for tid, d in halving.items():
        keys = [g[0] for g in (d or {}).get("groups", ())]
        for key in keys[1:]:
            a, b = find(keys[0]), find(key)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {tid: find(d["groups"][0][0]) for tid, d in halving.items() if d and d.get("groups")}


def _chunks_together(group: list[TrialSpec], n: int, width: int, unit: dict[str, str]) -> list[list[TrialSpec]]:
    """``group`` in about ``n`` packs of at most ``width`` trials, each halving unit whole where it fits in one:
    the units in order of their first trial, a pack closed when it reaches its share or the next unit would
    not fit."""
    units: dict[str, list[TrialSpec]] = {}
    for s in group:
        units.setdefault(unit.get(s.trial_id, s.trial_id), []).append(s)
    share = math.ceil(len(group) / n)
    out: list[list[TrialSpec]] = [[]]
    for members in units.values():
        for i in range(0, len(members), width):  # a unit wider than a pack: split (it will not halt)
            part = members[i:i + width]
            if out[-1] and (len(out[-1]) >= share or len(out[-1]) + len(part) > width):
                out.append([])
            out[-1].extend(part)
    return [p for p in out if p]


def make_packs(specs: list[TrialSpec], pack_size: int = DEFAULT_PACK_SIZE, workers: int = 1,
               together: dict[str, str] | None = None) -> list[list[TrialSpec]]:
    """The packs of ``specs`` for ``workers`` workers, most expensive first, exclusive blocks last.

    Trials are grouped by ``group_key`` (most expensive first within a group, so a pack holds trials
    of similar cost); a group goes out in the fewest packs of at most ``pack_width`` trials, and in
    more (of near-equal size) when a pack would exceed a worker's fair share of the run's cost, so
    that a small run still keeps every worker busy. Exclusive trials (timing) follow as their
    ``timing_blocks``, in order. Deterministic: the same specs give the same packs, and specs that differ
    only in their code fingerprint (``TrialSpec.code``) give the same packs of the same trials, so that a
    code change that leaves the arithmetic alone leaves every record as it was. ``together``: trial id -> its
    halving unit (``halving_units``); a group holding any goes out with each unit in one pack where the
    width allows (its trials ordered by unit, then as above); without it, packs are as they always were.
    """
    if pack_size < 1:
        raise ValueError(f"pack_size must be >= 1, got {pack_size}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    timed = [s for s in specs if s.exclusive]
    rest = [s for s in specs if not s.exclusive]
    share = sum(cost(s) for s in rest) / workers
    packs = []
    # ties go by config_id, not trial_id: the id holds the code fingerprint, so ordering by it would regroup
    # the packs whenever the code changes, and a trial packed with other neighbours moves by rounding
    config = {s.trial_id: s.config_id for s in rest}
    ordered = sorted(rest, key=lambda s: (repr(group_key(s)), -cost(s), config[s.trial_id]))
    for _, group in groupby(ordered, key=lambda s: repr(group_key(s))):
        group = list(group)
        width = pack_width(group[0], pack_size, pack_bytes(group[0]))
        n = math.ceil(len(group) / width)
        if workers > 1:
            n = max(n, min(len(group), math.ceil(sum(cost(s) for s in group) / share - 1e-9)))
        if together and any(s.trial_id in together for s in group):
            group.sort(key=lambda s: together.get(s.trial_id, ""))  # stable: within a unit, the order above
            packs += _chunks_together(group, n, width, together)
        else:
            packs += _chunks(group, n)
    packs.sort(key=lambda p: (-sum(cost(s) for s in p), config[p[0].trial_id]))
    return packs + timing_blocks(timed)
