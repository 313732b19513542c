"""tiny_resnet: a claimbench workload package, written the way a team would write its own.

- ``model.py``: a small ResNet (residual blocks with BatchNorm) for 1-channel images.
- ``data.py``: scikit-learn's 8x8 digits (no download), optionally upsampled to 16x16, split by a
  seed; a ``torch.utils.data.Dataset`` with random-shift augmentation for the team's own DataLoader.
- ``loop.py``: the team's own training loop (DataLoader, SGD), reporting to claimbench's ``ctx``.
- ``workloads.py``: the two workloads the package registers (pyproject.toml entry points):
  ``tiny_resnet.components`` (claimbench's engine trains the model on the data) and
  ``tiny_resnet.loop`` (the team's loop trains it).
"""
