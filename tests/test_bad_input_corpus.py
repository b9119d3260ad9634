"""A bad-input corpus, built on the fly from a generated CamVid-shaped tree, run through the real CLI.

Each case breaks one thing — a tampered file, a kill at a fixed point, a
malformed param — runs the stage as a subprocess (``python -m segrepro.cli``)
and asserts: the exit status, one stderr line naming the problem (no
traceback), nothing valid-looking left behind, and that a clean rerun then
succeeds.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import torch
import yaml

from segrepro.atomic import MARKER
from segrepro.checkpoint import save_checkpoint
from segrepro.data.manifest import sha256_file
from segrepro.models.build import build_model, model_kwargs
from segrepro.params import load_params
from segrepro.training.resume import state_path
from tests.conftest import REPO, tiny_params


@dataclass
class Workspace:
    root: Path        # holds params.yaml, raw/, processed/, models/, results/
    params: dict

    def path(self, rel: str) -> Path:
        return self.root / rel

    def write_params(self, params: dict) -> None:
        self.path("params.yaml").write_text(yaml.safe_dump(params))


def _tiny(**train) -> dict:
    return tiny_params(train=dict({"epochs": 2, "val_every": 2}, **train), model={"channels": 16})


@pytest.fixture()
def ws(tmp_path: Path, synthetic_raw: Path, synthetic_processed: Path) -> Workspace:
    """A fresh working directory: params, raw and processed data, a manifest, a real checkpoint."""
    shutil.copytree(synthetic_raw, tmp_path / "raw")
    shutil.copytree(synthetic_processed, tmp_path / "processed")
    # The manifest covers CamVid/ only, like the packaged one (not the generator's output marker).
    files = sorted(p.relative_to(tmp_path / "raw").as_posix() for p in (tmp_path / "raw" / "CamVid").rglob("*")
                   if p.is_file())
    (tmp_path / "camvid.sha256").write_text("".join(f"{sha256_file(tmp_path / 'raw' / f)}  {f}\n" for f in files))
    work = Workspace(tmp_path, _tiny())
    work.write_params(work.params)
    params = load_params(work.path("params.yaml"))
    kwargs = model_kwargs(params.model, "baseline", params.base.num_classes)
    model = build_model(**dict(kwargs, pretrained="", pretrained_sha256=""))
    save_checkpoint({"model": model.state_dict(), "build": kwargs, "method": "baseline", "seed": 0,
                     "train": {"epochs": 2, "crop_height": 48, "crop_width": 64}},
                    work.path("models/baseline-0.pt"))
    return work


def _cli(ws: Workspace, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO / "src"))
    env.pop("DVC_STAGE", None)
    return subprocess.Popen([sys.executable, "-m", "segrepro.cli", *args], cwd=ws.root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: [signal.signal(s, signal.SIG_DFL) for s in (signal.SIGINT, signal.SIGTERM)])


STAGES = {
    "download": ["download", "--out", "out/camvid", "--mirror", "raw", "--manifest", "camvid.sha256"],
    "preprocess": ["preprocess", "--raw", "raw", "--out", "out/processed"],
    "train": ["train", "--method", "baseline", "--seed", "0", "--data", "processed",
              "--checkpoint", "out/baseline-0.pt", "--live", "out/live"],
    "evaluate": ["evaluate", "--method", "baseline", "--seed", "0", "--data", "processed",
                 "--checkpoint", "models/baseline-0.pt", "--out", "out/m.json", "--per-image", "out/m.npz"],
}
# What each stage leaves in out/ when it succeeds (the .resume state of train is removed at the end).
OUTPUTS = {"download": ["camvid"], "preprocess": ["processed"], "train": ["baseline-0.pt", "live"],
           "evaluate": ["m.json", "m.npz"]}


def _visible(ws: Workspace) -> list[str]:
    """Valid-looking outputs: anything in out/ not hidden (scratch is '.name.partial', state '.resume')."""
    out = ws.path("out")
    return sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) if out.is_dir() else []


# --- tampering and malformed params: the stage fails at once -----------------------------------------

def flip_checkpoint_byte(ws: Workspace) -> Callable[[], None]:
    from tests.evaluation.test_evaluate import flip_weight_byte

    good = ws.path("models/baseline-0.pt")
    saved = good.read_bytes()
    flip_weight_byte(good, good)
    return lambda: good.write_bytes(saved)


def truncate_png(ws: Workspace) -> Callable[[], None]:
    victim = sorted(ws.path("raw/CamVid/train").iterdir())[0]
    saved = victim.read_bytes()
    victim.write_bytes(saved[: len(saved) // 3])
    return lambda: victim.write_bytes(saved)


def wrong_checksum(ws: Workspace) -> Callable[[], None]:
    manifest = ws.path("camvid.sha256")
    saved = manifest.read_text()
    lines = saved.splitlines()
    lines[0] = "0" * 64 + lines[0][64:]
    manifest.write_text("\n".join(lines) + "\n")
    return lambda: manifest.write_text(saved)


def params_change(**train) -> Callable[[Workspace], Callable[[], None]]:
    def apply(ws: Workspace) -> Callable[[], None]:
        ws.write_params(tiny_params(train=train))
        return lambda: ws.write_params(ws.params)
    # Such a stage fails while reading its params, before any output, so its clean rerun would
    # repeat duplicate_key's (which keeps one): no rerun.
    apply.only_params = True
    return apply


def params_set(section: str, **values) -> Callable[[Workspace], Callable[[], None]]:
    """The tiny params with ``values`` set in ``section`` (any section, unlike ``params_change``)."""
    def apply(ws: Workspace) -> Callable[[], None]:
        ws.write_params(tiny_params(**{section: values}))
        return lambda: ws.write_params(ws.params)
    apply.only_params = True   # as params_change's
    return apply


def duplicate_key(ws: Workspace) -> Callable[[], None]:
    text = ws.path("params.yaml").read_text()
    ws.path("params.yaml").write_text(text.replace("train:\n", "train:\n  lr: 0.5\n", 1))
    return lambda: ws.write_params(ws.params)


def out_is_not_ours(ws: Workspace) -> Callable[[], None]:
    (ws.path("out/processed")).mkdir(parents=True)
    ws.path("out/processed/notes.txt").write_text("mine")
    return lambda: ws.path("out/processed/notes.txt").unlink()


def path_is_a_directory(rel: str) -> Callable[[Workspace], Callable[[], None]]:
    """A directory where the stage writes the file ``rel``: refused before any work, not after it."""
    def apply(ws: Workspace) -> Callable[[], None]:
        ws.path(rel).mkdir(parents=True)
        return lambda: ws.path(rel).rmdir()
    apply.leftover = [Path(rel).name]   # the directory itself stays
    return apply


def checkpoint_without_method(ws: Workspace) -> Callable[[], None]:
    good = ws.path("models/baseline-0.pt")
    saved = good.read_bytes()
    state = torch.load(good, map_location="cpu", weights_only=True)
    del state["sha256"], state["method"]
    save_checkpoint(state, good)   # a valid hash: only the check of the entries catches it
    return lambda: good.write_bytes(saved)


BROKEN = [
    ("flipped-checkpoint-byte", "evaluate", flip_checkpoint_byte, "content hash mismatch"),
    ("truncated-png", "preprocess", truncate_png, "is not a readable image"),
    ("wrong-checksum", "download", wrong_checksum, "wrong sha256: CamVid/"),
    ("nan-lr", "preprocess", params_change(lr=float("nan")), "train.lr"),
    ("negative-momentum", "preprocess", params_change(momentum=-0.5), "train.momentum"),
    ("absurd-lr", "preprocess", params_change(lr=1e300), "train.lr must be < 1, got 1e+300"),
    ("unsupported-output-stride", "preprocess", params_set("model", output_stride=7),
     "model.output_stride must be one of 8, 16, 32"),
    ("repeated-bf-tolerance", "preprocess", params_set("evaluate", bf_tolerances=[2, 2]),
     "evaluate.bf_tolerances must be strictly increasing"),
    ("empty-pins-path", "preprocess", params_set("audit", pins=""), "audit.pins must name the pins file"),
    ("duplicate-key", "preprocess", duplicate_key, "params key 'lr' appears twice"),
    ("foreign-out-dir", "preprocess", out_is_not_ours, "refusing to replace out/processed"),
    ("metrics-path-is-a-directory", "evaluate", path_is_a_directory("out/m.json"),
     "cannot write out/m.json: it is a directory; pass a file path"),
    ("checkpoint-path-is-a-directory", "train", path_is_a_directory("out/baseline-0.pt"),
     "cannot write out/baseline-0.pt: it is a directory; pass a file path"),
    ("checkpoint-without-method", "evaluate", checkpoint_without_method, "is incomplete (no 'method')"),
]


@pytest.mark.parametrize("stage, breakage, expected", [pytest.param(*case[1:], id=case[0]) for case in BROKEN])
def test_bad_input_fails_cleanly_and_a_clean_rerun_succeeds(ws, stage, breakage, expected):
    repair = breakage(ws)
    proc = _cli(ws, *STAGES[stage])
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 2, out + err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"segrepro {stage}: error: ") and expected in lines[0], err
    assert "Traceback" not in out + err
    leftover = ["processed"] if breakage is out_is_not_ours else getattr(breakage, "leftover", [])
    assert _visible(ws) == leftover
    # No scratch left, and train failed before its first epoch (no resume state).
    assert not list(ws.root.rglob("*.partial*")) and not state_path(ws.path("out/baseline-0.pt")).exists()
    repair()
    if getattr(breakage, "only_params", False):
        return   # nothing was written (checked above); params_change says why no rerun
    proc = _cli(ws, *STAGES[stage])
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert _visible(ws) == OUTPUTS[stage]
    if stage in ("download", "preprocess"):
        assert (ws.path("out") / OUTPUTS[stage][0] / MARKER).is_file()


# --- kills at a fixed point of a tiny training run: after epoch 1's resume state is on disk -----------

@pytest.mark.slow   # three tiny trainings and their resumed reruns
@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGKILL, -9)],
                         ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_killed_training_leaves_nothing_valid_and_resumes(ws, signum, status):
    proc = _cli(ws, *STAGES["train"])
    state = state_path(ws.path("out/baseline-0.pt"))
    try:
        deadline = time.monotonic() + 600
        while not state.is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert state.is_file(), proc.communicate()[1] if proc.poll() is not None else "no resume state in time"
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == status, err
    if signum == signal.SIGKILL:
        assert err == ""
    else:
        name = signal.Signals(signum).name
        assert err.splitlines() == [f"segrepro train: interrupted ({name}); the stage did not finish; rerun it"]
    assert "Traceback" not in out + err
    assert _visible(ws) == []          # no checkpoint, no DVCLive folder
    assert state.is_file()             # what the rerun resumes from
    proc = _cli(ws, *STAGES["train"])
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert "resuming after epoch 1" in out
    assert _visible(ws) == OUTPUTS["train"] and not state.exists()
