"""Dropout masks: revision 3's rule against the engines' rule, measured side by side.

    python benchmarks/dropout_masks.py            # a few seconds

Both engines draw each dropout mask with ``layers.dropout_noise``: a unit is kept where
``uniform_() < 1 - p`` (one float draw per element), then scaled by 1 / (1 - p). Training revision 3
drew it as ``nn.Dropout`` does (ATen's ``bernoulli_(1 - p)``: one 64-bit MT19937 draw per element on a
CPU without MKL's path), then scaled. This benchmark times both, in one process, one torch thread, for
the mask sizes the suites draw, and checks that the new rule keeps each unit with probability 1 - p
(the kept share of the largest mask, against its binomial standard error).

The last line is ``uniform_ratio=X`` at the largest size (revision 3's time / the engines' time: above
1 means the engines' rule is faster).
"""

from __future__ import annotations

import argparse
import math
import platform
import time

import torch

from claimbench.workloads.builtin.layers import dropout_noise


def timed(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn()
        best = min(best, (time.perf_counter() - t0) / repeats)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--p", type=float, default=0.3, help="dropout rate")
    args = parser.parse_args()
    p, q = args.p, 1 - args.p
    torch.set_num_threads(1)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, torch {torch.__version__}, 1 torch thread")
    # a (32, 100) MLP layer, a (32, 16, 8, 8) and a (32, 64, 8, 8) CNN block at batch 32
    sizes = [32 * 100, 32 * 16 * 8 * 8, 32 * 64 * 8 * 8]
    print(f"{'elements':>9} {'bernoulli ms':>13} {'uniform ms':>11} {'kept share':>11}")
    g = torch.Generator().manual_seed(0)
    ratio = 0.0
    for n in sizes:
        reps = max(5, 400_000 // n)
        t_b = timed(lambda: torch.empty(n).bernoulli_(q, generator=g).div_(q), reps)
        t_u = timed(lambda: dropout_noise(torch.empty(n), p, False, g), reps)
        kept = float((dropout_noise(torch.empty(n), p, False, g)[0] > 0).float().mean())
        print(f"{n:>9} {t_b * 1e3:>13.3f} {t_u * 1e3:>11.3f} {kept:>11.4f}")
        ratio = t_b / t_u
    se = math.sqrt(p * q / sizes[-1])
    if abs(kept - q) > 4 * se:
        raise SystemExit(f"dropout_masks: kept share {kept:.4f}, expected {q:.4f} ± {4 * se:.4f}")
    print(f"uniform_ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
