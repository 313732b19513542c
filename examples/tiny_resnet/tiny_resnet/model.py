"""A small ResNet: a 3x3 stem, ``blocks`` residual blocks (conv-BN-ReLU-conv-BN plus the identity, then
ReLU), global average pooling and a linear head. ``batchnorm = False`` drops every BatchNorm."""

from __future__ import annotations

import torch
from torch import nn


def _norm(channels: int, batchnorm: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if batchnorm else nn.Identity()


class Block(nn.Module):
    def __init__(self, channels: int, batchnorm: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=not batchnorm)
        self.bn1 = _norm(channels, batchnorm)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=not batchnorm)
        self.bn2 = _norm(channels, batchnorm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(x + self.bn2(self.conv2(out)))


class TinyResNet(nn.Module):
    def __init__(self, in_channels: int, n_classes: int, width: int = 16, blocks: int = 1, batchnorm: bool = True):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=not batchnorm),
                                  _norm(width, batchnorm), nn.ReLU())
        self.blocks = nn.Sequential(*(Block(width, batchnorm) for _ in range(blocks)))
        self.head = nn.Linear(width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.stem(x))
        return self.head(h.mean(dim=(2, 3)))
