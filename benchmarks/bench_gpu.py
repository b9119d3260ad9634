"""Training throughput per method against the device's dense bf16 peak, eager and compiled.

For each method the full model is trained for a few steps exactly as
``training.train`` does on CUDA (SGD, bf16 autocast, channels-last, float32
cross-entropy) at the profile's batch and crop, on random inputs; we report

* ``img_per_s`` = batch · steps / wall time (``torch.cuda.synchronize`` around);
* ``tflops`` = FLOPs of one training step (forward + backward, counted by
  ``torch.utils.flop_counter.FlopCounterMode``: convolutions and matrix
  products only, 2 FLOPs per multiply-add) · steps / wall time / 1e12;
* ``of_peak`` = tflops / the dense peak measured in the same process, in the
  dtype the step computes in: the best of a few ``N×N @ N×N`` matmuls
  (N = 8192 on a GPU), 2N³ FLOPs each; bf16 on CUDA, float32 on CPU (where
  the step runs without autocast, and a bf16 matmul is emulated on AVX2, so
  a bf16 peak would put the step at several times "100% of peak");

with and without ``torch.compile`` (the compiled row also gives the compile
time: the first steps' extra wall time). ``--batch-scaling 16 32`` adds eager
rows of the first method at those batch sizes (after every method's eager row,
before the compiled ones): whether a larger batch fills the device better,
the lever for a longer schedule in the same minutes. The augmentation itself
(``DeviceBatches``) is timed separately, in images per second. Results are
written to ``--json`` after every measurement, and measurements that would
pass ``--deadline`` seconds are skipped, so a wall-clock guard never loses
what was already measured. On CPU (the tests' tiny mode) the same code runs
in float32 autocast-off, channels-last off.

Every argument is checked before anything is measured (``bench_args``): the device
(``cuda`` by default: on a machine without CUDA, one line naming ``--device cpu``),
``--methods`` (methods or ablation variants), ``--batch``, ``--steps``, ``--peak-size`` and
every ``--batch-scaling`` size ≥ 1, ``--warmup`` and ``--compile-budget`` ≥ 0, ``--deadline``
and ``--compile-budget`` finite (a nan in either made the deadline never skip anything), and the
``--json`` path; a mistake is one ``bench_gpu: error:`` line on stderr and exit status 2,
with no JSON written. A measurement that fails once running (out of memory, a compile
error) is still an ``error`` row in the JSON, so one failure never costs a GPU window the
other rows. The JSON is replaced atomically at each save, keys in the order measured.

    python benchmarks/bench_gpu.py --params params.yaml --device cuda --json bench_gpu.json
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from bench_args import check_device, check_finite, check_json, check_methods, check_min, run_cli
from segrepro.atomic import atomic_file
from segrepro.models.build import build_model, model_kwargs
from segrepro.params import load_params
from segrepro.training.device_batches import DeviceBatches


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def compute_dtype(device: torch.device) -> torch.dtype:
    """What the training step's convolutions run in: bf16 under CUDA autocast, float32 on CPU."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def matmul_peak(device: torch.device, size: int, repeats: int = 10) -> float:
    """Best measured TFLOP/s of a (size×size)·(size×size) product in ``compute_dtype(device)``."""
    a = torch.randn(size, size, device=device, dtype=compute_dtype(device))
    b = torch.randn(size, size, device=device, dtype=compute_dtype(device))
    best = float("inf")
    for i in range(repeats + 2):
        sync(device)
        start = time.perf_counter()
        a @ b
        sync(device)
        if i >= 2:
            best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e12


def training_step(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                  ignore_index: int) -> None:
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=compute_dtype(x.device) == torch.bfloat16):
        logits = model(x)
    loss = F.cross_entropy(logits.float(), y, ignore_index=ignore_index)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def step_flops(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, ignore_index: int) -> int:
    """Counted FLOPs of one forward + backward (no optimizer step: it does no matmul)."""
    counter = FlopCounterMode(display=False)
    with counter:
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=compute_dtype(x.device) == torch.bfloat16):
            logits = model(x)
        F.cross_entropy(logits.float(), y, ignore_index=ignore_index).backward()
    model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def measure(params: Any, method: str, compiled: bool, device: torch.device, batch: int,
            crop: tuple[int, int], steps: int, warmup: int) -> dict[str, Any]:
    torch.manual_seed(0)
    model = build_model(**model_kwargs(params.model, method, params.base.num_classes)).to(device)
    x = torch.randn(batch, 3, *crop, device=device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, params.base.num_classes, (batch, *crop), device=device)
    model.train()
    flops = step_flops(model, x, y, params.base.ignore_index)
    trained = torch.compile(model) if compiled else model
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    sync(device)
    start = time.perf_counter()
    for _ in range(warmup):
        training_step(trained, opt, x, y, params.base.ignore_index)
    sync(device)
    warm = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        training_step(trained, opt, x, y, params.base.ignore_index)
    sync(device)
    seconds = time.perf_counter() - start
    step_s = seconds / steps
    row = {"method": method, "compiled": compiled, "batch": batch, "crop": list(crop),
           "step_s": step_s, "img_per_s": batch / step_s, "gflop_per_step": flops / 1e9,
           "tflops": flops / step_s / 1e12, "warmup_s": warm}
    if compiled:
        row["compile_s"] = max(0.0, warm - warmup * step_s)
    if device.type == "cuda":
        row["max_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2 ** 30
        torch.cuda.reset_peak_memory_stats(device)
    return row


def augmentation_rate(params: Any, device: torch.device, batch: int, crop: tuple[int, int],
                      steps: int) -> float:
    """Images per second of DeviceBatches on full-size random uint8 images of the profile's resolution."""
    h, w = params.preprocess.height, params.preprocess.width
    images = torch.randint(0, 256, (64, h, w, 3), dtype=torch.uint8)
    labels = torch.randint(0, params.base.num_classes, (64, h, w), dtype=torch.uint8)
    t = params.train
    batches = DeviceBatches(images, labels, crop, (t.scale_min, t.scale_max), t.flip,
                            params.base.ignore_index, device, 0)
    idx = torch.arange(batch, device=device) % 64
    batches(idx)
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        batches(idx)
    sync(device)
    return batch * steps / (time.perf_counter() - start)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--device", default="cuda", help="cuda[:N] or cpu (the tests' tiny mode)")
    p.add_argument("--methods", nargs="*", help="default: base.methods")
    p.add_argument("--batch", type=int, help="default: train.batch_size")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--compile", choices=("both", "off", "on"), default="both")
    p.add_argument("--peak-size", type=int, default=8192)
    p.add_argument("--deadline", type=float, default=600.0, help="seconds; later measurements are skipped")
    p.add_argument("--compile-budget", type=float, default=90.0,
                   help="seconds a compiled measurement may need; skipped when less is left")
    p.add_argument("--batch-scaling", type=int, nargs="*", default=[],
                   help="extra eager rows of the first method at these batch sizes")
    p.add_argument("--json", type=Path, required=True)
    return p


def main(argv: list[str] | None = None) -> int:
    """Check every argument, then measure; exit status 2 with one line on a refusal."""
    return run_cli("bench_gpu", parser(), run, argv)


def run(args: argparse.Namespace) -> None:
    t0 = time.monotonic()
    params = load_params(args.params)
    device = check_device(args.device)
    check_finite("--deadline", args.deadline)  # --compile-budget: in check_min below
    for flag, value, low in (("--steps", args.steps, 1), ("--warmup", args.warmup, 0),
                             ("--peak-size", args.peak_size, 1), ("--compile-budget", args.compile_budget, 0),
                             *(("--batch-scaling", b, 1) for b in args.batch_scaling)):
        check_min(flag, value, low)
    if args.batch is not None:
        check_min("--batch", args.batch, 1)
    check_methods(args.methods or [], params)
    check_json(args.json)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    batch = args.batch if args.batch is not None else params.train.batch_size
    crop = (params.train.crop_height, params.train.crop_width)
    result: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__, "cuda": torch.version.cuda, "batch": batch, "crop": list(crop),
        "peak_tflops": matmul_peak(device, args.peak_size), "peak_dtype": str(compute_dtype(device)).split(".")[-1],
        "peak_matmul_size": args.peak_size,
        "rows": [], "skipped": []}
    result["augment_img_per_s"] = augmentation_rate(params, device, batch, crop, args.steps)
    print(f"{result['device']}: dense {result['peak_dtype']} peak {result['peak_tflops']:.3g} TFLOP/s "
          f"({args.peak_size}³ matmul); DeviceBatches {result['augment_img_per_s']:.0f} img/s", flush=True)

    def save() -> None:
        with atomic_file(args.json) as tmp:  # in the order measured, not sorted (write_json would sort)
            tmp.write_text(json.dumps(result, indent=2) + "\n")

    save()
    methods = args.methods or list(params.base.methods)
    # Eager rows for every method first, then the batch scaling, then compiled rows: a deadline
    # costs the later rows, never the baseline numbers.
    eager = [(m, False, batch) for m in methods] + [(methods[0], False, b) for b in args.batch_scaling]
    compiled = [(m, True, batch) for m in methods]
    plan = {"off": eager, "both": eager + compiled, "on": compiled}[args.compile]
    for method, compiled, size in plan:
        left = args.deadline - (time.monotonic() - t0)
        if left < (args.compile_budget if compiled else 10.0):
            result["skipped"].append({"method": method, "compiled": compiled, "batch": size, "reason": "deadline"})
            save()
            continue
        try:
            row = measure(params, method, compiled, device, size, crop, args.steps, args.warmup)
        except torch.cuda.OutOfMemoryError:
            row = {"method": method, "compiled": compiled, "batch": size, "error": f"out of memory at batch {size}"}
            torch.cuda.empty_cache()
        except Exception as exc:  # a compile failure must not lose the other rows
            row = {"method": method, "compiled": compiled, "batch": size,
                   "error": f"{type(exc).__name__}: {exc}"[:500]}
        label = f"{method:>12} {'compiled' if compiled else 'eager':>8} b{size:<3}"
        if "tflops" in row:
            row["of_peak"] = row["tflops"] / result["peak_tflops"]
            extra = f", compile {row['compile_s']:.0f} s" if compiled else ""
            print(f"{label}: {row['img_per_s']:8.1f} img/s, {row['tflops']:7.3g} TFLOP/s "
                  f"({100 * row['of_peak']:.1f}% of peak), {row['gflop_per_step']:.0f} GFLOP/step{extra}", flush=True)
        else:
            print(f"{label}: {row['error']}", flush=True)
        result["rows"].append(row)
        save()


if __name__ == "__main__":
    sys.exit(main())
