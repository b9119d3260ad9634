"""Model cost: parameters, FLOPs at a stated input size, and latency.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` (it counts a
multiply-add as 2 FLOPs and covers convolutions, matmuls and the ops it
knows; element-wise work is not counted), for one image of the evaluated
resolution. Latency is the median wall time of a batch-1 forward pass after
warm-up, on the evaluation device (``measure_latency``:
``torch.utils.benchmark.Timer``, which synchronises the GPU around each
measurement).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.utils import benchmark
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_flops(model: nn.Module, height: int, width: int, device: torch.device) -> int:
    model.eval()
    x = torch.zeros(1, 3, height, width, device=device)
    counter = FlopCounterMode(display=False)
    with counter:
        model(x)
    return int(counter.get_total_flops())


@torch.no_grad()
def measure_latency(model: nn.Module, height: int, width: int, device: torch.device,
                    runs: int, warmup: int = 3) -> float:
    """Median seconds of one batch-1 forward pass, over ``runs`` passes timed one at a time.

    ``warmup`` untimed passes come first (oneDNN/cuDNN set-up, caches). Each
    timed pass is its own ``Timer.timeit(number=1)``, so the result is the
    median of single passes (the middle two averaged for an even ``runs``),
    not of block means as ``blocked_autorange`` would give; ``timeit`` adds two
    untimed passes of its own before each. The timer runs at the process's
    thread count (``Timer`` would otherwise pin one thread).
    """
    model.eval()
    x = torch.randn(1, 3, height, width, device=device)
    timer = benchmark.Timer("model(x)", globals={"model": model, "x": x}, num_threads=torch.get_num_threads())
    if warmup:
        timer.timeit(number=warmup)
    samples = [timer.timeit(number=1) for _ in range(runs)]
    return benchmark.Measurement.merge(samples)[0].median
