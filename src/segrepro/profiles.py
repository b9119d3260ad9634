"""Named parameter profiles: dotted-key overrides of ``params.yaml``.

A profile (``profiles/<name>.yaml``) is a flat YAML mapping from a dotted
params key to its value, e.g. ``runtime.device: cuda`` or
``base.seeds: [0, 1, 2]``. Every key must already exist in ``params.yaml``
(a profile changes values, never the schema), so a typo fails with a
did-you-mean hint before anything runs. Two ways to use one:

* ``set_args`` → ``dvc exp run`` arguments (``-S key=value`` in Hydra's
  override grammar, which DVC parses), so the whole pipeline runs as a DVC
  experiment with the profile's values: what ``scripts/profile NAME`` does;
* ``merge`` → a complete params file for ``segrepro <stage> --params``,
  validated by :func:`segrepro.params.load_params`.

Choices: keys are applied in file order (a later key inside a mapping an
earlier key replaced wins); a value replaces the old value whole, lists and
mappings included (as DVC's ``-S`` does); the merged file loses
``params.yaml``'s comments (it is generated, and says so in its first line).

    python -m segrepro.profiles set-args profiles/paper-gpu.yaml [--params params.yaml] [--check-device]
    python -m segrepro.profiles merge profiles/paper-gpu.yaml --params params.yaml --out params-gpu.yaml
"""
from __future__ import annotations

import argparse
import copy
import difflib
import math
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from segrepro.atomic import atomic_file
from segrepro.errors import SegreproError
from segrepro.params import MOVED_KEYS, Params, load_params, read_params_raw
from segrepro.strict_yaml import read_yaml  # noqa: F401 - re-exported: benchmarks/gpu_sweep.py reads with it

_BARE = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")
_RESERVED = {"true", "false", "null", "nan", "inf", "none"}


def load_profile(path: str | Path) -> dict[str, Any]:
    """Dotted key → value, in file order; the keys are not yet checked against params.yaml."""
    path = Path(path)
    # A key set twice: the last wins (not unique=True), which gpu_profile.sh's override files rely on.
    raw = read_yaml(path, "profile", "profiles live in profiles/<name>.yaml")
    if not isinstance(raw, dict) or not raw:
        raise SegreproError(f"profile {path} must be a non-empty mapping of dotted params keys to values, "
                            f"e.g. 'runtime.device: cuda'")
    for key in raw:
        if not isinstance(key, str) or not all(key.split(".")):
            raise SegreproError(f"profile {path} has key {key!r}; keys are dotted params paths such as "
                                f"train.epochs")
    return dict(raw)


def check_keys(params_raw: dict, overrides: dict[str, Any], profile: str | Path) -> None:
    """Every override must name a key that exists in the params file."""
    for key in overrides:
        if key in MOVED_KEYS:
            raise SegreproError(f"profile {profile} sets {key}, which moved to {MOVED_KEYS[key]} (the shared "
                                f"runtime section); rename the key in the profile")
        node: Any = params_raw
        walked: list[str] = []
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                options = list(node) if isinstance(node, dict) else []
                guess = difflib.get_close_matches(part, options, n=1)
                prefix = ".".join(walked + [""])
                hint = f" (did you mean {prefix}{guess[0]}?)" if guess else ""
                raise SegreproError(f"profile {profile} sets {key}, which is not a params.yaml key{hint}; "
                                    "fix the profile (profiles change values, not the schema)")
            node = node[part]
            walked.append(part)


def apply(params_raw: dict, overrides: dict[str, Any]) -> dict:
    """A copy of the raw params with every override set."""
    out = copy.deepcopy(params_raw)
    for key, value in overrides.items():
        *parents, last = key.split(".")
        node = out
        for part in parents:
            node = node[part]
        node[last] = copy.deepcopy(value)
    return out


def merge(params_path: str | Path, profile_path: str | Path, out_path: str | Path) -> Params:
    """Write ``params_path`` with the profile applied to ``out_path`` (atomically, only if valid)."""
    params_path, out_path = Path(params_path), Path(out_path)
    raw = read_params_raw(params_path)
    overrides = load_profile(profile_path)
    check_keys(raw, overrides, profile_path)
    merged = apply(raw, overrides)
    header = f"# Generated: {params_path} with profile {profile_path} applied (segrepro.profiles.merge).\n"
    with atomic_file(out_path) as tmp:
        tmp.write_text(header + yaml.safe_dump(merged, sort_keys=False, default_flow_style=None))
        params = load_params(tmp)  # types and ranges, as every stage will check them
    return params


def hydra_value(value: Any) -> str:
    """``value`` in Hydra's override grammar (what ``dvc exp run -S key=value`` parses)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise SegreproError(f"profile value {value} cannot be passed to dvc; use a finite number")
        return repr(value)
    if isinstance(value, str):
        if _BARE.match(value) and value.lower() not in _RESERVED:
            return value
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{hydra_value(v)}" for k, v in value.items()) + "}"
    raise SegreproError(f"profile value {value!r} of type {type(value).__name__} is not supported")


def set_args(profile_path: str | Path, params_path: str | Path = "params.yaml") -> list[str]:
    """``["-S", "key=value", …]`` for ``dvc exp run``, keys checked against ``params_path``."""
    overrides = load_profile(profile_path)
    check_keys(read_params_raw(Path(params_path)), overrides, profile_path)
    args: list[str] = []
    for key, value in overrides.items():
        args += ["-S", f"{key}={hydra_value(value)}"]
    return args


def check_device(profile_path: str | Path) -> None:
    """One clear line when a CUDA profile meets a machine without a visible CUDA device."""
    device = load_profile(profile_path).get("runtime.device")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise SegreproError(f"profile {profile_path} trains on CUDA (runtime.device: cuda) but this machine "
                                "has no visible CUDA device; run it on a GPU machine, or run the default "
                                "params (`dvc repro`) here")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m segrepro.profiles", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("set-args", help="print the `dvc exp run` arguments, one per line")
    p.add_argument("profile", type=Path)
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p.add_argument("--check-device", action="store_true", help="fail if the profile needs CUDA and none is visible")
    p = sub.add_parser("merge", help="write a complete params file with the profile applied")
    p.add_argument("profile", type=Path)
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "set-args":
            lines = set_args(args.profile, args.params)
            if args.check_device:
                check_device(args.profile)
            print("\n".join(lines))
        else:
            merge(args.params, args.profile, args.out)
            print(f"{args.out}: {args.params} with {args.profile} applied")
    except SegreproError as exc:
        print(f"segrepro profiles: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
