"""The report's provenance names where every result was trained, and whether the commit had uncommitted changes."""
from __future__ import annotations

import subprocess
from pathlib import Path

from segrepro.reporting.provenance import git_commit, training_environments

INTEL = {"torch": "2.13.0+cpu", "device": "cpu", "cpu_capability": "AVX512",
         "cpu_model": "Intel(R) Xeon(R) Processor (family 6, model 106)", "gpu": "", "cuda": ""}
AMD = {**INTEL, "cpu_model": "AMD EPYC (family 25, model 17)"}


def test_each_class_lists_its_runs():
    rows = [{"method": "baseline", "seed": 0, "train_environment": AMD},
            {"method": "sdn", "seed": 0, "train_environment": AMD},
            {"method": "baseline", "seed": 1, "train_environment": INTEL},
            {"method": "pdn", "seed": 0}]
    assert training_environments(rows) == (
        "cpu-AVX512-AMD EPYC (family 25, model 17) (baseline-0, sdn-0); "
        "cpu-AVX512-Intel(R) Xeon(R) Processor (family 6, model 106) (baseline-1); "
        "not recorded (pdn-0)")


def test_a_gpu_run_is_named_by_its_gpu():
    env = {**INTEL, "device": "cuda", "gpu": "NVIDIA H200", "cuda": "12.8"}
    assert training_environments([{"method": "ddsm", "seed": 2, "train_environment": env}]) == \
        "cuda-NVIDIA H200 (ddsm-2)"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                   capture_output=True)


def test_the_commit_is_dirty_for_changed_code_not_for_dvc_lock_or_ignored_outputs(tmp_path):
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    for name in ("dvc.lock", "sub/dvc.lock", "params.yaml", "code.py"):
        (repo / name).write_text("v1\n")
    (repo / ".gitignore").write_text("/reports\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "c")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    # What `dvc repro` leaves before the report stage: a rewritten dvc.lock, git-ignored outputs.
    (repo / "dvc.lock").write_text("v2\n")
    (repo / "sub" / "dvc.lock").write_text("v2\n")
    (repo / "reports").mkdir()
    (repo / "reports" / "report.html").write_text("x")
    assert git_commit(repo) == head
    assert git_commit(repo / "sub") == head
    (repo / "params.yaml").write_text("v2\n")
    (repo / "code.py").unlink()
    assert git_commit(repo) == f"{head} (with uncommitted changes: code.py, params.yaml)"
    assert git_commit(repo / "sub") == f"{head} (with uncommitted changes: code.py, params.yaml)"
    assert git_commit(tmp_path) == "unknown (not a git checkout)"
