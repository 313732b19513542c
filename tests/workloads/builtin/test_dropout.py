"""The dropout rule both engines draw their masks with (``layers.dropout_noise``): which units it keeps,
how it scales them, and that the modules draw it from the global generator in their input's memory order."""

from __future__ import annotations

import math

import pytest
import torch

from claimbench.workloads.builtin.layers import ALPHA, AlphaDropout, Dropout, dropout_noise


def test_a_unit_is_kept_where_its_uniform_draw_is_below_one_minus_p():
    g, h = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    scale, shift = dropout_noise(torch.empty(1000), 0.3, alpha=False, generator=g)
    uniform = torch.empty(1000).uniform_(generator=h)
    assert shift is None
    assert torch.equal(scale, (uniform < 0.7).float() / 0.7)
    assert torch.equal(torch.rand(5, generator=g), torch.rand(5, generator=h))  # one draw per element


def test_alpha_dropout_keeps_a_standard_input_standard():
    torch.manual_seed(0)
    x = torch.randn(200_000)
    y = AlphaDropout(0.2).train()(x)
    dropped = -ALPHA / math.sqrt((ALPHA * ALPHA * 0.2 + 1) * 0.8) + ALPHA * 0.2 / math.sqrt((ALPHA * ALPHA * 0.2 + 1) * 0.8)
    assert y.mean().item() == pytest.approx(0.0, abs=0.01)
    assert y.std().item() == pytest.approx(1.0, abs=0.01)
    assert (y == torch.tensor(dropped)).float().mean().item() == pytest.approx(0.2, abs=0.005)


@pytest.mark.parametrize("module", [Dropout(0.4), AlphaDropout(0.4)])
def test_the_modules_draw_from_the_global_generator_in_memory_order(module):
    x = torch.randn(3, 5, 4).transpose(0, 1)  # not contiguous: the draws follow memory, not the view's order
    state = torch.get_rng_state()
    y = module.train()(x)
    g = torch.Generator()
    g.set_state(state)
    scale, shift = dropout_noise(torch.empty_like(x), 0.4, module.alpha, g)
    assert torch.equal(y, x * scale if shift is None else x * scale + shift)
    assert torch.equal(module.eval()(x), x)
