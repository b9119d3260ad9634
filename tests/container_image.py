"""The container tests' engine and image, prepared in a background thread while the other tests run.

On a fresh machine, starting an engine (``../shared/tools/container-env.sh``: apt, a Debian root
filesystem, dockerd) and building the image from nothing takes about 8 minutes of the suite's
30-minute budget on the AVX2 class (README, "Tests"). That work is mostly downloads, decompression and
layer writes, which leave a core free most of the time, so it need not wait for its turn:
``tests/conftest.py`` starts it right after collection when any container test is selected, and moves
those tests to the end of the run; their fixtures then wait for what is left of it.

Choices:
* a thread in the pytest process, not a detached process: it only waits on its subprocesses (the GIL
  is free meanwhile), it ends with the session, and what it found (an engine's environment, a skip
  reason, a build failure) reaches the fixtures without a file to parse;
* an engine that already answers (``DOCKER_HOST`` or the default socket) is used as it is; else, as
  root on Linux, the one ``container-env.sh`` starts; else the container tests skip with the reason;
* a failed build fails the tests that need the image, with docker's last lines; a missing engine
  skips them, as before;
* tests marked ``deadline`` (a wall-clock budget decides what they see) wait for the preparation
  before they start, so the build never shares the CPU with them (``conftest.py`` puts them just
  before the container tests).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ENV_SCRIPT = REPO.parent / "shared" / "tools" / "container-env.sh"
IMAGE = "segrepro:test"
LOG_LINES = 40  # of docker's output, in a failed build's message


def engine_answers(env: dict) -> bool:
    if not shutil.which("docker", path=env.get("PATH")):
        return False
    return subprocess.run(["docker", "info"], env=env, capture_output=True, timeout=60).returncode == 0


def _tail(text: str) -> str:
    return "\n".join(text.strip().splitlines()[-LOG_LINES:])


class Preparation:
    """The engine's environment and the built image, made once, in the background; ``wait`` hands them over."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.env: dict | None = None
        self.skip_reason: str | None = None
        self.failure: str | None = None
        self.build_s: float | None = None
        self._child: subprocess.Popen | None = None
        self._stopping = False

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._prepare, name="container-image", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """End a preparation the session no longer waits for (it ended early): its running child is terminated."""
        with self._lock:
            self._stopping = True
            child = self._child
        if child is not None and child.poll() is None:
            child.terminate()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def wait_quietly(self) -> None:
        """Block until the preparation is over (or return at once if it never started); report nothing."""
        if self._thread is not None:
            self._thread.join()

    def engine(self) -> dict:
        """The engine's environment, once the image is built too; skips if no engine can be had."""
        self.start()
        self.wait_quietly()
        if self.skip_reason:
            pytest.skip(self.skip_reason)
        if self.env is None:
            pytest.fail(self.failure or "the container preparation ended without an engine or a reason", pytrace=False)
        return self.env

    def image(self) -> str:
        """The built image's tag; fails the test with docker's last lines if the build failed."""
        self.engine()
        if self.failure:
            pytest.fail(self.failure, pytrace=False)
        print(f"image {IMAGE} built in {self.build_s:.0f} s, in the background of the other tests")
        return IMAGE

    def _prepare(self) -> None:
        try:
            env = self._find_engine()
            if env is None:
                return
            self.env = env
            self._build(env)
        except Exception as exc:  # noqa: BLE001 - whatever it was, the fixtures must hear of it
            self.failure = f"preparing the container engine or image failed: {type(exc).__name__}: {exc}"

    def _find_engine(self) -> dict | None:
        env = dict(os.environ)
        if engine_answers(env):
            return env
        if not sys.platform.startswith("linux") or os.getuid() != 0 or not ENV_SCRIPT.is_file():
            self.skip_reason = ("no container engine answers, and none can be started here (needs root, Linux "
                                f"and {ENV_SCRIPT})")
            return None
        proc = self._run(["bash", str(ENV_SCRIPT)], env, timeout=1800)
        if proc.returncode != 0:
            said = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            self.skip_reason = f"{ENV_SCRIPT.name} could not start an engine: {said}"
            return None
        for line in proc.stdout.splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            env[name] = value
        if not engine_answers(env):
            self.skip_reason = f"{ENV_SCRIPT.name} ran but no engine answers at {env.get('DOCKER_HOST')}"
            return None
        return env

    def _build(self, env: dict) -> None:
        args = ["docker", "build", "--network", "host", "-t", IMAGE]
        if env.get("SEGREPRO_BASE_IMAGE"):
            # The local base carries torch's wheel in PIP_FIND_LINKS: pip's own configuration finds it.
            args += ["--build-arg", f"BASE_IMAGE={env['SEGREPRO_BASE_IMAGE']}", "--build-arg", "TORCH_INDEX_URL="]
        started = time.monotonic()
        proc = self._run([*args, str(REPO)], env, timeout=2400)
        self.build_s = time.monotonic() - started
        if proc.returncode != 0:
            self.failure = (f"docker build of {IMAGE} failed ({proc.returncode}) after {self.build_s:.0f} s:\n"
                            f"{_tail(proc.stdout)}\n{_tail(proc.stderr)}")


    def _run(self, args: list[str], env: dict, timeout: int) -> subprocess.CompletedProcess:
        """``subprocess.run`` that ``stop`` can end: the child is kept while it runs."""
        with self._lock:
            if self._stopping:
                raise RuntimeError("the test session ended first")
            child = self._child = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                                   stderr=subprocess.PIPE, text=True)
        try:
            out, err = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            raise
        finally:
            self._child = None
        return subprocess.CompletedProcess(args, child.returncode, out, err)


PREPARATION = Preparation()
