"""Where one real CPU training epoch's time goes: augmentation, forward, backward, optimizer, validation.

``epoch_breakdown`` runs one epoch of the recipe on the processed data
(``bench_train.py --epoch-breakdown [METHOD] --data DIR``): seed 0 through
``make_deterministic``, the card.json class weights of
``train.class_weighting``, ``train.make_optimizer`` and ``train.lr_schedule``
sized for the whole run, batches as ``run_training`` draws them. Each phase is
timed with ``time.perf_counter`` and summed over the epoch:

* augment: ``data.transforms.augment`` of the batch;
* forward: the model and the loss, up to ``.item()``;
* backward: zero_grad + backward;
* optimizer: the optimiser step + the schedule's step;
* validation: ``train.validate`` (predict over val + confusion + mIoU), run
  once. The recipe runs it every ``train.val_every`` epochs, so its amortised
  share of an average epoch is given too;
* other: the rest of the epoch's wall time (batch indexing, loop overhead).

Like ``run_training`` on the CPU, the model and batches are channels-last when
``train.channels_last`` says so, and ``augment`` normalises as the model's
``input_norm`` says (until 2026-12-07 this benchmark kept NCHW and ImageNet
statistics, so its epochs timed another layout than the recipe trains in).
What it does not copy: resuming, DDP, ``torch.compile`` and the CUDA path.

``load_data`` reads the splits before anything is timed, so a missing or
incomplete ``--data`` fails at once, naming ``dvc repro preprocess``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from cpu_class import CPU
from segrepro.data.dataset import Split, load_split
from segrepro.errors import SegreproError
from segrepro.models.build import build_model, model_kwargs
from segrepro.runtime import make_deterministic
from segrepro.training.train import class_weights, cpu_batch, lr_schedule, make_optimizer, validate
from train_step_timing import loss_fn


def load_data(data: Path, scheme: str) -> tuple[Split, Split, torch.Tensor | None]:
    """Train and val splits and the loss's class weights; every error names `dvc repro preprocess`."""
    if not data.is_dir():
        raise SegreproError(f"--data {data} does not exist; run `dvc repro preprocess` (or pass --data)")
    return load_split(data, "train"), load_split(data, "val"), class_weights(data, scheme, CPU)


def epoch_breakdown(params: Any, method: str, data: tuple[Split, Split, torch.Tensor | None],
                    crop: tuple[int, int], threads: int) -> dict[str, Any]:
    """One epoch of the recipe (seed 0) plus one validation, each phase timed with perf_counter."""
    t, base = params.train, params.base
    gen = make_deterministic(0, threads, CPU)
    train_split, val_split, weight = data
    model = build_model(**model_kwargs(params.model, method, base.num_classes))
    if t.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = make_optimizer(model, t)
    n = len(train_split)
    batch = min(t.batch_size, n)
    total_it = n // batch * t.epochs
    schedule = lr_schedule(opt, total_it, round(t.warmup_epochs * (n // batch)), t.poly_power)
    parts = dict.fromkeys(("augment", "forward", "backward", "optimizer", "validation"), 0.0)
    start = time.perf_counter()
    model.train()
    order = torch.randperm(n, generator=gen)
    for step in range(n // batch):
        idx = order[step * batch:(step + 1) * batch]
        t0 = time.perf_counter()
        x, y = cpu_batch(train_split, idx, crop, t, base.ignore_index, gen, model.input_norm, t.channels_last)
        t1 = time.perf_counter()
        loss = loss_fn(model(x), y, weight, base.ignore_index)
        loss.item()
        t2 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t3 = time.perf_counter()
        opt.step()
        schedule.step()
        t4 = time.perf_counter()
        for key, a, b in (("augment", t0, t1), ("forward", t1, t2), ("backward", t2, t3), ("optimizer", t3, t4)):
            parts[key] += b - a
    t5 = time.perf_counter()
    validate(model, params, val_split, CPU)
    end = time.perf_counter()
    parts["validation"] = end - t5
    total = end - start
    parts["other"] = total - sum(parts.values())
    # The recipe validates every val_every epochs: the validation share of an average epoch.
    amortised = parts["validation"] / t.val_every
    return {"method": method, "steps": n // batch, "batch": batch, "crop": list(crop), "total_s": total,
            "val_every": t.val_every,
            "validation_amortised_pct": 100 * amortised / (total - parts["validation"] + amortised),
            "parts": {k: {"s": v, "pct": 100 * v / total} for k, v in parts.items()}}
