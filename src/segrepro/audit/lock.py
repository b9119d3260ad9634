"""What ``dvc.lock`` records, and whether the workspace still matches it."""
from __future__ import annotations

from pathlib import Path

import yaml

from segrepro.errors import SegreproError


def read_lock(path: Path) -> dict:
    if not Path(path).is_file():
        raise SegreproError(f"{path} is missing; run `dvc repro` before auditing")
    try:
        lock = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as exc:
        raise SegreproError(f"{path} is not valid YAML: {exc}") from exc
    return lock.get("stages", {})


def out_md5(stages: dict, stage: str, path: str) -> str | None:
    """md5 that dvc.lock records for ``path`` among ``stage``'s outs, or None."""
    for out in stages.get(stage, {}).get("outs", []):
        if out.get("path") == path:
            return out.get("md5")
    return None


def changed_stages(repo_root: Path, targets: list[str]) -> dict:
    """``dvc status`` of the given stages: an empty dict when data and lock agree."""
    from dvc.repo import Repo  # imported lazily: dvc is slow to import

    with Repo(str(repo_root)) as repo:
        return repo.status(targets=targets)
