"""The validation sweep of ``benchmarks/gpu_profile.sh --sweep``: plan its runs, then summarise them.

The paper-scale profile's schedule (28 epochs) was set by the time budget,
not on the validation split, and its recipe is the one the CPU default left
behind (SGD, ImageNet statistics, scale up to 2). A sweep file
(``benchmarks/gpu_sweep.yaml``) names arms: dotted params keys over the
profile, one method, some seeds. ``plan`` writes each arm's complete params
file (validated by ``segrepro.profiles.merge``, so a typo fails before any
GPU time is spent) and the job list; the script trains every job with the
same ``run_training`` as the grid; ``summary`` reads each run's validation
curve (DVCLive's ``plots/metrics/val/miou.tsv``) and prints one line per arm.

Choices (the sweep is this project's tool, no paper's):

* an arm's keys are applied after the profile (and the CPU dry run's tiny
  sizes, so a dry run trains the arms' own epochs and batch sizes, tiny) and
  before the script's explicit overrides (``--after``: ``GPU_PROFILE_SET``,
  ``GPU_PROFILE_COMPILE``), which win as they do for the grid;
* each arm's params carry ``base.methods`` = [method] and ``base.seeds`` =
  its seeds, so the file says what ran;
* jobs run longest first (epochs × 1.5 at output stride 16, whose step costs
  ~1.5× stride 32's, README), so the longest arm does not start last;
* a run stopped at the deadline keeps the curve it logged; the summary marks
  it ``stopped at epoch k of n`` and never reports a partial run as final;
* every input is read before anything is written, each problem one line
  naming the file and what makes it (exit status 2): ``plan`` removes an
  older plan's ``jobs.txt`` and ``plan.json`` first (a failed plan leaves none
  to run), then reads the sweep file, ``--params`` and ``--after`` before it
  makes ``--out`` and writes the arms' params; ``summary``
  needs ``plan.json`` in its folder and ``--runs`` to be a sweep's runs.tsv
  (the script writes its header before any run, so a missing one is a wrong
  path, never "nothing ran"); a missing ``--results`` folder means that no
  run logged anything (the script makes it with the first run's log), a file
  there is refused; ``--json`` is checked before the summary is made
  (``segrepro.atomic.check_output``) and written atomically.

    python benchmarks/gpu_sweep.py plan benchmarks/gpu_sweep.yaml --params P --out DIR [--after FILE]
    python benchmarks/gpu_sweep.py summary DIR --runs runs.tsv --results results/sweep [--json out.json]
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from segrepro.atomic import atomic_file, check_output, write_error
from segrepro.errors import SegreproError, reason
from segrepro.params import load_params
from segrepro.profiles import load_profile, merge, read_yaml

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_ARM_KEYS = {"name", "why", "seeds", "set", "from"}
# One stride-16 step costs ~1.5x a stride-32 step (README, "Output stride 32"): the job order's weight.
_STRIDE16_COST = 1.5


@dataclass(frozen=True)
class Arm:
    name: str
    why: str
    seeds: tuple[int, ...]
    keys: dict[str, Any]  # dotted params key -> value, `from` resolved


@dataclass(frozen=True)
class Sweep:
    method: str
    arms: tuple[Arm, ...]


def load_sweep(path: str | Path) -> Sweep:
    """Read and check a sweep file; every error names the arm and the fix."""
    path = Path(path)
    raw = read_yaml(path, "sweep file", "the committed one is benchmarks/gpu_sweep.yaml", unique=True)
    if not isinstance(raw, dict) or set(raw) != {"method", "arms"}:
        raise SegreproError(f"sweep file {path} must be a mapping with exactly the keys 'method' and 'arms'")
    method, arms_raw = raw["method"], raw["arms"]
    if not isinstance(method, str) or not method:
        raise SegreproError(f"sweep file {path}: 'method' must be a method name such as baseline")
    if not isinstance(arms_raw, list) or not arms_raw:
        raise SegreproError(f"sweep file {path}: 'arms' must be a non-empty list of arms")
    arms: dict[str, Arm] = {}
    for i, entry in enumerate(arms_raw):
        where = f"sweep file {path}, arm {i + 1}"
        if not isinstance(entry, dict):
            raise SegreproError(f"{where} must be a mapping with name, why, seeds and set")
        unknown = set(entry) - _ARM_KEYS
        missing = {"name", "why", "seeds", "set"} - set(entry)
        problems = ([f"unknown keys {sorted(unknown)}"] if unknown else []) + (
            [f"missing keys {sorted(missing)}"] if missing else [])
        if problems:
            raise SegreproError(f"{where}: {'; '.join(problems)} (allowed: {sorted(_ARM_KEYS)})")
        name = entry["name"]
        if not isinstance(name, str) or not _NAME.match(name):
            raise SegreproError(f"{where}: name {name!r} must be lower-case letters, digits and _ (a folder name)")
        where = f"sweep file {path}, arm {name}"
        if name in arms:
            raise SegreproError(f"{where} appears twice; give each arm its own name")
        seeds = entry["seeds"]
        if (not isinstance(seeds, list) or not seeds or len(set(seeds)) != len(seeds)
                or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)):
            raise SegreproError(f"{where}: seeds must be a non-empty list of distinct integers >= 0, got {seeds!r}")
        keys = entry["set"] if entry["set"] is not None else {}
        if not isinstance(keys, dict) or not all(isinstance(k, str) and all(k.split(".")) for k in keys):
            raise SegreproError(f"{where}: set must map dotted params keys (e.g. train.epochs) to values")
        if "from" in entry:
            if entry["from"] not in arms:
                raise SegreproError(f"{where}: from {entry['from']!r} names no earlier arm "
                                    f"(earlier: {', '.join(arms) or 'none'})")
            keys = {**arms[entry["from"]].keys, **keys}
        clash = {"base.methods", "base.seeds"} & set(keys)
        if clash:
            raise SegreproError(f"{where} sets {sorted(clash)}; the sweep's method and the arm's seeds decide those")
        arms[name] = Arm(name, str(entry["why"]), tuple(seeds), dict(keys))
    return Sweep(method, tuple(arms.values()))


def plan(sweep_path: Path, params_path: Path, out: Path, after: Path | None = None) -> dict[str, Any]:
    """Write ``out/params-<arm>.yaml`` for every arm, ``out/jobs.txt`` and ``out/plan.json``.

    A job line is ``arm method seed`` (its params: ``out/params-<arm>.yaml``),
    longest job first; ``plan.json`` holds the arms in the sweep file's order
    (name, why, seeds, keys, epochs, params).
    """
    if out.exists() and not out.is_dir():
        raise SegreproError(f"--out {out} is a file; pass a folder for the plan (made if missing)")
    if out.is_dir():  # a failed plan must not leave an older one to run
        for stale in ("jobs.txt", "plan.json"):
            (out / stale).unlink(missing_ok=True)
    sweep = load_sweep(sweep_path)
    load_params(params_path)  # each input's own error, before the plan's files are written
    if after is not None:
        load_profile(after)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(out, exc, directory=True) from None
    arms, jobs = [], []
    for arm in sweep.arms:
        profile = out / f"arm-{arm.name}.yaml"
        keys = {**arm.keys, "base.methods": [sweep.method], "base.seeds": list(arm.seeds)}
        profile.write_text(f"# sweep arm {arm.name}: {arm.why}\n" + yaml.safe_dump(keys, sort_keys=False))
        params_out = out / f"params-{arm.name}.yaml"
        try:
            params = merge(params_path, profile, params_out)
            if after is not None:
                params = merge(params_out, after, params_out)
        except SegreproError as exc:
            raise SegreproError(f"sweep arm {arm.name}: {exc}") from exc
        if (params.base.methods, params.base.seeds) != ((sweep.method,), arm.seeds):
            raise SegreproError(f"sweep arm {arm.name}: the overrides in {after} set base.methods or "
                                f"base.seeds; leave them out in a sweep (its arms decide what runs)")
        arms.append({"name": arm.name, "why": arm.why, "seeds": list(arm.seeds), "keys": arm.keys,
                     "epochs": params.train.epochs, "params": str(params_out)})
        cost = params.train.epochs * (_STRIDE16_COST if params.model.output_stride == 16 else 1.0)
        jobs += [(cost, arm.name, seed) for seed in arm.seeds]
    jobs.sort(key=lambda job: -job[0])  # stable: file order among equal costs
    (out / "jobs.txt").write_text("".join(f"{a} {sweep.method} {s}\n" for _, a, s in jobs))
    result = {"sweep": str(sweep_path), "method": sweep.method, "arms": arms}
    (out / "plan.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def read_curve(live_dir: Path) -> dict[int, float]:
    """Epoch (1-based) → validation mIoU from DVCLive's ``plots/metrics/val/miou.tsv`` (step = epoch − 1)."""
    path = live_dir / "plots" / "metrics" / "val" / "miou.tsv"
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8", newline="") as fh:
        return {int(row["step"]) + 1: float(row["miou"]) for row in csv.DictReader(fh, delimiter="\t")}


def read_epochs_done(live_dir: Path) -> int:
    """Epochs that finished: rows of ``train/loss.tsv`` (one per epoch)."""
    path = live_dir / "plots" / "metrics" / "train" / "loss.tsv"
    if not path.is_file():
        return 0
    return max(0, len(path.read_text().strip().splitlines()) - 1)


_RUNS_COLUMNS = ["arm", "method", "seed", "train_s", "train_rc"]  # what gpu_profile.sh --sweep writes


def read_plan(out: Path) -> dict[str, Any]:
    """``out/plan.json`` as ``plan`` wrote it."""
    path = out / "plan.json"
    fix = "pass the folder `gpu_sweep.py plan` wrote (gpu_profile.sh --sweep: sweep/ in its work folder or archive)"
    if not path.is_file():
        raise SegreproError(f"{path} is missing; {fix}")
    try:
        planned = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SegreproError(f"{path} cannot be read as JSON ({reason(exc)}); {fix}") from None
    arms = planned.get("arms") if isinstance(planned, dict) else None
    if not (isinstance(arms, list) and {"sweep", "method"} <= set(planned)
            and all(isinstance(arm, dict) and {"name", "why", "seeds", "epochs"} <= set(arm) for arm in arms)):
        raise SegreproError(f"{path} is not a plan of gpu_sweep.py (it needs sweep, method, and arms with name, why, "
                            f"seeds and epochs); {fix}")
    return planned


def read_runs(runs_tsv: Path) -> dict[tuple[str, int], dict[str, str]]:
    """(arm, seed) → its row of the script's runs.tsv."""
    fix = "pass the runs.tsv of a gpu_profile.sh --sweep run"
    if not runs_tsv.is_file():
        raise SegreproError(f"runs file {runs_tsv} (--runs) is not a file; {fix}")
    status = {}
    with open(runs_tsv, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        if reader.fieldnames != _RUNS_COLUMNS:
            raise SegreproError(f"runs file {runs_tsv} has the columns {reader.fieldnames}, not a sweep's "
                                f"{_RUNS_COLUMNS}; {fix}")
        for row in reader:
            if not (row["seed"] or "").isdigit():
                raise SegreproError(f"runs file {runs_tsv}, line {reader.line_num}: seed {row['seed']!r} is not a "
                                    f"seed; {fix}")
            status[(row["arm"], int(row["seed"]))] = row
    return status


def summarise(out: Path, runs_tsv: Path, results: Path) -> dict[str, Any]:
    """Every planned run with its curve and status, by arm in the sweep file's order."""
    planned, status = read_plan(out), read_runs(runs_tsv)
    if results.exists() and not results.is_dir():
        raise SegreproError(f"--results {results} is not a folder; pass the folder of the runs' DVCLive "
                            f"folders (results/sweep in the script's work folder or archive)")
    arms = []
    for arm in planned["arms"]:
        runs = {}
        for seed in arm["seeds"]:
            live, row = results / f"{arm['name']}-{seed}", status.get((arm["name"], seed), {})
            done = read_epochs_done(live)
            runs[seed] = {
                "train_s": (int(row["train_s"]) if row.get("train_s", "").isdigit()
                            and row.get("train_rc") != "skipped" else None),
                "rc": row.get("train_rc", "not run"),
                "epochs_done": done,
                "complete": row.get("train_rc") == "0" and done == arm["epochs"],
                "val_miou": read_curve(live),
            }
        finals = [r["val_miou"][arm["epochs"]] for r in runs.values() if r["complete"]]
        arms.append({**arm, "runs": runs, "complete_seeds": len(finals),
                     "final_val_miou_mean": sum(finals) / len(finals) if finals else None})
    return {"sweep": planned["sweep"], "method": planned["method"], "arms": arms}


def format_summary(summary: dict[str, Any]) -> str:
    lines = [f"{summary['method']}, validation split: final mIoU (or where a run stopped), train s; the curve"]
    for entry in summary["arms"]:
        mean = entry["final_val_miou_mean"]
        lines.append(f"{entry['name']} ({entry['epochs']} epochs; mean final "
                     f"{'—' if mean is None else f'{100 * mean:.2f}'} over {entry['complete_seeds']} "
                     f"complete seed(s)): {entry['why']}")
        for seed, run in entry["runs"].items():
            curve = " ".join(f"e{e} {100 * v:.1f}" for e, v in sorted(run["val_miou"].items()))
            if run["complete"]:
                head = f"{100 * run['val_miou'][entry['epochs']]:.2f}"
            elif run["rc"] in ("skipped", "not run"):
                head = "not run" + (" (no time left before the deadline)" if run["rc"] == "skipped" else "")
            else:
                head = f"stopped at epoch {run['epochs_done']} of {entry['epochs']} (rc {run['rc']})"
            secs = "" if run["train_s"] is None else f", {run['train_s']} s"
            lines.append(f"  seed {seed}: {head}{secs}; {curve or 'no validation logged'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plan", help="write every arm's params file and the job list")
    p.add_argument("sweep", type=Path)
    p.add_argument("--params", type=Path, required=True, help="the profile's merged params file")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--after", type=Path, help="dotted overrides applied after each arm's (they win)")
    s = sub.add_parser("summary", help="one line per arm from the runs' validation curves")
    s.add_argument("out", type=Path, help="the folder plan wrote")
    s.add_argument("--runs", type=Path, required=True, help="the script's runs.tsv (arm, seed, train_s, train_rc)")
    s.add_argument("--results", type=Path, required=True, help="the folder of the runs' DVCLive folders")
    s.add_argument("--json", type=Path, help="also write the summary as JSON")
    args = parser.parse_args(argv)
    try:
        if args.command == "plan":
            planned = plan(args.sweep, args.params, args.out, args.after)
            print(f"{sum(len(a['seeds']) for a in planned['arms'])} runs of {len(planned['arms'])} arms "
                  f"in {args.out / 'jobs.txt'}")
        else:
            if args.json is not None:
                check_output(args.json)
            summary = summarise(args.out, args.runs, args.results)
            if args.json is not None:
                with atomic_file(args.json) as tmp:
                    tmp.write_text(json.dumps(summary, indent=1) + "\n")
            print(format_summary(summary))
    except SegreproError as exc:
        print(f"gpu_sweep: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
