"""Device choice and determinism, shared by training and evaluation.

On CPU, deterministic algorithms, a fixed thread count and one seeded
generator make the same seed give the same checkpoint bit for bit. On CUDA
we use bf16 autocast and cuDNN autotuning instead, trading bit-exactness for
speed (stated in the README).
"""
from __future__ import annotations

import os
import platform
import random
import warnings
from pathlib import Path

import numpy as np
import torch

from segrepro.errors import SegreproError

KNOWN_CAPABILITIES = ("default", "avx2", "avx512")  # what torch 2.13 accepts on x86-64


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SegreproError("runtime.device is 'cuda' but no CUDA device is visible; use 'auto' or 'cpu'")
    return torch.device(name)


def make_deterministic(seed: int, threads: int, device: torch.device) -> torch.Generator:
    """Seed every RNG and return the generator that drives data order and augmentation."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    else:
        torch.backends.cudnn.benchmark = True
    return torch.Generator().manual_seed(seed)


def _cpuinfo() -> dict[str, str]:
    """The first processor's ``key: value`` lines of ``/proc/cpuinfo`` (empty where there is none)."""
    info: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        if not line.strip():
            break  # the end of the first processor's block
        key, sep, value = line.partition(":")
        if sep:
            info.setdefault(key.strip(), value.strip())
    return info


def cpu_flags() -> frozenset[str]:
    """The instruction-set flags ``/proc/cpuinfo`` lists for the first processor (empty where there is none)."""
    return frozenset(_cpuinfo().get("flags", "").split())


def cpu_model() -> str:
    """The processor's model name and CPUID family/model, e.g. ``AMD EPYC (family 25, model 17)``.

    The family and model numbers name the microarchitecture (25/17: AMD Zen 4)
    even where a virtual machine masks the name to ``AMD EPYC``; elsewhere
    than Linux, ``platform.processor()``.
    """
    info = _cpuinfo()
    name = info.get("model name")
    if not name:
        return platform.processor() or "unknown"
    if info.get("cpu family") and info.get("model"):
        return f"{name} (family {info['cpu family']}, model {info['model']})"
    return name


def check_capability() -> str:
    """The ATen capability; an ``ATEN_CPU_CAPABILITY`` PyTorch did not honour is an error.

    Every ``segrepro`` stage and ``benchmarks/bench_train.py`` call this before
    any kernel runs. torch 2.13 only warns on an unknown value and silently runs
    its best kernels instead (checked: ``bogus``, ``AVX2`` upper case), so a run
    would not be what was asked for. It takes ``avx512`` on an AVX2-only CPU at
    its word and the first AVX-512 kernel dies of an illegal instruction
    (SIGILL, no Python error; checked on an AMD EPYC Zen 3), so that request is
    checked against the flags of ``/proc/cpuinfo``.
    """
    with warnings.catch_warnings():  # torch's own warning would be a second, less clear line
        warnings.simplefilter("ignore")
        got = torch.backends.cpu.get_cpu_capability()
    asked = os.environ.get("ATEN_CPU_CAPABILITY", "")
    # An unknown value is refused even where the kernels torch falls back to happen to match
    # it (``AVX2`` upper case on an AVX2-only CPU): torch ignored it, so it capped nothing.
    if asked and asked not in KNOWN_CAPABILITIES:
        raise SegreproError(f"ATEN_CPU_CAPABILITY={asked!r} is not a value PyTorch {torch.__version__} "
                            f"knows (it would silently run {got} kernels); use one of "
                            f"{', '.join(KNOWN_CAPABILITIES)} (lower case) or unset it")
    if asked == "avx512":  # /proc/cpuinfo is read only for the one request torch does not cap
        flags = cpu_flags()
        if flags and "avx512f" not in flags:
            raise SegreproError(f"ATEN_CPU_CAPABILITY={asked} but this CPU lacks avx512 (no avx512f among the "
                                "flags of /proc/cpuinfo): PyTorch would run AVX-512 kernels and die of an "
                                "illegal instruction; ask for avx2 or unset it")
    if asked and asked.lower() != got.lower():
        raise SegreproError(f"ATEN_CPU_CAPABILITY={asked} but PyTorch runs {got} kernels (this CPU lacks "
                            f"{asked}); ask for a capability the CPU has or unset it")
    return got


def environment(device: torch.device) -> dict[str, str]:
    """What a result's bits depend on: torch build, device, CPU instruction set and model, GPU and CUDA.

    ``cpu_capability`` is the ISA class PyTorch dispatches its CPU kernels to
    (``AVX512``, ``AVX2``, …; lowered by ``ATEN_CPU_CAPABILITY``): the same
    torch build trains to different last bits on different classes. The CPU
    model (``cpu_model``) matters too: oneDNN and MKL choose kernels and
    blockings by vendor, microarchitecture and cache sizes, not only by ISA.
    Measured (2026-11-28, torch 2.13.0+cpu, 2 threads, the default recipe):
    an Intel Xeon and an AMD EPYC Zen 4, both ``AVX512``, trained the
    baseline to the same checkpoint bit for bit but SDN, DDSM and PDN to
    different ones (test mIoU 34.87 / 34.92 / 35.21 on the AMD machine against
    35.67 / 34.90 / 35.02 on the Intel one).
    """
    cuda = device.type == "cuda"
    return {"torch": str(torch.__version__), "device": device.type,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpu_model": cpu_model(),
            "gpu": torch.cuda.get_device_name(device) if cuda else "",
            "cuda": str(torch.version.cuda or "") if cuda else ""}


def machine_description(device: torch.device) -> dict[str, str]:
    """``environment`` plus the thread count: what a timing must be quoted with."""
    return dict(environment(device), threads=str(torch.get_num_threads()))
