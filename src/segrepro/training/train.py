"""The shared training recipe: SGD (or AdamW) + warm-up + poly LR, (class-balanced) cross-entropy ignoring void.

``train.optimizer`` picks SGD with momentum or AdamW (``make_optimizer``; the
CamVid default is AdamW, chosen on the validation split, README).
Per iteration the learning rate is ``lr · factor(it)``: a linear warm-up
over ``train.warmup_epochs`` (in iterations, from lr/warm-up-steps to lr),
then DeepLab's poly decay ``(1 − progress)^power`` over the remaining
iterations, stepped per iteration as in mmseg (``lr_schedule``: torch's
``LinearLR`` then ``PolynomialLR``, joined by ``SequentialLR``). Parameters of any
submodule with a float attribute ``lr_scale`` (DDSM's offset heads) train at
``lr · lr_scale`` on the same schedule. With ``train.class_weighting:
median_frequency`` the loss weights each class by the training split's
median-frequency weight, which ``preprocess`` records in ``card.json``.
Random scale/crop/flip from ``data.transforms``, the input normalised as
``model.input_norm`` says (``data.input_norms``). Every ``train.val_every``
epochs, and after the last, the validation mIoU is measured and handed,
with the mean training loss, to a callback (DVCLive in the pipeline).
On CUDA the packed training split lives on the GPU and each batch is
augmented there at once (``training.device_batches``: same recipe, its own
generator), with bf16 autocast and channels-last; ``train.compile`` wraps
the training model in ``torch.compile``. ``train.channels_last`` (default
on) keeps the model and the batches in NHWC on CPU as well: oneDNN's
convolutions run without layout reorders there (benchmarks/bench_train.py:
the baseline's step 665 → 386 ms on AVX-512, 56% → 67% of the matmul peak
with AVX2 kernels); CUDA always trains channels-last. Running out of GPU memory fails
with a message naming ``train.batch_size``.
The checkpoint holds the weights, everything needed to rebuild the model and
the training environment (``runtime.environment``), nothing time-dependent,
so identical training gives an identical file; ``segrepro.checkpoint`` adds
the content hash every load verifies. The stage around this recipe (DVCLive
logs, resume after a kill, atomic outputs) is ``training.stage``.

``run_training`` takes the ``training.distributed.Context`` it runs in: one
process (world size 1, rank 0), or under torchrun (``WORLD_SIZE > 1``) one
rank of a data-parallel job with the global batch kept at
``train.batch_size``; ``training.distributed`` explains how N processes
reproduce one. The recipe reads the same either way; a one-process context's
operations are the plain ones, so the result is the single-process one, bit
for bit.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from segrepro.checkpoint import train_record
from segrepro.data.camvid import CLASSES
from segrepro.data.class_weights import WEIGHTING_SCHEMES, card_weights
from segrepro.data.dataset import load_split
from segrepro.data.transforms import augment
from segrepro.errors import SegreproError
from segrepro.inference import predict
from segrepro.metrics.confusion import confusion_matrix, scores
from segrepro.models.build import build_model, model_kwargs
from segrepro.params import Params, Train
from segrepro.params_ranges import OPTIMIZERS
from segrepro.runtime import environment, make_deterministic
from segrepro.training import resume
from segrepro.training.device_batches import DeviceBatches
from segrepro.training.distributed import Context

EpochCallback = Callable[[int, dict[str, float]], None]
StepCallback = Callable[[float], None]
StateCallback = Callable[[dict[str, Any]], None]


def lr_schedule(optimizer: torch.optim.Optimizer, total: int, warmup: int,
                power: float) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-iteration LR of ``total`` iterations: ``warmup`` linear steps, then poly decay to 0.

    Iteration ``it`` trains at ``lr · (it + 1) / warmup`` while ``it < warmup``
    and at ``lr · (1 − (it − warmup) / (total − warmup))^power`` after (0 past
    the end), for every parameter group's own ``lr``. torch's schedulers update
    the rate multiplicatively from the last one, so the values equal that
    closed form up to rounding (``tests/training/test_lr_schedule.py``: within
    1e-9 relative; the same float32 step sizes on the default run).
    """
    sched = torch.optim.lr_scheduler
    decay = sched.PolynomialLR(optimizer, total_iters=max(total - warmup, 1), power=power)
    if warmup == 0:
        return decay
    # (k + 1) / warmup at step k: from 1/warmup at k = 0 to 1 at k = warmup - 1.
    ramp = sched.LinearLR(optimizer, start_factor=1 / warmup, end_factor=1.0, total_iters=max(warmup - 1, 1))
    return sched.SequentialLR(optimizer, [ramp, decay], milestones=[warmup])


def class_weights(processed: Path, scheme: str, device: torch.device) -> torch.Tensor | None:
    """The loss's class weights for ``train.class_weighting`` (None: unweighted)."""
    if scheme not in WEIGHTING_SCHEMES:
        raise SegreproError(f"train.class_weighting {scheme!r} is unknown; use one of {', '.join(WEIGHTING_SCHEMES)}")
    if WEIGHTING_SCHEMES[scheme] is None:
        return None
    table_name, exponent = WEIGHTING_SCHEMES[scheme]
    card_path = Path(processed) / "card.json"
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:   # missing, unreadable, not UTF-8, not JSON
        raise SegreproError(f"{card_path} cannot be read ({exc}); rerun `dvc repro preprocess`") from exc
    weights = torch.tensor(card_weights(card, table_name, CLASSES, card_path), dtype=torch.float64)
    return (weights ** exponent).to(torch.float32).to(device)


def param_groups(model: nn.Module, lr: float) -> list[dict[str, Any]]:
    """One optimiser group at ``lr``, plus one per distinct ``lr_scale`` a submodule declares."""
    scaled: dict[float, list[nn.Parameter]] = {}
    claimed: set[int] = set()
    for module in model.modules():
        scale = getattr(module, "lr_scale", None)
        if scale is None:
            continue
        for p in module.parameters():
            if id(p) not in claimed:
                claimed.add(id(p))
                scaled.setdefault(float(scale), []).append(p)
    groups = [{"params": [p for p in model.parameters() if id(p) not in claimed], "lr": lr}]
    groups += [{"params": ps, "lr": lr * scale} for scale, ps in sorted(scaled.items())]
    return groups


def make_optimizer(model: nn.Module, t: Train) -> torch.optim.Optimizer:
    """``train.optimizer`` over ``param_groups``: SGD with momentum, or AdamW.

    AdamW (Loshchilov & Hutter) takes ``train.momentum`` as β1 (the same role:
    the decay of the gradient average), β2 = 0.999 and ε = 1e-8 (torch's
    defaults), and ``train.weight_decay`` as its decoupled decay; every
    parameter decays, as under SGD (no norm/bias exclusion). It runs torch's
    fused kernel (one pass over each tensor instead of a chain of element-wise
    ops): 2.3x faster than the per-tensor loop on this project's CPU, about 10%
    of the baseline's training step (README, bench_train); same update rule,
    last-bit rounding differs. SGD keeps its default implementation, so SGD
    checkpoints (the GPU profile's pins) are unchanged.
    """
    groups = param_groups(model, t.lr)
    if t.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    if t.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=t.lr, betas=(t.momentum, 0.999), weight_decay=t.weight_decay,
                                 fused=True)
    raise SegreproError(f"train.optimizer {t.optimizer!r} is unknown; use one of {', '.join(OPTIMIZERS)}")


def _step(trained: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
          weight: torch.Tensor | None, ignore_index: int, ctx: Context, cuda: bool) -> float:
    """One optimiser step on a batch; returns the (global) mean loss. A non-finite loss updates nothing."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=cuda):
        logits = trained(x)
    loss, value = ctx.cross_entropy(logits.float(), y, ignore_index, weight)
    if math.isfinite(value):
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return value


def cpu_batch(split: Any, idx: torch.Tensor, crop: tuple[int, int], t: Train, ignore_index: int,
              generator: torch.Generator, input_norm: str, channels_last: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The training batch ``idx`` of ``split``, augmented on the CPU as the recipe ``t`` says
    (``data.transforms.augment``: scale, crop, flip, ``input_norm``), channels-last when asked."""
    x, y = augment(split.images[idx], split.labels[idx], crop, (t.scale_min, t.scale_max), t.flip,
                   ignore_index, generator, input_norm)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y


def validate(model: nn.Module, params: Params, val_split: Any, device: torch.device) -> float:
    pred = predict(model, val_split.images, params.runtime.inference_batch_size, device)
    b = params.base
    return scores(confusion_matrix(pred, val_split.labels, b.num_classes, b.ignore_index))["miou"]


def run_training(params: Params, method: str, seed: int, processed: Path, ctx: Context,
                 on_epoch: EpochCallback | None = None,
                 on_step: StepCallback | None = None,
                 start: dict[str, Any] | None = None,
                 on_state: StateCallback | None = None) -> tuple[dict[str, Any], dict[str, float]]:
    """Train one (method, seed); return the checkpoint state and the last epoch's metrics.

    ``ctx`` comes from ``distributed.process_group``. Under torchrun every
    rank returns the same weights and rank 0's metrics; only rank 0 validates
    and calls ``on_epoch``/``on_step``. ``on_state`` receives, after every epoch but
    the last, the full training state (``training.resume``); passing such a
    state back as ``start`` continues after its epoch exactly as the
    uninterrupted run would have (single process only).
    """
    t, base = params.train, params.base
    device = ctx.device
    generator = make_deterministic(seed, params.runtime.threads, device)
    ctx.share_threads(params.runtime.threads)
    train_split, val_split = load_split(processed, "train"), load_split(processed, "val")
    weight = class_weights(processed, t.class_weighting, device)
    kwargs = model_kwargs(params.model, method, base.num_classes)
    model = build_model(**kwargs).to(device)
    cuda = device.type == "cuda"
    nhwc = cuda or t.channels_last
    if nhwc:
        model = model.to(memory_format=torch.channels_last)
    # DDP wrapper for the training steps; ``model`` stays the plain module for validation and saving.
    trained = ctx.wrap(model)
    if t.compile:
        trained = torch.compile(trained)
    optimizer = make_optimizer(model, t)
    n = len(train_split)
    batch = min(t.batch_size, n)
    steps_per_epoch = n // batch
    # Every rank augments the whole global batch (same generator draws) and keeps its rows.
    rows = ctx.local_rows(batch)
    total = steps_per_epoch * t.epochs
    warmup = round(t.warmup_epochs * steps_per_epoch)
    schedule = lr_schedule(optimizer, total, warmup, t.poly_power)
    main = ctx.is_main
    on_device = (DeviceBatches(train_split.images, train_split.labels, (t.crop_height, t.crop_width),
                               (t.scale_min, t.scale_max), t.flip, base.ignore_index, device, seed,
                               model.input_norm)
                 if cuda else None)
    it, last, first = 0, {}, 0
    device_generator = None if on_device is None else on_device.generator
    if start is not None:
        model.load_state_dict(start["model"])
        optimizer.load_state_dict(start["optimizer"])
        schedule.load_state_dict(start["scheduler"])
        resume.restore_rng(start["rng"], generator, device_generator)
        it, last, first = start["it"], dict(start["last"]), start["epoch"] + 1
    for epoch in range(first, t.epochs):
        trained.train()
        order = torch.randperm(n, generator=generator)
        losses = []
        for step in range(steps_per_epoch):
            idx = order[step * batch:(step + 1) * batch]
            if on_device is not None:
                x, y = on_device(idx.to(device))  # channels-last (B, 3, h, w), (B, h, w), on the GPU
            else:
                x, y = cpu_batch(train_split, idx, (t.crop_height, t.crop_width), t, base.ignore_index,
                                 generator, model.input_norm, nhwc)
            x, y = x[rows], y[rows]  # (batch/world, 3, h, w), (batch/world, h, w): all rows in one process
            try:
                value = _step(trained, optimizer, x, y, weight, base.ignore_index, ctx, cuda)
            except torch.cuda.OutOfMemoryError as exc:
                raise SegreproError(f"out of GPU memory at train.batch_size {t.batch_size} (crop "
                                    f"{t.crop_height}x{t.crop_width}); lower train.batch_size") from exc
            if not math.isfinite(value):
                raise SegreproError(f"training diverged (loss {value}) at epoch {epoch}, "
                                    f"step {step}; lower train.lr")
            schedule.step()
            losses.append(value)
            it += 1
            if main and on_step is not None:
                on_step(value)
        if main:
            last = {"train_loss": sum(losses) / len(losses)}
            if (epoch + 1) % t.val_every == 0 or epoch + 1 == t.epochs:
                last["val_miou"] = validate(model, params, val_split, device)
            if on_epoch is not None:
                on_epoch(epoch, last)
            if on_state is not None and epoch + 1 < t.epochs:
                on_state({"epoch": epoch, "it": it, "last": dict(last), "model": model.state_dict(),
                          "optimizer": optimizer.state_dict(), "scheduler": schedule.state_dict(),
                          "rng": resume.capture_rng(generator, device_generator)})
        ctx.barrier()
    last = ctx.broadcast_from_main(last)
    state = {
        "model": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "build": kwargs,
        "method": method,
        "seed": seed,
        "train": train_record(params),
        "environment": environment(device),
    }
    return state, last
