"""Model cost: latency is the median time of one forward pass, at the process's thread count."""
from __future__ import annotations

import time

import torch
from torch import nn

from segrepro.evaluation.cost import count_flops, count_params, measure_latency


class Sleeper(nn.Module):
    """A forward pass of known duration that records the thread count it ran with and its grad mode."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds, self.threads, self.grad = seconds, set(), set()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.threads.add(torch.get_num_threads())
        self.grad.add(torch.is_grad_enabled())
        time.sleep(self.seconds)
        return x


def test_latency_is_one_forward_pass_at_the_current_thread_count() -> None:
    model = Sleeper(0.02)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        latency = measure_latency(model, 8, 8, torch.device("cpu"), runs=5, warmup=1)
    finally:
        torch.set_num_threads(before)
    assert 0.02 <= latency < 0.04  # one pass (sleep granularity aside), not a block of them
    assert model.threads == {2}  # torch.utils.benchmark.Timer alone would have run it on 1 thread
    assert model.grad == {False}
    assert model.training is False


def test_params_and_flops_of_a_convolution() -> None:
    conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
    assert count_params(conv) == 4 * 3 * 9
    # 2 FLOPs per multiply-add, one per output element and kernel tap.
    assert count_flops(conv, 5, 6, torch.device("cpu")) == 2 * 4 * 5 * 6 * 3 * 9
