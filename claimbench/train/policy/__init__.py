"""THE trial policy: what a trial means, written once for every engine.

An engine (``engine.Engine``: ``single.SingleEngine`` for one ``nn.Module``, ``packed.engine.PackedEngine``
for K stacked models) only moves tensors: forward, backward, clip and update, evaluate. This package owns
everything else, per trial:

- ``plan``: what every trial of a pack shares (the budget, its evaluation points, the batch-size schedule)
  and each trial's own data order;
- ``state``: one trial while it trains (divergence, target, best, early stopping, measurements, its
  share of the time) and the record it becomes;
- ``engine``: what the policy asks of an engine;
- ``driver``: ``run`` trains K trials on one engine, step by step, in the order its docstring gives;
- ``range_test``: the LR range test that ``kind = "range_test"`` runs before training;
- ``function``: a workload's own training function under the same policy (``Context``).
"""
