"""Which environment *class* a result was trained in.

Bit-reproducibility on CPU holds within a class, not across classes: the same
torch build takes different code paths on AVX-512 and AVX2-only CPUs (ATen's
vectorised kernels), and oneDNN and MKL pick their kernels and blockings by
vendor, microarchitecture and cache sizes as well. So checkpoints trained on
two classes differ in their last bits and the divergence grows over training
like a fresh random draw. Measured on 2026-11-28 (torch 2.13.0+cpu, the default
recipe): an Intel Xeon and an AMD EPYC Zen 4, both ``AVX512``, gave the same
baseline checkpoint bit for bit but different SDN, DDSM and PDN checkpoints;
the ISA alone does not define a class. The class key is

* ``cpu-<capability>-<cpu model>`` on CPU, ``<capability>`` being
  ``torch.backends.cpu.get_cpu_capability()`` ("AVX512", "AVX2", "DEFAULT"…)
  and ``<cpu model>`` ``runtime.cpu_model()`` (name, CPUID family and model);
  results recorded before the CPU model was (no ``cpu_model``) keep the old
  key ``cpu-<capability>``;
* ``cuda-<gpu name>`` on CUDA (GPU training is never bit-exact here: bf16
  autocast and cuDNN autotuning).

Choice: the model, not the vendor alone, because two generations of one
vendor can differ in cache sizes and in the MKL code path; a machine of an
unpinned model is then audited with the statistical band (``bands.py``),
which passes a correct run, rather than with hashes that could fail one.

The environment of a result comes from the artefact, not from the machine
running the audit: ``evaluate`` copies the checkpoint's training environment
into each metrics JSON under ``train_environment``. A result without it falls
back to the current machine's environment (``environment``).
"""
from __future__ import annotations

import torch

from segrepro.runtime import machine_description

ENVIRONMENT_KEYS = ("torch", "device", "cpu_capability", "cpu_model", "gpu", "cuda")


def environment(device: str | None = None) -> dict[str, str]:
    """The current machine's environment (``runtime.machine_description``; GPU when one is visible)."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return machine_description(torch.device(device))


def result_environment(result: dict) -> tuple[dict[str, str], bool]:
    """(environment the result was trained in, whether it came from the artefact)."""
    recorded = result.get("train_environment")
    if isinstance(recorded, dict) and recorded.get("device"):
        return {k: str(recorded.get(k, "")) for k in ENVIRONMENT_KEYS}, True
    return environment(), False


def class_key(env: dict) -> str:
    """``cpu-<capability>-<cpu model>`` (``cpu-<capability>`` without a model) or ``cuda-<gpu name>``."""
    if env.get("device") == "cuda":
        return f"cuda-{env.get('gpu') or 'unknown-gpu'}"
    key = f"cpu-{env.get('cpu_capability') or 'unknown'}"
    return f"{key}-{env['cpu_model']}" if env.get("cpu_model") else key


def is_bit_exact(env: dict) -> bool:
    """Whether the same class and torch give the same checkpoint bit for bit (CPU only)."""
    return env.get("device") != "cuda"
