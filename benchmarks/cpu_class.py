"""The class of CPU machine a timing was taken on, which every CPU benchmark prints first (issue 9 §1, §3).

A CPU timing means little without the machine it came from, so
``describe_machine`` gives ``runtime.machine_description`` (the ATen kernel
ISA ``torch.backends.cpu.get_cpu_capability()``, the CPU model from
``/proc/cpuinfo``, threads, torch version) and adds:

* ``cpus_available``: the CPUs this process may run on (its affinity mask,
  which a container or ``taskset`` can make smaller than the machine);
* ``library_isa``: the ISA MKL and oneDNN name in their verbose banners.
  MKL names it on Intel CPUs only: on an AMD EPYC its banner is silent, and
  the value is "unknown";
* ``isa_caps``: which of ``CAPS`` (the variables that cap ATen, oneDNN and
  MKL at AVX2) are set, and ``label``: "emulated (ISA caps)" where any is,
  "measured" where none is. Only "measured" numbers come from the named
  machine as it is.

``check_capability`` runs before anything else reads the capability (torch
caches it), so a cap PyTorch did not honour is one error, not a mislabelled
run. ``check_threads`` refuses a thread count the affinity mask cannot give.
"""
from __future__ import annotations

import ctypes
import os
import re
import sys
import tempfile
from typing import Any

import torch
import torch.nn.functional as F

from segrepro.errors import SegreproError
from segrepro.runtime import check_capability, machine_description

CAPS = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
CPU = torch.device("cpu")  # the CPU benchmarks run nothing elsewhere


def check_threads(threads: int) -> int:
    """``threads`` if this process may run on that many CPUs; otherwise one error naming the usable range."""
    available = len(os.sched_getaffinity(0))
    if threads < 1 or threads > available:
        raise SegreproError(f"--threads {threads} is not usable: this process may run on {available} "
                            f"CPU(s); pass --threads between 1 and {available}")
    return threads


def library_isa() -> dict[str, str]:
    """ISA named by MKL's and oneDNN's verbose banners (captured from fd 1); 'unknown' if silent.

    The banners are written by the C libraries to file descriptor 1, past
    Python's ``sys.stdout``, so fd 1 is pointed at a temporary file around one
    small matmul (MKL) and one channels_last conv (oneDNN). Python's buffer is
    flushed before the switch (nothing printed earlier lands in the capture)
    and C's stdio buffers before the switch back (every banner does).
    """
    sys.stdout.flush()
    libc = ctypes.CDLL(None)
    with tempfile.TemporaryFile() as tmp:
        saved = os.dup(1)
        os.dup2(tmp.fileno(), 1)
        try:
            with torch.backends.mkl.verbose(torch.backends.mkl.VERBOSE_ON):
                torch.ones(64, 64) @ torch.ones(64, 64)
            x = torch.ones(8, 128, 14, 18).contiguous(memory_format=torch.channels_last)
            with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
                F.conv2d(x, torch.ones(128, 128, 3, 3), padding=1)
        finally:
            libc.fflush(None)
            os.dup2(saved, 1)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read().decode(errors="replace")
    mkl = re.search(r"\(Intel\(R\) (AVX[\w-]*)\)", text)
    dnn = re.search(r"cpu,isa:([^\n,]*)", text)
    return {"mkl": mkl.group(1) if mkl else "unknown", "onednn": dnn.group(1).strip() if dnn else "unknown"}


def describe_machine(threads: int) -> dict[str, Any]:
    """``runtime.machine_description`` (capability, CPU model, threads, torch) plus ISA details."""
    check_capability()  # before anything else reads the (cached) capability
    torch.set_num_threads(threads)
    caps = {k: os.environ[k] for k in CAPS if os.environ.get(k)}
    return {**machine_description(CPU), "cpus_available": len(os.sched_getaffinity(0)),
            "library_isa": library_isa(), "isa_caps": caps, "label": "emulated (ISA caps)" if caps else "measured"}


def machine_summary(machine: dict[str, Any]) -> str:
    """One line: capability | CPU model | threads | torch | MKL and oneDNN ISA | ISA caps (or none)."""
    isa, caps = machine["library_isa"], " ".join(f"{k}={v}" for k, v in machine["isa_caps"].items())
    return (f"capability {machine['cpu_capability']} | {machine['cpu_model']} | threads {machine['threads']} | "
            f"torch {machine['torch']} | MKL {isa['mkl']}, oneDNN {isa['onednn']} | ISA caps: {caps or 'none'}")
