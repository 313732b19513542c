"""Dropout masks: what a bit-identical faster mask would have to beat, measured side by side.

    python benchmarks/dropout_masks.py            # a few seconds

A packed trial draws its dropout masks from its own generator exactly as ``nn.Dropout`` does on a
non-Intel CPU (ATen's ``bernoulli_(1 - p)``: one 64-bit MT19937 draw, two 32-bit outputs, per
element), so that its results are those of the single-trial engine bit for bit. In the dropout
suite's 64-channel CNN packs those masks are about a fifth of the time (reports/performance.md).
This benchmark times, in one process, one torch thread, for the mask sizes the suites draw:

- ``bernoulli``: ``torch.empty(n).bernoulli_(q, generator=g)``, what the engines do;
- ``numpy_mt``: the same bits from numpy's MT19937 (the generator's state copied out of torch,
  ``random_raw``, the same 53-bit comparison, the advanced state copied back); it is checked to give
  the same mask and to leave the generator where ``bernoulli_`` leaves it;
- ``uniform``: ``torch.empty(n).uniform_(generator=g) < q``, the cheaper draw that would change
  every mask (a new ``TRAINING_REVISION``), for scale.

The last line is ``numpy_mt_ratio=X uniform_ratio=Y`` at the largest size (bernoulli's time / the
alternative's: above 1 means faster than today).
"""

from __future__ import annotations

import argparse
import platform
import struct
import time

import numpy as np
import torch

N = 624  # MT19937's state words
HEADER = struct.Struct("<QiiQ")  # CPUGeneratorImplState's legacy part: seed, left, seeded, next, then state[624] as u64


def numpy_mt_mask(n: int, q: float, g: torch.Generator) -> torch.Tensor:
    """``torch.empty(n).bernoulli_(q, generator=g)`` on a non-MKL CPU path, through numpy's MT19937."""
    raw_state = bytearray(g.get_state().numpy().tobytes())
    seed, left, _seeded, nxt = HEADER.unpack_from(raw_state, 0)
    words = np.frombuffer(bytes(raw_state), dtype=np.uint64, count=N, offset=HEADER.size).astype(np.uint32)
    bits = np.random.MT19937()
    # torch regenerates when --left reaches 0 (left == 1 before a draw); numpy when pos reaches 624
    bits.state = {"bit_generator": "MT19937", "state": {"key": words, "pos": N if left == 1 else nxt}}
    draws = bits.random_raw(2 * n).astype(np.uint64)
    value = ((draws[0::2] & np.uint64((1 << 21) - 1)) << np.uint64(32)) | draws[1::2]  # the low 53 bits of hi:lo
    mask = value.astype(np.float64) * 2.0 ** -53 < q
    after = bits.state["state"]
    HEADER.pack_into(raw_state, 0, seed, N + 1 - after["pos"], 1, after["pos"])  # left, seeded, next as torch keeps them
    np.frombuffer(raw_state, dtype=np.uint64, count=N, offset=HEADER.size)[:] = after["key"].astype(np.uint64)
    g.set_state(torch.frombuffer(raw_state, dtype=torch.uint8).clone())
    return torch.from_numpy(mask).to(torch.float32)


def same_bits(n: int, q: float) -> bool:
    """The numpy mask equals bernoulli_'s, and both generators then draw the same numbers."""
    a, b = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    torch.rand(13, generator=a), torch.rand(13, generator=b)
    mask = torch.empty(n).bernoulli_(q, generator=a)
    return torch.equal(mask, numpy_mt_mask(n, q, b)) and torch.equal(torch.rand(9, generator=a),
                                                                        torch.rand(9, generator=b))


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
    parser.add_argument("--q", type=float, default=0.7, help="keep probability (1 - dropout rate)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, torch {torch.__version__}, 1 torch thread")
    # a (32, 100) MLP layer, a (32, 16, 8, 8) and a (32, 64, 8, 8) CNN block at batch 32
    sizes = [32 * 100, 32 * 16 * 8 * 8, 32 * 64 * 8 * 8]
    print(f"{'elements':>9} {'bernoulli ms':>13} {'numpy_mt ms':>12} {'uniform ms':>11} {'same bits':>10}")
    g = torch.Generator().manual_seed(0)
    ratios = (0.0, 0.0)
    for n in sizes:
        reps = max(5, 400_000 // n)
        t_b = timed(lambda: torch.empty(n).bernoulli_(args.q, generator=g), reps)
        t_n = timed(lambda: numpy_mt_mask(n, args.q, g), reps)
        t_u = timed(lambda: torch.empty(n).uniform_(generator=g) < args.q, reps)
        print(f"{n:>9} {t_b * 1e3:>13.3f} {t_n * 1e3:>12.3f} {t_u * 1e3:>11.3f} {str(same_bits(n, args.q)):>10}")
        ratios = (t_b / t_n, t_b / t_u)
    print(f"numpy_mt_ratio={ratios[0]:.2f} uniform_ratio={ratios[1]:.2f}")


if __name__ == "__main__":
    main()
