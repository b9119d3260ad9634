"""Where a training step's time goes, per method: a ``torch.profiler`` breakdown (issue 9 §2).

``bench_train.py`` says how fast a step is and how much of it the FLOP
counter sees; this script says what the rest is. Per method (or ablation
variant) it builds the model at params.yaml's defaults in the memory format
``train.channels_last`` selects, takes ``--warmup`` untimed steps, then
profiles ``--steps`` training steps (forward, cross-entropy, zero_grad,
backward, the recipe's optimizer from ``training.train.make_optimizer``) on a
fixed synthetic batch at the recipe's batch and crop, on the CPU.

Each ATen op's *self* CPU time (time in the op, not in the ops it calls) is put
in one category by its name (``CATEGORIES``, first match wins, the rest is
"element-wise & other"); the table gives ms per step per category and, for
the modules, the difference to the baseline — the measured answer to "the
module costs N× its FLOP overhead: in what?". Self times add up to the
profiled wall time up to the profiler's own overhead (a few %); the step time
printed beside them is wall time under the profiler, a little above
``bench_train``'s.

Choices: categories by op name (stable across torch versions for these ops;
an op that falls through lands in the last row, so nothing is dropped);
``--steps`` 3 by default (the op mix is deterministic; only durations vary).
The machine class is printed first, as in ``bench_train``. Every argument is
checked before it, as there: ``--steps`` ≥ 1, ``--warmup`` ≥ 0, ``--threads``
(default ``runtime.threads``) within the CPUs this process may use
(``cpu_class.check_threads``), ``--methods`` methods or ablation variants; a
mistake is one ``profile_step: error:`` line on stderr, exit status 2.

    python benchmarks/profile_step.py [--methods baseline sdn ddsm pdn] [--steps 3] [--threads 2] [--markdown]
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

from bench_args import check_methods, check_min, run_cli
from cpu_class import check_threads, describe_machine
from segrepro.models.build import build_model, model_kwargs
from segrepro.params import load_params
from segrepro.training.train import make_optimizer
from text_table import table
from train_step_timing import train_step

# (category, op-name pattern); ops are matched in this order, the first hit wins.
CATEGORIES: tuple[tuple[str, str], ...] = (
    ("convolution (counted)", r"convolution|conv2d|conv_depthwise"),
    ("matmul (counted)", r"^aten::(mm|bmm|addmm|baddbmm|matmul)$"),
    ("unfold / shifted copies", r"im2col|col2im|unfold|^aten::(copy_|cat|clone|constant_pad_nd|reflection_pad|"
                                r"replication_pad|_to_copy|roll|narrow_copy|index_select|slice_backward)"),
    ("grid_sample / gather", r"grid_sampler|gather|scatter|index"),
    ("batch norm", r"batch_norm"),
    ("bilinear resize", r"upsample"),
    ("softmax / loss", r"softmax|nll_loss|cross_entropy"),
)
OTHER = "element-wise & other"


def category(op: str) -> str:
    for name, pattern in CATEGORIES:
        if re.search(pattern, op):
            return name
    return OTHER


def profile_method(params: Any, method: str, warmup: int, steps: int) -> dict[str, Any]:
    """ms per step, in total and per category, for ``steps`` profiled training steps."""
    t, base = params.train, params.base
    fmt = torch.channels_last if t.channels_last else torch.contiguous_format
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(t.batch_size, 3, t.crop_height, t.crop_width, generator=gen).contiguous(memory_format=fmt)
    y = torch.randint(0, base.num_classes, (t.batch_size, t.crop_height, t.crop_width), generator=gen)
    weight = None if t.class_weighting == "none" else torch.ones(base.num_classes)
    torch.manual_seed(0)
    model = build_model(**model_kwargs(params.model, method, base.num_classes)).to(memory_format=fmt).train()
    opt = make_optimizer(model, t)

    for _ in range(warmup):
        train_step(model, opt, x, y, weight, base.ignore_index)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            train_step(model, opt, x, y, weight, base.ignore_index)
        wall = time.perf_counter() - start
    per_category: dict[str, float] = {name: 0.0 for name, _ in CATEGORIES} | {OTHER: 0.0}
    for event in prof.key_averages():
        if event.key.startswith("aten::"):
            per_category[category(event.key)] += event.self_cpu_time_total / 1e3 / steps  # µs → ms per step
    return {"method": method, "step_ms": wall * 1e3 / steps, "categories": per_category}


def render(rows: list[dict[str, Any]], markdown: bool) -> str:
    names = list(rows[0]["categories"])
    reference = rows[0]
    headers = ["category"] + [r["method"] for r in rows] + [f"{r['method']} − {reference['method']}" for r in rows[1:]]
    body = [[name] + [f"{r['categories'][name]:.0f}" for r in rows]
            + [f"{r['categories'][name] - reference['categories'][name]:+.0f}" for r in rows[1:]] for name in names]
    body.append(["sum of self times"] + [f"{sum(r['categories'].values()):.0f}" for r in rows]
                + [f"{sum(r['categories'].values()) - sum(reference['categories'].values()):+.0f}" for r in rows[1:]])
    body.append(["step (wall, profiled)"] + [f"{r['step_ms']:.0f}" for r in rows]
                + [f"{r['step_ms'] - reference['step_ms']:+.0f}" for r in rows[1:]])
    return table(headers, body, markdown)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p.add_argument("--methods", nargs="+", default=None, help="default: base.methods (the first is the reference)")
    p.add_argument("--steps", type=int, default=3, help="profiled steps per method")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before them")
    p.add_argument("--threads", type=int, default=None, help="default: runtime.threads from params")
    p.add_argument("--markdown", action="store_true", help="README-ready table")
    return p


def main(argv: list[str] | None = None) -> int:
    """Check every argument, then profile and print; exit status 2 with one line on a refusal."""
    return run_cli("profile_step", parser(), run, argv)


def run(args: argparse.Namespace) -> None:
    check_min("--steps", args.steps, 1)
    check_min("--warmup", args.warmup, 0)
    params = load_params(args.params)
    threads = check_threads(args.threads if args.threads is not None else params.runtime.threads)
    methods = args.methods or list(params.base.methods)
    check_methods(methods, params)
    machine = describe_machine(threads)
    print(f"[{machine['label']}] capability {machine['cpu_capability']} | {machine['cpu_model']} | "
          f"threads {machine['threads']} | torch {machine['torch']}")
    t = params.train
    print(f"Self CPU time per training step (ms), batch {t.batch_size}, crop {t.crop_height}×{t.crop_width}, "
          f"{'channels_last' if t.channels_last else 'NCHW'}, {args.steps} profiled steps:")
    rows = [profile_method(params, m, args.warmup, args.steps) for m in methods]
    print(render(rows, args.markdown))

if __name__ == "__main__":
    sys.exit(main())
