"""benchmarks/bench_gpu.py on CPU at a tiny size: its JSON, the peak's dtype, the deadline (no timing asserted)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import yaml

from tests.conftest import REPO, assert_one_error_line, tiny_params

sys.path.insert(0, str(REPO / "benchmarks"))
import bench_gpu  # noqa: E402


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


@pytest.mark.parametrize("argv, needles", [
    (["--methods", "baseline", "nosuch"], ["unknown method 'nosuch'"]),  # was an error row, exit 0
    (["--steps", "0"], ["--steps 0", "--steps 1 or more"]),  # was a ZeroDivisionError row, exit 0
    (["--batch", "0"], ["--batch 0"]),  # was ignored: the run used train.batch_size
    (["--peak-size", "0"], ["--peak-size 0"]),  # was a ZeroDivisionError
    (["--warmup", "-1"], ["--warmup -1"]),
    (["--batch-scaling", "16", "0"], ["--batch-scaling 0"]),
    (["--device", "nosuch"], ["'nosuch'", "--device cpu"]),
])
def test_bad_arguments_are_refused_before_anything_runs(tmp_path, capsys, argv, needles):
    out = tmp_path / "bench.json"
    argv = ["--params", str(REPO / "params.yaml"), "--device", "cpu", "--json", str(out), *argv]
    assert bench_gpu.main(argv) == 2
    printed, err = capsys.readouterr()
    assert printed == "" and err.count("\n") == 1 and err.startswith("bench_gpu: error: "), err
    assert all(needle in err for needle in needles), err
    assert not out.exists()


def test_a_directory_as_json_is_refused_before_measuring(tmp_path, capsys):
    argv = ["--params", str(REPO / "params.yaml"), "--device", "cpu", "--json", str(tmp_path)]
    assert bench_gpu.main(argv) == 2
    assert "it is a directory" in capsys.readouterr().err


def test_plain_invocation_without_cuda_names_device_cpu(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_gpu.py"), "--json", str(out)],
                         capture_output=True, text=True, cwd=REPO)
    assert_one_error_line(run, "bench_gpu: error: ", "no CUDA device", "--device cpu")
    assert run.stdout == "" and not out.exists()
