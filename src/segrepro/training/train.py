"""The shared training recipe: SGD + poly LR, cross-entropy ignoring void.

Per iteration ``lr = base_lr · (1 − it/total)^power`` (DeepLab's poly
schedule, stepped per iteration as in mmseg). Random scale/crop/flip from
``data.transforms``. After each epoch the validation mIoU is measured and
handed, with the mean training loss, to a callback (DVCLive in the pipeline).
On CUDA: bf16 autocast, channels-last, pinned host memory for the batches.
The checkpoint holds the weights and everything needed to rebuild the model,
nothing time-dependent, so identical training gives an identical file.

Under torchrun (``WORLD_SIZE > 1``) the same recipe runs data-parallel with
the global batch kept at ``train.batch_size``; ``training.distributed``
explains how N processes reproduce one. Without torchrun none of that code
runs and the result is the single-process one, bit for bit.
"""
from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from segrepro.atomic import atomic_file
from segrepro.data.dataset import load_split
from segrepro.data.transforms import augment
from segrepro.errors import SegreproError
from segrepro.evaluation.predict import predict
from segrepro.metrics.confusion import confusion_matrix, scores
from segrepro.models.build import build_model, model_kwargs
from segrepro.params import Params
from segrepro.runtime import make_deterministic, select_device
from segrepro.training import distributed

EpochCallback = Callable[[int, dict[str, float]], None]


def run_training(params: Params, method: str, seed: int, processed: Path,
                 on_epoch: EpochCallback | None = None) -> tuple[dict[str, Any], dict[str, float]]:
    """Train one (method, seed); return the checkpoint state and the last epoch's metrics.

    Under torchrun (inside ``distributed.process_group``) every rank returns
    the same weights and rank 0's metrics; only rank 0 validates and calls
    ``on_epoch``.
    """
    t, base = params.train, params.base
    ctx = distributed.current()
    device = select_device(t.device) if ctx is None else ctx.device
    generator = make_deterministic(seed, t.threads, device)
    if ctx is not None:
        distributed.share_threads(t.threads, ctx)
    train_split, val_split = load_split(processed, "train"), load_split(processed, "val")
    kwargs = model_kwargs(params.model, method, base.num_classes)
    model = build_model(**kwargs).to(device)
    cuda = device.type == "cuda"
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    # DDP wrapper for the training steps; ``model`` stays the plain module for validation and saving.
    trained = model if ctx is None else distributed.wrap_model(model, ctx)
    optimizer = torch.optim.SGD(model.parameters(), lr=t.lr, momentum=t.momentum,
                                weight_decay=t.weight_decay)
    n = len(train_split)
    batch = min(t.batch_size, n)
    steps_per_epoch = n // batch
    # Every rank augments the whole global batch (same generator draws) and keeps its rows.
    rows = None if ctx is None else distributed.local_slice(batch, ctx)
    total = steps_per_epoch * t.epochs
    it, last = 0, {}
    for epoch in range(t.epochs):
        trained.train()
        order = torch.randperm(n, generator=generator)
        losses = []
        for step in range(steps_per_epoch):
            idx = order[step * batch:(step + 1) * batch]
            x, y = augment(train_split.images[idx], train_split.labels[idx],
                           (t.crop_height, t.crop_width), (t.scale_min, t.scale_max), t.flip,
                           base.ignore_index, generator)
            if rows is not None:
                x, y = x[rows], y[rows]  # (batch/world, 3, h, w), (batch/world, h, w)
            if cuda:
                x = x.pin_memory().to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
                y = y.pin_memory().to(device, non_blocking=True)
            for group in optimizer.param_groups:
                group["lr"] = t.lr * (1 - it / total) ** t.poly_power
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                logits = trained(x)
            if ctx is None:
                loss = F.cross_entropy(logits.float(), y, ignore_index=base.ignore_index)
                value = loss.item()
            else:
                loss, value = distributed.global_mean_cross_entropy(logits.float(), y, base.ignore_index, ctx)
            if not math.isfinite(value):
                raise SegreproError(f"training diverged (loss {value}) at epoch {epoch}, "
                                    f"step {step}; lower train.lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(value)
            it += 1
        if distributed.is_main_process():
            pred = predict(model, val_split.images, params.evaluate.batch_size, device)
            val = scores(confusion_matrix(pred, val_split.labels, base.num_classes, base.ignore_index))
            last = {"train_loss": sum(losses) / len(losses), "val_miou": val["miou"]}
            if on_epoch is not None:
                on_epoch(epoch, last)
        distributed.barrier()
    last = distributed.broadcast_from_main(last)
    state = {
        "model": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "build": kwargs,
        "method": method,
        "seed": seed,
        "train": asdict(t),
    }
    return state, last


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    # Serialise through memory: torch.save names the archive after the file,
    # and the bytes must not depend on where the checkpoint is written.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with atomic_file(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def train(params: Params, method: str, seed: int, processed: Path, checkpoint: Path,
          live_dir: Path) -> dict[str, float]:
    """The train stage: log every epoch with DVCLive, then write the checkpoint atomically.

    Under torchrun only rank 0 logs and writes; the final barrier keeps the
    other ranks (and torchrun) from finishing before the checkpoint exists.
    """
    from dvclive import Live

    with distributed.process_group(params.train.device, params.train.batch_size):
        if not distributed.is_main_process():
            _, last = run_training(params, method, seed, processed)
            distributed.barrier()
            return last
        with Live(str(live_dir), dvcyaml=False, save_dvc_exp=False, report=None) as live:
            def log(epoch: int, metrics: dict[str, float]) -> None:
                live.log_metric("train/loss", metrics["train_loss"])
                live.log_metric("val/miou", metrics["val_miou"])
                live.next_step()

            state, last = run_training(params, method, seed, processed, on_epoch=log)
        save_checkpoint(state, checkpoint)
        distributed.barrier()
    return last
