"""The workload contract: everything a package writes to have claimbench test claims about its own
model, data and training loop. Read this file and you know the shape of everything.

A workload is a ``Workload(...)`` object that a package registers under a name through the entry-point
group ``claimbench.workloads`` (registry.py); a suite names it (``[workload] name = "myteam.resnet"``)
and sets its declared parameters. It comes at one of two levels:

1. **Components** (``data`` and ``model``, optionally ``loss`` and ``augment``): claimbench's
   single-trial engine (train/single.py) trains them with its own optimizers, schedules, clipping,
   divergence rule, early stopping and steps-to-target (train/policy/), so every shared claim axis
   (batch_size, lr, optimizer, momentum, schedule, weight_decay, clip, ...) works unchanged, and
   BatchNorm, dropout, depth or width do where the model reads them (``uses``).

   - ``data(cfg) -> Data``: train/val/test tensors, built once per worker and kept on its device
     (batches are index slices of them); ``Data.from_datasets`` materializes ``torch.utils.data``
     datasets. Seed it with ``cfg.data_seed``.
   - ``model(cfg, data) -> nn.Module``: built under ``torch.manual_seed(cfg.seed)``; maps a batch of
     ``data.x_*`` rows to ``(batch, n_outputs)`` outputs.
   - ``loss(outputs, targets, reduction) -> Tensor`` (reduction "mean", "sum" or "none"); default: the
     spec's ``loss`` for the task (cross-entropy for classification, MSE for regression).
   - ``augment(x, generator) -> x``: applied to each training minibatch (never to evaluation); draw
     randomness from ``generator`` (seeded by the trial's seed), so that a trial is reproducible.

2. **A training function** (``train``): the package's own loop, ``train(params, ctx)``. It reads its
   parameters from ``params`` and the shared settings from ``ctx.spec`` (``ctx.spec.lr``,
   ``ctx.spec.batch_size``, ...: the ones it lists in ``uses``), calls ``ctx.report(step=..., train_loss=...,
   val_loss=..., val_acc=..., ...)`` at ``ctx.eval_steps`` (step 0 first) and returns when
   ``ctx.should_stop()`` says so. From the reports claimbench's trial policy derives divergence,
   steps- and examples-to-target, the best step, early stopping and time per step, into the same
   TrialRecord (train/policy/, ``Context``). Its budget is ``steps``. A report may carry the loop's own
   ``lr``, ``epoch`` and any metric of its own, which the curve keeps (``Context.report``).

Settings a workload does not read (``Workload.reads``: a training function's optimizer, schedule or
clipping, when its loop has its own) stay at their defaults in its trials' specs, and its records mark them
not applicable (``Workload.not_applicable``), so that frames, reports and exports show them as n/a.

Parameters (``Param``): name, type (int, float, bool or str), default, an inclusive range
(``low``/``high``) or ``choices``. The suite loader validates the values a suite sets or sweeps
with the same one-line errors as built-in parameters, and ``claimbench schema`` includes them. A
parameter marked ``data=True`` changes the data: the data are rebuilt per value (else shared).

Size checks (``check``, optional, either level): ``check(spec, limits, where)`` refuses a spec too large
to train (its data or model past ``limits``, the suite's size limits, limits.py) by raising
``limits.LimitError`` with ``where(param)`` as its where; it runs when the suite loads, before anything
is built. The built-ins check their datasets' sizes and their models' memory this way (builtin/shapes.py).

The workload's code fingerprint (registry.fingerprint: package, version and a hash of its source
files) is part of every trial id, so editing the model or the loop retrains.
"""

from __future__ import annotations

import keyword
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

from claimbench.trial import DERIVED, METRICS, RECORD_COLUMNS
from claimbench.workloads.settings import FIELDS

if TYPE_CHECKING:
    import torch
    from torch import nn

    from claimbench.trial import Spec

TASKS = ("classification", "regression")
PARAM_TYPES: tuple[type, ...] = (int, float, bool, str)
#: Built-in [workload] keys a workload may read (``uses``; settings.py); dataset and model are always its own.
MODEL_FIELDS = tuple(name for name, f in FIELDS.items() if f.group == "uses")
#: [train] keys a training function honours only when it lists them in ``uses`` (it runs its own loop).
LOOP_FIELDS = tuple(name for name, f in FIELDS.items() if f.group == "loop")
#: [train] keys the trial policy implements for a training function from its reports (always allowed).
POLICY_FIELDS = tuple(name for name, f in FIELDS.items() if f.group == "policy")
#: [budget] keys: every workload has a budget.
BUDGET_FIELDS = tuple(name for name, f in FIELDS.items() if f.section == "budget")
#: The built-in settings a workload may not read (``Workload.reads``): the built-in workload's (settings.py),
#: claimbench's training loop's and the trial policy's. Those it does not read are not applicable to its trials.
SHARED_SETTINGS = tuple(name for name, f in FIELDS.items()
                        if f.section == "workload" or f.group in ("uses", "loop", "policy"))


@dataclass(frozen=True)
class Param:
    """A parameter a workload declares; suites set and sweep it by ``name``."""

    name: str
    type: type
    default: Any
    low: float | None = None  # inclusive bounds (numbers)
    high: float | None = None
    choices: tuple[Any, ...] = ()
    data: bool = False  # the data depend on it: built per value (else one dataset serves every value)
    help: str = ""

    def __post_init__(self) -> None:
        if not (isinstance(self.name, str) and self.name.isidentifier() and not keyword.iskeyword(self.name)):
            raise ValueError(f"a parameter name must be an identifier, got {self.name!r}")
        if self.type not in PARAM_TYPES:
            raise ValueError(f"parameter {self.name}: type must be one of int, float, bool, str, got {self.type!r}")
        if (self.low is not None or self.high is not None) and self.type not in (int, float):
            raise ValueError(f"parameter {self.name}: low/high apply to int and float parameters")
        object.__setattr__(self, "choices", tuple(self.choices))
        self.check(self.default)  # a default outside its own rule is the author's bug

    def check(self, value: Any) -> Any:
        """``value`` as this parameter's type; ValueError naming the rule and the value when it breaks it."""
        t = self.type
        if t is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, t) or (t is int and isinstance(value, bool)):
            raise ValueError(f"{self.name} must be {t.__name__}, got {type(value).__name__} {value!r}")
        if t is float and not math.isfinite(value):
            raise ValueError(f"{self.name} must be finite, got {value!r}")
        if self.choices and value not in self.choices:
            raise ValueError(f"{self.name} must be one of {', '.join(map(str, self.choices))}, got {value!r}")
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise ValueError(f"{self.name} must be {self.rule()}, got {value!r}")
        return value

    def rule(self) -> str:
        """The range as text: ">= 1 and <= 8"."""
        if self.type is bool:
            return "true or false"
        parts = ([f">= {self.low:g}"] if self.low is not None else []) + \
                ([f"<= {self.high:g}"] if self.high is not None else [])
        return " and ".join(parts) or f"any {self.type.__name__}"


@dataclass(frozen=True)
class Config:
    """What a workload's functions receive: the trial's resolved spec and the workload's parameters."""

    spec: "Spec"
    params: Mapping[str, Any]

    def __getitem__(self, name: str) -> Any:
        return self.params[name]

    @property
    def seed(self) -> int:
        return self.spec.seed

    @property
    def data_seed(self) -> int:
        return self.spec.data_seed


@dataclass
class Data:
    """A components workload's data: tensors of examples (any shape; the model reads them) and targets
    (class indices, long, for classification; float targets for regression)."""

    x_train: "torch.Tensor"
    y_train: "torch.Tensor"
    x_val: "torch.Tensor"
    y_val: "torch.Tensor"
    x_test: "torch.Tensor"
    y_test: "torch.Tensor"
    n_outputs: int  # classes, or 1 for a scalar regression target

    @classmethod
    def from_datasets(cls, train, val, test, n_outputs: int) -> "Data":
        """From three ``torch.utils.data.Dataset`` of ``(x, y)`` pairs, stacked once into tensors."""
        import torch

        def stack(ds):
            xs, ys = zip(*(ds[i] for i in range(len(ds))))
            return torch.stack([torch.as_tensor(x) for x in xs]), torch.as_tensor(ys)

        (a, b), (c, d), (e, f) = stack(train), stack(val), stack(test)
        return cls(a, b, c, d, e, f, n_outputs)


class Context(Protocol):
    """What a training function's ``ctx`` offers (train/policy/ ``Context`` implements it)."""

    spec: "Spec"  # the shared settings: lr, batch_size, optimizer, seed, data_seed, steps, ...
    params: Mapping[str, Any]  # the workload's parameters
    device: "torch.device"
    total_steps: int  # the budget
    eval_steps: tuple[int, ...]  # when to report: 0, then ``spec.evals`` points up to total_steps

    def report(self, step: int, *, examples: int | None = None, lr: float | None = None,
               epoch: float | None = None, **metrics: float) -> None:
        """An evaluation after ``step`` steps: train_loss, val_loss and val_acc (classification) or val_r2
        (regression) are required; test_*, train_acc and any metric of the function's own (a number, by
        any other name) are kept too: in the curve, and their last values in the record's metrics. ``lr``
        (the LR of the step just taken; at step 0, the first step's), ``epoch`` (the function's own count,
        a float) and ``examples`` (training examples seen) are the curve's at this step: without them the
        curve has no lr and no epoch, and examples are step x ``spec.batch_size``."""

    def should_stop(self) -> bool:
        """True once the budget is spent, or the trial diverged or stopped early: return then."""


@dataclass(frozen=True)
class Workload:
    """A registered workload (see the module docstring). Exactly one level: ``data`` and ``model``, or ``train``."""

    name: str
    task: str = "classification"
    params: tuple[Param, ...] = ()
    uses: tuple[str, ...] = ()  # built-in settings its code reads (MODEL_FIELDS; LOOP_FIELDS for a train function)
    description: str = ""
    data: Callable[[Config], Data] | None = None
    model: Callable[[Config, Any], "nn.Module"] | None = None
    loss: Callable[..., "torch.Tensor"] | None = None
    augment: Callable[..., "torch.Tensor"] | None = None
    train: Callable[[Mapping[str, Any], Context], None] | None = None
    check: Callable[["Spec", Mapping[str, int], Callable[[str], str]], None] | None = None
    builtin: bool = field(default=False, repr=False)  # claimbench's own datasets and models (builtin/)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", tuple(self.params))
        object.__setattr__(self, "uses", tuple(self.uses))
        where = f"workload {self.name!r}"
        if not self.builtin:
            if self.task not in TASKS:
                raise ValueError(f"{where}: task must be one of {', '.join(TASKS)}, got {self.task!r}")
            components = self.data is not None or self.model is not None
            if components == (self.train is not None) or (components and (self.data is None or self.model is None)):
                raise ValueError(f"{where}: give data and model (components), or train (a training function), not both")
            if self.train is not None and (self.loss is not None or self.augment is not None):
                raise ValueError(f"{where}: loss and augment belong to components; a training function has its own")
            allowed = MODEL_FIELDS + (LOOP_FIELDS if self.train is not None else ())
            bad = [u for u in self.uses if u not in allowed]
            if bad:
                raise ValueError(f"{where}: uses {', '.join(bad)}, which it cannot read; allowed: {', '.join(allowed)}")
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"{where}: parameter names repeat: {names}")
        taken = {*FIELDS, *RECORD_COLUMNS, *METRICS, *DERIVED, *RESERVED}
        clash = [n for n in names if n in taken]
        if clash:
            raise DefinitionError(f"{where}: parameter {', '.join(clash)} is a reserved name (a built-in setting or a "
                                  f"trial frame column)", fix=f"rename it in the workload's params, e.g. "
                                  f"{clash[0]!r} -> 'my_{clash[0]}'; the reserved names are in docs/suites.md")

    @property
    def level(self) -> str:
        """"builtin", "components" or "function"."""
        return "builtin" if self.builtin else "function" if self.train is not None else "components"

    def reads(self, key: str) -> bool:
        """Whether this workload reads built-in setting ``key``: the built-ins read every one; every workload
        its data's seed and its budget; components claimbench's loop and policy (they train on its engine),
        and the model settings in ``uses``; a training function the trial policy's settings and those in
        ``uses``. A suite may set only the settings it reads (suite/validate.py)."""
        if self.builtin or key == "data_seed":  # every workload's data take their seed
            return True
        if key in MODEL_FIELDS or key in LOOP_FIELDS and self.level == "function":
            return key in self.uses
        if self.level == "function":
            return key in POLICY_FIELDS or key in BUDGET_FIELDS
        return key not in ("dataset", "model")

    @property
    def not_applicable(self) -> tuple[str, ...]:
        """The built-in settings (``SHARED_SETTINGS``) this workload does not read. Its trials' specs hold
        their defaults (the trial id hashes the whole spec), but its records mark them not applicable
        (``TrialRecord.not_applicable``), so that records, frames, reports and exports never show a default
        it never used (an optimizer, a schedule, clipping) as a fact; () for the built-ins."""
        return tuple(k for k in SHARED_SETTINGS if not self.reads(k))

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}


class DefinitionError(ValueError):
    """A workload defined against the contract (raised when the package builds its ``Workload``); ``fix`` says
    what to change in the definition, so that the registry's one line does not tell the user to reinstall."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.fix = fix


#: Names a parameter may not take besides the spec fields and a trial frame's columns (trial.py).
RESERVED = frozenset({"name", "trial_id", "budget", "noise_curve", "value", "params"})
