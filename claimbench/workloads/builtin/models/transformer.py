"""``transformer``: a small decoder-only byte-level language model for task lm (next-byte prediction).

Byte embedding (256 tokens, N(0, 1)) plus positions (``positions``: "learned", a (seq_len, width) table
that starts at zero, or "rope", rotary embeddings on queries and keys, base 10000); then ``depth``
pre-norm blocks of width ``width`` (LayerNorm -> causal self-attention with ``heads`` heads,
``torch.nn.functional.scaled_dot_product_attention(is_causal=True)`` -> residual; LayerNorm -> MLP of
4 x width with GELU -> residual); a final LayerNorm and an untied Linear head to 256 logits (untied: its
own weights, so that muP can treat it as a readout and Muon can leave it to AdamW). Its context is the
dataset's ``seq_len``. ``init`` and ``init_dist`` set every Linear (blocks and head; zero biases).
``dropout`` drops the embedding's output and each residual branch's output (``nn.Dropout``), not the
attention weights; there is no BatchNorm.

``parameterization = "mup"`` (Adam or AdamW), with width_mult m = width / base_width and the heads fixed,
so that at width = base_width the model is SP's: the blocks' matrices (qkv, proj, fc1, fc2) are hidden
weights (Adam LR lr / m, decay x m), the embedding, positions, LayerNorms and biases keep lr, the head is
muP's readout (``layers.Readout``: its input x 1/m, SP's init variance at base_width), and attention
logits are scaled by sqrt(base d_head) / d_head (1/d attention) instead of 1/sqrt(d_head), as in
Yang et al. 2022, "Tensor Programs V", Table 8 and section 4.

``optimizer = "muon"``: the blocks' matrices are its hidden matrices (``train/optim.py``).
"""

from __future__ import annotations

from typing import Any

from claimbench.workloads.builtin.datasets import BuiltinDataset
from claimbench.workloads.builtin.models import Family

VOCAB = 256


def check(spec: Any, dataset: BuiltinDataset | None) -> None:
    if spec.batchnorm:
        raise ValueError("model transformer has no batchnorm; set batchnorm = false")
    if spec.width % spec.heads:
        raise ValueError(f"model transformer needs width divisible by heads, got width {spec.width}, heads "
                         f"{spec.heads}; set width to a multiple of heads")
    if spec.positions == "rope" and (spec.width // spec.heads) % 2:
        raise ValueError(f"positions rope needs an even head size (width / heads), got {spec.width // spec.heads}")
    if spec.parameterization == "mup" and spec.base_width % spec.heads:
        raise ValueError(f"parameterization mup on model transformer needs base_width divisible by heads, got "
                         f"base_width {spec.base_width}, heads {spec.heads}")
    if spec.dropout_kind != "standard":
        raise ValueError("model transformer takes dropout_kind standard; set dropout_kind = \"standard\"")


def build(s: Any, input_shape: tuple[int, ...], n_out: int):
    from claimbench.workloads.builtin.models._transformer_nn import Transformer  # torch loads when built

    check(s, None)
    return Transformer(input_shape[0], s.width, s.depth, s.heads, s.positions, s.dropout, s.init, s.init_dist,
                       n_out, s.base_width if s.parameterization == "mup" else 0)


def param_count(s: Any, input_shape: tuple[int, ...], n_out: int) -> int:
    """Embedding, positions (learned), per block two LayerNorms and four Linears, the final LayerNorm, the head."""
    w = s.width
    block = 2 * (2 * w) + (3 * w * w + 3 * w) + (w * w + w) + (4 * w * w + 4 * w) + (4 * w * w + w)
    positions = input_shape[0] * w if s.positions == "learned" else 0
    return VOCAB * w + positions + s.depth * block + 2 * w + w * n_out + n_out


FAMILY = Family(name="transformer", build=build, param_count=param_count, check=check, mup=True,
                packed="claimbench.train.packed.transformer", lm=True, muon=True)
