"""The contract between stages: a trial's spec (what to run) and its TrialRecord (what happened).

A spec is the frozen, fully resolved configuration of one training run. Its fields are the generic
ones declared here, which every workload shares (the seed, the budget, the optimizer and its LR, the
trial policy's settings, ...), and the settings of the built-in workload, which every spec carries
too and any workload may read (workloads/settings.py); ``spec_class`` makes the one frozen dataclass
of both, ``TrialSpec`` (workloads/builtin). Each field is declared once, as a ``Field``: its type,
default, the rule a suite's value must keep, its suite section, the size limit that bounds it. The
suite loader, the JSON schema, the workload contract and the packing rules derive their lists from
these declarations.

A spec's ``trial_id`` is a hash of its canonical JSON, which holds ``code``: the fingerprint of the
workload code that trains it (workloads/registry.py: the package, its version and a hash of its
sources; for the built-ins a hash of claimbench's train/ and workloads/), so that editing a model or a
training loop yields new ids and the next run retrains; and the same id always means the same result,
and a changed suite reruns only changed cells. A dataset made of bytes that ship with the installation
(the pinned torch's sources) adds their hash, ``data_hash``. ``config_id`` is the same hash without the code: what a
baseline's trial matrix is (check/), so that a code change is compared against the baseline rather
than refused.

A ``TrialRecord`` is the outcome, as plain data. Divergence is an outcome with the step it happened at,
never an exception and never a filled-in value. ``RECORD_COLUMNS``, ``METRICS`` and ``DERIVED`` name
what a record gives a trial frame (analysis/frames.py).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar, Sequence

#: The training semantics' revision (kept in every record; part of every trial id). 4: dropout masks by
#: ``uniform_() < 1 - p`` in both engines, packed Linear weights held (in, out), the test split evaluated only
#: where it is read (CHANGELOG).
TRAINING_REVISION = 4

#: Version of the on-disk TrialRecord layout (see store/).
RECORD_SCHEMA = 1

#: How text (exports, reports) shows a setting that its trial's workload does not read (``TrialRecord.settings``).
NOT_APPLICABLE = "n/a"

#: The name of claimbench's own workload (its built-in datasets and models): every spec's default workload.
BUILTIN = "claimbench"

#: Losses each task accepts.
TASK_LOSSES = {"classification": ("auto", "ce", "mse"), "regression": ("auto", "mse", "mae", "huber"),
               "lm": ("auto", "ce")}


class TrialStatus(str, Enum):
    COMPLETED = "completed"
    DIVERGED = "diverged"
    FAILED = "failed"
    HALTED = "halted"  # left its pack at a halving rung (loop.py): its curve runs to the rung

    def is_final(self, accept_halted: bool = True) -> bool:
        """Completed and diverged trials are results; a failed one is retried on rerun. A halted one is final
        for an adaptive run and pending for an exhaustive one (``accept_halted=False``), which trains it whole."""
        if self is TrialStatus.HALTED:
            return accept_halted
        return self is not TrialStatus.FAILED


# ---------------------------------------------------------------- fields

@dataclass(frozen=True)
class Field:
    """One field of every trial's spec, declared once.

    ``section``: the suite table that sets it (``workload``, ``train``, ``budget``), or "" for the fields a
    suite never sets (the seed comes from [suite] seeds; the workload, its parameters and its code from
    [workload] and the registry). ``low``/``high`` bound a number (each inclusive unless ``low_inclusive``
    / ``high_inclusive`` is false); ``choices`` lists the strings it accepts (empty: any, or a table's
    names, as the built-in datasets' for ``dataset``). ``limit`` is the limits.py key that bounds
    its value. ``group`` says which workloads read it (workloads/spec.py): ``loop`` (claimbench's training
    loop: a training function reads it when it lists it in ``uses``), ``policy`` (the trial policy: every
    workload), ``uses`` (a built-in setting another workload reads when it lists it in ``uses``), or "".
    ``id_omits_default``: a field added after trial ids were first published, left out of the id at its
    default, so that the ids of the specs that do not use it, and their results, stayed valid.
    ``packed``: the packed engine trains any value of it (else only its default packs: train/).
    ``pack_shape``: trials that differ in it need other data or another model shape, so never share a pack.
    """

    name: str
    type: type
    default: Any
    section: str = "train"
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True
    choices: tuple[str, ...] = ()
    limit: str = ""
    group: str = ""
    id_omits_default: bool = False
    packed: bool = True
    pack_shape: bool = False
    help: str = ""

    def range(self) -> tuple[float | None, float | None, bool, bool] | None:
        """(low, high, low_inclusive, high_inclusive), or None when it has no bound (an absent bound is
        neither inclusive nor exclusive: False)."""
        if self.low is None and self.high is None:
            return None
        return (self.low, self.high, self.low is not None and self.low_inclusive,
                self.high is not None and self.high_inclusive)


#: The generic fields before the workload's settings (the order of a spec's fields is the order of a
#: trial frame's columns and of the selection's last tie-break, analysis/selection.py).
HEAD: tuple[Field, ...] = (
    Field("seed", int, 0, section=""),
    Field("kind", str, "train", choices=("train", "range_test"),
          help="train | range_test: first an LR range test (range_lr_min to range_lr_max over range_steps steps), "
               "then the budget with the LR it suggests (lr is ignored; train/single.py)"),
    Field("workload", str, BUILTIN, section="", id_omits_default=True, packed=False,
          help="the registered workload (workloads/registry.py); claimbench: the built-in datasets and models"),
    Field("workload_params", str, "", section="", id_omits_default=True, packed=False,
          help="another workload's declared parameters, as canonical JSON (\"\" for the built-ins)"),
    Field("code", str, "", section="", id_omits_default=True,
          help="the workload's code fingerprint (registry.fingerprint), set by suite.expand; part of the id"),
    Field("data_hash", str, "", section="", id_omits_default=True, packed=False,
          help="the hash of the bytes a built-in dataset that ships with the installation is made of "
               "(datasets.content_hash), set by suite.expand; part of the id: other bytes, other trials"),
)

#: The generic fields after the workload's settings.
TAIL: tuple[Field, ...] = (
    # optimization
    Field("loss", str, "auto", group="loop", choices=("auto", "ce", "mse", "mae", "huber"),
          help="auto: ce for classification, mse for regression; mse for classification: raw outputs vs one-hot "
               "targets; mae, huber (delta 1): regression (targets standardized)"),
    Field("optimizer", str, "sgd", group="loop", choices=("sgd", "adam", "adamw", "nadam", "rmsprop", "adamax", "muon"),
          help="muon: torch.optim.Muon (momentum, nesterov; LR matched to AdamW's RMS) on a model's hidden "
               "matrices, AdamW (beta1, beta2, eps) on the rest, one lr and weight_decay (train/optim.py)"),
    Field("lr", float, 0.1, group="loop", low=0, low_inclusive=False),
    Field("momentum", float, 0.0, group="loop", low=0, high=1, high_inclusive=False),
    Field("nesterov", bool, False, group="loop"),
    Field("weight_decay", float, 0.0, group="loop", low=0),
    Field("beta1", float, 0.9, group="loop", low=0, high=1, high_inclusive=False),
    Field("beta2", float, 0.999, group="loop", low=0, high=1, high_inclusive=False),
    Field("eps", float, 1e-8, group="loop", low=0, low_inclusive=False),
    Field("schedule", str, "constant", group="loop",
          choices=("constant", "step", "exponential", "plateau", "onecycle", "cosine")),
    Field("warmup_steps", int, 0, group="loop", low=0),
    Field("schedule_gamma", float, 0.1, group="loop", low=0, high=1, low_inclusive=False,
          help="step: factor per milestone; exponential: final factor"),
    Field("plateau_patience", int, 2, group="loop", low=0,
          help="evaluations without val improvement before a plateau cut"),
    Field("clip", str, "none", group="loop", choices=("none", "norm", "value")),
    Field("clip_threshold", float, 1.0, group="loop", low=0, low_inclusive=False),
    Field("batch_size", int, 32, group="loop", low=0, low_inclusive=False),
    Field("batch_schedule", str, "constant", group="loop", choices=("constant", "step"), id_omits_default=True,
          help="constant | step: batch x batch_factor at 50% and 75% of the budget's examples, where "
               "schedule = \"step\" cuts the LR (Smith et al. 2018; policy.py)"),
    Field("batch_factor", int, 1, group="loop", low=1, id_omits_default=True,
          help="batch_schedule = \"step\": the factor k per milestone (>= 2)"),
    # budget and control
    Field("epochs", int, 0, section="budget", low=0, limit="epochs"),
    Field("steps", int, 0, section="budget", low=0, limit="steps"),
    Field("evals", int, 20, group="policy", low=1, limit="evals",
          help="evaluations spread evenly over the budget (plus one at step 0)"),
    Field("patience", int, 0, group="policy", low=0, help="early stopping, in evaluations; 0 disables it"),
    Field("restore_best", bool, True, group="policy"),
    Field("divergence_factor", float, 10.0, group="policy", low=1, low_inclusive=False,
          help="diverged if smoothed train loss > factor x initial val loss"),
    Field("target", float, 0.0, group="policy", low=0,
          help="val_acc (classification, at most 1) or val_r2 (regression, at most 1) reached at or above it, or "
               "val_bpb (lm) reached at or below it: the target for steps-, examples- and tokens-to-target; "
               "0 disables it"),
    # measurements
    Field("measure_latency", bool, False,
          help="after training: median eval-mode forward time of 256 validation inputs"),
    Field("range_lr_min", float, 1e-6, low=0, low_inclusive=False, help="kind = range_test: the LR sweep's start"),
    Field("range_lr_max", float, 10.0, low=0, low_inclusive=False, help="its end"),
    Field("range_steps", int, 200, low=2, limit="range_steps", help="and its length in steps (one minibatch each)"),
    Field("measure_noise_scale", bool, False, id_omits_default=True, packed=False,
          help="at step 0 and each evaluation: the gradient noise scale B_simple (McCandlish et al. 2018) from 4 "
               "extra batches of batch_size (train/single.py)"),
    Field("exclusive", bool, False, id_omits_default=True, packed=False,
          help="a timing trial: trained alone (never packed), back to back with its comparison arm, on a worker "
               "with nothing else training (the packing rules' timing_blocks)"),
)


class Spec:
    """What every trial's spec has, whatever fields its class holds (``spec_class`` makes the class).

    Exactly one of ``epochs`` and ``steps`` is set: the budget. ``__post_init__`` also refuses combinations
    that cannot run: the generic ones here, the workload's in ``check_workload``; so a suite with one fails
    when it is loaded, not trial by trial.
    """

    #: Every field of the class, by name, in order (set by ``spec_class``).
    FIELDS: ClassVar[dict[str, Field]] = {}

    def __post_init__(self) -> None:
        if (self.epochs > 0) == (self.steps > 0):
            raise ValueError(f"exactly one of epochs and steps must be positive, got epochs={self.epochs}, steps={self.steps}")
        self.check_workload()
        if self.batch_schedule == "constant" and self.batch_factor != 1:
            raise ValueError(f"batch_factor applies to batch_schedule step, got batch_factor {self.batch_factor} with "
                             f"a constant batch; set batch_schedule = \"step\" or leave batch_factor out")
        if self.batch_schedule == "step":
            if self.batch_factor < 2:
                raise ValueError(f"batch_schedule step needs batch_factor >= 2, got {self.batch_factor}")
            if self.schedule not in ("constant", "step") or self.kind != "train" or self.measure_noise_scale:
                raise ValueError("batch_schedule step grows the batch where schedule step would cut the LR: it "
                                 "needs schedule constant (the batch instead of the cut) or step (both at once), kind "
                                 "train and no measure_noise_scale; set schedule = \"constant\"")
        if not self.range_lr_min < self.range_lr_max:
            raise ValueError(f"range_lr_min must be < range_lr_max, got {self.range_lr_min} and {self.range_lr_max}")

    def check_workload(self) -> None:
        """Raise ValueError for a combination of the workload's settings that cannot run (none here)."""

    def to_dict(self) -> dict[str, Any]:
        # every field is an int, float, str or bool: a shallow dict is dataclasses.asdict's result, without
        # its recursive deep copy (which made expanding a big suite's trial ids take seconds)
        return {name: getattr(self, name) for name in self.FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Spec":
        return cls(**{k: v for k, v in data.items() if k in cls.FIELDS})

    def canonical_json(self) -> str:
        """The spec as sorted compact JSON, without the fields that ``id_omits_default`` at their default."""
        d = {k: v for k, v in self.to_dict().items()
             if not (self.FIELDS[k].id_omits_default and v == self.FIELDS[k].default)}
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

    @property
    def task(self) -> str:
        """"classification" or "regression", as far as the spec's own fields tell ("" here: unknown)."""
        return ""

    @property
    def loss_name(self) -> str:
        """The loss actually used: ``loss``, with auto resolved (ce for classification, mse for regression)."""
        if self.loss != "auto":
            return self.loss
        return "mse" if self.task == "regression" else "ce"


def spec_class(settings: Sequence[Field], base: type[Spec] = Spec, name: str = "TrialSpec",
               module: str = __name__) -> type[Spec]:
    """The frozen dataclass of a spec: the generic fields, with ``settings`` (a workload's) after ``HEAD``.

    ``base`` (a subclass of ``Spec``) gives it the workload's methods (``check_workload``, ``task``); the
    class is named ``name`` in ``module``, where it must be bound to that name (so that it pickles)."""
    fields = (*HEAD, *settings, *TAIL)
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise ValueError(f"spec fields repeat: {sorted({n for n in names if names.count(n) > 1})}")
    cls = dataclasses.make_dataclass(name, [(f.name, f.type, field(default=f.default)) for f in fields],
                                     bases=(base,), frozen=True)
    cls.FIELDS = {f.name: f for f in fields}
    cls.__module__ = module
    return cls


def level_label(value: Any) -> Any:
    """The label of an axis level: a table level ``{epochs = 10}`` is ``"epochs=10"``; a scalar is itself.

    Frames, strata and reports all use this one spelling, so that a stratum found in a
    frame column can be matched back to its axis level.
    """
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return value


# ---------------------------------------------------------------- records

@dataclass
class TrialRecord:
    """The outcome of one trial. Plain data: JSON in the store, a row in the frame.

    ``curve`` holds one dict per evaluation: step, examples, epoch, lr,
    train_loss_ema (smoothed minibatch loss), grad_ratio (first / last weight
    layer's gradient norm on the step just taken; absent at step 0), elapsed_s,
    and per split (train = a fixed probe of training examples, with the labels or
    targets trained on; val; test): ``{split}_loss`` (the training loss function),
    and ``{split}_acc`` for classification, ``{split}_mse`` and ``{split}_r2`` for
    regression, ``{split}_acc`` (next-byte accuracy) and ``{split}_bpb`` (bits per byte) for lm. The test split is evaluated only where something reads it (absent
    elsewhere, never filled in): at step 0, at each evaluation where a validation
    metric reaches a new best (the checkpoints restore-best and the best-checkpoint
    variant can take), and at the trial's last evaluation.
    ``metrics`` holds the reported values: after restore-best when early
    stopping restored a checkpoint, else at the end; plus ``grad_ratio_init``,
    ``forward_latency_s`` (when measured) and the range test's ``range_*``. A
    diverged trial reports no final training metrics (they are absent, never
    zero or filled in); a range-test trial keeps its ``range_*`` metrics, which
    were measured before the training that diverged.
    ``grad_norms_init`` is measured on the first batch before the first update
    (kept for a diverged trial too); ``range_curve`` is the range test's sweep.
    A training function's curve holds what it reports (workloads/spec.py ``Context``): ``lr`` and
    ``epoch`` only when it reports them, and every other number it reports.
    ``not_applicable`` names the spec's built-in settings that its workload does not read
    (``Workload.not_applicable``; the runner's ledger fills it in): the spec keeps their defaults, since
    the trial id hashes the whole spec, and ``settings`` shows them as not applicable. It is left out of
    the stored record when empty (the built-ins' records).
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
    tokens_done: int | None = None  # task lm: examples_done x seq_len (None for other tasks)
    tokens_to_target: int | None = None  # task lm: examples_to_target x seq_len
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
    not_applicable: list[str] = field(default_factory=list)  # spec fields its workload does not read
    schema: int = RECORD_SCHEMA
    training_revision: int = TRAINING_REVISION

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["status"] = self.status.value
        if not self.not_applicable:
            del d["not_applicable"]
        return d

    def settings(self, na: Any = None) -> dict[str, Any]:
        """The spec as records are shown (frames: ``na`` None; text, exports: ``NOT_APPLICABLE``): each field
        its workload does not read is ``na``, never the default the spec holds for it."""
        return {k: na if k in self.not_applicable else v for k, v in self.spec.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrialRecord":
        data = dict(data)
        data["status"] = TrialStatus(data["status"])
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def failed(cls, spec: Spec, error: str, attempts: int = 1, host: str = "") -> "TrialRecord":
        return cls(trial_id=spec.trial_id, spec=spec.to_dict(), status=TrialStatus.FAILED,
                   error=error, attempts=attempts, host=host)


#: Metrics whose lowest value is best, and whose highest is (``analysis.selection.direction``; the trial
#: policy's running best of each validation metric, ``train.policy.state``).
LOWER_IS_BETTER = ("_loss", "_mse", "latency_s", "time_per_step_s", "wall_s", "steps_to_target",
                   "examples_to_target", "tokens_to_target", "steps_done", "examples_done", "tokens_done", "gap",
                   "_bpb")
HIGHER_IS_BETTER = ("_acc", "_r2", "examples_per_s")

#: Metric columns of a trial frame: NaN where a trial has none (a diverged trial; acc for regression; r2/mse
#: for classification).
METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc",
           "train_mse", "train_r2", "val_mse", "val_r2", "test_mse", "test_r2",
           "forward_latency_s", "grad_ratio_init", "range_suggested_lr", "range_min_loss_lr", "range_stop_lr",
           "b_simple", "b_simple_at_target", "train_bpb", "val_bpb", "test_bpb")
#: Columns derived from the metrics: ``gap`` = train_acc - test_acc (the generalization gap; train_acc is
#: measured on the labels trained on, so with label noise it counts fitting the noise).
DERIVED = ("gap",)
#: A record's outcome columns in a trial frame.
RECORD_COLUMNS = ("status", "diverged_step", "divergence_reason", "steps_done", "examples_done",
                  "steps_to_target", "examples_to_target", "tokens_done", "tokens_to_target", "best_step", "stopped_early",
                  "time_per_step_s", "examples_per_s", "wall_s", "device", "host", "attempts", "error")
