"""One CPU training step per method: its time, its counted FLOPs and its share of the matmul peak.

Per method (or ablation variant), ``bench_method`` times one training step as
``run_training`` takes it on CPU: forward, cross-entropy ignoring void,
``.item()``, zero_grad, backward and the recipe's optimiser step
(``train.make_optimizer``), at the batch and crop it is given, on a fixed
synthetic batch (seed 0; augmentation is not in it), in a process the
caller has set up with ``make_deterministic`` as training does. Choices:

* With ``train.class_weighting`` set the loss is weighted with unit weights:
  the weighted path is the one timed, and the values do not change the cost.
* Eager mode, even where ``train.compile`` is set.
* Both memory layouts of ``host_speed.LAYOUTS``, NCHW and channels_last
  (model and input), each with a freshly built model (seed 0).
* ms/step is the median of ``steps`` steps after ``warmup`` untimed ones,
  each timed with plain ``time.perf_counter``: CPU ops are synchronous, and
  each sample is one state-mutating step, which ``torch.utils.benchmark.Timer``
  is not built for. From it: img/s, counted GFLOP/s and % of the matmul peak.

FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` over forward + loss +
backward of one step (a multiply-add = 2 FLOPs), counted once per method (the
layout does not change the count). It counts convolutions (including
``convolution_backward``) and matmul-like ops only; element-wise work
(BatchNorm, ReLU, adds, the LSTM gates of PDN, softmax/cross-entropy, bilinear
resizes), gathers (``grid_sample``, indexing — DDSM's sampling) and the SGD
update are free to it. "Counted GFLOP/s" therefore understates the work done,
most for methods heavy in element-wise or gather work; % of the matmul peak
is an efficiency of the counted part, not of the whole step.

Target (``peak_targets``): the baseline's step reaches ``TARGET`` (60%) of the
matmul peak, one PASS/FAIL line per layout.
"""
from __future__ import annotations

import statistics
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from host_speed import LAYOUTS
from segrepro.models.build import build_model, model_kwargs
from segrepro.training.train import make_optimizer

TARGET = 0.60  # baseline step ≥ 60% of the matmul peak


def loss_fn(logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None, ignore: int) -> torch.Tensor:
    """Cross-entropy in float32, ignoring ``ignore`` (void), weighted where ``weight`` is given."""
    return F.cross_entropy(logits.float(), y, weight=weight, ignore_index=ignore)


def train_step(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
               weight: torch.Tensor | None, ignore: int) -> None:
    """One step as ``run_training`` takes it on CPU: forward, loss + ``.item()``, zero_grad, backward, SGD."""
    loss = loss_fn(model(x), y, weight, ignore)
    loss.item()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def bench_method(params: Any, method: str, crop: tuple[int, int], warmup: int, steps: int,
                 peak: float) -> dict[str, Any]:
    """Counted GFLOP of one step, and per layout its median ms, img/s, counted GFLOP/s and % of ``peak``."""
    t, base = params.train, params.base
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(t.batch_size, 3, *crop, generator=gen)
    y = torch.randint(0, base.num_classes, (t.batch_size, *crop), generator=gen)
    # The weighted loss path at unit weights: the values do not change the cost.
    weight = None if t.class_weighting == "none" else torch.ones(base.num_classes)
    row: dict[str, Any] = {"method": method}
    for name, fmt in LAYOUTS.items():
        torch.manual_seed(0)
        model = build_model(**model_kwargs(params.model, method, base.num_classes)).to(memory_format=fmt).train()
        xl = x.contiguous(memory_format=fmt)
        if "gflop" not in row:  # forward + loss + backward; the layout does not change the count
            counter = FlopCounterMode(display=False)
            with counter:
                loss_fn(model(xl), y, weight, base.ignore_index).backward()
            model.zero_grad(set_to_none=True)
            row["gflop"] = counter.get_total_flops() / 1e9
        opt, times = make_optimizer(model, t), []
        for i in range(warmup + steps):
            start = time.perf_counter()
            train_step(model, opt, xl, y, weight, base.ignore_index)
            if i >= warmup:
                times.append(time.perf_counter() - start)
        sec = statistics.median(times)
        rate = row["gflop"] / sec
        row[name] = {"ms": sec * 1e3, "img_s": t.batch_size / sec, "gflops": rate, "pct_peak": 100 * rate / peak}
    return row


def peak_targets(rows: list[dict[str, Any]]) -> list[str]:
    """PASS/FAIL per layout for the baseline's row; a SKIP line where steps ran without it; none without steps."""
    base = next((r for r in rows if r["method"] == "baseline"), None)
    if base:
        return [f"{'PASS' if base[lay]['pct_peak'] >= 100 * TARGET else 'FAIL'} baseline step {lay} "
                f"{base[lay]['pct_peak']:.0f}% of the matmul peak (target ≥ {TARGET:.0%})"
                for lay in LAYOUTS]
    return ["SKIP baseline step target: baseline not benchmarked"] if rows else []
