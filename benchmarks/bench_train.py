"""CPU training-step benchmark that names the machine class it ran on (issue 9 §1, §3).

This module is its command line; each measurement lives in a module of its
own, named below. In one process, on the CPU only, it prints and (``--json``)
writes:

* the machine class first (``cpu_class``: ATen capability, CPU model,
  threads, torch, the ISA MKL and oneDNN report, ISA caps);
* the fp32 matmul peak and the rate of the step's typical convolution
  (``host_speed``), best of ``--repeats``;
* per method or ablation variant in ``--methods``, one training step as
  ``run_training`` takes it, NCHW and channels_last, at params.yaml's batch
  and crop (or ``--crop``): median ms of ``--steps`` after ``--warmup``,
  img/s, counted GFLOP/s and % of the matmul peak (``train_step_timing``);
* ``--epoch-breakdown [METHOD]``: one real epoch on ``--data``, split by phase
  (``epoch_breakdown``);
* ``--emulate-avx2``: all of it again as an AVX2-only CPU would run it,
  labelled "emulated (ISA caps)" (``avx2_emulation``).

Tables are aligned text, or Markdown with ``--markdown`` (``bench_train_report``).
Targets print as PASS/FAIL lines: baseline step ≥ 60% of the matmul peak.
Every argument is checked (``--data`` read, the ``--json`` path tried:
``bench_args.check_json``) before anything is measured or printed, so a
mistake is one ``bench_train: error:`` line on stderr, exit status 2, and
nothing on stdout. The measurements run after
``make_deterministic(0, threads)``, as training does (the machine line is
taken before it); ``--threads`` defaults to ``runtime.threads``.

``--host-only`` stops after the machine line and the matmul/conv rates (a few
seconds): how fast this host is *now*, which ``scripts/pipeline`` prints around
``dvc repro`` (why: docs/results.md, "Slow-host days").

    python benchmarks/bench_train.py [--methods baseline sdn] [--steps 10] [--threads 2]
        [--crop 112 144] [--epoch-breakdown [METHOD] --data data/processed]
        [--emulate-avx2] [--json out.json] [--markdown] [--host-only]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from avx2_emulation import emulate_avx2
from bench_args import check_json, check_methods
from bench_train_report import report
from cpu_class import CPU, check_threads, describe_machine, machine_summary
from epoch_breakdown import epoch_breakdown, load_data
from host_speed import conv_rates, matmul_peak
from segrepro.atomic import write_json
from segrepro.errors import SegreproError
from segrepro.models.methods import METHOD_NAMES
from segrepro.params import load_params
from segrepro.runtime import make_deterministic
from train_step_timing import bench_method, peak_targets


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Check every argument, then measure and print what ``args`` ask for; the result as one dict."""
    params = load_params(args.params)
    threads = check_threads(args.threads if args.threads is not None else params.runtime.threads)
    crop = tuple(args.crop) if args.crop else (params.train.crop_height, params.train.crop_width)
    if min(crop) < 1 or args.steps < 1 or args.warmup < 0 or args.repeats < 1:
        raise SegreproError("--crop, --steps and --repeats must be ≥ 1 and --warmup ≥ 0")
    if args.host_only and (args.epoch_breakdown or args.emulate_avx2):
        raise SegreproError("--host-only times no training step; drop --epoch-breakdown / --emulate-avx2, "
                            "or drop --host-only")
    methods = [] if args.host_only else args.methods
    check_methods(methods, params)
    if args.epoch_breakdown:
        check_methods([args.epoch_breakdown], params, "--epoch-breakdown")
    check_json(args.json)  # a directory or unwritable place, before the measurements
    data = load_data(Path(args.data), params.train.class_weighting) if args.epoch_breakdown else None  # fail early
    machine = describe_machine(threads)
    if args.expect_capability and machine["cpu_capability"] != args.expect_capability:
        raise SegreproError(f"the emulated run reports {machine['cpu_capability']}, not {args.expect_capability}: "
                            "the ISA caps were not honoured")
    summary = machine_summary(machine)
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
    result["targets"] = peak_targets(result["steps"])
    report(result, args.markdown)
    return result


def parser() -> argparse.ArgumentParser:
    """The flags README.md and scripts/pipeline use; ``--expect-capability`` is for the emulated child only."""
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
    """Run, add the emulated run where asked, write ``--json``; exit status 2 with one line on a refusal."""
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
