"""What ``dvc.lock`` records: the one reader of the lock file for the audit (outputs, params).

Paths in ``dvc.lock`` are relative to the directory that holds it (DVC's
convention), so callers resolve them against ``lock_path.parent``.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from segrepro.errors import SegreproError


def read_lock(path: Path) -> dict:
    """The ``stages`` mapping of ``dvc.lock``."""
    if not Path(path).is_file():
        raise SegreproError(f"{path} is missing; run `dvc repro` before auditing")
    try:
        lock = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as exc:
        raise SegreproError(f"{path} is not valid YAML: {exc}; restore it with `git checkout dvc.lock` "
                            "or rerun `dvc repro`") from exc
    stages = lock.get("stages", {}) if isinstance(lock, dict) else None
    if not isinstance(stages, dict):
        raise SegreproError(f"{path} has no 'stages' mapping; rerun `dvc repro` to rewrite it")
    return stages


def stage_outs(stages: dict, stage: str) -> dict[str, str | None] | None:
    """``{path: md5}`` of ``stage``'s outputs, or None when the stage has no lock entry."""
    if stage not in stages:
        return None
    return {out["path"]: out.get("md5") for out in stages[stage].get("outs", []) or [] if "path" in out}


def out_md5(stages: dict, stage: str, path: str) -> str | None:
    """md5 that dvc.lock records for ``path`` among ``stage``'s outs, or None."""
    return (stage_outs(stages, stage) or {}).get(path)


def stage_params(stages: dict, stage: str) -> dict[str, dict]:
    """``{params file: {key: value}}`` that ``stage`` read when it ran (empty when it records none).

    DVC records each ``params:`` entry of ``dvc.yaml`` under the file it came
    from, the key as written there (``train``, ``model.sdn``, ``base.methods``)
    and the value as it was then, a whole section for a section key.
    """
    recorded = (stages.get(stage) or {}).get("params") or {}
    return {str(name): values for name, values in recorded.items() if isinstance(values, dict)}
