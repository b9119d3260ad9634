"""Where the report's numbers came from: commit, dvc.lock hashes, params, versions, machines.

The same facts head the report's Provenance section and ``provenance.md``
beside the exported tables (``export_provenance``), so a table copied out of
``reports/tables`` still names the commit, the configuration and the
machines that made it.
"""
from __future__ import annotations

import platform
import subprocess
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import pandas as pd
import yaml

from segrepro import layout
from segrepro.atomic import atomic_file

PACKAGES = ("torch", "dvc", "dvclive", "numpy", "pandas", "seaborn", "papermill", "nbconvert")
SHOWN_PATHS = 5  # changed files named after the commit; the rest are counted
PROVENANCE_FILE = "provenance.md"
HASHES_CAPTION = ("dvc.lock hashes of the data, checkpoints and per-image statistics these numbers came from "
                  "(this report's runs only):")


def git_commit(repo: Path) -> str:
    """HEAD, and the tracked files changed since it, by path.

    ``dvc.lock`` (at any depth) is left out: ``dvc repro`` rewrites it before
    the report stage runs, so it is always changed then and says nothing
    about the code. Files git ignores (the stages' outputs) are never listed.
    """
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                              check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ":/",
                                 ":(top,exclude,glob)**/dvc.lock"], cwd=repo, capture_output=True, text=True,
                                check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    paths = [line[3:] for line in status.splitlines() if line.strip()]
    if not paths:
        return head
    more = f", and {len(paths) - SHOWN_PATHS} more" if len(paths) > SHOWN_PATHS else ""
    return f"{head} (with uncommitted changes: {', '.join(paths[:SHOWN_PATHS])}{more})"


def lock_hashes(lock_path: Path, keys: Sequence[str]) -> pd.DataFrame:
    """md5 of the cached outputs the report's numbers came from, as dvc.lock records them: the data
    (``preprocess``), then each run's checkpoint (``train@<key>``) and metrics and per-image statistics
    (``evaluate@<key>``) for the report's ``keys`` only. DVC keeps the entries of runs no longer in
    ``base.methods × base.seeds`` in dvc.lock; those made none of the report's numbers and are left out.
    A run without an entry gets a row saying so."""
    columns = ["stage", "output", "md5"]
    if not Path(lock_path).is_file():
        return pd.DataFrame(columns=columns)
    stages = (yaml.safe_load(Path(lock_path).read_text()) or {}).get("stages", {})
    rows = []
    for name in ["preprocess"] + [f"{stage}@{key}" for key in keys for stage in ("train", "evaluate")]:
        if name not in stages:
            rows.append({"stage": name, "output": "-", "md5": "no dvc.lock entry"})
            continue
        rows += [{"stage": name, "output": out["path"], "md5": out.get("md5", "")}
                 for out in stages[name].get("outs", []) or []]
    return pd.DataFrame(rows, columns=columns)


def _grouped(runs: dict[str, list[str]]) -> str:
    return "; ".join(f"{what} ({', '.join(sorted(keys))})" for what, keys in sorted(runs.items()))


def training_environments(rows: list[dict]) -> str:
    """Where the results were trained: each environment class (``audit.environment.class_key``, from the
    ``train_environment`` every metrics file carries) with the runs trained in it."""
    from segrepro.audit.environment import class_key

    runs: dict[str, list[str]] = {}
    for row in rows:
        env = row.get("train_environment") or {}
        klass = class_key(env) if env.get("device") else "not recorded"
        runs.setdefault(klass, []).append(layout.run_key(row["method"], row["seed"]))
    return _grouped(runs)


def describe_machine(env: dict) -> str:
    """What a timing is quoted with (``runtime.machine_description``): the GPU and CUDA on a GPU, else
    the CPU model, its PyTorch capability and the thread count; and the torch build."""
    if env.get("device") == "cuda":
        return f"{env.get('gpu') or 'unknown GPU'} (CUDA {env.get('cuda') or '?'}), torch {env.get('torch')}"
    return (f"{env.get('cpu_model') or 'unknown CPU'} ({env.get('cpu_capability')}, {env.get('threads')} "
            f"threads), torch {env.get('torch')}")


def evaluation_machines(rows: list[dict]) -> dict[str, list[str]]:
    """Each machine that evaluated (and timed) results, from their ``evaluation_environment``, with its runs."""
    runs: dict[str, list[str]] = {}
    for row in rows:
        runs.setdefault(describe_machine(row["evaluation_environment"]), []).append(
            layout.run_key(row["method"], row["seed"]))
    return runs


def latency_machine_text(rows: list[dict]) -> str:
    """Where the latencies were measured, for the cost table's caption."""
    machines = evaluation_machines(rows)
    if len(machines) == 1:
        return f"latency measured on {next(iter(machines))}"
    return (f"latency measured on {len(machines)} different machines, so latencies of runs on different "
            f"machines are not comparable: {_grouped(machines)}")


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def provenance_facts(rows: list[dict], repo: Path) -> dict[str, str]:
    """The report's provenance table: commit, runs, where they were trained and evaluated, versions."""
    machines = evaluation_machines(rows)
    return {
        "git commit": git_commit(repo),
        "runs (method-seed)": ", ".join(layout.run_key(r["method"], r["seed"]) for r in rows),
        "trained in (environment class)": training_environments(rows),
        "evaluated on (machine)": (_grouped(machines) if len(machines) > 1 else next(iter(machines))),
        "python": platform.python_version(),
        **{f"package {k}": v for k, v in package_versions().items()},
    }


def export_provenance(directory: Path, facts: dict[str, str], hashes: pd.DataFrame, params_path: Path) -> None:
    """``provenance.md`` beside the exported tables: ``facts``, the dvc.lock hashes and the params file."""
    params_path = Path(params_path)
    lines = ["# Provenance of these tables", "", "Written by the report with the tables beside it.", "",
             pd.DataFrame({"value": facts}).to_markdown(), ""]
    if len(hashes):
        lines += [HASHES_CAPTION, "",
                  hashes.to_markdown(index=False), ""]
    else:
        lines += ["No dvc.lock beside these results: they were not made by `dvc repro`.", ""]
    if params_path.is_file():
        lines += [f"Parameters (`{params_path.name}`):", "", "```yaml", params_path.read_text().rstrip("\n"), "```", ""]
    else:
        lines += [f"No parameters file at `{params_path}`.", ""]
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_file(directory / PROVENANCE_FILE) as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8")
