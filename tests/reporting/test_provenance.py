"""The report's provenance: where every result was trained and evaluated, which dvc.lock hashes made its
numbers, and whether the commit had uncommitted changes."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from segrepro.reporting.provenance import (export_provenance, git_commit, latency_machine_text, lock_hashes,
                                           provenance_facts, training_environments)
from tests.reporting.fixtures import EVALUATED_ON, STALE_RUN, fake_md5, lock

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


def test_latency_names_the_evaluating_machine_and_says_when_there_were_several():
    rows = [{"method": m, "seed": 0, "evaluation_environment": EVALUATED_ON} for m in ("baseline", "sdn")]
    amd = "AMD EPYC 7763 64-Core Processor (family 25, model 1) (AVX2, 2 threads), torch 2.13.0"
    assert latency_machine_text(rows) == f"latency measured on {amd}"
    gpu = {**EVALUATED_ON, "device": "cuda", "gpu": "NVIDIA H100 80GB HBM3", "cuda": "12.8"}
    rows.append({"method": "pdn", "seed": 0, "evaluation_environment": gpu})
    assert latency_machine_text(rows) == (
        "latency measured on 2 different machines, so latencies of runs on different machines are not "
        f"comparable: {amd} (baseline-0, sdn-0); NVIDIA H100 80GB HBM3 (CUDA 12.8), torch 2.13.0 (pdn-0)")
    facts = provenance_facts(rows, Path("/"))
    assert facts["evaluated on (machine)"].startswith(f"{amd} (baseline-0, sdn-0); NVIDIA H100")
    assert facts["runs (method-seed)"] == "baseline-0, sdn-0, pdn-0"


def test_lock_hashes_are_those_of_the_report_runs_only(tmp_path):
    path = tmp_path / "dvc.lock"
    path.write_text(yaml.safe_dump(lock(["baseline-0"])))     # and the leftover entries of STALE_RUN
    hashes = lock_hashes(path, ["baseline-0", "sdn-0"])
    assert hashes.values.tolist() == [
        ["preprocess", "data/processed", fake_md5("data") + ".dir"],
        ["train@baseline-0", "models/baseline-0.pt", fake_md5("baseline-0")],
        ["evaluate@baseline-0", "results/metrics/baseline-0.json", fake_md5("metrics/baseline-0")],
        ["evaluate@baseline-0", "results/per_image/baseline-0.npz", fake_md5("per_image/baseline-0")],
        ["train@sdn-0", "-", "no dvc.lock entry"],
        ["evaluate@sdn-0", "-", "no dvc.lock entry"]]
    assert STALE_RUN not in hashes.to_string()
    assert lock_hashes(tmp_path / "absent.lock", ["baseline-0"]).empty


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


def test_export_provenance_without_a_lock_or_params_says_so(tmp_path):
    export_provenance(tmp_path / "tables", {"git commit": "abc"}, pd.DataFrame(columns=["stage", "output", "md5"]),
                      tmp_path / "params.yaml")
    text = (tmp_path / "tables" / "provenance.md").read_text()
    assert "| git commit | abc     |" in text
    assert "No dvc.lock beside these results" in text and f"No parameters file at `{tmp_path / 'params.yaml'}`" in text
