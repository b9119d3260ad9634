"""Where the report's numbers came from: commit, dvc.lock hashes, params, versions, device."""
from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

import pandas as pd
import yaml

from segrepro import layout

PACKAGES = ("torch", "dvc", "dvclive", "numpy", "pandas", "seaborn", "papermill", "nbconvert")
SHOWN_PATHS = 5  # changed files named after the commit; the rest are counted


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


def lock_hashes(lock_path: Path) -> pd.DataFrame:
    """md5 of every cached stage output (data, checkpoints, per-image statistics) in dvc.lock."""
    if not Path(lock_path).is_file():
        return pd.DataFrame(columns=["stage", "output", "md5"])
    stages = (yaml.safe_load(Path(lock_path).read_text()) or {}).get("stages", {})
    rows = [{"stage": name, "output": out["path"], "md5": out.get("md5", "")}
            for name, stage in stages.items() for out in stage.get("outs", [])
            if name == "preprocess" or name.startswith("train@")]
    return pd.DataFrame(rows, columns=["stage", "output", "md5"])


def training_environments(rows: list[dict]) -> str:
    """Where the results were trained: each environment class (``audit.environment.class_key``, from the
    ``train_environment`` every metrics file carries) with the runs trained in it."""
    from segrepro.audit.environment import class_key

    runs: dict[str, list[str]] = {}
    for row in rows:
        env = row.get("train_environment") or {}
        klass = class_key(env) if env.get("device") else "not recorded"
        runs.setdefault(klass, []).append(layout.run_key(row["method"], row["seed"]))
    return "; ".join(f"{klass} ({', '.join(sorted(keys))})" for klass, keys in sorted(runs.items()))


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
