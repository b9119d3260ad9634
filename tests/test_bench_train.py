"""benchmarks/bench_train.py at tiny settings: what it prints and writes, and its error paths.

The script runs as a subprocess, as a user runs it (exit status, stderr without
traceback). No timing is asserted: only the structure of the output and the
arithmetic that ties its numbers together.
"""
from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, assert_one_error_line, tiny_params

SCRIPT = REPO / "benchmarks" / "bench_train.py"
CAPS = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
TINY = ["--methods", "baseline", "--steps", "1", "--warmup", "0", "--repeats", "1", "--crop", "32", "48",
        "--threads", "1"]


@functools.cache
def native_capability() -> str:
    """This machine's own class, as the benchmark sees it: ``bench`` drops the ISA caps, and the
    suite itself may run under them (emulating AVX2), so the test process's own value can differ."""
    clean = {k: v for k, v in os.environ.items() if k not in CAPS}
    done = subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
                          env=clean, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def bench(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(tiny_params()))  # batch 2
    clean = {k: v for k, v in os.environ.items() if k not in CAPS}
    return subprocess.run([sys.executable, str(SCRIPT), "--params", str(params), *args], cwd=REPO,
                          capture_output=True, text=True, env={**clean, **(env or {})}, timeout=900)


def assert_refused(done: subprocess.CompletedProcess, *needles: str) -> None:
    assert_one_error_line(done, "bench_train: error: ", *needles)
    assert done.stdout == ""  # nothing was measured


def test_tiny_run_prints_machine_first_and_writes_every_number(tmp_path, synthetic_processed):
    out = tmp_path / "bench.json"
    done = bench(tmp_path, *TINY, "--epoch-breakdown", "--data", str(synthetic_processed), "--json", str(out),
                 "--markdown")
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert first.startswith(f"[measured] capability {native_capability()} | ")
    assert "| threads 1 | torch " in first and "ISA caps: none" in first
    assert "| method | GFLOP/step | nchw ms |" in done.stdout and "| phase | s | % |" in done.stdout
    assert "| --- |" in done.stdout

    results = json.loads(out.read_text())
    assert list(results) == ["measured"]
    r = results["measured"]
    assert r["machine"]["threads"] == "1" and r["machine"]["isa_caps"] == {}
    assert set(r["machine"]["library_isa"]) == {"mkl", "onednn"} and r["machine"]["device"] == "cpu"
    assert r["machine"]["cpu_capability"] == native_capability()
    assert r["batch"] == 2 and r["crop"] == [32, 48] and r["peak_gflops"] > 0
    assert set(r["conv_gflops"]) == {"nchw", "channels_last"} and min(r["conv_gflops"].values()) > 0
    (row,) = r["steps"]
    assert row["method"] == "baseline" and row["gflop"] > 0
    for layout in ("nchw", "channels_last"):
        s = row[layout]
        assert s["ms"] > 0
        assert s["img_s"] == pytest.approx(2 / (s["ms"] / 1e3))
        assert s["gflops"] == pytest.approx(row["gflop"] / (s["ms"] / 1e3))
        assert s["pct_peak"] == pytest.approx(100 * s["gflops"] / r["peak_gflops"])
    assert len(r["targets"]) == 2
    for line in r["targets"]:
        assert line.split()[0] in ("PASS", "FAIL") and f"[measured] {line}" in done.stdout

    b = r["breakdown"]
    assert b["method"] == "baseline" and b["steps"] == 2 and b["batch"] == 2  # 4 train images, batch 2
    assert set(b["parts"]) == {"augment", "forward", "backward", "optimizer", "validation", "other"}
    assert sum(p["s"] for p in b["parts"].values()) == pytest.approx(b["total_s"])
    assert sum(p["pct"] for p in b["parts"].values()) == pytest.approx(100)
    assert all(b["parts"][k]["s"] > 0 for k in ("augment", "forward", "backward", "optimizer", "validation"))
    assert b["val_every"] == tiny_params()["train"]["val_every"]
    expected = b["parts"]["validation"]["s"] / b["val_every"]
    assert b["validation_amortised_pct"] == pytest.approx(
        100 * expected / (b["total_s"] - b["parts"]["validation"]["s"] + expected))


def test_flops_do_not_depend_on_the_layout_and_grow_with_the_method(tmp_path):
    out = tmp_path / "bench.json"
    done = bench(tmp_path, *TINY, "--methods", "baseline", "sdn", "--json", str(out))
    assert done.returncode == 0, done.stderr
    rows = {row["method"]: row for row in json.loads(out.read_text())["measured"]["steps"]}
    assert rows["sdn"]["gflop"] > rows["baseline"]["gflop"]  # SDN adds convolutions on every level


def test_emulate_avx2_labels_both_tables(tmp_path):
    out = tmp_path / "bench.json"
    done = bench(tmp_path, *TINY, "--emulate-avx2", "--json", str(out))
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    if native_capability() != "AVX512":
        assert list(results) == ["measured"] and "nothing to emulate" in done.stdout
        return
    assert list(results) == ["emulated", "measured"]  # sorted keys
    emulated = results["emulated"]["machine"]
    assert emulated["cpu_capability"] == "AVX2" and emulated["isa_caps"] == CAPS
    assert emulated["label"] == "emulated (ISA caps)" and results["measured"]["machine"]["label"] == "measured"
    # MKL names its code path in its verbose banner only on Intel CPUs (on an AMD EPYC it is silent).
    intel = results["measured"]["machine"]["cpu_model"].startswith("Intel")
    assert emulated["library_isa"]["mkl"] == ("AVX2" if intel else "unknown")
    assert "[emulated (ISA caps)] capability AVX2" in done.stdout
    assert "[measured] capability AVX512" in done.stdout
    assert results["emulated"]["steps"][0]["method"] == "baseline"


def test_host_only_prints_the_machine_and_its_rates_and_times_no_step(tmp_path):
    out = tmp_path / "host.json"
    done = bench(tmp_path, *TINY, "--host-only", "--json", str(out))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2, done.stdout  # what scripts/pipeline prints before and after dvc repro
    assert lines[0].startswith(f"[measured] capability {native_capability()} | ")
    assert lines[1].startswith("[measured] fp32 matmul peak 2048³: ") and lines[1].endswith(" GFLOP/s")
    r = json.loads(out.read_text())["measured"]
    assert r["steps"] == [] and r["targets"] == [] and r["peak_gflops"] > 0 and "breakdown" not in r


@pytest.mark.parametrize("extra", ["--epoch-breakdown", "--emulate-avx2"])
def test_host_only_refuses_the_options_that_time_steps(tmp_path, extra):
    assert_refused(bench(tmp_path, *TINY, "--host-only", extra), "--host-only times no training step", extra)


@pytest.mark.parametrize("threads", ["0", "100000"])
def test_unusable_thread_count_is_one_error_line(tmp_path, threads):
    assert_refused(bench(tmp_path, *TINY, "--threads", threads), f"--threads {threads}", "pass --threads")


@pytest.mark.parametrize("value", ["bogus", "AVX2"])
def test_unknown_aten_cpu_capability_is_one_error_line(tmp_path, value):
    # torch 2.13 only warns and runs its best kernels; the benchmark refuses to mislabel them.
    done = bench(tmp_path, *TINY, env={"ATEN_CPU_CAPABILITY": value})
    assert_refused(done, f"ATEN_CPU_CAPABILITY={value!r}", "default, avx2, avx512")


def test_capability_above_the_cpus_is_one_error_line(tmp_path):
    # torch caps a known value at what the CPU has: on an AVX2-only CPU avx512 would run AVX2 kernels.
    if native_capability() == "AVX512":
        pytest.skip("torch knows no capability above AVX512")
    done = bench(tmp_path, *TINY, env={"ATEN_CPU_CAPABILITY": "avx512"})
    assert_refused(done, "ATEN_CPU_CAPABILITY=avx512", "this CPU lacks avx512")


def test_child_refuses_caps_that_were_not_honoured(tmp_path):
    if native_capability() == "AVX2":
        pytest.skip("this machine's own class is AVX2")
    assert_refused(bench(tmp_path, *TINY, "--expect-capability", "AVX2"), "not honoured")


def test_missing_data_names_the_stage_to_run(tmp_path):
    done = bench(tmp_path, *TINY, "--epoch-breakdown", "--data", str(tmp_path / "nowhere"))
    assert_refused(done, "dvc repro preprocess")
    (tmp_path / "empty").mkdir()
    done = bench(tmp_path, *TINY, "--epoch-breakdown", "--data", str(tmp_path / "empty"))
    assert_refused(done, "train_images.npy", "dvc repro preprocess")


def test_unknown_method_is_one_error_line(tmp_path):
    assert_refused(bench(tmp_path, *TINY, "--methods", "segformer"), "'segformer'", "baseline")


def test_unwritable_json_is_refused_before_measuring(tmp_path):
    # Before, --host-only printed both measurement lines and only then failed to write the directory.
    done = bench(tmp_path, *TINY, "--host-only", "--json", str(tmp_path))
    assert_refused(done, f"cannot write {tmp_path}: it is a directory", "pass a file path")
