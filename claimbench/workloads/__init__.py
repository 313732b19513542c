"""Workloads: where trials' models, data and (optionally) training loops come from.

``spec.py`` is the contract; ``registry.py`` the one table of built-in datasets and models and the
entry-point discovery of users' workloads; ``builtin.py`` registers claimbench's own; ``data.py`` and
``models.py`` implement the built-ins. Names from data.py and models.py load on first use (they need
torch), so that the registry and the contract import without it.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "BUILDERS": "data", "DataCache": "data", "Dataset": "data", "build_dataset": "data", "corrupt": "data",
    "data_dir": "data",
    "ACTIVATIONS": "models", "INITS": "models", "INIT_DISTS": "models", "MODELS": "models", "build_model": "models",
    "dataset_shape": "models", "layer_widths": "models", "param_count": "models", "weight_layers": "models",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"claimbench.workloads.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'claimbench.workloads' has no attribute {name!r}")
