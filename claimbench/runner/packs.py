"""Packs: the unit of work sent to a worker — trials that share a dataset and model shape.

A pack of trials that ``packable`` accepts and that share a ``pack_key`` is trained jointly by
``train.packed.train_pack`` (stacked parameters, one batched kernel per layer for all of them);
every other trial of a pack is trained alone by ``train.train_trial``. This module decides which
is which without importing torch, so the driver never needs it.
"""

from __future__ import annotations

import dataclasses
from itertools import groupby

from claimbench.trial import TrialSpec

#: Trials per pack. Packed training gets faster per trial up to about 8 trials of the small MLPs
#: the suites use on a CPU (reports/performance.md); more trials per pack also means fewer packs
#: to spread over workers, so the cap stays modest.
DEFAULT_PACK_SIZE = 8

#: Spec fields the packed trainer implements for any value (per trial or, through ``pack_key``,
#: shared by the pack). A field not listed here (one added later, such as a new measurement) makes
#: a spec packable only at its default value: new features fall back to ``train_trial`` until the
#: packed trainer learns them.
PACKED_FIELDS = frozenset({
    "seed", "kind", "dataset", "n_samples", "data_seed", "seq_len", "label_noise", "outlier_frac", "model", "depth",
    "width", "shape", "activation", "init", "init_dist", "batchnorm", "dropout", "dropout_position", "dropout_kind",
    "loss", "optimizer", "lr", "momentum", "nesterov", "weight_decay", "beta1", "beta2", "eps", "schedule",
    "warmup_steps", "schedule_gamma", "plateau_patience", "clip", "clip_threshold", "batch_size", "epochs", "steps",
    "evals", "patience", "restore_best", "divergence_factor", "target", "measure_latency",
    "range_lr_min", "range_lr_max", "range_steps",  # read only by kind = range_test, which is not packable
})
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrialSpec)}


def packable(spec: TrialSpec) -> bool:
    """Whether the packed trainer trains ``spec`` (else ``train_trial`` does, alone).

    Packed: MLPs (any depth, width, shape, init, BatchNorm, standard dropout in either position,
    any activation but rrelu (random slopes) and prelu (a learned slope)), every loss, optimizer,
    schedule, warmup and clipping, early stopping, targets, label noise and outliers, latency.
    Not packed: ``kind = "range_test"``, cnn/rnn/lstm, alpha dropout, BatchNorm at batch size 1,
    and any non-default value of a field outside ``PACKED_FIELDS``.
    """
    if spec.kind != "train" or spec.model != "mlp" or spec.activation in ("rrelu", "prelu"):
        return False
    if spec.dropout > 0 and spec.dropout_kind != "standard":
        return False
    if spec.batchnorm and spec.batch_size < 2:
        return False
    return all(name in PACKED_FIELDS or getattr(spec, name) == default for name, default in _DEFAULTS.items())


def pack_key(spec: TrialSpec) -> tuple:
    """Trials with the same key can be trained jointly: the same data, architecture, loss, optimizer
    kind, clipping kind, batch size and budget (so the same steps and evaluation points)."""
    return (*spec.shape_key(), "packed", spec.activation, spec.batchnorm,
            spec.dropout_position if spec.dropout > 0 else "after_act", spec.loss_name, spec.optimizer, spec.clip,
            spec.batch_size, spec.epochs, spec.steps, spec.evals)


def group_key(spec: TrialSpec) -> tuple:
    """What a pack shares: ``pack_key`` for packable trials, else the shape (``shape_key``)."""
    return pack_key(spec) if packable(spec) else spec.shape_key()


def cost(spec: TrialSpec) -> float:
    """A rough relative cost: steps x (fixed per-step overhead + per-example work)."""
    steps = spec.steps or spec.epochs * max(1, 4000 // spec.batch_size)
    return steps * (1.0 + spec.batch_size / 256) * (spec.depth * spec.width / 200)


def make_packs(specs: list[TrialSpec], pack_size: int = DEFAULT_PACK_SIZE) -> list[list[TrialSpec]]:
    """Group by ``group_key``, chunk into packs of at most ``pack_size`` trials of similar cost,
    most expensive first (so the long trials do not start last)."""
    if pack_size < 1:
        raise ValueError(f"pack_size must be >= 1, got {pack_size}")
    packs = []
    ordered = sorted(specs, key=lambda s: (repr(group_key(s)), -cost(s)))
    for _, group in groupby(ordered, key=lambda s: repr(group_key(s))):
        group = list(group)
        packs += [group[i:i + pack_size] for i in range(0, len(group), pack_size)]
    return sorted(packs, key=lambda p: -sum(cost(s) for s in p))
