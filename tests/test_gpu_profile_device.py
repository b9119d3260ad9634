"""benchmarks/gpu_profile.sh --sweep without CUDA: the device check reads every arm's params (an arm's
``set:`` may ask for ``runtime.device: cuda`` over the dry run's cpu), so such a sweep stops once, before
the data, with one line naming the arm and the fix, instead of failing run by run after preprocessing.
The grid's check is tested in tests/test_gpu_sweep.py, but for a grid dry run told to use CUDA (here).
Each case is one run of the script (test_gpu_sweep's ``script``) up to the check or the download (a few
seconds)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from tests.test_gpu_sweep import run_script, script

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for a machine without CUDA")


def sweep_run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """``gpu_profile.sh --sweep ARGS`` on a raw folder with an empty CamVid/ (the download stage fails on
    it, so reaching it shows that the check let the sweep through), with two arms: ``plain`` keeps the
    base params' device, ``gpu`` sets ``runtime.device: cuda``."""
    arms = [{"name": "plain", "why": "the base params' device", "seeds": [0], "set": {}},
            {"name": "gpu", "why": "asks for CUDA", "seeds": [0], "set": {"runtime.device": "cuda"}}]
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"method": "baseline", "arms": arms}, sort_keys=False))
    (tmp_path / "raw" / "CamVid").mkdir(parents=True)
    return script(tmp_path, "--sweep", *args, str(tmp_path / "raw"), GPU_PROFILE_SWEEP=str(sweep), **env)


def test_a_sweep_arm_asking_for_cuda_stops_the_sweep_before_the_data(tmp_path: Path) -> None:
    # The dry run's params say cpu, so the merged params alone passed; the arm then failed in every run.
    done = sweep_run(tmp_path, "--cpu-tiny")
    assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-3000:]
    (line,) = done.stderr.splitlines()  # one line, no traceback
    assert line.startswith("gpu_profile.sh: no CUDA device is usable here") and "sweep arms" in line
    assert "gpu (cuda)" in line and "plain" not in line  # only the arm that asks for CUDA
    assert "GPU_PROFILE_SET='runtime.device: cpu'" in line
    assert f"drop runtime.device from the set: of gpu in {tmp_path / 'sweep.yaml'}" in line
    assert "--cpu-tiny" not in line  # it is a dry run already, and the arm's own key wins over it
    phases = (tmp_path / "work" / "phases.tsv").read_text()
    assert "sweep-plan" in phases and "download" not in phases and not (tmp_path / "work" / "data").exists()
    assert not list((tmp_path / "out").iterdir())  # nothing packed


def test_the_fix_the_line_names_lets_the_sweep_through(tmp_path: Path) -> None:
    # The overrides win over an arm's keys: every arm on CPU, past the check, to the download (which fails
    # on the empty copy: exit status 1, not the check's 2).
    done = sweep_run(tmp_path, "--cpu-tiny", GPU_PROFILE_SET="runtime.device: cpu")
    assert done.returncode == 1 and "no CUDA device" not in done.stderr, done.stdout[-3000:] + done.stderr[-3000:]
    assert "download" in (tmp_path / "work" / "phases.tsv").read_text()
    assert yaml.safe_load((tmp_path / "work" / "sweep" / "params-gpu.yaml").read_text())["runtime"]["device"] == "cpu"


def test_a_grid_dry_run_told_to_use_cuda_names_the_override_not_the_dry_run(tmp_path: Path) -> None:
    # --cpu-tiny is already given: the line must not offer it; the CUDA comes from GPU_PROFILE_SET.
    (tmp_path / "raw" / "CamVid").mkdir(parents=True)
    done, _ = run_script(tmp_path, str(tmp_path / "raw"), status=2, GPU_PROFILE_SET="runtime.device: cuda")
    (line,) = done.stderr.splitlines()
    assert "the dry run's params say runtime.device cuda, from GPU_PROFILE_SET" in line
    assert "drop runtime.device from GPU_PROFILE_SET" in line and "--cpu-tiny" not in line
    assert "download" not in (tmp_path / "work" / "phases.tsv").read_text()
