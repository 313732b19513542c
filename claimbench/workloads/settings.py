"""The built-in workload's parameters: the settings of its datasets and models, declared once.

Unlike another workload's own parameters (``spec.Param``, kept in a spec's ``workload_params``), these
are fields of every trial's spec (``trial.spec_class`` puts them after the generic fields), so that the
built-ins' trial ids are their plain settings, and so that another workload can read the ones it lists
in ``uses`` (``group = "uses"``: its model's depth or width, its data's size). A suite sets them in
[workload]. ``dataset`` and ``model`` accept the names of the built-in datasets and model families
(workloads/builtin: one module each), which ``builtin.CHOICES`` lists.

This module sits beside the contract (spec.py checks a workload's names against ``FIELDS``) rather than
inside builtin/, whose package imports the contract.
"""

from __future__ import annotations

from typing import Any, Mapping

from claimbench.limits import LIMITS, LimitError, raise_text
from claimbench.trial import HEAD, TAIL, Field

SETTINGS: tuple[Field, ...] = (
    Field("dataset", str, "mnist1d", section="workload", pack_shape=True,
          help="a built-in dataset (workloads/builtin/datasets); \"\" for another workload (its own data)"),
    Field("n_samples", int, 0, section="workload", group="uses", low=0, limit="samples", pack_shape=True,
          help="0: the dataset's own default size; for image files, subsamples the training set"),
    Field("data_seed", int, 0, section="workload", pack_shape=True,
          help="fixes generation, the train/val/test split, label noise and outliers (every workload's data)"),
    Field("seq_len", int, 30, section="workload", group="uses", low=2, limit="seq_len", pack_shape=True,
          help="sequence length: the adding problem's steps; an lm dataset's window (the transformer's context)"),
    Field("label_noise", float, 0.0, section="workload", group="uses", low=0, high=1, high_inclusive=False,
          pack_shape=True, help="classification: this fraction of training labels set to a random other class"),
    Field("outlier_frac", float, 0.0, section="workload", group="uses", low=0, high=1, high_inclusive=False,
          pack_shape=True, help="regression: this fraction of training targets shifted by a large outlier"),
    Field("model", str, "mlp", section="workload", pack_shape=True,
          help="a built-in model family (workloads/builtin/models); \"\" for another workload (its own model)"),
    Field("depth", int, 2, section="workload", group="uses", low=1, limit="depth", pack_shape=True,
          help="hidden layers (mlp), conv blocks (cnn), recurrent layers (rnn, lstm), blocks (transformer)"),
    Field("width", int, 100, section="workload", group="uses", low=0, low_inclusive=False, limit="width",
          pack_shape=True, help="units, channels or hidden size of the first hidden layer; the transformer's model "
                               "width (d_model)"),
    Field("shape", str, "equal", section="workload", group="uses", choices=("equal", "pyramid"), pack_shape=True,
          help="equal | pyramid: each hidden layer half the previous one's width (min 4)"),
    Field("activation", str, "relu", section="workload", group="uses",
          choices=("logistic", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu", "rrelu", "prelu")),
    Field("init", str, "he", section="workload", group="uses", choices=("he", "lecun", "glorot")),
    Field("init_dist", str, "normal", section="workload", group="uses", choices=("normal", "uniform")),
    Field("batchnorm", bool, False, section="workload", group="uses"),
    Field("dropout", float, 0.0, section="workload", group="uses", low=0, high=1, high_inclusive=False),
    Field("dropout_position", str, "after_act", section="workload", group="uses", choices=("after_act", "before_bn"),
          help="after_act: Linear-BN-act-Dropout | before_bn: Linear-Dropout-BN-act"),
    Field("dropout_kind", str, "standard", section="workload", group="uses", choices=("standard", "alpha"),
          help="standard | alpha (AlphaDropout, for SELU)"),
    Field("parameterization", str, "sp", section="workload", group="uses", choices=("sp", "mup"),
          id_omits_default=True,
          help="sp | mup: muP (Yang et al. 2022, Table 8) for a model family that implements it, under Adam"),
    Field("base_width", int, 0, section="workload", group="uses", low=0, id_omits_default=True,
          help="mup: the width at which muP equals SP (width_mult = width / base_width); 0 under sp"),
    Field("heads", int, 4, section="workload", group="uses", low=1, id_omits_default=True, pack_shape=True,
          help="transformer: attention heads (width must divide by them)"),
    Field("positions", str, "learned", section="workload", group="uses", choices=("learned", "rope"),
          id_omits_default=True, pack_shape=True,
          help="transformer: learned absolute position embeddings | rope: rotary embeddings on queries and keys"),
)

#: Every field of a trial's spec, in order: the generic fields with these settings after trial.HEAD.
FIELDS: dict[str, Field] = {f.name: f for f in (*HEAD, *SETTINGS, *TAIL)}
#: The fields a size limit bounds, and its key in limits.py.
PARAM_LIMITS: dict[str, str] = {name: f.limit for name, f in FIELDS.items() if f.limit}


def check_param(key: str, value: Any, limits: Mapping[str, int], where: str) -> None:
    """Refuse a spec field's value above the size limit that bounds it (``Field.limit``); others pass."""
    lim = PARAM_LIMITS.get(key)
    if lim is not None and isinstance(value, int) and value > limits[lim]:
        raise LimitError(f"{key} = {value} is above the limit of {limits[lim]} ({LIMITS[lim].what})", where=where,
                         fix=raise_text(lim, value))
