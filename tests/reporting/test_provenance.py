"""The report's provenance names where every result was trained."""
from __future__ import annotations

from segrepro.reporting.provenance import training_environments

INTEL = {"torch": "2.13.0+cpu", "device": "cpu", "cpu_capability": "AVX512",
         "cpu_model": "Intel(R) Xeon(R) Processor (family 6, model 106)", "gpu": "", "cuda": ""}
AMD = {**INTEL, "cpu_model": "AMD EPYC (family 25, model 17)"}


def test_each_class_lists_its_runs():
    rows = [{"method": "baseline", "seed": 0, "train_environment": AMD},
            {"method": "sdn", "seed": 0, "train_environment": AMD},
            {"method": "baseline", "seed": 1, "train_environment": INTEL},
            {"method": "pdn", "seed": 0}]
    assert training_environments(rows) == (
        "cpu-AVX512-AMD EPYC (family 25, model 17) (baseline-0, sdn-0); "
        "cpu-AVX512-Intel(R) Xeon(R) Processor (family 6, model 106) (baseline-1); "
        "not recorded (pdn-0)")


def test_a_gpu_run_is_named_by_its_gpu():
    env = {**INTEL, "device": "cuda", "gpu": "NVIDIA H200", "cuda": "12.8"}
    assert training_environments([{"method": "ddsm", "seed": 2, "train_environment": env}]) == \
        "cuda-NVIDIA H200 (ddsm-2)"
