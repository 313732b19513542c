"""Every size limit in one table, checked when a suite loads: before anything is expanded or allocated.

A suite may raise a limit for itself with a ``[limits]`` table (``trials = 200000``), up to the
limit's ceiling. ``trial_timeout`` (seconds) sets every trial's wall-clock limit instead of the
estimate the runner derives (runner/timeouts.py ``trial_timeouts``). Each refusal is one line naming the file, the key, the value, the limit and the
``[limits]`` key that raises it. The fault variable (``CLAIMBENCH_FAULTS``) goes through the same
checks (``check_spec`` on the spec that a ``corrupt`` fault makes train).

What is estimated, and how (``check_spec``):

- the training set of a spec (``train_size``): the dataset's examples (``n_samples``, or its default
  size; a file dataset has at most ``DATASETS[name].available``), less the test split, less the
  validation fifth; a ``batch_size`` larger than it is refused;
- the memory of one trial (``memory_mb``): 16 bytes per model parameter (weights, gradients, two
  optimizer states in float32; ``estimate_params``) plus 16 bytes per input value of the dataset
  (float64 while it is built, then float32 copies).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from claimbench.errors import UserError
from claimbench.workloads import registry as _registry


class LimitError(UserError):
    """A size beyond a limit of ``LIMITS``."""


@dataclass(frozen=True)
class Limit:
    key: str  # the [limits] key that raises it
    default: int
    ceiling: int  # the most a [limits] table may raise it to
    what: str


_TABLE = (
    Limit("trials", 100_000, 10_000_000, "trials per run (the product of every axis's levels and the seeds)"),
    Limit("levels", 1_000, 100_000, "levels of one axis (values, or logspace num)"),
    Limit("seeds", 1_000, 100_000, "seeds"),
    Limit("depth", 1_000, 100_000, "hidden layers (depth)"),
    Limit("width", 65_536, 16_777_216, "units or channels of a layer (width)"),
    Limit("steps", 10_000_000, 10_000_000_000, "training steps (steps)"),
    Limit("epochs", 100_000, 100_000_000, "training epochs (epochs)"),
    Limit("evals", 10_000, 10_000_000, "evaluations (evals)"),
    Limit("range_steps", 100_000, 100_000_000, "LR range-test steps (range_steps)"),
    Limit("seq_len", 10_000, 1_000_000, "sequence length of the adding problem (seq_len)"),
    Limit("samples", 10_000_000, 1_000_000_000, "examples of a generated dataset (n_samples)"),
    Limit("memory_mb", 8_192, 1_048_576, "memory of one trial in MiB: parameters and dataset, as estimated"),
    Limit("trial_timeout", 0, 604_800, "seconds one trial may train before it is recorded failed (default, 0: "
                                       "its estimated time x 10, at least 300 s; --trial-timeout overrides)"),
)
LIMITS: dict[str, Limit] = {lim.key: lim for lim in _TABLE}
#: TrialSpec parameters bounded directly, and the limit that bounds each.
PARAM_LIMITS: dict[str, str] = {"depth": "depth", "width": "width", "steps": "steps", "epochs": "epochs",
                                "evals": "evals", "range_steps": "range_steps", "seq_len": "seq_len",
                                "n_samples": "samples"}
DEFAULTS: dict[str, int] = {lim.key: lim.default for lim in _TABLE}


@dataclass(frozen=True)
class DatasetFacts:
    """What a dataset holds, known without building it (workloads/data.py agrees; a test checks)."""

    default_n: int  # examples when n_samples = 0 (train + test for generated data; the training files else)
    available: int | None  # a file dataset's training examples: n_samples beyond it is refused; None: generated
    test_fraction: float  # the part of the n examples that becomes the test split (0: a separate test file)
    input_shape: tuple[int, ...]  # per example; () for the adding problem (depends on seq_len)
    n_out: int


#: From the one table of built-in datasets (workloads/registry.py).
DATASETS: dict[str, DatasetFacts] = {
    d.name: DatasetFacts(d.default_n, d.available, d.test_fraction, () if d.name == "adding" else d.shape, d.n_outputs)
    for d in _registry.DATASETS}
VAL_FRACTION = 0.2  # workloads.data.build_dataset's default


def raise_text(key: str, value: Any) -> str:
    lim = LIMITS[key]
    if isinstance(value, (int, float)) and value > lim.ceiling:
        return f"lower it: [limits] {key} can raise the limit to {lim.ceiling} at most"
    return f"lower it, or raise the limit in the suite: [limits] {key} = {value} (at most {lim.ceiling})"


def parse_limits(table: Any, where: str) -> dict[str, int]:
    """A suite's ``[limits]`` table over the defaults; ``where`` is the file (for the error line)."""
    if not isinstance(table, dict):
        raise LimitError(f"must be a table, got {table!r}", where=f"{where}: limits", fix="write [limits] with key = N lines")
    out = dict(DEFAULTS)
    for key, value in table.items():
        if key not in LIMITS:
            raise LimitError(f"unknown limit {key!r}", where=f"{where}: limits.{key}",
                             fix=f"use one of: {', '.join(LIMITS)}")
        lim = LIMITS[key]
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= lim.ceiling:
            raise LimitError(f"{key} must be an integer from 1 to {lim.ceiling}, got {value!r}",
                             where=f"{where}: limits.{key}", fix=f"write {key} = N (default {lim.default})")
        out[key] = value
    return out


def check_count(key: str, n: int, limits: Mapping[str, int], where: str, what: str | None = None) -> None:
    """Refuse a count (trials, levels, seeds) above its limit."""
    if n > limits[key]:
        shown = f"{n:.3g}" if n >= 10**7 else str(n)
        text = f"{what}, above the limit of {limits[key]}" if what else \
            f"{LIMITS[key].what}: {shown} is above the limit of {limits[key]}"
        raise LimitError(text, where=where, fix=raise_text(key, n))


def check_param(key: str, value: Any, limits: Mapping[str, int], where: str) -> None:
    """Refuse a parameter value above the limit on it (``PARAM_LIMITS``); others pass."""
    lim = PARAM_LIMITS.get(key)
    if lim is not None and isinstance(value, int) and value > limits[lim]:
        raise LimitError(f"{key} = {value} is above the limit of {limits[lim]} ({LIMITS[lim].what})", where=where,
                         fix=raise_text(lim, value))


def layer_widths(depth: int, width: int, shape: str) -> list[int]:
    """The hidden widths (workloads.models.layer_widths, without importing torch)."""
    if shape == "pyramid":
        out, w = [], width
        for _ in range(depth):
            out.append(max(4, w))
            w //= 2
        return out
    return [width] * depth


def _input(spec: Any) -> tuple[int, ...]:
    facts = DATASETS.get(spec.dataset)
    if facts is None:
        return (1,)
    return (spec.seq_len, 2) if spec.dataset == "adding" else facts.input_shape


def estimate_params(spec: Any) -> int:
    """The parameters of the spec's model (weights and biases; an upper bound within a few percent)."""
    facts = DATASETS.get(spec.dataset)
    n_out = facts.n_out if facts else 10
    shape = _input(spec)
    widths = layer_widths(spec.depth, spec.width, spec.shape)
    total = 0
    if spec.model == "cnn":
        c = shape[0] if len(shape) == 3 else 1
        for w in widths:
            total += c * w * 9 + w * 3  # conv weights, bias, batchnorm
            c = w
        return total + c * n_out + n_out
    if spec.model in ("rnn", "lstm"):
        gates = 4 if spec.model == "lstm" else 1
        f = shape[-1] if len(shape) == 2 else (shape[0] * shape[2] if len(shape) == 3 else 1)
        for w in widths:
            total += gates * (f * w + w * w + 2 * w)
            f = w
        return total + f * n_out + n_out
    f = math.prod(shape)
    for w in widths:
        total += f * w + w * 3  # weights, bias, batchnorm
        f = w
    return total + f * n_out + n_out


def examples(spec: Any) -> int:
    """The examples the dataset is built from (before the test split, for generated data)."""
    facts = DATASETS.get(spec.dataset)
    if facts is None:
        return 0
    n = spec.n_samples or facts.default_n
    return min(n, facts.available) if facts.available else n


def train_size(spec: Any) -> int:
    """The training examples of the spec's dataset, after the test and validation splits."""
    facts = DATASETS.get(spec.dataset)
    if facts is None:
        return 0
    n = examples(spec)
    if spec.dataset == "digits":
        n = n - math.ceil(n * facts.test_fraction)  # scikit-learn's test_size rounds up
    elif spec.dataset == "mnist1d":
        n = int(n * (1 - facts.test_fraction))
    elif facts.test_fraction:
        n = n - n // 5
    return n - int(round(n * VAL_FRACTION))


def check_spec(spec: Any, limits: Mapping[str, int], where: Callable[[str], str]) -> None:
    """Refuse a spec whose dataset cannot hold its batch or n_samples, or whose model or data do not fit
    the memory budget. ``where(param)`` names the file and the key a parameter's value comes from."""
    facts = DATASETS.get(spec.dataset)
    if facts is None:
        return
    if facts.available and spec.n_samples > facts.available:
        raise LimitError(f"n_samples = {spec.n_samples} is more than the {facts.available} training examples "
                         f"{spec.dataset} has", where=where("n_samples"),
                         fix=f"set n_samples <= {facts.available} (0: all of them)")
    check_param("n_samples", spec.n_samples, limits, where("n_samples"))
    n_train = train_size(spec)
    if spec.batch_size > n_train:
        raise LimitError(f"batch_size = {spec.batch_size} is more than the {n_train} training examples of "
                         f"{spec.dataset} (n_samples = {spec.n_samples or 'default'})", where=where("batch_size"),
                         fix=f"use batch_size <= {n_train}, or more n_samples")
    params = estimate_params(spec)
    data_values = examples(spec) * math.prod(_input(spec))
    mib = (16 * params + 16 * data_values) / 2**20
    if mib > limits["memory_mb"]:
        raise LimitError(f"one trial needs about {mib:,.0f} MiB ({params:,} parameters of {spec.model} "
                         f"depth {spec.depth} width {spec.width}; {data_values:,} input values), above the "
                         f"memory limit of {limits['memory_mb']} MiB", where=where("width"),
                         fix=raise_text("memory_mb", math.ceil(mib)))
