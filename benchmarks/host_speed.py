"""How fast this CPU host is now: the fp32 matmul peak and the rate of the step's typical convolution.

* ``matmul_peak``: ``torch.mm`` of two 2048×2048 fp32 matrices, 2·n³ FLOPs,
  in GFLOP/s. The training step's counted rate is quoted as a percentage of it.
* ``conv_rates``: a 3×3 convolution 128→128 channels, forward only (no
  autograd), at the shape ResNet-18's layer2 sees in the training step
  (batch, 128, crop/8), in GFLOP/s (2 FLOPs a multiply-add), once per memory
  layout in ``LAYOUTS``: NCHW and channels_last.

Each is timed with ``time.perf_counter`` after one untimed call, and the best
of ``repeats`` calls is kept: a peak is the fastest the host manages, and the
best call is the one least slowed by other work on the host. Printed alone
(``bench_train.py --host-only``, a few seconds) they say how fast the host is
at the time, which ``scripts/pipeline`` prints around ``dvc repro`` (why:
docs/results.md, "Slow-host days").
"""
from __future__ import annotations

import time
from typing import Any, Callable

import torch
import torch.nn.functional as F

LAYOUTS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}


def best_seconds(fn: Callable[[], Any], repeats: int) -> float:
    """The shortest of ``repeats`` timed calls of ``fn``, after one untimed warm-up call."""
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_peak(repeats: int, n: int = 2048) -> float:
    """GFLOP/s of the best fp32 ``torch.mm`` of two n×n matrices (2·n³ FLOPs)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n ** 3 / best_seconds(lambda: torch.mm(a, b), repeats) / 1e9


def conv_rates(batch: int, crop: tuple[int, int], repeats: int) -> dict[str, float]:
    """GFLOP/s of the best 3×3 conv 128→128 forward at (batch, 128, crop/8), per layout in ``LAYOUTS``."""
    shape = (batch, 128, max(1, crop[0] // 8), max(1, crop[1] // 8))
    flops = 2 * shape[0] * 128 * shape[2] * shape[3] * 128 * 9
    w = torch.randn(128, 128, 3, 3)
    out = {}
    for name, fmt in LAYOUTS.items():
        x = torch.randn(shape).contiguous(memory_format=fmt)
        with torch.no_grad():
            out[name] = flops / best_seconds(lambda: F.conv2d(x, w, padding=1), repeats) / 1e9
    return out
