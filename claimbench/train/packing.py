"""Which trials the packed engine trains together, and how many at a time: the rules that form a pack.

They live in train/, inside the built-ins' code fingerprint (workloads/registry.source_files hashes
train/ and workloads/), because which trials share a pack can change their records by float rounding.
Torch-free: the scheduler (runner/packs.py) forms packs with them on the driver, which never imports
torch.

A pack of trials that ``packable`` accepts and that share a ``pack_key`` is trained jointly by
``train.pack.train_pack`` on the packed engine of their model family (``packed_engine``: stacked
parameters, one batched kernel per layer for all of them); every other trial of a pack is trained alone
by ``train.single.train_trial``. What trains jointly: every
built-in model (MLP; CNN as grouped convolutions; RNN and LSTM as batched recurrences), both kinds
(``train`` and the LR ``range_test``), every activation, dropout kind, loss, optimizer, schedule and
clipping; ``packable`` lists the exceptions.

How wide (``pack_width``): the width measured fastest per trial for its model family and batch size
(``WIDTH_TABLE``), bounded by memory (``PACK_MEMORY_BYTES``, at the scheduler's estimate of a trial's
bytes) and by ``pack_size``. Trials trained alone go out in packs of ``UNPACKED_WIDTH``: for them a pack
only saves messages, and small ones balance the load.
"""

from __future__ import annotations

import math

from claimbench.workloads.builtin import FIELDS, TrialSpec, models

#: Spec fields the packed trainer implements for any value (per trial or, through ``pack_key``,
#: shared by the pack). A field not listed here (one added later, such as a new measurement) makes
#: a spec packable only at its default value: new features fall back to ``train_trial`` until the
#: packed trainer learns them.
PACKED_FIELDS = frozenset(name for name, f in FIELDS.items() if f.packed)  # (trial.Field.packed)
_DEFAULTS = {name: f.default for name, f in FIELDS.items()}

def packed_engine(spec: TrialSpec) -> str:
    """The module of the packed engine that trains ``spec``'s model family (its ``Family.packed``: a module
    that defines ``train_jointly(specs, cache, device, inject_error)`` as ``train.packed.engine`` does, and
    optionally ``halving=`` — each spec's halving directive — to let its packs halt; one without it never
    halts); "" when none does, and for a model no family declares."""
    family = models.find(spec.model)
    return family.packed if family is not None else ""


def packable(spec: TrialSpec) -> bool:
    """Whether the packed trainer trains ``spec`` (else ``train_trial`` does, alone).

    Packed: every model (mlp, cnn, rnn, lstm), kind ``train`` and ``range_test`` (a per-trial LR
    ramp), any depth, width, shape, init, BatchNorm, dropout (standard or alpha, either position),
    every activation (PReLU's slope is a per-trial parameter, RReLU's slopes come from each trial's
    own generator), every loss, optimizer, schedule, warmup and clipping, early stopping, targets,
    label noise and outliers, latency. Not packed: a model family without a packed engine
    (``packed_engine``), BatchNorm at batch size 1, optimizer muon (torch.optim.Muon, single engine
    only), a transformer with dropout (its packed engine has no dropout masks), and any non-default value
    of a field outside ``PACKED_FIELDS`` (such as ``measure_noise_scale``).
    """
    if not packed_engine(spec) or (spec.batchnorm and spec.batch_size < 2) or spec.optimizer == "muon":
        return False
    if spec.model == "transformer" and spec.dropout > 0:
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


#: The best width per model family and batch size on a CPU worker with one torch thread: rows of
#: (largest batch size of the row, width), each the widest width within 5% of the fastest time per
#: trial in benchmarks/pack_width.py (which prints the times behind them). Packs get cheaper per trial
#: up to about 32 small MLPs, then slower as the stacked weights and activations outgrow the caches;
#: LSTM packs gain little past 8. CNNs and RNNs at batch sizes above 32, which the benchmark does not
#: cover, get 8, the narrow end of the flat range. A family without a row packs at ``UNPACKED_WIDTH``. A GPU gains from wider packs
#: still; there ``--pack-size`` and the memory bound decide.
WIDTH_TABLE: dict[str, tuple[tuple[float, int], ...]] = {
    "mlp": ((32, 32), (128, 16), (512, 8), (math.inf, 4)),
    "cnn": ((32, 32), (math.inf, 8)),
    "rnn": ((32, 32), (math.inf, 8)),
    "lstm": ((math.inf, 8),),
    "transformer": ((math.inf, 8),),
}
#: A CNN's pack width also falls with its channels: past about 32 channels per layer a small CNN is
#: bound by convolution arithmetic, which grouping K models into one kernel does not shrink, and a
#: wide pack's activations outgrow the caches. Rows of (most channels, width).
CNN_WIDTH_BY_CHANNELS: tuple[tuple[float, int], ...] = ((16, 32), (32, 16), (math.inf, 4))
#: Width of packs of trials trained alone (not packable, or no pack-mate).
UNPACKED_WIDTH = 8
#: Bytes one pack may take on its worker's device, at the scheduler's estimate of a trial's bytes
#: (runner/packs.pack_bytes): far below a CPU worker's memory or a slice of a GPU, so that a wide pack
#: never runs out of memory.
PACK_MEMORY_BYTES = 2 * 2**30


def pack_width(spec: TrialSpec, pack_size: int, trial_bytes: int) -> int:
    """The widest pack of trials like ``spec`` worth sending: the measured width for its family and
    batch size (``WIDTH_TABLE``; for a CNN also its channels, ``CNN_WIDTH_BY_CHANNELS``), at most what
    ``PACK_MEMORY_BYTES`` holds at ``trial_bytes`` a trial (the scheduler's estimate), at most ``pack_size``."""
    if not packable(spec):
        return max(1, min(pack_size, UNPACKED_WIDTH))
    rows = WIDTH_TABLE.get(spec.model, ((math.inf, UNPACKED_WIDTH),))
    measured = next(width for upto, width in rows if spec.batch_size <= upto)
    if spec.model == "cnn":
        measured = min(measured, next(width for upto, width in CNN_WIDTH_BY_CHANNELS if spec.width <= upto))
    memory = max(1, PACK_MEMORY_BYTES // trial_bytes)
    return max(1, min(measured, memory, pack_size))
