"""One-shot GPU check: the CUDA code paths run and what they cost.

1. ``run_training`` on CUDA (bf16 autocast, channels-last, pinned memory) for
   every method for a few epochs on real CamVid arrays: loss finite and
   falling, validation mIoU computed.
2. ``bench_modules``-style cost table on CUDA at the default params.
(The boundary metrics have their own CUDA run: ``bench_boundary.py --device cuda``
and the CUDA test in ``tests/metrics/test_boundary.py``.)

    python benchmarks/gpu_check.py --processed <packed splits> --out <dir>
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--processed", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(torch.__version__, torch.cuda.get_device_name(0), flush=True)
    result = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
              "training": check_training(args.params, args.processed, args.epochs)}
    bench = subprocess.run([sys.executable, "benchmarks/bench_modules.py", "--params", args.params,
                            "--device", "cuda", "--repeats", "20", "--json", str(args.out / "modules_cuda.json")],
                           capture_output=True, text=True)
    print(bench.stdout, bench.stderr, flush=True)
    (args.out / "gpu_check.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
