"""One-shot GPU check: the CUDA code paths run and what they cost.

1. ``run_training`` on CUDA (bf16 autocast, channels-last, pinned memory) for
   every method for a few epochs on real CamVid arrays: loss finite and
   falling, validation mIoU computed.
2. ``bench_modules``-style cost table on CUDA at the default params.
(The boundary metrics have their own CUDA run: ``bench_boundary.py --device cuda``
and the CUDA test in ``tests/metrics/test_boundary.py``.)

Choices: each problem is one line (``gpu_check: error: ...``, exit status 2),
checked in this order before anything is written: ``--params`` not a valid
params file, ``--processed`` not a folder, ``--out`` a file, then no usable
CUDA device (this check has no CPU mode; ``gpu_profile.sh --cpu-tiny`` is the
CPU dry run of the same training code). An error of the training itself
(``SegreproError``) is one line too. ``gpu_check.json`` is written
atomically, last, so it exists only when every check ran.

    python benchmarks/gpu_check.py --processed <packed splits> --out <dir>
"""
from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import time
from pathlib import Path

import torch

from bench_args import run_cli
from segrepro.atomic import write_error, write_json
from segrepro.errors import SegreproError
from segrepro.params import load_params
from segrepro.training.distributed import process_group
from segrepro.training.train import run_training


def check_training(params_path: str, processed: Path, epochs: int) -> list[dict]:
    params = load_params(params_path)
    params = dataclasses.replace(params, runtime=dataclasses.replace(params.runtime, device="cuda"),
                                 train=dataclasses.replace(params.train, epochs=epochs))
    rows = []
    for method in params.base.methods:
        history: list[dict] = []
        start = time.perf_counter()
        with process_group(params.runtime.device, params.train.batch_size) as ctx:
            _, last = run_training(params, method, 0, processed, ctx, on_epoch=lambda e, m: history.append(dict(m)))
        torch.cuda.synchronize()
        rows.append({"method": method, "seconds": time.perf_counter() - start, "history": history})
        print(method, f"{rows[-1]['seconds']:.1f}s", history, flush=True)
        assert all(torch.isfinite(torch.tensor(h["train_loss"])) for h in history)
    return rows


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--processed", type=Path, required=True)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--out", type=Path, required=True)
    return p


def main(argv: list[str] | None = None) -> int:
    """Check the arguments and the device, then train and time on CUDA; exit status 2 with one line."""
    return run_cli("gpu_check", parser(), run, argv)


def run(args: argparse.Namespace) -> None:
    load_params(args.params)
    if not args.processed.is_dir():
        raise SegreproError(f"--processed {args.processed} is not a folder; pass the processed splits "
                            f"(`segrepro preprocess` writes them, e.g. data/processed)")
    if args.out.exists() and not args.out.is_dir():
        raise SegreproError(f"--out {args.out} is a file; pass a folder for the check's JSON (made if missing)")
    if not torch.cuda.is_available():
        raise SegreproError("no CUDA device is usable here (torch.cuda.is_available() is false); run this "
                            "check on a GPU machine, or the CPU dry run of the same code: "
                            "benchmarks/gpu_profile.sh --cpu-tiny")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(args.out, exc, directory=True) from None
    print(torch.__version__, torch.cuda.get_device_name(0), flush=True)
    result = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
              "training": check_training(args.params, args.processed, args.epochs)}
    bench = subprocess.run([sys.executable, "benchmarks/bench_modules.py", "--params", args.params,
                            "--device", "cuda", "--repeats", "20", "--json", str(args.out / "modules_cuda.json")],
                           capture_output=True, text=True)
    print(bench.stdout, bench.stderr, flush=True)
    write_json(args.out / "gpu_check.json", result)


if __name__ == "__main__":
    sys.exit(main())
