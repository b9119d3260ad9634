"""Were the params changed after the audited stages ran?

``dvc.lock`` records, for each stage, the value of every params key it reads
(``params: {params.yaml: {train: {...}, model.sdn: {...}, base.methods:
[...]}}``). Inside ``dvc repro`` a changed value reruns the stage, but
``segrepro audit`` also runs on its own: after ``train.epochs`` 12 → 1 or
``base.methods: [baseline]`` in ``params.yaml`` without a rerun, the outputs
still hash to ``dvc.lock`` (``edits.py``) and the audit would pass results
that the checkout's params did not make. So each audited stage
(``edits.audited_stages``: preprocess, the run's train@ and evaluate@
entries, compare) whose recorded params differ from the params file now
gets one ``stale`` row naming the keys, down to the changed leaves
(``train.epochs``, not the whole ``train`` section).

Choices:

* The params file is the one ``dvc.lock`` names, resolved against the lock's
  directory as DVC does, not the CLI's ``--params``.
* A number written as a string by one YAML reader and as a number by the
  other (``1e-3``: a string to PyYAML, a float to DVC's YAML 1.2 reader)
  counts as equal when the string parses to the same float.
* Code dependencies are not re-hashed: params first (the reported case); a
  code change without a rerun is what ``dvc status`` reports.
"""
from __future__ import annotations

import json
from pathlib import Path

from segrepro.audit.check import Check
from segrepro.audit.edits import audited_stages
from segrepro.audit.lock import stage_params
from segrepro.strict_yaml import read_yaml

_ABSENT = object()
SHOWN = 4  # keys shown in full in a row; the rest are counted


def _lookup(params: object, dotted: str) -> object:
    for part in dotted.split("."):
        if not isinstance(params, dict) or part not in params:
            return _ABSENT
        params = params[part]
    return params


def _same(a: object, b: object) -> bool:
    if a == b:
        return True
    for text, number in ((a, b), (b, a)):
        if isinstance(text, str) and isinstance(number, (int, float)) and not isinstance(number, bool):
            try:
                return float(text) == float(number)
            except ValueError:
                return False
    return False


def changed_keys(recorded: object, current: object, key: str) -> list[str]:
    """Dotted keys under ``key`` whose value differs (a missing key differs from any value)."""
    if isinstance(recorded, dict) and isinstance(current, dict):
        return [k for sub in sorted(set(recorded) | set(current), key=str)
                for k in changed_keys(recorded.get(sub, _ABSENT), current.get(sub, _ABSENT), f"{key}.{sub}")]
    if recorded is _ABSENT or current is _ABSENT:
        return [] if recorded is current else [key]
    return [] if _same(recorded, current) else [key]


def _show(params: dict, keys: list[str]) -> str:
    def value(key: str) -> str:
        v = _lookup(params, key)
        return "(absent)" if v is _ABSENT else json.dumps(v, separators=(",", ":"), default=str)
    more = f", and {len(keys) - SHOWN} more" if len(keys) > SHOWN else ""
    return ", ".join(f"{k}={value(k)}" for k in keys[:SHOWN]) + more


def _read(path: Path) -> dict | None:
    if not path.is_file():
        return None
    return read_yaml(path, "params file", "the one dvc.lock names, beside it") or {}


def _tree(recorded: dict) -> dict:
    """The recorded ``{dotted key: value}`` as a nested mapping, to look leaves up like the params file."""
    tree: dict = {}
    for key, value in recorded.items():
        node = tree
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return tree


def stale_checks(stages: dict, lock_dir: Path, keys: list[str]) -> list[Check]:
    """One ``stale`` row per audited stage whose recorded params differ from the params file now."""
    files: dict[str, dict | None] = {}
    rows = []
    for stage in audited_stages(keys):
        for name, recorded in sorted(stage_params(stages, stage).items()):
            if name not in files:
                files[name] = _read(Path(lock_dir) / name)
            current = files[name]
            if current is None:
                rows.append(Check(stage, f"params = dvc.lock ({name})", "missing", "-", "recorded",
                                  f"{name}, whose values {stage} ran with, is missing; restore it "
                                  "(`git checkout`) or rerun `dvc repro`"))
                continue
            changed = [k for key, value in sorted(recorded.items())
                       for k in changed_keys(value, _lookup(current, key), key)]
            if changed:
                rows.append(Check(stage, f"params = dvc.lock ({name})", "stale", _show(current, changed),
                                  _show(_tree(recorded), changed),
                                  f"{name} changed since {stage} ran ({', '.join(changed)}); its outputs "
                                  "are from the old values: rerun `dvc repro`"))
    return rows
