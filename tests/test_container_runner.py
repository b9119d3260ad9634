"""The stage runner (segrepro.container) without an engine: the docker command it builds, running a
command directly, and its one-line failures (a stand-in `docker` on PATH plays the engine)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from segrepro.container import docker_command, passed_names
from segrepro.errors import SegreproError
from tests.conftest import REPO


def runner(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    env = dict(env, PYTHONPATH=str(REPO / "src"))
    return subprocess.run([sys.executable, "-m", "segrepro.container", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def fake_docker(bin_dir: Path, inspect_stderr: str = "", inspect_rc: int = 0) -> Path:
    """A `docker` that answers `image inspect` as told and records the argv of `run`."""
    bin_dir.mkdir(exist_ok=True)
    log = bin_dir / "run-argv"
    script = bin_dir / "docker"
    script.write_text(f"""#!/bin/sh
if [ "$1" = image ]; then printf '%s\\n' "{inspect_stderr}" >&2; exit {inspect_rc}; fi
for a in "$@"; do printf '%s\\n' "$a"; done > "{log}"
""")
    script.chmod(0o755)
    return log


def test_without_an_image_the_command_runs_directly_with_its_exit_status(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGREPRO_CONTAINER")}
    proc = runner(["--", sys.executable, "-c", "import os, sys; print(os.getcwd()); sys.exit(3)"], tmp_path, env)
    assert proc.returncode == 3 and proc.stdout.strip() == str(tmp_path)


def test_docker_command_mounts_the_checkout_at_its_own_path_as_the_caller(tmp_path):
    root, mirror = tmp_path / "repo", tmp_path / "mirror"
    (root / "sub").mkdir(parents=True)
    mirror.mkdir()
    env = {"DVC_ROOT": str(root), "DVC_STAGE": "train@sdn-0", "SEGREPRO_CAMVID_MIRROR": str(mirror),
           "SEGREPRO_CONTAINER": "img", "SEGREPRO_CONTAINER_ARGS": "--gpus all", "OMP_NUM_THREADS": "2",
           "AWS_SECRET_ACCESS_KEY": "s3cret", "HOME": "/root"}
    argv = docker_command(["segrepro", "train", "--seed", "0"], "img", env, root / "sub", "1234:99", network=False)
    assert argv[:2] == ["docker", "run"] and argv[-5:] == ["img", "segrepro", "train", "--seed", "0"]
    pairs = set(zip(argv, argv[1:]))
    assert {("--user", "1234:99"), ("--volume", f"{root}:{root}"), ("--workdir", str(root / "sub")),
            ("--volume", f"{mirror}:{mirror}:ro"), ("--network", "none"), ("--gpus", "all"),
            ("--env", f"PYTHONPATH={root}/src"), ("--pull", "never")} <= pairs
    # Passed by name, never by value; the runner's own variables and unrelated ones stay outside.
    assert passed_names(env) == ["DVC_ROOT", "DVC_STAGE", "OMP_NUM_THREADS", "SEGREPRO_CAMVID_MIRROR"]
    assert {("--env", n) for n in passed_names(env) if n != "SEGREPRO_CAMVID_MIRROR"} <= pairs
    # An outside path goes in resolved, so a '..' through a folder the container lacks still works.
    assert ("--env", f"SEGREPRO_CAMVID_MIRROR={mirror.resolve()}") in pairs
    assert not any("s3cret" in a or a.startswith("SEGREPRO_CONTAINER") or a == "HOME" for a in argv)


def test_network_only_when_the_stage_asks_for_it(tmp_path):
    none = docker_command(["x"], "img", {}, tmp_path, "1:1", network=False)
    engine_default = docker_command(["x"], "img", {}, tmp_path, "1:1", network=True)
    named = docker_command(["x"], "img", {"SEGREPRO_CONTAINER_NETWORK": "host"}, tmp_path, "1:1", network=True)
    assert ("--network", "none") in set(zip(none, none[1:]))
    assert "--network" not in engine_default
    assert ("--network", "host") in set(zip(named, named[1:]))


def test_download_is_the_only_stage_that_asks_for_the_network():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        assert stage["cmd"].startswith("python -m segrepro.container "), name
        assert ("--network" in stage["cmd"].split()) == (name == "download"), name


def test_a_checkout_that_would_hide_the_image_or_a_cwd_outside_it_is_refused(tmp_path):
    with pytest.raises(SegreproError, match="would be mounted over"):
        docker_command(["x"], "img", {"DVC_ROOT": "/"}, Path("/tmp"), "1:1", network=False)
    with pytest.raises(SegreproError, match="outside the checkout"):
        docker_command(["x"], "img", {"DVC_ROOT": str(tmp_path / "repo")}, tmp_path, "1:1", network=False)


@pytest.mark.parametrize("stderr, rc, expected", [
    ("Error: No such image: segrepro:nope", 1, "is not in the container engine; build it"),
    ("Cannot connect to the Docker daemon at unix:///x.sock. Is the docker daemon running?", 1,
     "cannot reach the container engine"),
    (None, 0, "there is no `docker` command"),
])
def test_a_missing_image_or_engine_fails_with_one_line_and_writes_nothing(tmp_path, stderr, rc, expected):
    work = tmp_path / "work"
    work.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = fake_docker(bin_dir, stderr, rc) if stderr is not None else bin_dir / "run-argv"
    env = dict(os.environ, PATH=str(bin_dir), SEGREPRO_CONTAINER="segrepro:nope")
    proc = runner(["segrepro", "preprocess", "--out", "data/processed"], work, env)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and expected in proc.stderr
    assert list(work.iterdir()) == [] and not log.exists()


def test_with_an_image_the_runner_hands_over_to_docker_run(tmp_path):
    bin_dir = tmp_path / "bin"
    log = fake_docker(bin_dir)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", SEGREPRO_CONTAINER="segrepro:cpu",
               DVC_ROOT=str(tmp_path), SEGREPRO_CONTAINER_USER="4242:4242")
    proc = runner(["--network", "segrepro", "download"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    argv = log.read_text().splitlines()
    assert argv[:1] == ["run"] and argv[-3:] == ["segrepro:cpu", "segrepro", "download"]
    assert "4242:4242" in argv and "none" not in argv
