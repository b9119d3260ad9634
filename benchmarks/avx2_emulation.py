"""``bench_train.py --emulate-avx2``: the same benchmark rerun as if on an AVX2-only CPU, labelled as such.

On an AVX-512 machine with no ISA caps set, ``emulate_avx2`` reruns
``bench_train.py`` in a child process with the same settings and
``cpu_class.CAPS`` in its environment (``ATEN_CPU_CAPABILITY=avx2
ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2``), and the child checks
(``--expect-capability AVX2``) that PyTorch reports AVX2 before it measures.
The caps make ATen, oneDNN and MKL run their AVX2 kernels, so the instruction
mix matches an AVX2-only machine (e.g. the 2-core AMD EPYC Zen 3), but the
cache sizes, memory bandwidth, clocks and core count stay this machine's.
Read its numbers as an approximation of the AVX2 class, labelled "emulated
(ISA caps)"; only numbers labelled "measured" come from the named machine as
it is.

The child runs at the parent's thread count and writes its result as JSON to
a temporary file, which the parent reads back; its output goes to the same
terminal. Where there is nothing to emulate (the machine is not AVX512, or
caps are set already) it says so and only the measured result stands.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from cpu_class import CAPS
from segrepro.errors import SegreproError

CLI = Path(__file__).with_name("bench_train.py")  # the script the child runs: the benchmark's command line


def child_argv(args: argparse.Namespace, threads: int, out: Path) -> list[str]:
    """The command line of the emulated run: ``args``' settings, ``threads``, JSON to ``out``, AVX2 expected."""
    argv = [sys.executable, str(CLI), "--params", args.params, "--threads", str(threads), "--steps", str(args.steps),
            "--warmup", str(args.warmup), "--repeats", str(args.repeats), "--methods", *args.methods,
            "--json", str(out), "--expect-capability", "AVX2"]
    argv += ["--crop", *map(str, args.crop)] if args.crop else []
    argv += ["--epoch-breakdown", args.epoch_breakdown, "--data", args.data] if args.epoch_breakdown else []
    return argv + (["--markdown"] if args.markdown else [])


def emulate_avx2(args: argparse.Namespace, measured: dict[str, Any]) -> dict[str, Any] | None:
    """The emulated run's result, or None (and a line saying why) where there is nothing to emulate."""
    machine = measured["machine"]
    if machine["cpu_capability"] != "AVX512" or machine["isa_caps"]:
        print(f"--emulate-avx2: nothing to emulate (capability {machine['cpu_capability']}, ISA caps "
              f"{machine['isa_caps'] or 'none'}); only the measured table is shown")
        return None
    print("\n--emulate-avx2: rerunning under ISA caps " + " ".join(f"{k}={v}" for k, v in CAPS.items()), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "emulated.json"
        done = subprocess.run(child_argv(args, int(machine["threads"]), out), env={**os.environ, **CAPS})
        if done.returncode != 0:
            raise SegreproError(f"the emulated (ISA caps) run failed with exit {done.returncode} (see above)")
        return json.loads(out.read_text())["emulated"]
