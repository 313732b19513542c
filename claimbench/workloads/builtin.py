"""claimbench's own workload: the built-in datasets (registry.DATASETS, built by data.py) and models
(models.py), registered under the name ``claimbench`` through the same entry point as users' packages
(pyproject.toml). Every spec field is its parameter; the packed engine (train/packed.py) trains
them too."""

from __future__ import annotations

from claimbench.workloads.registry import BUILTIN
from claimbench.workloads.spec import MODEL_FIELDS, Workload


def _data(cfg):
    from claimbench.workloads.data import build_dataset

    s = cfg.spec
    return build_dataset(s.dataset, s.n_samples, s.data_seed, seq_len=s.seq_len, label_noise=s.label_noise,
                         outlier_frac=s.outlier_frac)


def _model(cfg, data):
    from claimbench.workloads.models import build_model

    return build_model(cfg.spec, data.input_shape, data.n_outputs)


WORKLOAD = Workload(name=BUILTIN, task="", uses=("dataset", "model", *MODEL_FIELDS), builtin=True,
                    description="claimbench's built-in datasets (mnist1d, digits, ...) and models (mlp, cnn, rnn, lstm)",
                    data=_data, model=_model)
