"""The built-in models' geometry, torch-free: the hidden layers' widths and a sequence model's features per
step. The model families build from it (``models/``) and ``shapes`` counts from it."""

from __future__ import annotations

#: A pyramid's narrowest layer.
MIN_PYRAMID_WIDTH = 4


def layer_widths(depth: int, width: int, shape: str = "equal") -> list[int]:
    """Each hidden layer's width: all ``width`` (equal), or halving from ``width`` down to 4 (pyramid)."""
    if shape == "equal":
        return [width] * depth
    if shape == "pyramid":
        return [max(width >> i, MIN_PYRAMID_WIDTH) for i in range(depth)]
    raise ValueError(f"unknown shape {shape!r}; use equal or pyramid")


def sequence_features(shape: tuple[int, ...]) -> int:
    """Features per step when a recurrent model reads examples of ``shape`` (layers.as_sequence): (T, F)
    gives F, an image (C, H, W) is read row by row (C * W), a flat vector one value a step (1)."""
    if len(shape) == 2:
        return shape[1]
    if len(shape) == 3:
        return shape[0] * shape[2]
    return 1
