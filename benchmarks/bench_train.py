"""CPU training-step benchmark that names the machine class it ran on (issue 9 §1, §3).

What it measures, in one process, on the CPU only:

* the machine class: ``torch.backends.cpu.get_cpu_capability()`` (the ATen kernel
  ISA), the CPU model from ``/proc/cpuinfo``, threads, torch version, the ISA
  MKL and oneDNN report in verbose mode (MKL names it on Intel CPUs only: on an
  AMD EPYC its banner is silent, "unknown"), and whether ISA caps are set;
* the fp32 matmul peak (2048³, ``torch.mm``, best of ``--repeats``; 2·n³ FLOPs)
  and the rate of a 3×3 conv 128→128 forward at the shape ResNet-18's layer2
  sees in the training step (batch, 128, crop/8), NCHW and channels_last;
* per method (or ablation variant), one training step as ``run_training`` takes
  it on CPU (forward, cross-entropy ignoring void, ``.item()``, zero_grad,
  backward, the recipe's optimiser step, ``train.make_optimizer``) at params.yaml's batch and crop,
  on a fixed synthetic batch (augmentation is not in it), after
  ``make_deterministic`` as in training. With ``train.class_weighting`` set the
  loss is weighted with unit weights (the values do not change the cost);
  eager mode even where ``train.compile`` is set. ms/step is the median of
  ``--steps`` after ``--warmup`` steps, timed with plain ``time.perf_counter``
  (CPU ops are synchronous, and each sample is one state-mutating step, which
  ``torch.utils.benchmark.Timer`` is not built for); then img/s, counted
  GFLOP/s and % of the matmul peak, NCHW and channels_last (model and input);
* ``--epoch-breakdown [METHOD]``: one real epoch of the recipe on ``--data``
  (seed 0, card.json class weights, ``train.lr_schedule``)
  split into augmentation, forward (+ loss), backward (zero_grad + backward),
  optimizer (SGD step + schedule), validation (``train.validate``: predict over
  val + confusion + mIoU, run once; the recipe runs it every ``val_every``
  epochs, so its amortised share is printed too) and the rest, in s and %.

FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` over forward + loss +
backward of one step (a multiply-add = 2 FLOPs). It counts convolutions
(including ``convolution_backward``) and matmul-like ops only; element-wise
work (BatchNorm, ReLU, adds, the LSTM gates of PDN, softmax/cross-entropy,
bilinear resizes), gathers (``grid_sample``, indexing — DDSM's sampling) and
the SGD update are free to it. "Counted GFLOP/s" therefore understates the
work done, most for methods heavy in element-wise or gather work; % of the
matmul peak is an efficiency of the counted part, not of the whole step.

Emulated numbers (``--emulate-avx2``: the script reruns itself with
``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2``
and the child checks that PyTorch reports AVX2): the caps make ATen, oneDNN
and MKL run their AVX2 kernels, so the instruction mix matches an AVX2-only
machine (e.g. the 2-core AMD EPYC Zen 3), but the cache sizes, memory
bandwidth, clocks and core count stay this machine's. Read them as an
approximation of the AVX2 class, labelled "emulated (ISA caps)"; only numbers
labelled "measured" come from the named machine as it is.

Targets print as PASS/FAIL lines: baseline step ≥ 60% of the matmul peak.

``--host-only`` stops after the machine line and the matmul/conv rates (a few
seconds): how fast this host is *now*, which ``scripts/pipeline`` prints around
``dvc repro`` (why: README, "Slow-host days").

    python benchmarks/bench_train.py [--methods baseline sdn] [--steps 10] [--threads 2]
        [--crop 112 144] [--epoch-breakdown [METHOD] --data data/processed]
        [--emulate-avx2] [--json out.json] [--markdown] [--host-only]
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from segrepro.atomic import write_json
from segrepro.data.dataset import Split, load_split
from segrepro.data.transforms import augment
from segrepro.errors import SegreproError
from segrepro.models.build import build_model, model_kwargs
from segrepro.models.methods import METHOD_NAMES
from segrepro.params import load_params
from segrepro.runtime import check_capability, machine_description, make_deterministic
from segrepro.training.train import class_weights, lr_schedule, make_optimizer, validate

CAPS = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
LAYOUTS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}
TARGET = 0.60  # baseline step ≥ 60% of the matmul peak
CPU = torch.device("cpu")


def check_threads(threads: int) -> int:
    available = len(os.sched_getaffinity(0))
    if threads < 1 or threads > available:
        raise SegreproError(f"--threads {threads} is not usable: this process may run on {available} "
                            f"CPU(s); pass --threads between 1 and {available}")
    return threads


def library_isa() -> dict[str, str]:
    """ISA named by MKL's and oneDNN's verbose banners (captured from fd 1); 'unknown' if silent."""
    sys.stdout.flush()
    libc = ctypes.CDLL(None)
    with tempfile.TemporaryFile() as tmp:
        saved = os.dup(1)
        os.dup2(tmp.fileno(), 1)
        try:
            with torch.backends.mkl.verbose(torch.backends.mkl.VERBOSE_ON):
                torch.ones(64, 64) @ torch.ones(64, 64)
            x = torch.ones(8, 128, 14, 18).contiguous(memory_format=torch.channels_last)
            with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
                F.conv2d(x, torch.ones(128, 128, 3, 3), padding=1)
        finally:
            libc.fflush(None)
            os.dup2(saved, 1)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read().decode(errors="replace")
    mkl = re.search(r"\(Intel\(R\) (AVX[\w-]*)\)", text)
    dnn = re.search(r"cpu,isa:([^\n,]*)", text)
    return {"mkl": mkl.group(1) if mkl else "unknown", "onednn": dnn.group(1).strip() if dnn else "unknown"}


def describe_machine(threads: int) -> dict[str, Any]:
    """``runtime.machine_description`` (capability, CPU model, threads, torch) plus ISA details."""
    check_capability()  # before anything else reads the (cached) capability
    torch.set_num_threads(threads)
    caps = {k: os.environ[k] for k in CAPS if os.environ.get(k)}
    return {**machine_description(CPU), "cpus_available": len(os.sched_getaffinity(0)),
            "library_isa": library_isa(), "isa_caps": caps, "label": "emulated (ISA caps)" if caps else "measured"}


def best_seconds(fn: Any, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_peak(repeats: int, n: int = 2048) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n ** 3 / best_seconds(lambda: torch.mm(a, b), repeats) / 1e9


def conv_rates(batch: int, crop: tuple[int, int], repeats: int) -> dict[str, float]:
    shape = (batch, 128, max(1, crop[0] // 8), max(1, crop[1] // 8))
    flops = 2 * shape[0] * 128 * shape[2] * shape[3] * 128 * 9
    w = torch.randn(128, 128, 3, 3)
    out = {}
    for name, fmt in LAYOUTS.items():
        x = torch.randn(shape).contiguous(memory_format=fmt)
        with torch.no_grad():
            out[name] = flops / best_seconds(lambda: F.conv2d(x, w, padding=1), repeats) / 1e9
    return out


def loss_fn(logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None, ignore: int) -> torch.Tensor:
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
    """One step as ``run_training`` takes it on CPU: forward, loss + .item(), zero_grad, backward, SGD step."""
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
        x, y = augment(train_split.images[idx], train_split.labels[idx], crop, (t.scale_min, t.scale_max),
                       t.flip, base.ignore_index, gen)
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


def table(headers: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = [headers, ["---"] * len(headers), *rows]
        return "\n".join("| " + " | ".join(r) + " |" for r in lines)
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in [headers, *rows])


def report(result: dict[str, Any], markdown: bool) -> None:
    m, label = result["machine"], result["machine"]["label"]
    print(f"[{label}] fp32 matmul peak 2048³: {result['peak_gflops']:.1f} GFLOP/s; conv3×3 128ch "
          + ", ".join(f"{k} {v:.1f}" for k, v in result["conv_gflops"].items()) + " GFLOP/s")
    if result["steps"]:
        print(f"\nTraining step, {label}, batch {result['batch']}, crop {result['crop'][0]}×{result['crop'][1]}, "
              f"threads {m['threads']}, {m['cpu_capability']}:")
        cols = (("ms", "ms", 0), ("img/s", "img_s", 1), ("GFLOP/s", "gflops", 1), ("% peak", "pct_peak", 0))
        heads = ["method", "GFLOP/step"] + [f"{lay} {c}" for lay in LAYOUTS for c, _, _ in cols]
        print(table(heads, [[r["method"], f"{r['gflop']:.2f}"] + [f"{r[lay][k]:.{d}f}" for lay in LAYOUTS
                                                                 for _, k, d in cols]
                            for r in result["steps"]], markdown))
    if result.get("breakdown"):
        b = result["breakdown"]
        print(f"\nOne epoch, {label}, {b['method']}: {b['steps']} steps of {b['batch']}, total {b['total_s']:.1f} s")
        print(table(["phase", "s", "%"], [[k, f"{v['s']:.2f}", f"{v['pct']:.1f}"] for k, v in b["parts"].items()],
                    markdown))
        print(f"Validation runs every {b['val_every']} epoch(s): {b['validation_amortised_pct']:.1f}% of an "
              "average epoch")
    if result["eager_note"]:
        print(result["eager_note"])
    for line in result["targets"]:
        print(f"[{label}] {line}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    params = load_params(args.params)
    threads = check_threads(args.threads if args.threads is not None else params.runtime.threads)
    crop = tuple(args.crop) if args.crop else (params.train.crop_height, params.train.crop_width)
    if min(crop) < 1 or args.steps < 1 or args.warmup < 0 or args.repeats < 1:
        raise SegreproError("--crop, --steps and --repeats must be ≥ 1 and --warmup ≥ 0")
    if args.host_only and (args.epoch_breakdown or args.emulate_avx2):
        raise SegreproError("--host-only times no training step; drop --epoch-breakdown / --emulate-avx2, "
                            "or drop --host-only")
    methods = [] if args.host_only else args.methods
    variants = tuple(params.model.variants)  # ablation variants
    unknown = [m for m in methods if m not in METHOD_NAMES + variants]
    if unknown or args.epoch_breakdown and args.epoch_breakdown not in METHOD_NAMES + variants:
        raise SegreproError(f"unknown method {(unknown or [args.epoch_breakdown])[0]!r}; choose from "
                            f"{', '.join(METHOD_NAMES + variants)}")
    data = load_data(Path(args.data), params.train.class_weighting) if args.epoch_breakdown else None  # fail early
    machine = describe_machine(threads)
    if args.expect_capability and machine["cpu_capability"] != args.expect_capability:
        raise SegreproError(f"the emulated run reports {machine['cpu_capability']}, not {args.expect_capability}: "
                            "the ISA caps were not honoured")
    isa, caps = machine["library_isa"], " ".join(f"{k}={v}" for k, v in machine["isa_caps"].items())
    summary = (f"capability {machine['cpu_capability']} | {machine['cpu_model']} | threads {threads} | torch "
               f"{machine['torch']} | MKL {isa['mkl']}, oneDNN {isa['onednn']} | ISA caps: {caps or 'none'}")
    print(f"[{machine['label']}] {summary}", flush=True)
    make_deterministic(0, threads, CPU)
    peak = matmul_peak(args.repeats)
    eager_note = ("note: train.compile is true, but this benchmark times eager mode" if params.train.compile
                  else "")
    result = {"machine": machine, "summary": summary, "eager_note": eager_note, "peak_gflops": peak,
              "batch": params.train.batch_size, "crop": list(crop),
              "conv_gflops": conv_rates(params.train.batch_size, crop, args.repeats),
              "steps": [bench_method(params, m, crop, args.warmup, args.steps, peak) for m in methods]}
    if args.epoch_breakdown:
        result["breakdown"] = epoch_breakdown(params, args.epoch_breakdown, data, crop, threads)
    base = next((r for r in result["steps"] if r["method"] == "baseline"), None)
    if base:
        result["targets"] = [f"{'PASS' if base[lay]['pct_peak'] >= 100 * TARGET else 'FAIL'} baseline step {lay} "
                             f"{base[lay]['pct_peak']:.0f}% of the matmul peak (target ≥ {TARGET:.0%})"
                             for lay in LAYOUTS]
    else:
        result["targets"] = ["SKIP baseline step target: baseline not benchmarked"] if methods else []
    report(result, args.markdown)
    return result


def child_argv(args: argparse.Namespace, threads: int, out: Path) -> list[str]:
    argv = [sys.executable, __file__, "--params", args.params, "--threads", str(threads), "--steps", str(args.steps),
            "--warmup", str(args.warmup), "--repeats", str(args.repeats), "--methods", *args.methods,
            "--json", str(out), "--expect-capability", "AVX2"]
    argv += ["--crop", *map(str, args.crop)] if args.crop else []
    argv += ["--epoch-breakdown", args.epoch_breakdown, "--data", args.data] if args.epoch_breakdown else []
    return argv + (["--markdown"] if args.markdown else [])


def emulate_avx2(args: argparse.Namespace, measured: dict[str, Any]) -> dict[str, Any] | None:
    machine = measured["machine"]
    if machine["cpu_capability"] != "AVX512" or machine["isa_caps"]:
        print(f"--emulate-avx2: nothing to emulate (capability {machine['cpu_capability']}, ISA caps "
              f"{machine['isa_caps'] or 'none'}); only the measured table is shown")
        return None
    print("\n--emulate-avx2: rerunning under ISA caps " + " ".join(f"{k}={v}" for k, v in CAPS.items()), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "emulated.json"
        done = subprocess.run(child_argv(args, int(machine["threads"]), out), env={**os.environ, **CAPS})
        if done.returncode != 0:
            raise SegreproError(f"the emulated (ISA caps) run failed with exit {done.returncode} (see above)")
        return json.loads(out.read_text())["emulated"]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--methods", nargs="+", default=list(METHOD_NAMES), help="methods or ablation variants")
    p.add_argument("--steps", type=int, default=10, help="timed steps per method and layout (median)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before them")
    p.add_argument("--repeats", type=int, default=5, help="matmul/conv repeats (best of)")
    p.add_argument("--threads", type=int, help="default: runtime.threads from params")
    p.add_argument("--crop", type=int, nargs=2, metavar=("H", "W"), help="default: train crop from params")
    p.add_argument("--epoch-breakdown", nargs="?", const="baseline", metavar="METHOD", help="default: baseline")
    p.add_argument("--data", default="data/processed", help="processed CamVid for --epoch-breakdown")
    p.add_argument("--emulate-avx2", action="store_true")
    p.add_argument("--json", help="write every number here (atomically)")
    p.add_argument("--markdown", action="store_true", help="README-ready tables")
    p.add_argument("--host-only", action="store_true", help="machine line and matmul/conv rates only (no steps)")
    p.add_argument("--expect-capability", help=argparse.SUPPRESS)  # set by --emulate-avx2 for its child
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        result = run(args)
        results = {"emulated" if result["machine"]["isa_caps"] else "measured": result}
        if args.emulate_avx2:
            emulated = emulate_avx2(args, result)
            if emulated is not None:
                results["emulated"] = emulated
        if args.json:
            write_json(args.json, results)
    except SegreproError as exc:
        print(f"bench_train: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
