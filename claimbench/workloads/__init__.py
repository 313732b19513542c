"""Workloads: where trials' models, data and (optionally) training loops come from.

- ``spec.py``: the contract a workload package writes to;
- ``registry.py``: the installed workloads (entry points) and their code fingerprints;
- ``settings.py``: the built-in workload's parameters, which every trial's spec carries as fields;
- ``builtin/``: claimbench's own workload, registered through the same entry point: its datasets
  (``builtin/datasets``, one module each), model families (``builtin/models``, one module each), the
  torch blocks they share (``layers.py``), and what they measure without torch (``shapes.py``);
- ``data.py``: data on a device, built once per worker (torch).
"""
