"""Model cost: parameters, FLOPs at a stated input size, and latency.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` (it counts a
multiply-add as 2 FLOPs and covers convolutions, matmuls and the ops it
knows; element-wise work is not counted), for one image of the evaluated
resolution. Latency is the median wall time of a batch-1 forward pass after
warm-up, on the evaluation device, with ``torch.cuda.synchronize`` on GPU.
"""
from __future__ import annotations

import statistics
import time

import torch
from torch import nn
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
    """Median seconds per batch-1 forward pass."""
    model.eval()
    x = torch.randn(1, 3, height, width, device=device)
    times = []
    for i in range(warmup + runs):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)
