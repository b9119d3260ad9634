"""Modules whose statistics and masks span the global batch across ranks (``training.distributed``).

``sum_across_ranks`` (an all_reduce with an all_reduced gradient),
``GlobalBatchNorm2d`` (BatchNorm over the global batch, for CPU/gloo where
``SyncBatchNorm`` refuses CPU tensors) and ``GlobalBatchDropout2d`` (the
one-process dropout mask, sliced per rank); ``distributed.GroupContext.wrap`` swaps
them in. Split from ``training.distributed``, whose docstring explains why.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

class _SumAcrossRanks(torch.autograd.Function):
    """all_reduce(SUM) whose gradient is the all_reduced gradient.

    Each rank's loss depends on every rank's input through the sum, so the
    gradient reaching one rank's input is the sum of all ranks' gradients
    with respect to the result.
    """

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad)
        return grad


def sum_across_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """Differentiable sum of ``tensor`` over all ranks."""
    return _SumAcrossRanks.apply(tensor)


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d with statistics of the global batch, for CPU process groups.

    Same parameters, buffers and state-dict keys as ``nn.BatchNorm2d``. In
    training it all-reduces per-channel sums (two passes: the mean, then the
    centred squares, which is better conditioned than E[x²] − E[x]²) and
    updates the running statistics as ``F.batch_norm`` does (unbiased
    variance over the global pixel count). In eval mode it is plain
    BatchNorm2d: the running statistics are identical on every rank.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not dist.is_initialized():
            return super().forward(x)
        self._check_input_dim(x)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average, as in nn.BatchNorm
                momentum = 1.0 / float(self.num_batches_tracked)
        c = x.shape[1]
        dims = [0, *range(2, x.dim())]
        count = x.new_tensor([x.numel() / c])
        sums = sum_across_ranks(torch.cat([x.sum(dims), count]))  # (C + 1,): channel sums, pixel count
        n = sums[c].detach()
        mean = sums[:c] / n  # (C,)
        shape = (1, c) + (1,) * (x.dim() - 2)
        centred = x - mean.view(shape)
        var = sum_across_ranks((centred * centred).sum(dims)) / n  # (C,) biased, used to normalise
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.running_mean.mul_(1 - momentum).add_(mean.detach(), alpha=momentum)
                unbiased = var.detach() * (n / max(float(n) - 1.0, 1.0))
                self.running_var.mul_(1 - momentum).add_(unbiased, alpha=momentum)
        scale = torch.rsqrt(var + self.eps)  # (C,)
        if self.weight is not None:
            scale = scale * self.weight
        y = centred * scale.view(shape)
        if self.bias is not None:
            y = y + self.bias.view(shape)
        return y


class GlobalBatchDropout2d(nn.Dropout2d):
    """Dropout2d whose mask is the global batch's mask, sliced to this rank.

    ``F.dropout2d`` draws a ``(B, C, 1, …)`` Bernoulli(1 − p) mask scaled by
    1/(1 − p) from the default generator. Every rank's default generator is
    seeded alike and consumed alike, so drawing the ``(world·B, C, 1, …)``
    mask and keeping rows ``rank·B … (rank+1)·B`` reproduces the
    one-process mask for these samples, and keeps the ranks' masks distinct.
    ``inplace`` is not honoured (the models do not use it).
    """

    def __init__(self, p: float, rank: int, world_size: int) -> None:
        super().__init__(p)
        self.rank, self.world_size = rank, world_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.numel() == 0:
            return x
        if self.p == 1:
            return x * torch.zeros_like(x)
        b = x.shape[0]
        noise_shape = (b * self.world_size, x.shape[1]) + (1,) * (x.dim() - 2)
        noise = x.new_empty(noise_shape).bernoulli_(1 - self.p).div_(1 - self.p)  # (world·B, C, 1, 1)
        return x * noise[self.rank * b:(self.rank + 1) * b]  # (B, C, H, W)


def _replace(module: nn.Module, convert: Callable[[nn.Module], nn.Module]) -> None:
    """Replace children in place (keeping their names, hence state-dict keys and parameter order)."""
    for name, child in module.named_children():
        new = convert(child)
        if new is not child:
            setattr(module, name, new)
        else:
            _replace(child, convert)


def _to_global_batch_norm(bn: nn.BatchNorm2d) -> GlobalBatchNorm2d:
    new = GlobalBatchNorm2d(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats,
                            device=bn.running_mean.device if bn.running_mean is not None else None)
    # Share the very tensors, as SyncBatchNorm.convert_sync_batchnorm does.
    if bn.affine:
        new.weight, new.bias = bn.weight, bn.bias
    if bn.track_running_stats:
        new.running_mean, new.running_var = bn.running_mean, bn.running_var
        new.num_batches_tracked = bn.num_batches_tracked
    new.train(bn.training)
    return new
