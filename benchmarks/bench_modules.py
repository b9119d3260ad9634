"""Time overhead vs FLOP overhead of each method's module over the shared baseline.

For each method the full model (backbone + insertion + decoder) is built at
the default params, and we measure, at the evaluated input size:

* FLOPs of one forward pass (``torch.utils.flop_counter``; convolutions and
  matmuls, not element-wise work, gathers or ``grid_sample``);
* median latency of a batch-1 forward pass (inference);
* median time of a batch-8 training step at the training crop.

Overheads are relative to the baseline: ``time_ratio = t_method / t_baseline − 1``
and ``flop_ratio = f_method / f_baseline − 1``; the issue's rule flags a module
whose time overhead exceeds twice its FLOP overhead.

Every argument is checked before anything is measured (``bench_args``): the
device must be ``cpu`` or a CUDA device torch sees, ``--repeats`` ≥ 1,
``--threads`` within the CPUs this process may use (``cpu_class.check_threads``),
and the ``--json`` path writable; a mistake is one ``bench_modules: error:``
line on stderr and exit status 2. The JSON is written atomically, sorted.

    python benchmarks/bench_modules.py [--device cuda] [--repeats 10] [--threads 2] [--json out.json]
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from bench_args import check_device, check_json, check_min, run_cli
from cpu_class import check_threads
from segrepro.atomic import write_json
from segrepro.evaluation.cost import count_flops, measure_latency
from segrepro.models.build import build_model, model_kwargs
from segrepro.params import load_params


def train_step_time(model: torch.nn.Module, batch: int, height: int, width: int,
                    device: torch.device, repeats: int) -> float:
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 3, height, width, device=device)
    y = torch.randint(0, 11, (batch, height, width), device=device)
    times = []
    for i in range(repeats + 2):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--repeats", type=int, default=5, help="timed calls per measurement (median), ≥ 1")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads, 1 to the CPUs usable")
    p.add_argument("--json", help="write every number here (atomically)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Check every argument, then measure and print; exit status 2 with one line on a refusal."""
    return run_cli("bench_modules", parser(), run, argv)


def run(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    device = check_device(args.device)
    check_min("--repeats", args.repeats, 1)
    threads = check_threads(args.threads)
    check_json(args.json)
    torch.set_num_threads(threads)
    h, w = params.preprocess.height, params.preprocess.width
    t = params.train
    rows = []
    for method in params.base.methods:
        torch.manual_seed(0)
        model = build_model(**model_kwargs(params.model, method, params.base.num_classes)).to(device)
        rows.append({
            "method": method,
            "gflops": count_flops(model, h, w, device) / 1e9,
            "latency_ms": measure_latency(model, h, w, device, args.repeats) * 1e3,
            "train_step_ms": train_step_time(model, t.batch_size, t.crop_height, t.crop_width,
                                             device, args.repeats) * 1e3,
        })
    base = rows[0]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.processor() or 'cpu'}, {args.threads} threads"
    print(f"device: {name}; input {h}×{w}; train crop {t.crop_height}×{t.crop_width}, batch {t.batch_size}")
    print("| method | GFLOPs | FLOP overhead | latency (ms) | latency overhead | train step (ms) | train overhead | flag |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        r["flop_overhead"] = r["gflops"] / base["gflops"] - 1
        r["latency_overhead"] = r["latency_ms"] / base["latency_ms"] - 1
        r["train_overhead"] = r["train_step_ms"] / base["train_step_ms"] - 1
        worst = max(r["latency_overhead"], r["train_overhead"])
        r["flag"] = r["method"] != base["method"] and worst > 2 * max(r["flop_overhead"], 0.0)
        print(f"| {r['method']} | {r['gflops']:.2f} | {r['flop_overhead']:+.0%} | {r['latency_ms']:.1f} | "
              f"{r['latency_overhead']:+.0%} | {r['train_step_ms']:.0f} | {r['train_overhead']:+.0%} | "
              f"{'time > 2× FLOPs' if r['flag'] else ''} |")
    if args.json:
        write_json(args.json, {"device": name, "rows": rows})


if __name__ == "__main__":
    sys.exit(main())
