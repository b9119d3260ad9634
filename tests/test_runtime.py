"""segrepro.runtime: what it reads of the machine agrees with what PyTorch dispatches to."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from segrepro.runtime import cpu_flags
from tests.conftest import REPO, assert_one_error_line


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="needs /proc/cpuinfo (Linux)")
def test_cpu_flags_cover_the_capability_torch_runs():
    flags = cpu_flags()
    capability = torch.backends.cpu.get_cpu_capability()
    # ATen's AVX2 and AVX512 kernels need these instructions; runtime.check_capability relies on
    # avx512f to refuse ATEN_CPU_CAPABILITY=avx512 on a CPU that would die of SIGILL.
    if capability in ("AVX2", "AVX512"):
        assert {"avx2", "fma"} <= flags
    if capability == "AVX512":
        assert "avx512f" in flags


def test_cpu_flags_are_empty_without_cpuinfo(monkeypatch):
    import segrepro.runtime as runtime

    monkeypatch.setattr(runtime, "_cpuinfo", lambda: {})
    assert runtime.cpu_flags() == frozenset()


def _train_with_capability(tmp_path: Path, value: str) -> subprocess.CompletedProcess:
    """``segrepro train`` on inputs that do not exist: the capability check must come first."""
    env = dict(os.environ, ATEN_CPU_CAPABILITY=value, PYTHONPATH=str(REPO / "src"))
    env.pop("DVC_STAGE", None)
    return subprocess.run([sys.executable, "-m", "segrepro.cli", "train", "--method", "baseline", "--seed", "0",
                           "--data", "missing", "--checkpoint", "out/baseline-0.pt", "--live", "out/live"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def _assert_refused(done: subprocess.CompletedProcess, tmp_path: Path, *needles: str) -> None:
    assert_one_error_line(done, "segrepro train: error: ", *needles)
    assert not (tmp_path / "out").exists()  # refused before anything was written


@pytest.mark.parametrize("value", ["bogus", "AVX2"])
def test_a_stage_refuses_an_unknown_capability(tmp_path, value):
    # torch 2.13 warns and runs its best kernels: the run would not be the one asked for.
    _assert_refused(_train_with_capability(tmp_path, value), tmp_path,
                    f"ATEN_CPU_CAPABILITY={value!r}", "default, avx2, avx512")


def test_a_stage_refuses_avx512_on_a_cpu_without_it(tmp_path):
    if "avx512f" in cpu_flags() or not cpu_flags():
        pytest.skip("needs an x86 CPU without AVX-512 (there torch would die of SIGILL)")
    _assert_refused(_train_with_capability(tmp_path, "avx512"), tmp_path,
                    "ATEN_CPU_CAPABILITY=avx512", "this CPU lacks avx512")


def test_a_known_capability_the_cpu_has_passes_the_check(tmp_path):
    # avx2 is below every x86 CPU these tests run on: the stage goes on to its own input error.
    if "avx2" not in cpu_flags():
        pytest.skip("needs an x86 CPU with AVX2")
    done = _train_with_capability(tmp_path, "avx2")
    assert done.returncode == 2 and "ATEN_CPU_CAPABILITY" not in done.stderr, done.stderr
    assert "params.yaml not found" in done.stderr  # the stage's own first check answers instead
