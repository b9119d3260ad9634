"""benchmarks/bench_image_overlap.sh's usage and its refusals, which come before any engine starts (the
timing itself needs root, an engine and minutes: README, "Tests")."""
from __future__ import annotations

import os
import subprocess

from tests.conftest import REPO
from tests.container_image import ENV_SCRIPT

SCRIPT = REPO / "benchmarks" / "bench_image_overlap.sh"


def bench(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=REPO, env=dict(os.environ, **env),
                          capture_output=True, text=True, timeout=60)


def test_help_and_a_bad_argument() -> None:
    done = bench("--help")
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith("What the test suite gains") and "BENCH_ENGINE_WORK" in done.stdout
    done = bench("--bogus")
    assert done.returncode == 2 and done.stderr.strip().endswith("unknown argument --bogus (only --help)")


def test_it_never_takes_the_suites_own_engine_folder() -> None:
    # The engine folder it would wipe before each build: the test suite's is refused, before anything runs.
    done = bench(BENCH_ENGINE_WORK="/tmp/segrepro-container")
    assert done.returncode == 2 and done.stdout == ""
    (line,) = done.stderr.splitlines()
    if os.getuid() == 0 and ENV_SCRIPT.is_file():
        assert "BENCH_ENGINE_WORK must not be the test suite's engine folder" in line
    else:
        assert "run as root" in line or "container-env.sh is missing" in line
