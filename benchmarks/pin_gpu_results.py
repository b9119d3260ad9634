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

    python benchmarks/pin_gpu_results.py --results RUN/results --checkpoints RUN/checkpoints.md5 \\
        --params RUN/params.yaml --processed data360/processed --pins pins-gpu.yaml
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from segrepro import layout
from segrepro.audit.dvchash import dvc_md5
from segrepro.audit.pins import class_section, write_section
from segrepro.errors import SegreproError
from segrepro.params import load_params


def read_md5s(path: Path) -> dict[str, str]:
    """``md5  models/<key>.pt`` lines → {key: md5}."""
    md5s = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            digest, name = line.split()
            md5s[Path(name).stem] = digest
    return md5s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, required=True, help="the run's results/ folder")
    parser.add_argument("--checkpoints", type=Path, required=True, help="the run's checkpoints.md5")
    parser.add_argument("--params", type=Path, required=True, help="the merged params file the run used")
    parser.add_argument("--processed", type=Path, required=True, help="the profile's processed data, made here")
    parser.add_argument("--pins", type=Path, default=Path("pins-gpu.yaml"))
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
        expected = layout.run_keys(params.base.methods, params.base.seeds)
        md5s = read_md5s(args.checkpoints)
        klass, section = class_section(args.results / "metrics", expected, md5s.get)
        data = dvc_md5(args.processed)
        if data is None:
            raise SegreproError(f"{args.processed} does not exist; preprocess the profile first")
        print(write_section(args.pins, klass, section, data) or f"{args.pins} unchanged")
    except SegreproError as exc:
        print(f"pin_gpu_results: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
