"""The pipeline's stages in the image, for real: `dvc repro` on the host with SEGREPRO_CONTAINER set
runs every stage in a container, as a non-root user, and records the same dvc.lock hashes as a run
on the host.

The engine: one that answers already (DOCKER_HOST or the default socket), else, as root on Linux,
the one ../shared/tools/container-env.sh starts (a local base image, since nothing can be pulled
there); otherwise the module is skipped with the reason. The image is built once per session, in
the background of the other tests (tests/container_image.py; Docker's layer cache makes a rebuild
after a change to src/ take seconds).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from segrepro import layout
from tests.conftest import REPO, tiny_repo
from tests.container_image import IMAGE, PREPARATION

pytestmark = pytest.mark.container

METHODS = ["baseline", "pdn"]      # two methods keep it short; sdn and ddsm run the same stage commands
OUTSIDER_UID = 4242                # the container user when the test runs as root: no passwd entry anywhere
# Measured, so never equal between two runs: compared without it (every other key must match).
TIMING_KEYS = {"latency_s"}


def run(args: list[str], env: dict, cwd: Path = REPO, timeout: int = 900, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, **kw)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="session")
def engine() -> dict:
    """Environment whose `docker` reaches an engine; SEGREPRO_BASE_IMAGE set when the base is local."""
    return PREPARATION.engine()


@pytest.fixture(scope="session")
def image(engine: dict) -> str:
    """The image, built in the background while the other tests ran (tests/container_image.py)."""
    return PREPARATION.image()


def container_uid() -> tuple[int, dict]:
    """(uid the stages run as, environment that makes it so): the caller's own; as root, an unprivileged
    uid without a passwd entry (the runner's SEGREPRO_CONTAINER_USER), since root's stages run as root."""
    if os.getuid() != 0:
        return os.getuid(), {}
    return OUTSIDER_UID, {"SEGREPRO_CONTAINER_USER": f"{OUTSIDER_UID}:{OUTSIDER_UID}"}


def host_bin(where: Path) -> Path:
    """A PATH directory with python and dvc but no `segrepro`: a stage can only succeed in the image."""
    where.mkdir()
    for name in ("python", "dvc"):
        (where / name).write_text(f'#!/bin/sh\nexec "{Path(sys.executable).parent / name}" "$@"\n')
        (where / name).chmod(0o755)
    return where


def outs(lock: Path) -> dict[str, dict]:
    """Every stage output recorded in a dvc.lock: path → its hash entry."""
    stages = yaml.safe_load(lock.read_text())["stages"]
    return {o["path"]: {k: v for k, v in o.items() if k != "path"} for s in stages.values() for o in s.get("outs", [])}


def without_timing(path: Path) -> dict:
    return {k: v for k, v in json.loads(path.read_text()).items() if k not in TIMING_KEYS}


@pytest.fixture()
def box(engine: dict, mirror: Path):
    """A tiny checkout the container user owns, outside pytest's root-only temporary tree."""
    uid, user_env = container_uid()
    root = Path(tempfile.mkdtemp(prefix="segrepro-container-"))
    try:
        env = tiny_repo(root / "repo", mirror, base={"methods": METHODS})
        env.update({k: v for k, v in engine.items() if k.startswith("DOCKER_")})
        env.update(HOME=str(root / "home"), PATH=f"{host_bin(root / 'bin')}{os.pathsep}{engine['PATH']}",
                   SEGREPRO_CONTAINER=IMAGE, **user_env)
        (root / "home").mkdir()
        if uid != os.getuid():
            (root / "repo" / ".dvc" / "tmp").mkdir()    # the stages' DVC and DVCLive write there
            # DVC on the host (root) opens a repository another user owns: git wants that said.
            (root / "home" / ".gitconfig").write_text(f"[safe]\n\tdirectory = {root / 'repo'}\n")
            run(["chown", "-R", f"{uid}:{uid}", str(root)], env)
        yield root / "repo", env, uid
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_stages_in_the_image_reproduce_the_host_run_as_a_non_root_user(image, engine, mirror, box, tmp_path):
    workspace, env, uid = box
    host = tmp_path / "host"
    host_env = tiny_repo(host, mirror, base={"methods": METHODS})
    started = time.monotonic()
    run(["dvc", "repro", "compare"], host_env, host)
    host_s = time.monotonic() - started

    started = time.monotonic()
    proc = run(["dvc", "repro", "compare"], env, workspace)
    box_s = time.monotonic() - started
    print(f"tiny pipeline to compare ({', '.join(METHODS)}): host {host_s:.0f} s, in the image {box_s:.0f} s")
    assert "Running stage 'train@pdn-0'" in proc.stdout + proc.stderr

    ours, theirs = outs(host / "dvc.lock"), outs(workspace / "dvc.lock")
    assert ours.keys() == theirs.keys()
    expected = (layout.RAW, layout.PROCESSED, layout.checkpoint("pdn-0"), layout.live_metrics("pdn-0"),
                layout.live_plots("pdn-0"), layout.per_image("pdn-0"), layout.COMPARISON, layout.SUMMARY)
    assert {Path(p).as_posix() for p in expected} <= ours.keys()
    metrics = {p for p in ours if p.startswith("results/metrics/")}
    assert metrics == {f"results/metrics/{m}-0.json" for m in METHODS}
    for path in sorted(ours.keys() - metrics):
        assert theirs[path] == ours[path], f"{path} differs between the host and the image"
    for path in sorted(metrics):
        assert without_timing(workspace / path) == without_timing(host / path), path

    # The stages' containers ran as a non-root user: the runner, with the stages' environment, says so.
    # (Not file owners: DVC on the host, as its own user, writes in the output tree too; a root-owned
    # entry turned up there when the test ran as root.)
    said = run(["python", "-m", "segrepro.container", "id", "-u"], env, workspace).stdout.split()
    assert said == [str(uid)] and uid != 0

    # The remaining stages: report (papermill's kernel needs a writable HOME) and audit, also in the image.
    run(["dvc", "repro", "report"], env, workspace)
    assert "Main comparison" in (workspace / "reports" / "report.html").read_text()
    run(["python", "-m", "segrepro.container", "segrepro", "audit", "--update"], env, workspace)
    proc = run(["dvc", "repro"], env, workspace)
    assert "Running stage 'audit'" in proc.stdout + proc.stderr
    assert "**PASS**" in (workspace / "reports" / "audit.md").read_text()


def test_the_image_runs_as_non_root_by_default(image, engine):
    said = run(["docker", "run", "--rm", "--network", "none", image, "id", "-u"], engine).stdout.split()
    assert said and said[0] != "0"


def test_a_missing_image_fails_the_stage_before_it_writes(image, box):
    workspace, env, _ = box
    env = dict(env, SEGREPRO_CONTAINER="segrepro:no-such-tag")
    proc = subprocess.run(["dvc", "repro", "download"], cwd=workspace, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0
    assert "segrepro container: error: image segrepro:no-such-tag (SEGREPRO_CONTAINER) is not in" in proc.stderr
    assert not (workspace / "data" / "raw").exists() and not (workspace / "dvc.lock").exists()
