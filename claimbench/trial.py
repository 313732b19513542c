"""The contract between stages: TrialSpec (what to run) and TrialRecord (what happened).

A ``TrialSpec`` is the frozen, fully resolved configuration of one training run.
Its ``trial_id`` is a hash of its canonical JSON plus ``TRAINING_REVISION``, a
constant bumped whenever the training semantics change, so that the same id
always means the same result and a changed suite reruns only changed cells.

A ``TrialRecord`` is the outcome, as plain data. Divergence is an outcome with
the step it happened at, never an exception and never a filled-in value.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

#: Bump when a change to workloads/ or train/ changes what a spec produces.
TRAINING_REVISION = 1

#: Version of the on-disk TrialRecord layout (see store.py).
RECORD_SCHEMA = 1


class TrialStatus(str, Enum):
    COMPLETED = "completed"
    DIVERGED = "diverged"
    FAILED = "failed"

    def is_final(self) -> bool:
        """Completed and diverged trials are results; a failed one is retried on rerun."""
        return self is not TrialStatus.FAILED


@dataclass(frozen=True)
class TrialSpec:
    """One training run, fully resolved. Field names are the suite's parameter names.

    Exactly one of ``epochs`` and ``steps`` is set: the budget.
    """

    seed: int = 0
    # workload
    dataset: str = "mnist1d"
    n_samples: int = 0  # 0: the dataset's own default size
    data_seed: int = 0  # fixes generation and the train/val/test split
    model: str = "mlp"
    depth: int = 2  # hidden layers
    width: int = 100
    activation: str = "relu"
    init: str = "he"
    init_dist: str = "normal"
    batchnorm: bool = False
    dropout: float = 0.0
    # optimization
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    schedule: str = "constant"
    warmup_steps: int = 0
    schedule_gamma: float = 0.1  # step: factor per milestone; exponential: final factor
    plateau_patience: int = 2  # evaluations without val improvement before a plateau cut
    clip: str = "none"  # none | norm | value
    clip_threshold: float = 1.0
    batch_size: int = 32
    # budget and control
    epochs: int = 0
    steps: int = 0
    evals: int = 20  # evaluations spread evenly over the budget (plus one at step 0)
    patience: int = 0  # early stopping, in evaluations; 0 disables it
    restore_best: bool = True
    divergence_factor: float = 10.0  # diverged if smoothed train loss > factor x initial val loss
    target: float = 0.0  # val accuracy target for steps-to-target; 0 disables it

    def __post_init__(self) -> None:
        if (self.epochs > 0) == (self.steps > 0):
            raise ValueError(f"exactly one of epochs and steps must be positive, got epochs={self.epochs}, steps={self.steps}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrialSpec":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def trial_id(self) -> str:
        payload = f"rev{TRAINING_REVISION}:{self.canonical_json()}"
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def shape_key(self) -> tuple:
        """Trials with the same key share a dataset and a model shape: they can be packed."""
        return (self.dataset, self.n_samples, self.data_seed, self.model, self.depth, self.width)


def level_label(value: Any) -> Any:
    """The label of an axis level: a table level ``{epochs = 10}`` is ``"epochs=10"``; a scalar is itself.

    Frames, strata and reports all use this one spelling, so that a stratum found in a
    frame column can be matched back to its axis level.
    """
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return value


#: Parameter names and their Python types, for the suite loader and the JSON schema.
SPEC_FIELDS: dict[str, type] = {f.name: type(f.default) for f in dataclasses.fields(TrialSpec)}

#: The names each string parameter accepts. The registries in workloads/ and
#: train/ implement exactly these (a test checks); the loader validates against
#: them without importing torch.
CHOICES: dict[str, tuple[str, ...]] = {
    "dataset": ("mnist1d", "digits", "teacher"),
    "model": ("mlp",),
    "activation": ("logistic", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu"),
    "init": ("he", "lecun", "glorot"),
    "init_dist": ("normal", "uniform"),
    "optimizer": ("sgd", "adam", "adamw", "nadam", "rmsprop", "adamax"),
    "schedule": ("constant", "step", "exponential", "plateau", "onecycle", "cosine"),
    "clip": ("none", "norm", "value"),
}

#: Numeric ranges: (low, high, low_inclusive, high_inclusive); None is unbounded.
RANGES: dict[str, tuple[float | None, float | None, bool, bool]] = {
    "batch_size": (0, None, False, False),
    "lr": (0, None, False, False),
    "n_samples": (0, None, True, False),
    "depth": (1, None, True, False),
    "width": (0, None, False, False),
    "dropout": (0, 1, True, False),
    "momentum": (0, 1, True, False),
    "weight_decay": (0, None, True, False),
    "beta1": (0, 1, True, False),
    "beta2": (0, 1, True, False),
    "eps": (0, None, False, False),
    "warmup_steps": (0, None, True, False),
    "schedule_gamma": (0, 1, False, True),
    "plateau_patience": (0, None, True, False),
    "clip_threshold": (0, None, False, False),
    "epochs": (0, None, True, False),
    "steps": (0, None, True, False),
    "evals": (1, None, True, False),
    "patience": (0, None, True, False),
    "divergence_factor": (1, None, False, False),
    "target": (0, 1, True, True),
}


@dataclass
class TrialRecord:
    """The outcome of one trial. Plain data: JSON in the store, a row in the frame.

    ``curve`` holds one dict per evaluation: step, examples, epoch, lr, train_loss
    (smoothed), val_loss, val_acc, test_loss, test_acc, train_acc, elapsed_s.
    ``metrics`` holds the reported values: after restore-best when early
    stopping restored a checkpoint, else at the end. A diverged trial reports
    no final metrics (they are absent, never zero or filled in).
    """

    trial_id: str
    spec: dict[str, Any]
    status: TrialStatus
    metrics: dict[str, float] = field(default_factory=dict)
    curve: list[dict[str, float]] = field(default_factory=list)
    diverged_step: int | None = None
    divergence_reason: str | None = None
    steps_done: int = 0
    examples_done: int = 0
    steps_to_target: int | None = None
    examples_to_target: int | None = None
    best_step: int | None = None
    stopped_early: bool = False
    time_per_step_s: float | None = None
    examples_per_s: float | None = None
    wall_s: float = 0.0
    device: str = "cpu"
    host: str = ""
    attempts: int = 1
    error: str | None = None
    schema: int = RECORD_SCHEMA
    training_revision: int = TRAINING_REVISION

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["status"] = self.status.value
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrialRecord":
        data = dict(data)
        data["status"] = TrialStatus(data["status"])
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def failed(cls, spec: TrialSpec, error: str, attempts: int = 1, host: str = "") -> "TrialRecord":
        return cls(trial_id=spec.trial_id, spec=spec.to_dict(), status=TrialStatus.FAILED,
                   error=error, attempts=attempts, host=host)
