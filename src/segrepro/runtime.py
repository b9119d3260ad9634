"""Device choice and determinism, shared by training and evaluation.

On CPU, deterministic algorithms, a fixed thread count and one seeded
generator make the same seed give the same checkpoint bit for bit. On CUDA
we use bf16 autocast and cuDNN autotuning instead, trading bit-exactness for
speed (stated in the README).
"""
from __future__ import annotations

import platform
import random
from pathlib import Path

import numpy as np
import torch

from segrepro.errors import SegreproError


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


def cpu_model() -> str:
    """The processor's model name (``/proc/cpuinfo``), or ``platform.processor()`` elsewhere."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment(device: torch.device) -> dict[str, str]:
    """What a result's bits depend on: torch build, device, CPU instruction set, GPU and CUDA.

    ``cpu_capability`` is the ISA class PyTorch dispatches its CPU kernels to
    (``AVX512``, ``AVX2``, …; lowered by ``ATEN_CPU_CAPABILITY``): the same
    torch build trains to different last bits on different classes. The CPU
    model is left out on purpose (two machines of one class give the same
    bits); ``machine_description`` adds it for timings.
    """
    cuda = device.type == "cuda"
    return {"torch": str(torch.__version__), "device": device.type,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "gpu": torch.cuda.get_device_name(device) if cuda else "",
            "cuda": str(torch.version.cuda or "") if cuda else ""}


def machine_description(device: torch.device) -> dict[str, str]:
    """``environment`` plus the CPU model and thread count: what a timing must be quoted with."""
    return dict(environment(device), cpu_model=cpu_model(), threads=str(torch.get_num_threads()))
