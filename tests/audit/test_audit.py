"""Audit: pass, drift beyond tolerance, a changed data hash, a missing result."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from segrepro.audit import audit
from segrepro.audit.audit import load_pins, run_checks, update_pins, write_reports
from segrepro.errors import SegreproError

LOCK = {"stages": {
    "preprocess": {"outs": [{"path": "data/processed", "md5": "d" * 32 + ".dir"}]},
    "train@baseline-0": {"outs": [{"path": "models/baseline-0.pt", "md5": "c" * 32}]},
}}


@pytest.fixture()
def workspace(tmp_path: Path, monkeypatch) -> Path:
    # The workspace-vs-lock check runs `dvc status`, exercised by the e2e test;
    # here the lock is synthetic, so report a clean workspace.
    monkeypatch.setattr(audit, "changed_stages", lambda root, targets: {})
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "baseline-0.json").write_text(
        json.dumps({"miou": 0.5, "pixel_acc": 0.9, "mean_acc": 0.6}))
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(LOCK))
    update_pins(tmp_path / "pins.yaml", tmp_path / "metrics", tmp_path / "dvc.lock", ["baseline-0"])
    return tmp_path


def check(ws: Path, expected=("baseline-0",)):
    checks = run_checks(load_pins(ws / "pins.yaml"), ws / "metrics", ws / "dvc.lock", list(expected), ws)
    return {(c.subject, c.check): c.status for c in checks}, checks


def test_pass(workspace):
    statuses, checks = check(workspace)
    assert set(statuses.values()) == {"pass"}
    table = write_reports(checks, workspace / "audit.json", workspace / "audit.md")
    assert "**PASS**" in table and json.loads((workspace / "audit.json").read_text())["passed"]


def test_drift_beyond_tolerance_only(workspace):
    path = workspace / "metrics" / "baseline-0.json"
    path.write_text(json.dumps({"miou": 0.509, "pixel_acc": 0.9, "mean_acc": 0.62}))
    statuses, checks = check(workspace)
    assert statuses[("baseline-0", "miou")] == "pass"        # within ±0.01
    assert statuses[("baseline-0", "mean_acc")] == "drift"   # 0.02 away
    write_reports(checks, workspace / "audit.json", workspace / "audit.md")
    assert "FAIL" in (workspace / "audit.md").read_text()
    assert not json.loads((workspace / "audit.json").read_text())["passed"]


def test_changed_data_hash(workspace):
    lock = yaml.safe_load((workspace / "dvc.lock").read_text())
    lock["stages"]["preprocess"]["outs"][0]["md5"] = "e" * 32 + ".dir"
    (workspace / "dvc.lock").write_text(yaml.safe_dump(lock))
    statuses, _ = check(workspace)
    assert statuses[("data", "dvc.lock md5")] == "drift"


def test_missing_result_and_missing_pin(workspace):
    (workspace / "metrics" / "baseline-0.json").unlink()
    statuses, _ = check(workspace, expected=("baseline-0", "sdn-0"))
    assert statuses[("baseline-0", "miou")] == "missing"
    assert statuses[("sdn-0", "pin")] == "missing"


def test_checkpoint_hash_change_is_drift_in_the_pinned_environment(workspace):
    lock = yaml.safe_load((workspace / "dvc.lock").read_text())
    lock["stages"]["train@baseline-0"]["outs"][0]["md5"] = "f" * 32
    (workspace / "dvc.lock").write_text(yaml.safe_dump(lock))
    statuses, _ = check(workspace)
    assert statuses[("baseline-0", "checkpoint md5")] == "drift"
    pins = yaml.safe_load((workspace / "pins.yaml").read_text())
    pins["environment"]["torch"] = "0.0.0"
    (workspace / "pins.yaml").write_text(yaml.safe_dump(pins))
    statuses, _ = check(workspace)
    assert statuses[("baseline-0", "checkpoint md5")] == "skip"


def test_update_shows_a_diff_and_bad_pins_are_rejected(workspace):
    (workspace / "metrics" / "baseline-0.json").write_text(
        json.dumps({"miou": 0.6, "pixel_acc": 0.9, "mean_acc": 0.6}))
    diff = update_pins(workspace / "pins.yaml", workspace / "metrics", workspace / "dvc.lock", ["baseline-0"])
    assert "-      miou: 0.5" in diff and "+      miou: 0.6" in diff
    (workspace / "pins.yaml").write_text("results: [1, 2]\n")
    with pytest.raises(SegreproError, match="no 'results' mapping"):
        load_pins(workspace / "pins.yaml")
