"""Packs: the unit of work sent to a worker — trials that share a dataset and model shape.

A pack of trials that ``packable`` accepts and that share a ``pack_key`` is trained jointly by
``train.packed.train_pack`` (stacked parameters, one batched kernel per layer for all of them);
every other trial of a pack is trained alone by ``train.train_trial``. This module decides which
is which without importing torch, so the driver never needs it. What trains jointly: every built-in
model (MLP; CNN as grouped convolutions; RNN and LSTM as batched recurrences), both kinds (``train``
and the LR ``range_test``), every activation, dropout kind, loss, optimizer, schedule and clipping;
``packable`` lists the exceptions.

How wide (``make_packs``): a group of jointly trainable trials goes out in packs as wide as
``pack_width`` allows — the width measured fastest per trial for its model family and batch size
(``WIDTH_TABLE``), bounded by a memory estimate (``pack_bytes``) and by ``pack_size`` — and is
split further only when one pack would hold more than a worker's fair share of the run's work
(then splitting keeps every worker busy). Trials trained alone go out in packs of
``UNPACKED_WIDTH``: for them a pack only saves messages, and small ones balance the load.

Exclusive trials (``TrialSpec.exclusive``: timing trials) never share a pack with anything else.
``timing_blocks`` puts each with its comparison arm — the exclusive trials that differ from it
only in the timed factor — into one block, a pack the executors run last, one block at a time,
with nothing else training.
"""

from __future__ import annotations

import json
import math
from itertools import groupby

from claimbench.workloads.builtin import FIELDS, TrialSpec, shapes

#: Upper bound on a pack's width (``--pack-size`` sets it). The width itself comes from
#: ``pack_width``: the measured table, the memory bound and the load balance.
DEFAULT_PACK_SIZE = 64

#: The measured best width per model family and batch size, on a CPU worker with one torch thread:
#: rows of (largest batch size of the row, width). Each is the widest width within 5% of the fastest
#: time per trial (benchmarks/pack_width.py; reports/performance.md, "Pack width"): packs get
#: cheaper per trial up to about 32 small MLPs, then slower as the stacked weights and activations
#: outgrow the caches. Milliseconds per trial (300 steps, 3 evaluations) at widths 1 / 8 / 16 / 32 / 64:
#:   MLP 2x100, batch 2:   172 / 47 / 39 / 39 / 40       batch 128: 243 / 119 / 112 / 122 / 142
#:              batch 8:   177 / 46 / 37 / 34 / 45       batch 512: 473 / 450 / 411 / 461 / 532
#:              batch 32:  193 / 58 / 51 / 50 / 59
#:   MLP 4x100, batch 32:  429 / 217 / 177 / 130 / 164
#:   CNN 2x32 (digits), batch 32: 531 / 374 / 404 / 388 / 428   (150 steps, 2 evaluations, load 5)
#:   RNN 1x32 (adding), batch 32: 956 / 177 / 167 / 162 / 183   (the same)
#:   LSTM 1x32 (adding), batch 32 (benchmarks/packing.py, 80 steps): 1.1x faster per trial at 8,
#:   0.7x at 32, so LSTM packs stay at 8.
#: Other batch sizes of CNNs and RNNs are not measured: 8, the narrow end of the flat range. A GPU
#: gains from wider packs still; there ``--pack-size`` and the memory bound decide.
WIDTH_TABLE: dict[str, tuple[tuple[float, int], ...]] = {
    "mlp": ((32, 32), (128, 16), (512, 8), (math.inf, 4)),
    "cnn": ((32, 32), (math.inf, 8)),
    "rnn": ((32, 32), (math.inf, 8)),
    "lstm": ((math.inf, 8),),
}
#: A CNN's pack width also falls with its channels: past about 32 channels per layer a small CNN is
#: bound by convolution arithmetic, which grouping K models into one kernel does not shrink, and a
#: wide pack's activations outgrow the caches. Rows of (most channels, width); speed-ups per trial over
#: one at a time (digits, 2 conv blocks, dropout 0.3, Adam, batch 32, 150 steps, channels-last packs)
#: at widths 4 / 8 / 16 / 32: 32 channels 1.74 / 1.93 / 1.99 / 1.73; 64 channels 1.26 / 1.17 / 1.09 /
#: 0.98 (reports/performance.md, "CNN packs").
CNN_WIDTH_BY_CHANNELS: tuple[tuple[float, int], ...] = ((16, 32), (32, 16), (math.inf, 4))
#: Width of packs of trials trained alone (not packable, or no pack-mate).
UNPACKED_WIDTH = 8
#: Bytes one pack may take on its worker's device (``pack_bytes``): far below a CPU worker's memory or
#: a slice of a GPU, so that a wide pack never runs out of memory.
PACK_MEMORY_BYTES = 2 * 2**30

#: Spec fields the packed trainer implements for any value (per trial or, through ``pack_key``,
#: shared by the pack). A field not listed here (one added later, such as a new measurement) makes
#: a spec packable only at its default value: new features fall back to ``train_trial`` until the
#: packed trainer learns them.
PACKED_FIELDS = frozenset(name for name, f in FIELDS.items() if f.packed)  # (trial.Field.packed)
_DEFAULTS = {name: f.default for name, f in FIELDS.items()}


def packable(spec: TrialSpec) -> bool:
    """Whether the packed trainer trains ``spec`` (else ``train_trial`` does, alone).

    Packed: every model (mlp, cnn, rnn, lstm), kind ``train`` and ``range_test`` (a per-trial LR
    ramp), any depth, width, shape, init, BatchNorm, dropout (standard or alpha, either position),
    every activation (PReLU's slope is a per-trial parameter, RReLU's slopes come from each trial's
    own generator), every loss, optimizer, schedule, warmup and clipping, early stopping, targets,
    label noise and outliers, latency. Not packed: BatchNorm at batch size 1, and any non-default
    value of a field outside ``PACKED_FIELDS`` (such as ``measure_noise_scale``).
    """
    if spec.batchnorm and spec.batch_size < 2:
        return False
    return all(name in PACKED_FIELDS or getattr(spec, name) == default for name, default in _DEFAULTS.items())


def pack_key(spec: TrialSpec) -> tuple:
    """Trials with the same key can be trained jointly: the same data, architecture, loss, optimizer
    kind, clipping kind, batch size and budget (so the same steps and evaluation points), and kind
    (a range test's LR sweep comes before its training); and, where set, the parameterization with its
    base width (muP's per-layer multipliers) and the batch-size schedule (every trial's batch at every
    step), appended only then, so that every other trial's key is as before."""
    key = (*spec.shape_key(), "packed", spec.kind, spec.activation, spec.batchnorm,
           spec.dropout_position, spec.dropout_kind,  # as declared: a rate of 0 packs with its suite's others
           spec.loss_name, spec.optimizer, spec.clip, spec.batch_size, spec.epochs, spec.steps, spec.evals)
    if spec.parameterization != "sp":
        key += ("parameterization", spec.parameterization, spec.base_width)
    if spec.batch_schedule != "constant":
        key += ("batch_schedule", spec.batch_schedule, spec.batch_factor)
    return key


def group_key(spec: TrialSpec) -> tuple:
    """What a pack shares: ``pack_key`` for packable trials, else the shape (``shape_key``)."""
    return pack_key(spec) if packable(spec) else spec.shape_key()


def cost(spec: TrialSpec) -> float:
    """A rough relative cost: steps x (fixed per-step overhead + per-example work)."""
    steps = spec.steps or spec.epochs * max(1, 4000 // spec.batch_size)
    return steps * (1.0 + spec.batch_size / 256) * (spec.depth * spec.width / 200)


#: Optimizer state per parameter, in parameter-sized tensors.
_OPT_STATE = {"sgd": 1, "adam": 2, "adamw": 2, "nadam": 2, "rmsprop": 2, "adamax": 2}
#: Examples per evaluation forward (train/metrics.py evaluates in chunks of at most this many).
_EVAL_EXAMPLES = 8192
#: A CNN pack's evaluation chunk holds at most this many floats of first-layer activations, for all
#: K models together (train/packed.py ``PackedEngine.eval_chunk``): so a CNN trial's share of the
#: evaluation's memory is a few examples, not ``_EVAL_EXAMPLES``.
CNN_EVAL_FLOATS = 2**19


def pack_bytes(spec: TrialSpec) -> int:
    """An upper estimate of the bytes one trial of ``spec`` adds to a pack (float32): parameters,
    gradients, optimizer state and a best-state copy, plus the activations of a training step
    (kept for backward, with their gradients) and of one evaluation chunk."""
    shape, n_out = shapes.io_shape(spec) or ((1000,), 10)  # a dataset not built in: 1000 features, 10 outputs
    widths = shapes.layer_widths(spec.depth, spec.width, spec.shape)
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


def pack_width(spec: TrialSpec, pack_size: int = DEFAULT_PACK_SIZE) -> int:
    """The widest pack of trials like ``spec`` worth sending: the measured width for its family and
    batch size (``WIDTH_TABLE``; for a CNN also its channels, ``CNN_WIDTH_BY_CHANNELS``), at most what ``PACK_MEMORY_BYTES`` holds, at most ``pack_size``."""
    if not packable(spec):
        return max(1, min(pack_size, UNPACKED_WIDTH))
    rows = WIDTH_TABLE.get(spec.model, ((math.inf, UNPACKED_WIDTH),))
    measured = next(width for upto, width in rows if spec.batch_size <= upto)
    if spec.model == "cnn":
        measured = min(measured, next(width for upto, width in CNN_WIDTH_BY_CHANNELS if spec.width <= upto))
    memory = max(1, PACK_MEMORY_BYTES // pack_bytes(spec))
    return max(1, min(measured, memory, pack_size))


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


def make_packs(specs: list[TrialSpec], pack_size: int = DEFAULT_PACK_SIZE, workers: int = 1) -> list[list[TrialSpec]]:
    """The packs of ``specs`` for ``workers`` workers, most expensive first, exclusive blocks last.

    Trials are grouped by ``group_key`` (most expensive first within a group, so a pack holds trials
    of similar cost); a group goes out in the fewest packs of at most ``pack_width`` trials, and in
    more (of near-equal size) when a pack would exceed a worker's fair share of the run's cost, so
    that a small run still keeps every worker busy. Exclusive trials (timing) follow as their
    ``timing_blocks``, in order. Deterministic: the same specs give the same packs, and specs that differ
    only in their code fingerprint (``TrialSpec.code``) give the same packs of the same trials, so that a
    code change that leaves the arithmetic alone leaves every record as it was.
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
        n = math.ceil(len(group) / pack_width(group[0], pack_size))
        if workers > 1:
            n = max(n, min(len(group), math.ceil(sum(cost(s) for s in group) / share - 1e-9)))
        packs += _chunks(group, n)
    packs.sort(key=lambda p: (-sum(cost(s) for s in p), config[p[0].trial_id]))
    return packs + timing_blocks(timed)
