"""The packed engine: K trials of the same shape trained jointly, one batched kernel per layer for all K.

Modules: ``plan`` turns a model into a program of ops over one flat parameter vector per trial;
``forward`` runs that program for K trials at once (``StackedModel``); ``optimizers`` updates the
stacked parameters (``StackedOptimizer``) and clips their gradients; ``engine`` is the policy's
Engine over them (``PackedEngine``), with its entry point ``train_jointly``.

Small-batch trials are bound by per-step overhead (Python, dispatch, kernel launches), not by
arithmetic; training K models with one kernel per layer, one loss, one backward and one optimizer
update on stacked tensors pays that overhead once per step instead of K times. What a trial means
(budget, divergence, target, best, early stopping, the range test, the record) is ``policy``'s, as
for the single-trial engine; this engine only moves tensors.

Families (``train.packing.packable`` decides what packs; a trial it refuses, or a pack of one, is
trained by ``train_trial`` on the single-trial engine):

- **mlp**: each Linear is one ``baddbmm`` over (K, B, F) activations, with its weights held (in, out)
  (``plan``), so the matmul and its weight gradient need no transposed copy.
- **cnn**: the HFTA trick (Wang et al., MLSys 2021): activations are laid out as (B, K*C, H, W) and
  each 3x3 convolution is one ``conv2d(..., groups=K)`` over the K models' stacked filters (at
  evaluation, where every model sees the same images, the first one is a plain convolution with all
  K*C filters). BatchNorm2d, ReLU-like activations and max-pooling act per channel, so per model;
  global average pooling then turns the layout back into (K, B, C) for each model's head.
  Activations and filters are kept channels-last (NHWC in memory), where the CPU's (oneDNN's) grouped
  convolution and max-pooling are faster; the values are the same, summed in another order.
- **rnn / lstm**: each layer's input projections for all steps are one ``baddbmm``; the recurrence is
  one ``baddbmm`` per time step over the K models' stacked hidden weights (LSTM gates i, f, g, o as
  ``nn.LSTM``), the head reads the last step.

What a pack shares and what each trial keeps (``train.packing.pack_key`` forms packs):

- shared: the dataset, the architecture (model, depth, widths, activation, BatchNorm, dropout kind
  and position), the loss, the optimizer kind, the clipping kind, the batch size and the budget (so
  every trial has the same steps and evaluation points);
- per trial: initial weights (each model is built under its own seed exactly as ``train_trial``
  builds it, then stacked), data order (``policy.plan.DataOrder``), dropout rate and masks and RReLU's
  random slopes (its own generator, started where ``train_trial``'s global RNG stands after the
  model is built, drawing masks by ``layers.dropout_noise`` as the trial's own ``Dropout`` and
  ``AlphaDropout`` modules do, and RReLU's slopes as ``nn.RReLU`` does on the CPU),
  PReLU's learned slope, learning rate and schedule (warmup, step, exponential, cosine, onecycle,
  plateau on its own validation loss), momentum, Nesterov, weight decay, betas, eps, clipping
  threshold, BatchNorm statistics, divergence factor, target, early-stopping patience and
  restore-best; for ``kind = "range_test"`` its own LR ramp and stopping point.

Parameters live in one ``(K, P)`` tensor: each trial's parameters, flattened in the model's own
order. The optimizers (SGD with momentum and Nesterov, Adam, AdamW, NAdam, RMSprop, Adamax) are
written on it with per-trial hyperparameters as ``(K, 1)`` columns, following the arithmetic of
torch's foreach implementations. Nothing reduces across K: each trial's loss, gradient norm,
clipping factor and update is its own, so a NaN in one trial stays in its row.

Same results as ``train_trial``, to float tolerance: batched matmuls, grouped convolutions and
per-row reductions sum in a different order than the unpacked kernels, so values differ by rounding
that grows slowly over steps (tests/train/equivalence.py states the tolerance). Random draws (dropout and
AlphaDropout masks, RReLU slopes) come from each trial's own generator in ``train_trial``'s order
and the same way, so on the CPU they match too; on CUDA each trial's generator is seeded from its seed
rather than copied from the global one, and ``nn.RReLU`` uses a kernel that consumes the RNG differently,
so masks and slopes there match in distribution only.

Timing: ``time_per_step_s`` is the trial's share of the pack's step time (policy). ``measure_latency``
times the trial's own ``nn.Module`` rebuilt from its weights (its best checkpoint with restore-best).
"""
