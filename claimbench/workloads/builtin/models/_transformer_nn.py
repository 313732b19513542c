"""The torch modules of the ``transformer`` family (models/transformer.py), kept apart so that the family's
declaration stays torch-free; the packed engine (train/packed/transformer.py) computes the same functions on
stacked parameters and imports ``rotary`` and ``attention_scale`` from here."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from claimbench.workloads.builtin.layers import INITS, Dropout, Readout, init_linear

VOCAB = 256  # byte-level: every byte is a token


def attention_scale(head_dim: int, base_head_dim: int | None) -> float:
    """The attention logits' scale: 1/sqrt(d_head) under SP; under muP sqrt(base d_head) / d_head (1/d
    attention, equal to SP's at the base width)."""
    if base_head_dim is None:
        return 1.0 / math.sqrt(head_dim)
    return math.sqrt(base_head_dim) / head_dim


def rotary_tables(seq_len: int, head_dim: int, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables (seq_len, head_dim) of rotary position embeddings (Su et al. 2021; base 10000),
    in the rotate-half layout (the first and second half of each head's dims form the pairs)."""
    half = head_dim // 2
    freqs = 1.0 / (10000.0 ** (torch.arange(half, dtype=torch.float32, device=device) / half))
    angles = torch.arange(seq_len, dtype=torch.float32, device=device)[:, None] * freqs[None, :]
    angles = torch.cat([angles, angles], dim=1)
    return angles.cos(), angles.sin()


def rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (..., T, d_head) rotated by its positions' angles."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class Block(nn.Module):
    """Pre-norm: x + drop(proj(attention(LN(x)))), then x + drop(fc2(gelu(fc1(LN(x)))))."""

    def __init__(self, width: int, heads: int, dropout: float, scale: float):
        super().__init__()
        self.heads, self.scale = heads, scale
        self.ln1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.ln2 = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, 4 * width)
        self.fc2 = nn.Linear(4 * width, width)
        self.drop = Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, h: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        n, t, w = h.shape
        q, k, v = self.qkv(self.ln1(h)).view(n, t, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        if rope is not None:
            q, k = rotary(q, *rope), rotary(k, *rope)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale)
        h = h + self.drop(self.proj(a.transpose(1, 2).reshape(n, t, w)))
        return h + self.drop(self.fc2(F.gelu(self.fc1(self.ln2(h)))))


class Transformer(nn.Module):
    """A decoder-only byte-level transformer: (N, T) byte tokens -> (N, T, 256) next-byte logits."""

    def __init__(self, seq_len: int, width: int, depth: int, heads: int, positions: str, dropout: float,
                 init: str, init_dist: str, n_out: int = VOCAB, base_width: int = 0):
        super().__init__()
        mup = base_width > 0
        mult = width / base_width if mup else 1.0
        self.seq_len, self.positions = seq_len, positions
        self.embed = nn.Embedding(VOCAB, width)  # N(0, 1): constant in width (muP's input weights)
        if positions == "learned":
            self.pos = nn.Parameter(torch.zeros(seq_len, width))
        scale = attention_scale(width // heads, base_width // heads if mup else None)
        self.blocks = nn.ModuleList(Block(width, heads, dropout, scale) for _ in range(depth))
        for block in self.blocks:
            for linear in (block.qkv, block.proj, block.fc1, block.fc2):
                init_linear(linear, init, init_dist)
                linear.weight.muon = True  # a hidden matrix (optimizer muon)
                if mup:  # hidden weights: Adam LR / m (decay x m, as MuAdam)
                    linear.weight.lr_scale, linear.weight.wd_scale = 1.0 / mult, mult
        self.norm = nn.LayerNorm(width)
        self.head = Readout(width, n_out, 1.0 / mult) if mup else nn.Linear(width, n_out)
        init_linear(self.head, init, init_dist)
        if mup:  # SP's variance at the base width: constant in width
            with torch.no_grad():
                self.head.weight.mul_(math.sqrt(INITS[init](base_width, n_out) / INITS[init](width, n_out)))
        self.drop = Dropout(dropout) if dropout > 0 else nn.Identity()
        if positions == "rope":
            cos, sin = rotary_tables(seq_len, width // heads)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        h = self.embed(x.long())
        if self.positions == "learned":
            h = h + self.pos[:t]
        rope = (self.rope_cos[:t], self.rope_sin[:t]) if self.positions == "rope" else None
        h = self.drop(h)
        for block in self.blocks:
            h = block(h, rope)
        return self.head(self.norm(h))
