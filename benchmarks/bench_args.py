"""Argument checks the benchmark scripts share, so a mistake is one error line before anything runs.

Each check raises ``SegreproError`` with the flag, the value and the fix;
``run_cli``, a script's whole ``main`` (parse, run, report), prints it as one
``NAME: error: ...`` line on stderr and returns exit status 2 (no traceback),
as ``bench_train.py`` does. The scripts call these checks first, before they
measure or print anything.

* ``check_min``: an integer flag below its smallest sensible value (0 steps,
  0 repeats, a batch of 0); a float flag must also be finite (``check_finite``
  first), since ``nan < low`` is false and a nan would pass the bound.
* ``check_finite``: a float flag that is nan or ±inf. argparse's
  ``type=float`` takes ``nan`` and ``inf``, and a simulation or a deadline
  then runs on garbage without a word (a nan deadline never expires, a nan
  effect makes every interval miss it). Choice: refused wherever a float
  flag is read, even where inf could mean "no limit" (``--deadline``), so
  that the rule has no exceptions to remember; a large number says the same.
* ``check_device``: only ``cpu`` and ``cuda[:N]`` (the devices the benchmarks
  time); ``cuda`` where torch sees no CUDA device, or no device N, names
  ``--device cpu``. Choice: other torch device types (mps, xpu, ...) are
  refused rather than tried, since the scripts synchronise CUDA only.
* ``check_methods``: every name a method or an ablation variant of params.
* ``check_json``: ``segrepro.atomic.check_output`` on an output file, so a
  directory or an unwritable place is refused before the slow work (the
  file itself is then written atomically, missing folders created).
* Thread counts: ``cpu_class.check_threads`` (the affinity mask's range).
"""
from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Iterable
from typing import Any

import torch

from segrepro.atomic import check_output
from segrepro.errors import SegreproError


def check_finite(flag: str, value: float) -> None:
    """Refuse ``flag``'s ``value`` if it is nan or ±inf."""
    if not math.isfinite(value):
        raise SegreproError(f"{flag} {value} is not a finite number; pass {flag} a number (not nan or inf)")


def check_min(flag: str, value: int | float, low: int | float) -> None:
    """Refuse ``flag``'s ``value`` below ``low``, and a float ``value`` that is not finite."""
    if isinstance(value, float):
        check_finite(flag, value)
    if value < low:
        raise SegreproError(f"{flag} {value} is too small; pass {flag} {low} or more")


def check_device(name: str) -> torch.device:
    """``name`` as a torch device if it is ``cpu`` or a CUDA device torch can see; otherwise one error."""
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise SegreproError(f"--device {name!r} is not a device these benchmarks run on; pass --device cpu "
                            "or --device cuda")
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise SegreproError(f"--device {name}: torch sees no CUDA device on this machine; pass --device cpu")
        if device.index is not None and device.index >= count:
            raise SegreproError(f"--device {name}: torch sees {count} CUDA device(s) (cuda:0 to "
                                f"cuda:{count - 1}); pass one of them or --device cpu")
    return device


def check_methods(methods: Iterable[str], params: Any, flag: str = "--methods") -> None:
    """Refuse a name in ``methods`` that is neither a method nor an ablation variant of ``params`` (the
    stages' own lookup, ``params.model.resolve``, says so; ``flag`` is put in front)."""
    for method in methods:
        try:
            params.model.resolve(method)
        except SegreproError as exc:
            raise SegreproError(f"{flag}: {exc}") from None


def check_json(path: Any) -> None:
    """Refuse an output file path that cannot be written (``segrepro.atomic.check_output``); None passes."""
    if path is not None:
        check_output(path)


def run_cli(name: str, parser: argparse.ArgumentParser, body: Callable[[argparse.Namespace], Any],
            argv: list[str] | None = None) -> int:
    """Parse ``argv`` with ``parser`` and run ``body`` on the result: exit status 0, or 2 with one
    ``name: error:`` line on stderr for a ``SegreproError`` (argparse's own errors exit 2 as usual)."""
    args = parser.parse_args(argv)
    try:
        body(args)
    except SegreproError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    return 0
