"""Run a stage command in the segrepro image when ``SEGREPRO_CONTAINER`` names one.

Every ``cmd`` in ``dvc.yaml`` goes through this runner::

    python -m segrepro.container [--network] segrepro train --method sdn ...

With ``SEGREPRO_CONTAINER`` unset or empty the command replaces this process
as it is (on the host, or already inside the image). With
``SEGREPRO_CONTAINER=segrepro:cpu`` it runs in that image instead, so one
``dvc.yaml`` serves every machine and ``dvc repro`` still runs on the host:
DVC hashes deps and outs where the user is, the stage computes in the image.

How the container is started, and why (``docker_command``):

* The checkout (``DVC_ROOT``, which DVC sets for every stage; else the working
  directory) is mounted read-write **at the same path** as on the host, the
  working directory too. Anything a stage records about its paths, and DVC's
  and DVCLive's own files under ``.dvc/tmp``, are then the same whether the
  stage ran on the host or in the image.
* ``--user`` is the caller's uid:gid (``SEGREPRO_CONTAINER_USER`` overrides),
  so what the stage writes belongs to whoever runs ``dvc repro`` and the
  checkout stays writable for them. The image's HOME is writable for any uid.
  A root caller gets a root container: it has nothing more inside than outside.
  A user set by ``SEGREPRO_CONTAINER_USER`` must own the checkout, ``.dvc/tmp``
  included (DVC and DVCLive inside the stage write there).
* ``--network none``: no stage but ``download`` needs the network, and it
  asks for it with ``--network`` (then ``SEGREPRO_CONTAINER_NETWORK``, or the
  engine's default network).
* Environment passed through by name (values never appear in the argument
  list): DVC's and DVCLive's variables (``DVC_ROOT``, ``DVC_STAGE``, the
  experiment's name …), segrepro's own (``SEGREPRO_*`` but this runner's),
  and those that change the numbers: thread counts, the CPU kernel class
  overrides, ``CUDA_VISIBLE_DEVICES``. A ``SEGREPRO_*`` value that is an
  existing absolute path outside the checkout (the CamVid mirror) is mounted
  read-only at the same path. ``PYTHONPATH`` is the checkout's ``src``, so the
  code DVC hashed as a dependency is the code that runs.
* ``--init`` reaps the report stage's kernel processes and forwards Ctrl-C
  and SIGTERM; ``--rm`` leaves nothing behind; ``--pull never`` keeps an
  air-gapped engine from trying a registry.
* ``SEGREPRO_CONTAINER_ARGS``: extra ``docker run`` arguments, shell-quoted,
  e.g. ``--gpus all`` for the CUDA image.

The image is looked up before anything runs: a missing image, no ``docker``
command or an engine that cannot be reached fail the stage with one line that
names the fix, before the stage has written anything.
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from segrepro.errors import SegreproError

IMAGE_ENV = "SEGREPRO_CONTAINER"
USER_ENV = "SEGREPRO_CONTAINER_USER"
NETWORK_ENV = "SEGREPRO_CONTAINER_NETWORK"
ARGS_ENV = "SEGREPRO_CONTAINER_ARGS"
ENGINE = "docker"

PASS_PREFIXES = ("DVC_", "DVCLIVE_", "SEGREPRO_")
# Variables that change what a stage computes or how fast: threads, CPU kernel class, GPUs.
PASS_NAMES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA",
              "MKL_ENABLE_INSTRUCTIONS", "CUBLAS_WORKSPACE_CONFIG", "CUDA_VISIBLE_DEVICES", "PYTHONHASHSEED")
# Where the image keeps its own files: a checkout mounted over one of them would hide the image.
IMAGE_PATHS = ("/usr/local/bin", "/opt/segrepro", "/home/segrepro", "/etc", "/bin", "/lib")


def passed_names(env: Mapping[str, str]) -> list[str]:
    """Names of the variables a containerised stage receives (this runner's own excluded)."""
    own = (IMAGE_ENV, USER_ENV, NETWORK_ENV, ARGS_ENV)
    return sorted(name for name in env
                  if (name.startswith(PASS_PREFIXES) or name in PASS_NAMES) and name not in own)


def checkout_root(env: Mapping[str, str], cwd: Path) -> Path:
    """The directory to mount: DVC's root for the stage, else the working directory."""
    root = Path(env.get("DVC_ROOT") or cwd).resolve()
    if not cwd.resolve().is_relative_to(root):
        raise SegreproError(f"the working directory {cwd} is outside the checkout {root} (DVC_ROOT); "
                            "run the stage from inside the checkout")
    for inside in IMAGE_PATHS:
        if Path(inside).is_relative_to(root):
            raise SegreproError(f"the checkout {root} would be mounted over the image's {inside}; "
                                "move the checkout to a directory of its own (e.g. under your home)")
    return root


def docker_command(command: Sequence[str], image: str, env: Mapping[str, str], cwd: Path,
                   user: str, network: bool) -> list[str]:
    """The ``docker run`` argument list that runs ``command`` in ``image`` (see the module docstring)."""
    root = checkout_root(env, cwd)
    argv = [ENGINE, "run", "--rm", "--init", "--pull", "never", "--user", user,
            "--volume", f"{root}:{root}", "--workdir", str(cwd.resolve()),
            "--env", f"PYTHONPATH={root / 'src'}"]
    if not network:
        argv += ["--network", "none"]
    elif env.get(NETWORK_ENV):
        argv += ["--network", env[NETWORK_ENV]]
    mounted = set()
    for name in passed_names(env):
        value = env[name]
        if name.startswith("SEGREPRO_") and os.path.isabs(value) and os.path.exists(value):
            # Passed resolved: the original may go through a folder the container lacks
            # (e.g. <checkout elsewhere>/../shared, where only the resolved target is mounted).
            path = Path(value).resolve()
            argv += ["--env", f"{name}={path}"]
            if not path.is_relative_to(root) and path not in mounted:
                mounted.add(path)
                argv += ["--volume", f"{path}:{path}:ro"]
        else:
            argv += ["--env", name]
    argv += shlex.split(env.get(ARGS_ENV, ""))
    return argv + [image, *command]


def caller_user(env: Mapping[str, str]) -> str:
    """uid:gid the container runs as: the caller's own, unless ``SEGREPRO_CONTAINER_USER`` says otherwise."""
    return env.get(USER_ENV) or f"{os.getuid()}:{os.getgid()}"


def check_image(image: str, env: Mapping[str, str]) -> None:
    """Fail with the fix unless the engine answers and holds ``image``."""
    try:
        proc = subprocess.run([ENGINE, "image", "inspect", "--format", "{{.Id}}", image],
                              env=dict(env), capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise SegreproError(f"{IMAGE_ENV}={image} but there is no `{ENGINE}` command; install Docker, "
                            f"or unset {IMAGE_ENV} to run the stage on the host") from None
    except subprocess.TimeoutExpired:
        raise SegreproError(f"the container engine did not answer within 60 s; check that it runs "
                            f"(`{ENGINE} info`), or unset {IMAGE_ENV} to run the stage on the host") from None
    if proc.returncode == 0:
        return
    said = (proc.stderr.strip().splitlines() or ["no message"])[-1]
    if "no such image" in said.lower():
        raise SegreproError(f"image {image} ({IMAGE_ENV}) is not in the container engine; build it "
                            f"(`{ENGINE} build -t {image} .`, README: Container) or set {IMAGE_ENV} "
                            "to an image it has")
    raise SegreproError(f"cannot reach the container engine ({said}); start it or point DOCKER_HOST "
                        f"at it, or unset {IMAGE_ENV} to run the stage on the host")


def _exec(argv: list[str]) -> None:
    try:
        os.execvp(argv[0], argv)
    except FileNotFoundError:
        raise SegreproError(f"command not found: {argv[0]}; activate the environment that provides it "
                            "(scripts/setup.sh) or check the stage's cmd in dvc.yaml") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m segrepro.container", description=__doc__.splitlines()[0])
    parser.add_argument("--network", action="store_true",
                        help=f"the stage needs the network (default in a container: none; see ${NETWORK_ENV})")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the stage's command line")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    try:
        image = os.environ.get(IMAGE_ENV, "").strip()
        if not image:
            _exec(command)
        check_image(image, os.environ)
        _exec(docker_command(command, image, os.environ, Path.cwd(), caller_user(os.environ), args.network))
    except SegreproError as exc:
        print(f"segrepro container: error: {exc}", file=sys.stderr)
        return 2
    return 0  # not reached: _exec replaced the process


if __name__ == "__main__":
    sys.exit(main())
