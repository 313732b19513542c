"""claimbench's own workload: the built-in datasets (``datasets/``, one module each) and model families
(``models/``, one module each), registered under the name ``claimbench`` through the same entry point as
users' packages (pyproject.toml). Its parameters are the settings of settings.py, which every trial's
spec carries as fields: ``TrialSpec`` is trial.py's generic spec with them. The packed engine (train/)
trains the families that name it.

- ``TrialSpec``: the spec of every trial; ``__post_init__`` refuses a combination that cannot run, with
  the rules of the datasets (a task's losses, label noise or outliers) and of the families (each family's
  ``check``, and muP's rules for the families that implement it).
- ``SPEC_FIELDS``, ``CHOICES``, ``RANGES``: each spec field's type, accepted strings and numeric range,
  for the suite loader and the JSON schema; derived from the fields' declarations (trial.py, settings.py)
  and, for ``dataset`` and ``model``, from the tables of datasets and families.
- ``WORKLOAD``: the registered workload; its ``check`` is the size check (shapes.py).
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from claimbench.trial import BUILTIN, TASK_LOSSES, Field, Spec, spec_class
from claimbench.workloads.builtin import datasets, models, shapes
from claimbench.workloads.settings import SETTINGS
from claimbench.workloads.spec import MODEL_FIELDS, Workload

#: Optimizers the muP rules are implemented for (the paper's Adam column; AdamW as microsoft/mup's MuAdamW).
MUP_OPTIMIZERS = ("adam", "adamw")


class BuiltinSpec(Spec):
    """The rules the built-in datasets and model families put on a spec (``TrialSpec`` has them)."""

    @property
    def task(self) -> str:
        """"classification", "regression" or "lm": the dataset's task ("" for another workload's spec)."""
        found = datasets.find(self.dataset)
        return found.task if found is not None else ""

    def shape_key(self) -> tuple:
        """Trials with the same key share a dataset and a model shape: they can be packed."""
        return tuple(getattr(self, name) for name, f in self.FIELDS.items() if f.pack_shape)

    def check_workload(self) -> None:
        task = self.task
        if task and self.loss in self.FIELDS["loss"].choices and self.loss not in TASK_LOSSES[task]:
            raise ValueError(f"loss {self.loss!r} does not apply to {self.dataset} ({task}); "
                             f"use one of: {', '.join(TASK_LOSSES[task])}")
        if task == "regression" and self.label_noise > 0:
            raise ValueError(f"label_noise applies to classification, but {self.dataset} is regression; use outlier_frac")
        if task == "classification" and self.outlier_frac > 0:
            raise ValueError(f"outlier_frac applies to regression, but {self.dataset} is classification; use label_noise")
        if task == "lm" and (self.label_noise > 0 or self.outlier_frac > 0):
            raise ValueError(f"label_noise and outlier_frac do not apply to {self.dataset} (lm: next-byte prediction); "
                             f"leave them at 0")
        if task and task != "lm" and self.target > 1:
            raise ValueError(f"target is a val_acc or val_r2 at most 1 on {self.dataset} ({task}), got {self.target}; "
                             f"a target above 1 is a val_bpb, for lm datasets")
        family = models.find(self.model)
        if family is not None and task and (task == "lm") != family.lm:
            which = " or ".join(f.name for f in models.table().values() if f.lm == (task == "lm"))
            raise ValueError(f"model {self.model} does not train {self.dataset} ({task}); use model {which}")
        if self.optimizer == "muon":
            if family is None or not family.muon:
                which = " or ".join(f.name for f in models.table().values() if f.muon)
                raise ValueError(f"optimizer muon applies to model {which} (Muon on its hidden matrices), got "
                                 f"model {self.model or self.workload}; use adamw")
            if self.momentum <= 0:
                raise ValueError("optimizer muon needs momentum > 0 (Muon's momentum; its paper uses momentum = 0.95, "
                                 "nesterov = true)")
        if family is not None and family.check is not None:
            family.check(self, datasets.find(self.dataset))
        if self.parameterization == "mup":
            if family is None or not family.mup or self.shape != "equal":
                implemented = " or ".join(f.name for f in models.table().values() if f.mup)
                raise ValueError(f"parameterization mup applies to model {implemented} with shape equal, got model "
                                 f"{self.model}, shape {self.shape}; use parameterization sp")
            if self.optimizer not in MUP_OPTIMIZERS:
                raise ValueError(f"parameterization mup follows the paper's Adam column: optimizer "
                                 f"{' or '.join(MUP_OPTIMIZERS)}, got {self.optimizer}")
            if self.base_width <= 0:
                raise ValueError("parameterization mup needs base_width > 0, the width at which muP equals SP "
                                 "(e.g. base_width = 64)")
        elif self.base_width != 0:
            raise ValueError(f"base_width applies to parameterization mup, got base_width {self.base_width} under "
                             f"{self.parameterization}; leave it out or set parameterization = \"mup\"")


#: The spec of every trial: trial.py's generic fields and the built-in settings (settings.py).
TrialSpec = spec_class(SETTINGS, base=BuiltinSpec, module=__name__)

#: Every field of a spec by name, in order.
FIELDS: dict[str, Field] = TrialSpec.FIELDS
#: Parameter names and their Python types, for the suite loader and the JSON schema.
SPEC_FIELDS: dict[str, type] = {name: f.type for name, f in FIELDS.items()}
#: Numeric ranges: (low, high, low_inclusive, high_inclusive); None is unbounded.
RANGES: dict[str, tuple[float | None, float | None, bool, bool]] = {
    name: f.range() for name, f in FIELDS.items() if f.range() is not None}


class _Choices(Mapping[str, tuple[str, ...]]):
    """The strings each string field accepts: its declared choices; for ``dataset`` and ``model``, the
    names in the tables of datasets and families, read when asked (a registered one counts)."""

    LIVE = {"dataset": datasets.names, "model": models.names}

    def __getitem__(self, name: str) -> tuple[str, ...]:
        if name in self.LIVE:
            return self.LIVE[name]()
        if name in FIELDS and FIELDS[name].choices:
            return FIELDS[name].choices
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter([name for name, f in FIELDS.items() if name in self.LIVE or f.choices])

    def __len__(self) -> int:
        return sum(1 for _ in self)


#: The names each string parameter accepts; the loader validates against them without importing torch.
CHOICES: Mapping[str, tuple[str, ...]] = _Choices()


def _data(cfg: Any):
    from claimbench.workloads.data import build_dataset  # torch loads when data are built, not on import

    s = cfg.spec
    found = datasets.get(s.dataset)
    return build_dataset(s.dataset, s.n_samples, s.data_seed, label_noise=s.label_noise, outlier_frac=s.outlier_frac,
                         **{name: getattr(s, name) for name in found.settings})


def _model(cfg: Any, data: Any):
    return models.build_model(cfg.spec, data.input_shape, data.n_outputs)


WORKLOAD = Workload(name=BUILTIN, task="", uses=("dataset", "model", *MODEL_FIELDS), builtin=True, check=shapes.check_sizes, data=_data, model=_model,
                    description="claimbench's built-in datasets (mnist1d, digits, ...) and models (mlp, cnn, rnn, lstm)")
