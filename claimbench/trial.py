"""The contract between stages: TrialSpec (what to run) and TrialRecord (what happened).

A ``TrialSpec`` is the frozen, fully resolved configuration of one training run.
Its ``trial_id`` is a hash of its canonical JSON, which holds ``code``: the
fingerprint of the workload code that trains it (workloads/registry.py: the
package, its version and a hash of its sources; for the built-ins a hash of
claimbench's train/ and workloads/), so that editing a model or a training loop
yields new ids and the next run retrains; and the same id always means the same
result, and a changed suite reruns only changed cells. ``config_id`` is the same
hash without the code: what a baseline's trial matrix is (check.py), so that a
code change is compared against the baseline rather than refused.

A ``TrialRecord`` is the outcome, as plain data. Divergence is an outcome with
the step it happened at, never an exception and never a filled-in value.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from claimbench.workloads.registry import BUILTIN, DATASETS, MODELS

#: The training semantics' revision (kept in every record; part of every trial id). 3: packs break ties by
#: config_id, so a trial's pack neighbours, and with them its rounding, no longer follow the code fingerprint.
TRAINING_REVISION = 3

#: Fields added after TRAINING_REVISION 2 whose default changes nothing: left out of the id at that default.
ID_OMITS_DEFAULT: dict[str, object] = {"measure_noise_scale": False, "exclusive": False, "workload": BUILTIN,
                                       "workload_params": "", "code": "", "parameterization": "sp", "base_width": 0,
                                       "batch_schedule": "constant", "batch_factor": 1}

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

    Exactly one of ``epochs`` and ``steps`` is set: the budget. ``__post_init__``
    also refuses combinations that cannot run (see ``check_combination``), so a
    suite with one fails when it is loaded, not trial by trial.

    ``kind = "range_test"`` first runs an LR range test (``range_lr_min`` to
    ``range_lr_max`` over ``range_steps`` steps), then trains the spec's budget
    with the LR it suggests; ``lr`` is ignored for that kind (see train/loop.py).
    """

    seed: int = 0
    kind: str = "train"  # train | range_test
    # workload
    workload: str = BUILTIN  # the registered workload (workloads/registry.py); claimbench: the built-in datasets/models
    workload_params: str = ""  # its declared parameters, as canonical JSON ("" for the built-ins: see ``params``)
    code: str = ""  # the workload's code fingerprint (registry.fingerprint), set by suite.expand; part of the id
    dataset: str = "mnist1d"  # built-in datasets and models; "" for another workload (its own)
    n_samples: int = 0  # 0: the dataset's own default size; for image files, subsamples the training set
    data_seed: int = 0  # fixes generation, the train/val/test split, label noise and outliers
    seq_len: int = 30  # sequence length of the adding problem
    label_noise: float = 0.0  # classification: this fraction of training labels set to a random other class
    outlier_frac: float = 0.0  # regression: this fraction of training targets shifted by a large outlier
    model: str = "mlp"
    depth: int = 2  # hidden layers (mlp), conv blocks (cnn), recurrent layers (rnn, lstm)
    width: int = 100  # units, channels or hidden size of the first hidden layer
    shape: str = "equal"  # equal | pyramid: each hidden layer half the previous one's width (min 4)
    activation: str = "relu"
    init: str = "he"
    init_dist: str = "normal"
    batchnorm: bool = False
    dropout: float = 0.0
    dropout_position: str = "after_act"  # after_act: Linear-BN-act-Dropout | before_bn: Linear-Dropout-BN-act
    dropout_kind: str = "standard"  # standard | alpha (AlphaDropout, for SELU)
    parameterization: str = "sp"  # sp | mup: muP (Yang et al. 2022, Table 8) for an MLP under Adam (models.py)
    base_width: int = 0  # mup: the width at which muP equals SP (width_mult = width / base_width); 0 under sp
    # optimization
    loss: str = "auto"  # auto: ce for classification, mse for regression; mse for classification: raw outputs
    #                     vs one-hot targets; mae, huber (delta 1): regression (targets standardized)
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
    batch_schedule: str = "constant"  # constant | step: batch x batch_factor at 50% and 75% of the budget's
    #                                   examples, where schedule = "step" cuts the LR (Smith et al. 2018; policy.py)
    batch_factor: int = 1  # batch_schedule = "step": the factor k per milestone (>= 2)
    # budget and control
    epochs: int = 0
    steps: int = 0
    evals: int = 20  # evaluations spread evenly over the budget (plus one at step 0)
    patience: int = 0  # early stopping, in evaluations; 0 disables it
    restore_best: bool = True
    divergence_factor: float = 10.0  # diverged if smoothed train loss > factor x initial val loss
    target: float = 0.0  # val_acc (classification) or val_r2 (regression) target for steps-to-target; 0 disables it
    # measurements
    measure_latency: bool = False  # after training: median eval-mode forward time of 256 validation inputs
    range_lr_min: float = 1e-6  # kind = range_test: the LR sweep's start,
    range_lr_max: float = 10.0  # its end,
    range_steps: int = 200  # and its length in steps (one minibatch each)
    measure_noise_scale: bool = False  # at step 0 and each evaluation: the gradient noise scale B_simple
    #                                    (McCandlish et al. 2018) from 4 extra batches of batch_size (train/loop.py)
    exclusive: bool = False  # a timing trial: trained alone (never packed), back to back with its comparison arm,
    #                          on a worker with nothing else training (runner/packs.py, timing_blocks)

    def __post_init__(self) -> None:
        if (self.epochs > 0) == (self.steps > 0):
            raise ValueError(f"exactly one of epochs and steps must be positive, got epochs={self.epochs}, steps={self.steps}")
        check_combination(self)

    def to_dict(self) -> dict[str, Any]:
        # every field is an int, float, str or bool: a shallow dict is dataclasses.asdict's result, without
        # its recursive deep copy (which made expanding a big suite's trial ids take seconds)
        return {f.name: getattr(self, f.name) for f in _SPEC_FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrialSpec":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def canonical_json(self) -> str:
        """The spec as sorted compact JSON, without the fields of ``ID_OMITS_DEFAULT`` at their default (so
        that adding such a field left the ids of the specs that do not use it, and their results, valid)."""
        d = {k: v for k, v in self.to_dict().items() if not (k in ID_OMITS_DEFAULT and v == ID_OMITS_DEFAULT[k])}
        return json.dumps(d, sort_keys=True, separators=(",", ":"))

    @functools.cached_property
    def trial_id(self) -> str:
        """The id of this trial: its spec and the code that trains it (``code``); computed once per spec."""
        payload = f"rev{TRAINING_REVISION}:{self.canonical_json()}"
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @property
    def config_id(self) -> str:
        """The id without the code fingerprint: what the trial is, whatever code trains it."""
        return dataclasses.replace(self, code="").trial_id

    @property
    def params(self) -> dict[str, Any]:
        """The workload's parameters ({} for the built-ins, whose parameters are the spec's fields)."""
        return json.loads(self.workload_params) if self.workload_params else {}

    @property
    def builtin(self) -> bool:
        return self.workload == BUILTIN

    def shape_key(self) -> tuple:
        """Trials with the same key share a dataset and a model shape: they can be packed."""
        return (self.dataset, self.n_samples, self.data_seed, self.seq_len, self.label_noise, self.outlier_frac,
                self.model, self.depth, self.width, self.shape)

    @property
    def task(self) -> str:
        """"classification" or "regression": the dataset's task ("" for an unknown dataset)."""
        return DATASET_TASKS.get(self.dataset, "")

    @property
    def loss_name(self) -> str:
        """The loss actually used: ``loss``, with auto resolved (ce for classification, mse for regression)."""
        if self.loss != "auto":
            return self.loss
        return "mse" if self.task == "regression" else "ce"


#: The task of each built-in dataset (from the one table, workloads/registry.py; data.py agrees, a test checks).
DATASET_TASKS: dict[str, str] = {d.name: d.task for d in DATASETS}
#: Datasets whose examples are images (C, H, W): the ones a ``cnn`` accepts.
IMAGE_DATASETS = tuple(d.name for d in DATASETS if d.image)
#: Losses each task accepts.
TASK_LOSSES = {"classification": ("auto", "ce", "mse"), "regression": ("auto", "mse", "mae", "huber")}


def check_combination(spec: "TrialSpec") -> None:
    """Raise ValueError for a combination of parameters that cannot run; the message names the fix."""
    task = spec.task
    if task and spec.loss in CHOICES["loss"] and spec.loss not in TASK_LOSSES[task]:
        raise ValueError(f"loss {spec.loss!r} does not apply to {spec.dataset} ({task}); "
                         f"use one of: {', '.join(TASK_LOSSES[task])}")
    if task == "regression" and spec.label_noise > 0:
        raise ValueError(f"label_noise applies to classification, but {spec.dataset} is regression; use outlier_frac")
    if task == "classification" and spec.outlier_frac > 0:
        raise ValueError(f"outlier_frac applies to regression, but {spec.dataset} is classification; use label_noise")
    if spec.model == "cnn" and spec.dataset in DATASET_TASKS and spec.dataset not in IMAGE_DATASETS:
        raise ValueError(f"model cnn needs an image dataset ({', '.join(IMAGE_DATASETS)}), got {spec.dataset}")
    if spec.model == "rnn" and spec.activation in CHOICES["activation"] and spec.activation not in ("tanh", "relu"):
        raise ValueError(f"model rnn takes activation tanh or relu, got {spec.activation}")
    if spec.model in ("rnn", "lstm") and spec.batchnorm:
        raise ValueError(f"model {spec.model} has no batchnorm; set batchnorm = false")
    if spec.parameterization == "mup":
        if spec.model != "mlp" or spec.shape != "equal":
            raise ValueError(f"parameterization mup applies to model mlp with shape equal, got model {spec.model}, "
                             f"shape {spec.shape}; use parameterization sp")
        if spec.optimizer not in MUP_OPTIMIZERS:
            raise ValueError(f"parameterization mup follows the paper's Adam column: optimizer "
                             f"{' or '.join(MUP_OPTIMIZERS)}, got {spec.optimizer}")
        if spec.base_width <= 0:
            raise ValueError("parameterization mup needs base_width > 0, the width at which muP equals SP "
                             "(e.g. base_width = 64)")
    elif spec.base_width != 0:
        raise ValueError(f"base_width applies to parameterization mup, got base_width {spec.base_width} under "
                         f"{spec.parameterization}; leave it out or set parameterization = \"mup\"")
    if spec.batch_schedule == "constant" and spec.batch_factor != 1:
        raise ValueError(f"batch_factor applies to batch_schedule step, got batch_factor {spec.batch_factor} with "
                         f"a constant batch; set batch_schedule = \"step\" or leave batch_factor out")
    if spec.batch_schedule == "step":
        if spec.batch_factor < 2:
            raise ValueError(f"batch_schedule step needs batch_factor >= 2, got {spec.batch_factor}")
        if spec.schedule != "constant" or spec.kind != "train" or spec.measure_noise_scale:
            raise ValueError("batch_schedule step takes the place of an LR schedule: it needs schedule constant, "
                             "kind train and no measure_noise_scale; set schedule = \"constant\"")
    if not spec.range_lr_min < spec.range_lr_max:
        raise ValueError(f"range_lr_min must be < range_lr_max, got {spec.range_lr_min} and {spec.range_lr_max}")


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
    "kind": ("train", "range_test"),
    "dataset": tuple(d.name for d in DATASETS),
    "model": MODELS,
    "shape": ("equal", "pyramid"),
    "activation": ("logistic", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu", "rrelu", "prelu"),
    "init": ("he", "lecun", "glorot"),
    "init_dist": ("normal", "uniform"),
    "optimizer": ("sgd", "adam", "adamw", "nadam", "rmsprop", "adamax"),
    "schedule": ("constant", "step", "exponential", "plateau", "onecycle", "cosine"),
    "clip": ("none", "norm", "value"),
    "loss": ("auto", "ce", "mse", "mae", "huber"),
    "dropout_position": ("after_act", "before_bn"),
    "dropout_kind": ("standard", "alpha"),
    "parameterization": ("sp", "mup"),
    "batch_schedule": ("constant", "step"),
}
#: Optimizers the muP rules are implemented for (the paper's Adam column; AdamW as microsoft/mup's MuAdamW).
MUP_OPTIMIZERS = ("adam", "adamw")

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
    "seq_len": (2, None, True, False),
    "label_noise": (0, 1, True, False),
    "outlier_frac": (0, 1, True, False),
    "range_lr_min": (0, None, False, False),
    "range_lr_max": (0, None, False, False),
    "range_steps": (2, None, True, False),
    "base_width": (0, None, True, False),
    "batch_factor": (1, None, True, False),
}


_SPEC_FIELDS = dataclasses.fields(TrialSpec)


@dataclass
class TrialRecord:
    """The outcome of one trial. Plain data: JSON in the store, a row in the frame.

    ``curve`` holds one dict per evaluation: step, examples, epoch, lr,
    train_loss_ema (smoothed minibatch loss), grad_ratio (first / last weight
    layer's gradient norm on the step just taken; absent at step 0), elapsed_s,
    and per split (train = a fixed probe of training examples, with the labels or
    targets trained on; val; test): ``{split}_loss`` (the training loss function),
    and ``{split}_acc`` for classification, ``{split}_mse`` and ``{split}_r2`` for
    regression.
    ``metrics`` holds the reported values: after restore-best when early
    stopping restored a checkpoint, else at the end; plus ``grad_ratio_init``,
    ``forward_latency_s`` (when measured) and the range test's ``range_*``. A
    diverged trial reports no final training metrics (they are absent, never
    zero or filled in); a range-test trial keeps its ``range_*`` metrics, which
    were measured before the training that diverged.
    ``grad_norms_init`` is measured on the first batch before the first update
    (kept for a diverged trial too); ``range_curve`` is the range test's sweep.
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
    time_per_step_s: float | None = None  # training steps only: evaluation and measurements excluded
    examples_per_s: float | None = None
    wall_s: float = 0.0
    device: str = "cpu"
    host: str = ""
    node_id: str = ""  # the Ray node that trained it (empty: in-process); not part of the trial id
    attempts: int = 1
    error: str | None = None
    grad_norms_init: list[float] = field(default_factory=list)  # per weight layer, hidden layers then the head
    range_curve: list[dict[str, float]] = field(default_factory=list)  # kind = range_test: {lr, loss, smoothed}
    engine: str = ""  # what trained it: "single" or "packed-<family>" (train/); "" in records from before it was kept
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
