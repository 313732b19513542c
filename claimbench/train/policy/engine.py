"""What the policy asks of an engine: the contract every engine (single, packed) implements."""

from __future__ import annotations

from typing import Callable, Protocol

import torch

from claimbench.workloads.builtin import TrialSpec


class Engine(Protocol):
    """What the policy asks of an engine holding K trials' models (rows 0..K-1, in the order given)."""

    name: str  # recorded in each TrialRecord: "single", "packed-mlp", "packed-cnn", ...

    def losses(self, idx: torch.Tensor) -> torch.Tensor:
        """Train-mode forward of row k on training examples ``idx[k]`` (idx: (K, B)): the (K,) mean losses."""

    def backward(self, losses: torch.Tensor, rows: list[int]) -> None:
        """Gradients of the rows in ``rows`` only; then every other row is dropped (``keep(rows)``)."""

    def grad_norms(self) -> list[list[float]]:
        """Per row, the L2 norm of each weight layer's gradient (models.weight_layers' order)."""

    def update(self, lrs: list[float]) -> None:
        """Clip each row's gradient (its spec's clipping), then its optimizer step with LR ``lrs[k]``."""

    def evaluate(self, splits: tuple[str, ...], rows: list[int] | None = None) -> list[dict[str, float]]:
        """``metrics.evaluate``'s metrics on ``splits`` for each row of ``rows`` (every row when None), in
        that order (one batched pass for those rows); leaves train mode on."""

    def keep(self, rows: list[int]) -> None:
        """Drop every row not in ``rows`` (trials that left)."""

    def checkpoint(self, k: int) -> None:
        """Keep row k's current weights (its best so far)."""

    def latency(self, k: int, restore: bool) -> float:
        """Row k's forward latency (metrics.forward_latency), after restoring its checkpoint if ``restore``."""

    def noise_scale(self, step: int) -> list[dict[str, float]]:
        """Per row, a gradient noise scale measurement ({} where the spec does not ask for one)."""


EngineFactory = Callable[[list[TrialSpec]], Engine]
