"""Real `dvc repro`, end to end, on a tiny configuration in a temporary copy of the repository."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import tiny_repo

pytestmark = pytest.mark.e2e


def sh(args: list[str], cwd: Path, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def ran(proc: subprocess.CompletedProcess) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", proc.stdout + proc.stderr))


@pytest.fixture(scope="module")
def repo(tmp_path_factory, mirror) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("e2e") / "repo"
    env = tiny_repo(root, mirror)
    return root, env


def test_repro_end_to_end_then_incremental(repo):
    root, env = repo
    first = sh(["dvc", "repro", "report"], root, env)
    assert {"download", "preprocess", "train@baseline-0", "evaluate@baseline-0", "report"} <= ran(first)
    html = (root / "reports" / "report.html").read_text()
    assert "Main comparison" in html and "data:image/png;base64," in html

    # Pin the results, then the full DAG (audit included) passes.
    sh(["segrepro", "audit", "--update"], root, env)
    full = sh(["dvc", "repro"], root, env)
    assert ran(full) == {"audit"}
    assert "**PASS**" in (root / "reports" / "audit.md").read_text()

    # Nothing changed: nothing runs.
    assert ran(sh(["dvc", "repro"], root, env)) == set()

    # A report-only parameter reruns only the report.
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["report"]["title"] = "Another title"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert ran(sh(["dvc", "repro"], root, env)) == {"report"}
    assert "Another title" in (root / "reports" / "report.html").read_text()


def test_retraining_reproduces_the_checkpoint_and_audit_catches_drift(repo):
    root, env = repo
    lock_before = (root / "dvc.lock").read_text()
    sh(["dvc", "repro", "-f", "train@baseline-0"], root, env)
    assert (root / "dvc.lock").read_text() == lock_before   # same checkpoint md5, bit for bit

    pins = yaml.safe_load((root / "pins.yaml").read_text())
    (section,) = pins["classes"].values()
    section["results"]["baseline-0"]["metrics"]["miou"] += 0.5
    (root / "pins.yaml").write_text(yaml.safe_dump(pins))
    proc = sh(["dvc", "repro", "audit"], root, env, check=False)
    assert proc.returncode != 0
    assert "drift" in (root / "reports" / "audit.md").read_text()


def test_share_through_a_remote(repo, tmp_path):
    """Push everything from one clone, pull into a clean clone: nothing reruns, same numbers."""
    root, env = repo
    sh(["segrepro", "audit", "--update"], root, env)        # undo the previous test's drifted pin
    sh(["dvc", "repro"], root, env)
    remote = tmp_path / "remote"
    sh(["dvc", "remote", "add", "-d", "shared", str(remote)], root, env)
    sh(["git", "add", "-A"], root, env)
    sh(["git", "commit", "-qm", "results"], root, env)
    sh(["dvc", "push"], root, env)

    clone = tmp_path / "clone"
    sh(["git", "clone", "-q", str(root), str(clone)], tmp_path, env)
    assert not (clone / "models").exists()                   # nothing but code and dvc.lock came with git
    sh(["dvc", "pull"], clone, env)
    assert ran(sh(["dvc", "repro"], clone, env)) == set()
    for rel in ("results/metrics/baseline-0.json", "results/comparison.json", "reports/tables/main.csv",
                "models/baseline-0.pt"):
        assert (clone / rel).read_bytes() == (root / rel).read_bytes(), rel
    shown = sh(["dvc", "exp", "show", "--no-pager", "--csv"], clone, env).stdout
    # The compact summary: headline metrics only (BF at 2 px), not every per-run column.
    assert "miou" in shown and "boundary_iou" in shown and "bf@2px" in shown and "bf@1px" not in shown
