"""segrepro.runtime: what it reads of the machine agrees with what PyTorch dispatches to."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from segrepro.runtime import cpu_flags


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="needs /proc/cpuinfo (Linux)")
def test_cpu_flags_cover_the_capability_torch_runs():
    flags = cpu_flags()
    capability = torch.backends.cpu.get_cpu_capability()
    # ATen's AVX2 and AVX512 kernels need these instructions; benchmarks/bench_train.py relies on
    # avx512f to refuse ATEN_CPU_CAPABILITY=avx512 on a CPU that would die of SIGILL.
    if capability in ("AVX2", "AVX512"):
        assert {"avx2", "fma"} <= flags
    if capability == "AVX512":
        assert "avx512f" in flags


def test_cpu_flags_are_empty_without_cpuinfo(monkeypatch):
    import segrepro.runtime as runtime

    monkeypatch.setattr(runtime, "_cpuinfo", lambda: {})
    assert runtime.cpu_flags() == frozenset()
