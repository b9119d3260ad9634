"""A killed train resumes after its last finished epoch, to the same bits as an uninterrupted run."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
import yaml

from segrepro.errors import SegreproError
from segrepro.params import load_params
from segrepro.progress import EpochProgress
from segrepro.training import resume
from segrepro.training.stage import train
from tests.conftest import tiny_params

EPOCHS = 3  # 4 training images, batch 2: 2 steps per epoch


def _params(tmp_path: Path, name: str, **train_overrides) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(tiny_params(train=dict({"epochs": EPOCHS, "val_every": 1}, **train_overrides))))
    return path


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _rows(live: Path) -> dict[str, list[list[str]]]:
    """DVCLive's plot rows (step, value), per file."""
    return {str(p.relative_to(live)): [line.split("\t") for line in p.read_text().splitlines()]
            for p in sorted((live / "plots").rglob("*.tsv"))}


def _interrupt_at_step(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """Raise KeyboardInterrupt (what Ctrl-C and SIGTERM become) at the n-th optimisation step."""
    original = EpochProgress.step
    calls = []

    def step(self, loss):
        calls.append(loss)
        if len(calls) == n:
            raise KeyboardInterrupt
        original(self, loss)

    monkeypatch.setattr(EpochProgress, "step", step)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, synthetic_processed) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("straight")
    ckpt, live = tmp / "baseline-0.pt", tmp / "live"
    train(load_params(_params(tmp, "p")), "baseline", 0, synthetic_processed, ckpt, live)
    return ckpt, live


@pytest.mark.parametrize("stop_step", [3])  # the first step of epoch 2: one epoch done, one step lost
def test_resumed_run_is_bit_identical(tmp_path, synthetic_processed, uninterrupted, monkeypatch, capsys, stop_step):
    params = load_params(_params(tmp_path, "p"))
    ckpt, live = tmp_path / "models" / "baseline-0.pt", tmp_path / "live"
    with monkeypatch.context() as m:
        _interrupt_at_step(m, stop_step)
        with pytest.raises(KeyboardInterrupt):
            train(params, "baseline", 0, synthetic_processed, ckpt, live)
    state_file = resume.state_path(ckpt)
    assert state_file == tmp_path / "models" / ".resume" / "baseline-0.state"
    assert state_file.is_file()
    assert not ckpt.exists() and not live.exists()   # nothing valid-looking after the kill
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models", "p.yaml"]
    capsys.readouterr()
    train(params, "baseline", 0, synthetic_processed, ckpt, live)
    out = capsys.readouterr().out
    done = (stop_step - 1) // 2   # epochs finished before the interrupt
    assert f"resuming after epoch {done} from {state_file}" in out
    assert _epochs_run(out) == [str(k) for k in range(done + 1, EPOCHS + 1)]   # only the epochs left
    straight_ckpt, straight_live = uninterrupted
    assert _md5(ckpt) == _md5(straight_ckpt)
    assert _rows(live) == _rows(straight_live)   # each epoch logged once, with its step
    assert [r[0] for r in _rows(live)["plots/metrics/train/loss.tsv"][1:]] == ["0", "1", "2"]
    assert (live / "metrics.json").read_text() == (straight_live / "metrics.json").read_text()
    assert not state_file.exists() and not state_file.parent.exists()   # removed when training ends


def _epochs_run(out: str) -> list[str]:
    return [line.split("epoch ")[1].split("/")[0] for line in out.splitlines() if "  epoch " in line]


def test_state_of_other_params_is_ignored(tmp_path, synthetic_processed, monkeypatch, capsys):
    ckpt, live = tmp_path / "baseline-0.pt", tmp_path / "live"
    with monkeypatch.context() as m:
        _interrupt_at_step(m, 3)
        with pytest.raises(KeyboardInterrupt):
            train(load_params(_params(tmp_path, "q", epochs=2, lr=0.002)), "baseline", 0, synthetic_processed,
                  ckpt, live)
    assert resume.state_path(ckpt).is_file()
    capsys.readouterr()
    train(load_params(_params(tmp_path, "p", epochs=2)), "baseline", 0, synthetic_processed, ckpt, live)
    out = capsys.readouterr().out
    assert "ignoring resume state" in out and "other params" in out
    assert _epochs_run(out) == ["1", "2"]
    assert not resume.state_path(ckpt).exists()


def test_unreadable_state_is_ignored(tmp_path, synthetic_processed, capsys):
    ckpt, live = tmp_path / "baseline-0.pt", tmp_path / "live"
    state_file = resume.state_path(ckpt)
    state_file.parent.mkdir()
    state_file.write_bytes(b"PK\x03\x04 cut off")
    train(load_params(_params(tmp_path, "p", epochs=1)), "baseline", 0, synthetic_processed, ckpt, live)
    assert "ignoring unreadable resume state" in capsys.readouterr().out
    assert ckpt.is_file() and not state_file.exists()


def test_failed_run_removes_its_state(tmp_path, synthetic_processed, monkeypatch):
    """A SegreproError (here: divergence in epoch 2) is not resumed into the same failure."""
    ckpt, live = tmp_path / "baseline-0.pt", tmp_path / "live"
    import segrepro.training.train as train_module

    original, calls = train_module._step, []

    def diverge_later(*args):
        calls.append(1)
        return float("nan") if len(calls) == 3 else original(*args)

    monkeypatch.setattr(train_module, "_step", diverge_later)
    with pytest.raises(SegreproError, match="diverged"):
        train(load_params(_params(tmp_path, "p")), "baseline", 0, synthetic_processed, ckpt, live)
    assert not resume.state_path(ckpt).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.yaml"]


def test_rng_streams_round_trip():
    import random

    import numpy as np

    g = torch.Generator().manual_seed(5)
    saved = resume.capture_rng(g, None)
    expected = (torch.rand(3, generator=g), torch.rand(3), np.random.rand(3), random.random())
    resume.restore_rng(saved, g, None)
    again = (torch.rand(3, generator=g), torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], again[0]) and torch.equal(expected[1], again[1])
    assert np.array_equal(expected[2], again[2]) and expected[3] == again[3]
