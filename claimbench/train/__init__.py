"""Training: what a trial means and the engines that move tensors.

- ``policy/``: THE trial policy (budget, divergence, target, best, early stopping, the range test, the
  record), written once for every engine;
- ``single``: the single-trial engine (one ``nn.Module``, any model, users' workloads too): ``train_trial``;
- ``packed/``: the packed engine (K built-in trials of one shape on stacked tensors): ``train_jointly``;
- ``packing``: which trials train together, on which packed engine, and how many at a time (torch-free,
  for the scheduler);
- ``pack``: ``train_pack``, what a worker runs: each trial of a pack on the engine that trains it;
- ``metrics``: losses and evaluation; ``optim``: optimizers, schedules and clipping of the single engine.

Nothing is imported here, so that ``packing`` imports without torch.
"""
