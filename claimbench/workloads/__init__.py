"""Workloads: datasets and models, registered by name (names listed in trial.CHOICES)."""

from claimbench.workloads.data import BUILDERS, DataCache, Dataset, build_dataset, corrupt, data_dir
from claimbench.workloads.models import (ACTIVATIONS, INIT_DISTS, INITS, MODELS, build_model, dataset_shape,
                                         layer_widths, param_count, weight_layers)

__all__ = ["ACTIVATIONS", "BUILDERS", "DataCache", "Dataset", "INITS", "INIT_DISTS", "MODELS", "build_dataset",
           "build_model", "corrupt", "data_dir", "dataset_shape", "layer_widths", "param_count", "weight_layers"]
