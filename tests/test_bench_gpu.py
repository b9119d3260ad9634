"""benchmarks/bench_gpu.py on CPU at a tiny size: its JSON, the peak's dtype, the deadline (no timing asserted)."""
from __future__ import annotations

import json
import subprocess
import sys

import yaml

from tests.conftest import REPO, tiny_params


def run_bench(tmp_path, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(tiny_params(train={"crop_height": 32, "crop_width": 48})))
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_gpu.py"), "--params", str(params),
                          "--device", "cpu", "--methods", "baseline", "pdn", "--peak-size", "512", "--steps", "1",
                          "--warmup", "0", "--compile", "off", "--json", str(out), *extra],
                         capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 0, run.stderr
    return run, json.loads(out.read_text())


def test_cpu_rows_are_measured_against_a_float32_peak(tmp_path):
    run, result = run_bench(tmp_path)
    # The CPU step runs without autocast, so its peak is a float32 matmul's: the share of peak is a
    # share (before, a bf16 peak emulated on AVX2 put the CPU dry run at ~1500% of peak).
    assert result["peak_dtype"] == "float32" and result["peak_tflops"] > 0
    assert [row["method"] for row in result["rows"]] == ["baseline", "pdn"]
    for row in result["rows"]:
        assert row["img_per_s"] > 0 and row["gflop_per_step"] > 0
        assert row["of_peak"] == row["tflops"] / result["peak_tflops"]
        assert 0 < row["of_peak"] < 1
    assert "dense float32 peak" in run.stdout


def test_batch_scaling_adds_rows_of_the_first_method(tmp_path):
    _, result = run_bench(tmp_path, "--batch-scaling", "3", "4")
    batch = tiny_params()["train"]["batch_size"]
    assert [(r["method"], r["batch"]) for r in result["rows"]] == [
        ("baseline", batch), ("pdn", batch), ("baseline", 3), ("baseline", 4)]
    assert all(r["img_per_s"] > 0 and not r["compiled"] for r in result["rows"])


def test_a_passed_deadline_skips_rows_and_keeps_the_file(tmp_path):
    _, result = run_bench(tmp_path, "--deadline", "0", "--batch-scaling", "3")
    batch = tiny_params()["train"]["batch_size"]
    assert result["rows"] == []
    assert result["skipped"] == [{"method": m, "compiled": False, "batch": b, "reason": "deadline"}
                                 for m, b in (("baseline", batch), ("pdn", batch), ("baseline", 3))]
