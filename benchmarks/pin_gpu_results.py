"""Pin the results of a ``benchmarks/gpu_profile.sh`` run (``pins-gpu.yaml``).

The GPU run happens on a machine without DVC and returns metrics, per-image
statistics, training logs and each checkpoint's md5 (``checkpoints.md5``),
not the checkpoints themselves (too large to bring back). So its pins are
written from those files instead of from a ``dvc.lock``: the same section
format as ``segrepro audit --update`` (``audit.pins.class_section``), the
class read from each result's ``train_environment`` (``cuda-<GPU>``), and the
processed data's DVC hash computed from a local preprocess of the profile
(same code, same raw files, so the same bytes; pass it with ``--processed``).
GPU checkpoints are never hash-compared by the audit (bf16 autocast and cuDNN
autotuning are not bit-exact); their md5s are recorded for provenance.

Choices:

* only a real GPU profile run is pinned: a run whose folder holds ``dry.yaml``
  beside ``--params`` (what ``gpu_profile.sh --cpu-tiny`` packs: 48×64, one
  epoch) or whose params say a ``runtime.device`` other than ``cuda`` is
  refused, since its class section would replace a real one (a CPU class's in
  ``pins.yaml``) or add a CPU class to ``pins-gpu.yaml``; ``--pin-dry-run``
  pins it anyway, for tests of this code on CPU, into a pins file of their own;
* every input is checked before anything is hashed or written, each problem
  one line naming the file and what makes it: ``--results`` must hold
  ``metrics/<run>.json`` for every method × seed of ``--params`` and
  ``--checkpoints`` an md5 line for each (a grid cut short by the deadline is
  not pinned), ``--processed`` must be a folder, and ``--pins`` a pins file
  (``segrepro.audit.pins.load_pins``) or a new path whose folder can be
  written (missing folders are made, as for every output); the pins file is
  replaced atomically, so it is either the old one or the new one.

    python benchmarks/pin_gpu_results.py --results RUN/results --checkpoints RUN/checkpoints.md5 \\
        --params RUN/params.yaml --processed data360/processed --pins pins-gpu.yaml [--pin-dry-run]
"""
from __future__ import annotations

import argparse
import errno
import os
import sys
from pathlib import Path

from segrepro import layout
from segrepro.atomic import write_error
from segrepro.audit.dvchash import dvc_md5
from segrepro.audit.pins import class_section, load_pins, write_section
from segrepro.errors import SegreproError, reason
from segrepro.params import Params, load_params

DRY_RUN_FLAG = "--pin-dry-run"
MADE_BY = "gpu_profile.sh writes it into the run's archive; unpack the run with benchmarks/gpu_results.py"


def read_md5s(path: Path) -> dict[str, str]:
    """``md5  models/<key>.pt`` lines → {key: md5}."""
    path = Path(path)
    if not path.is_file():
        raise SegreproError(f"checkpoint list {path} (--checkpoints) is not a file; pass the run's "
                            f"checkpoints.md5 ({MADE_BY})")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise SegreproError(f"checkpoint list {path} (--checkpoints) cannot be read ({reason(exc)}); pass the "
                            f"run's checkpoints.md5 ({MADE_BY})") from None
    md5s = {}
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            fields = line.split()
            if len(fields) != 2:
                raise SegreproError(f"checkpoint list {path}, line {number}: expected 'MD5  models/<run>.pt', got "
                                    f"{line.strip()[:80]!r}; pass the run's checkpoints.md5 ({MADE_BY})")
            digest, name = fields
            md5s[Path(name).stem] = digest
    return md5s


def refuse_dry_run(run: str, params_path: Path, params: Params) -> None:
    """Raise unless ``params`` (read from ``params_path``) are a real GPU profile run's (the docstring's first
    choice); ``run`` names the run in the message."""
    if Path(params_path).with_name("dry.yaml").is_file():
        problem = "it is a dry run of gpu_profile.sh (--cpu-tiny: it packed dry.yaml)"
    elif params.runtime.device != "cuda":
        problem = f"it ran on runtime.device {params.runtime.device}, not cuda"
    else:
        return
    raise SegreproError(f"not pinning {run}: {problem}; pins hold real GPU runs only: pin one, or pass "
                        f"{DRY_RUN_FLAG} to pin this one anyway (tests, into a pins file of their own)")


def check_pins(path: Path) -> None:
    """Raise unless ``path`` is a pins file, or a new file that can be written (before any work)."""
    path = Path(path)
    if path.is_file() and path.read_text().strip():
        load_pins(path)  # through strict_yaml: a syntax error is one line too
        writable = os.access(path, os.W_OK)
    else:
        existing = next((p for p in path.parents if p.exists()), Path("."))
        writable = not path.exists() and existing.is_dir() and os.access(existing, os.W_OK)
    if not writable:  # write_error names what is in the way: a directory, a file for a folder, no permission
        raise write_error(path, PermissionError(errno.EACCES, os.strerror(errno.EACCES)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, required=True, help="the run's results/ folder")
    parser.add_argument("--checkpoints", type=Path, required=True, help="the run's checkpoints.md5")
    parser.add_argument("--params", type=Path, required=True, help="the merged params file the run used")
    parser.add_argument("--processed", type=Path, required=True, help="the profile's processed data, made here")
    parser.add_argument("--pins", type=Path, default=Path("pins-gpu.yaml"))
    parser.add_argument(DRY_RUN_FLAG, action="store_true",
                        help="pin a dry run or a CPU run anyway (tests of this code; never into the committed pins)")
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
        if not args.pin_dry_run:
            refuse_dry_run(f"the run of {args.params}", args.params, params)
        expected = layout.run_keys(params.base.methods, params.base.seeds)
        md5s = read_md5s(args.checkpoints)
        metrics = args.results / "metrics"
        missing = [key for key in expected if not layout.metrics_json(key, metrics).is_file() or key not in md5s]
        if missing:
            raise SegreproError(f"cannot pin: {len(missing)} of the {len(expected)} runs of {args.params} have no "
                                f"{metrics}/<run>.json or no line in {args.checkpoints} ({', '.join(missing[:4])}"
                                f"{', …' if len(missing) > 4 else ''}); pass the run's results/ folder, and pin a "
                                f"grid whose every run finished (runs.tsv says which did not)")
        if not args.processed.is_dir():
            raise SegreproError(f"processed data {args.processed} (--processed) is not a folder; preprocess the "
                                f"profile first (benchmarks/gpu_results.py does, from the run's params)")
        check_pins(args.pins)
        klass, section = class_section(metrics, expected, md5s.get)
        print(write_section(args.pins, klass, section, dvc_md5(args.processed)) or f"{args.pins} unchanged")
    except SegreproError as exc:
        print(f"pin_gpu_results: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
