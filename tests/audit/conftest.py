"""A real dvc.lock for the audit tests: one `dvc repro` of a tiny pipeline per session.

tiny_pipeline/ has segrepro's stage names, output layout and params keys
(preprocess → train@{baseline,sdn}-{0,1} → evaluate@… → compare) with small
deterministic outputs and results trained, by their train_environment, on an
AVX2-only CPU; its params.yaml is ``PARAMS``, the one the CLI test audits
with. Each test works on its own copy of the reproduced workspace.
"""
from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from segrepro.audit.environment import class_key
from segrepro.audit.pins import update_pins
from segrepro.layout import method_of
from tests.audit.tiny_pipeline.stage import ENV as RUN_ENV
from tests.conftest import tiny_params

HERE = Path(__file__).parent
KEYS = ["baseline-0", "baseline-1", "sdn-0", "sdn-1"]
AVX512 = {"torch": "2.13.0+cpu", "device": "cpu", "cpu_capability": "AVX512",
          "cpu_model": "Intel(R) Xeon(R) Processor", "gpu": "", "cuda": ""}
RUN_CLASS = class_key(RUN_ENV)       # cpu-AVX2-AMD EPYC 7763 64-Core Processor: the tiny run's class
OTHER_CLASS = class_key(AVX512)      # cpu-AVX512-Intel(R) Xeon(R) Processor
PARAMS = tiny_params(base={"methods": ["baseline", "sdn"], "seeds": [0, 1]})


@pytest.fixture(scope="session")
def reproduced(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny") / "repo"
    shutil.copytree(HERE / "tiny_pipeline", root)
    (root / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    env = {**os.environ, "DVC_NO_ANALYTICS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    script = ("import sys; from dvc.cli import main; "
              "sys.exit(main(['init', '--no-scm', '-q']) or main(['repro', '-q']))")
    proc = subprocess.run([sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (root / "dvc.lock").is_file()
    return root


@pytest.fixture()
def ws(reproduced: Path, tmp_path: Path) -> Path:
    """A private copy of the reproduced workspace (outputs and dvc.lock)."""
    return Path(shutil.copytree(reproduced, tmp_path / "ws"))


def pin_this_run(ws: Path, pins: Path | None = None) -> Path:
    """Pins of the run itself (its class: RUN_CLASS), as `segrepro audit --update` writes them."""
    pins = pins or ws / "pins.yaml"
    update_pins(pins, ws / "results" / "metrics", ws / "dvc.lock", KEYS)
    return pins


def pin_other_class(ws: Path, shift: dict[str, float], std: float = 0.008, seeds: int = 3,
                    environment: dict | None = None) -> Path:
    """Pins of another class (``environment``, default an Intel AVX-512 CPU) whose per-method means
    are the run's shifted by ``shift[method]``, with a seed std ``std`` over ``seeds`` seeds; the
    run's own class (RUN_CLASS) has no pins."""
    environment = environment or AVX512
    path = pin_this_run(ws, ws / "own.yaml")
    own = yaml.safe_load(path.read_text())
    section = copy.deepcopy(own["classes"].pop(RUN_CLASS))
    for method, summary in section["summary"].items():
        summary["seeds"] = seeds
        summary["mean"] = {m: round(v + shift[method], 6) for m, v in summary["mean"].items()}
        summary["std"] = {m: std for m in summary["mean"]}
    for key, result in section["results"].items():
        result["metrics"] = {m: round(v + shift[method_of(key)], 6) for m, v in result["metrics"].items()}
        result["checkpoint"]["md5"] = "f" * 32
    section["environment"] = dict(environment)
    own["classes"][class_key(environment)] = section
    pins = ws / "pins.yaml"
    pins.write_text(yaml.safe_dump(own))
    return pins
