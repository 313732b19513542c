"""The packed engine of the ``transformer`` family: K decoder-only transformers trained at once.

Each trial's model is built as ``train_trial`` builds it (its own seed), and its parameters are stacked
into the packed engine's one (K, P) tensor (``engine.PackedEngine``, whose optimizers, clipping,
checkpoints and trial policy this module reuses); ``StackedTransformer`` runs the forward pass on views of
it, in the order of ``models/_transformer_nn.py``:

- the byte embedding is one gather from the K stacked tables (K x 256 rows), positions a broadcast add;
- each Linear (qkv, proj, fc1, fc2, head) is one ``baddbmm`` over (K, B*T, width) activations;
- LayerNorm normalizes every model's rows at once (``F.layer_norm`` without affine), then applies each
  model's scale and shift as (K, 1, width) rows;
- attention is one ``scaled_dot_product_attention(is_causal=True)`` over (K*B, heads, T, d_head): batched
  over K x batch x heads; rotary positions rotate queries and keys as the single model does.

What packs: every trial the family trains except those with dropout (no stacked dropout masks here) and
optimizer muon (torch.optim.Muon, single engine): ``train.packing.packable`` refuses them. muP packs: its
per-parameter LR multipliers ride on the parameters (``engine.PackedEngine``), the readout multiplier and
the attention scale are read from the template model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from claimbench.train.packed.engine import PackedEngine
from claimbench.train.packed.engine import train_jointly as _train_jointly
from claimbench.train.packed.plan import Place
from claimbench.trial import TrialRecord
from claimbench.workloads.builtin import TrialSpec
from claimbench.workloads.builtin.layers import Readout
from claimbench.workloads.builtin.models._transformer_nn import VOCAB, rotary
from claimbench.workloads.data import DataCache

LN_EPS = 1e-5  # nn.LayerNorm's


def train_jointly(specs: list[TrialSpec], cache: DataCache | None = None, device: str | torch.device = "cpu",
                  inject_error: list[bool] | None = None, halving: list[dict | None] | None = None) -> list[TrialRecord]:
    """Train packable transformer specs that share one ``pack_key`` jointly; one record per spec. Never raises."""
    return _train_jointly(specs, cache, device, inject_error, engine=TransformerEngine, halving=halving)


class StackedTransformer:
    """K transformers (rows 0..K-1) as one forward pass over their stacked parameters (the engine's views,
    in the template's ``parameters()`` order). ``forward.StackedModel``'s interface, without BatchNorm."""

    def __init__(self, template: nn.Module, input_shape: tuple[int, ...], dropout_p: list[float],
                 rngs: list[torch.Generator], device: torch.device):
        if max(dropout_p) > 0:
            raise ValueError("the packed transformer has no dropout (packable refuses it)")
        self.input_shape, self.rngs, self.device = tuple(input_shape), rngs, device
        offset, self.places, self.index = 0, [], {}
        for i, (name, p) in enumerate(template.named_parameters()):
            self.places.append((offset, p.numel(), tuple(p.shape)))
            self.index[name] = i
            offset += p.numel()
        self.depth, self.heads = len(template.blocks), template.blocks[0].heads if len(template.blocks) else 1
        self.scale = template.blocks[0].scale if len(template.blocks) else 1.0
        self.head_mult = template.head.multiplier if isinstance(template.head, Readout) else 1.0
        self.positions = template.positions
        self.rope = (template.rope_cos.to(device), template.rope_sin.to(device)) if self.positions == "rope" else None
        linears = [f"blocks.{i}.{n}.weight" for i in range(self.depth) for n in ("qkv", "proj", "fc1", "fc2")]
        self.weight_places: list[list[Place]] = [[self.places[self.index[n]]] for n in (*linears, "head.weight")]
        self.bn_mean: list[torch.Tensor] = []
        self.bn_var: list[torch.Tensor] = []

    @property
    def k(self) -> int:
        return len(self.rngs)

    def keep(self, index: torch.Tensor, rows: list[int]) -> None:
        self.rngs = [self.rngs[j] for j in rows]

    @staticmethod
    def to_row(model: nn.Module) -> torch.Tensor:
        """One trial's flat parameters (P,), in its ``parameters()`` order and layout."""
        return torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    @staticmethod
    def load_row(row: torch.Tensor, model: nn.Module) -> None:
        """Copy a flat row back into ``model`` (the inverse of ``to_row``)."""
        torch.nn.utils.vector_to_parameters(row, model.parameters())

    def forward(self, params: list[torch.Tensor], x: torch.Tensor, training: bool,
                rows: torch.Tensor | None = None) -> torch.Tensor:
        """Next-byte logits (K, N, T, 256) of every model on x: (K, N, T) tokens per model, or (N, T) shared.
        ``rows`` (evaluation of some trials only): ``params`` are already theirs."""
        p = lambda name: params[self.index[name]]  # noqa: E731
        k = params[0].shape[0]
        x = x.long() if x.dim() == 3 else x.long().unsqueeze(0).expand(k, *x.shape)
        n, t = x.shape[1], x.shape[2]
        offsets = torch.arange(k, device=x.device).view(k, 1, 1) * VOCAB
        table = p("embed.weight")  # (K, 256, W)
        width = table.shape[2]
        h = table.reshape(k * VOCAB, width)[(x + offsets).reshape(-1)].view(k, n * t, width)
        if self.positions == "learned":
            h = (h.view(k, n, t, width) + p("pos")[:, :t].unsqueeze(1)).view(k, n * t, width)
        rope = (self.rope[0][:t], self.rope[1][:t]) if self.rope is not None else None
        for i in range(self.depth):
            b = f"blocks.{i}."
            a = self._linear(self._norm(h, p(b + "ln1.weight"), p(b + "ln1.bias")), p(b + "qkv.weight"),
                             p(b + "qkv.bias"))
            q, kk, v = a.view(k * n, t, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
            if rope is not None:
                q, kk = rotary(q, *rope), rotary(kk, *rope)
            o = F.scaled_dot_product_attention(q, kk, v, is_causal=True, scale=self.scale)
            o = o.transpose(1, 2).reshape(k, n * t, width)
            h = h + self._linear(o, p(b + "proj.weight"), p(b + "proj.bias"))
            m = F.gelu(self._linear(self._norm(h, p(b + "ln2.weight"), p(b + "ln2.bias")), p(b + "fc1.weight"),
                                    p(b + "fc1.bias")))
            h = h + self._linear(m, p(b + "fc2.weight"), p(b + "fc2.bias"))
        h = self._norm(h, p("norm.weight"), p("norm.bias"))
        if self.head_mult != 1.0:  # muP's readout: its input x 1 / width_mult
            h = h * self.head_mult
        out = self._linear(h, p("head.weight"), p("head.bias"))
        return out.view(k, n, t, -1)

    @staticmethod
    def _linear(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """(K, M, in) @ each model's weight (K, out, in)^T + its bias (K, out)."""
        return torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))

    @staticmethod
    def _norm(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """LayerNorm of every row of every model, then each model's scale and shift."""
        return torch.addcmul(bias.unsqueeze(1), F.layer_norm(h, h.shape[-1:], eps=LN_EPS), weight.unsqueeze(1))


class TransformerEngine(PackedEngine):
    """The packed engine with ``StackedTransformer`` as its forward pass."""

    stacked = StackedTransformer
