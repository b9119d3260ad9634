"""Compare results with pinned values and the data/checkpoints with their pinned hashes.

Pins file (YAML, committed)::

    environment: {torch: 2.13.0+cpu, device: cpu}
    tolerance: {default: 0.01, miou: 0.005}   # absolute; per metric or default
    data: {path: data/processed, md5: …}  # md5 as dvc.lock records it
    results:
      baseline-0:
        metrics: {miou: 0.53, ...}
        checkpoint: {path: models/baseline-0.pt, md5: …}

Each check is ``pass``, ``drift`` or ``missing``; ``skip`` marks a
checkpoint-hash check under a different torch version or device, where bit
equality is not expected (metrics are still held to their tolerance).
"""
from __future__ import annotations

import difflib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import yaml

from segrepro.atomic import atomic_file, write_json
from segrepro.audit.lock import changed_stages, out_md5, read_lock
from segrepro.errors import SegreproError

DEFAULT_TOLERANCE = 0.01  # absolute, for every pinned metric unless the pins file says otherwise
SCALAR_METRICS = ("miou", "pixel_acc", "mean_acc", "boundary_iou")


def pinned_metric_names(result: dict) -> list[str]:
    """The accuracy and boundary metrics of a results file (not cost: latency is not reproducible)."""
    return sorted(k for k in result if k in SCALAR_METRICS or k.startswith(("bf@", "trimap@")))
DATA_STAGE, DATA_PATH = "preprocess", "data/processed"


@dataclass(frozen=True)
class Check:
    subject: str
    check: str
    status: str
    observed: str
    pinned: str


def environment() -> dict[str, str]:
    return {"torch": str(torch.__version__), "device": "cuda" if torch.cuda.is_available() else "cpu"}


def _checkpoint(key: str) -> str:
    return f"models/{key}.pt"


def load_pins(path: Path) -> dict:
    if not Path(path).is_file():
        raise SegreproError(f"pins file {path} is missing; create it with `segrepro audit --update`")
    try:
        pins = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        raise SegreproError(f"pins file {path} is not valid YAML: {exc}") from exc
    if not isinstance(pins, dict) or not isinstance(pins.get("results"), dict):
        raise SegreproError(f"pins file {path} has no 'results' mapping; regenerate it with "
                            "`segrepro audit --update`")
    return pins


def _load_result(metrics_dir: Path, key: str) -> dict | None:
    path = metrics_dir / f"{key}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def run_checks(pins: dict, metrics_dir: Path, lock_path: Path, expected: list[str],
               repo_root: Path) -> list[Check]:
    stages = read_lock(lock_path)
    tolerance = pins.get("tolerance") or {}
    same_env = pins.get("environment") == environment()
    checks = []
    pinned_data = (pins.get("data") or {}).get("md5")
    data_md5 = out_md5(stages, DATA_STAGE, DATA_PATH)
    checks.append(Check("data", "dvc.lock md5", "pass" if data_md5 and data_md5 == pinned_data
                        else ("missing" if not data_md5 else "drift"), str(data_md5), str(pinned_data)))
    for key in sorted(set(pins["results"]) | set(expected)):
        pin = pins["results"].get(key)
        result = _load_result(metrics_dir, key)
        if pin is None:
            checks.append(Check(key, "pin", "missing", "result present" if result else "-", "no pin"))
            continue
        for metric, pinned in sorted(pin.get("metrics", {}).items()):
            if result is None or metric not in result:
                checks.append(Check(key, metric, "missing", "-", f"{pinned:.4f}"))
                continue
            tol = tolerance.get(metric, tolerance.get("default", DEFAULT_TOLERANCE))
            ok = abs(result[metric] - pinned) <= tol
            checks.append(Check(key, metric, "pass" if ok else "drift", f"{result[metric]:.4f}",
                                f"{pinned:.4f} ± {tol}"))
        pinned_md5 = (pin.get("checkpoint") or {}).get("md5")
        md5 = out_md5(stages, f"train@{key}", _checkpoint(key))
        if md5 is None:
            status = "missing"
        elif md5 == pinned_md5:
            status = "pass"
        else:
            status = "drift" if same_env else "skip"
        checks.append(Check(key, "checkpoint md5", status, str(md5), str(pinned_md5)))
    targets = [DATA_STAGE] + [f"train@{k}" for k in expected if f"train@{k}" in stages]
    stale = changed_stages(repo_root, targets)
    checks.append(Check("workspace", "matches dvc.lock", "drift" if stale else "pass",
                        ", ".join(sorted(stale)) or "clean", "clean"))
    return checks


def write_reports(checks: list[Check], json_path: Path, md_path: Path) -> str:
    """Write audit.json and audit.md; return the Markdown table that is also printed."""
    failed = [c for c in checks if c.status in ("drift", "missing")]
    write_json(json_path, {"passed": not failed, "checks": [asdict(c) for c in checks]})
    lines = ["| subject | check | status | observed | pinned |", "|---|---|---|---|---|"]
    lines += [f"| {c.subject} | {c.check} | {c.status} | {c.observed} | {c.pinned} |" for c in checks]
    verdict = "PASS" if not failed else f"FAIL: {len(failed)} check(s) drifted or missing"
    table = "\n".join(lines) + f"\n\n**{verdict}**\n"
    with atomic_file(md_path) as tmp:
        tmp.write_text("# Audit against pinned results\n\n" + table)
    return table


def update_pins(path: Path, metrics_dir: Path, lock_path: Path, expected: list[str]) -> str:
    """Rewrite the pins from the current results and dvc.lock; return the unified diff."""
    old_text = Path(path).read_text() if Path(path).is_file() else ""
    old = yaml.safe_load(old_text) if old_text else {}
    stages = read_lock(lock_path)
    results = {}
    for key in expected:
        result = _load_result(metrics_dir, key)
        md5 = out_md5(stages, f"train@{key}", _checkpoint(key))
        if result is None or md5 is None:
            raise SegreproError(f"cannot pin {key}: its results or dvc.lock entry are missing; "
                                "run `dvc repro` first")
        results[key] = {"metrics": {m: round(float(result[m]), 6) for m in pinned_metric_names(result)},
                        "checkpoint": {"path": _checkpoint(key), "md5": md5}}
    pins = {"environment": environment(),
            "tolerance": (old or {}).get("tolerance") or {"default": DEFAULT_TOLERANCE},
            "data": {"path": DATA_PATH, "md5": out_md5(stages, DATA_STAGE, DATA_PATH)},
            "results": results}
    new_text = ("# Pinned results for `segrepro audit`; regenerate deliberately with "
                "`segrepro audit --update`.\n" + yaml.safe_dump(pins, sort_keys=True))
    with atomic_file(path) as tmp:
        tmp.write_text(new_text)
    return "".join(difflib.unified_diff(old_text.splitlines(True), new_text.splitlines(True),
                                        str(path), str(path)))
