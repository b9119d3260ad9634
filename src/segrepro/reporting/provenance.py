"""Where the report's numbers came from: commit, dvc.lock hashes, params, versions, device."""
from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

import pandas as pd
import yaml

from segrepro import layout

PACKAGES = ("torch", "dvc", "dvclive", "numpy", "pandas", "seaborn", "papermill", "nbconvert")


def git_commit(repo: Path) -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + (" (with uncommitted changes)" if dirty else "")


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
