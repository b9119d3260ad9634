"""Progress output (``segrepro.progress``) and the CLI's one-line interrupt (``segrepro.cli``)."""
from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import yaml

from segrepro import cli
from segrepro.checkpoint import save_checkpoint
from segrepro.params import load_params
from segrepro.progress import EpochProgress, eta_seconds, format_duration, task, track
from tests.conftest import REPO, tiny_params


class TtyIO(io.StringIO):
    def isatty(self) -> bool:
        return True


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_format_duration_and_eta():
    assert [format_duration(s) for s in (0, 9.4, 62, 599.6, 3600, 3725)] == \
        ["0:00", "0:09", "1:02", "10:00", "1:00:00", "1:02:05"]
    assert eta_seconds(30.0, 3, 13) == 130.0        # 10 s per epoch, 13 to go
    assert eta_seconds(30.0, 3, 0) == 0.0
    with pytest.raises(ValueError):
        eta_seconds(1.0, 0, 3)


def test_epoch_lines_without_a_terminal():
    out, clock = io.StringIO(), FakeClock()
    with EpochProgress("sdn-0", epochs=3, steps_per_epoch=2, stream=out, clock=clock) as progress:
        for k, seconds in enumerate((10, 20, 30)):
            progress.step(2.0)
            progress.step(1.0)
            clock.now += seconds
            progress.epoch(k, {"train_loss": 1.5, "val_miou": 0.3512} if k != 1 else {})
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert len(lines) == 3
    assert [re.search(r"epoch (\d+)/(\d+)", line).groups() for line in lines] == [("1", "3"), ("2", "3"), ("3", "3")]
    assert lines[0] == "sdn-0  epoch 1/3  train loss 1.500  val mIoU 35.12  elapsed 0:10  ETA 0:20"
    # No validation that epoch: a dash; the loss falls back to the mean of the steps' losses.
    assert lines[1] == "sdn-0  epoch 2/3  train loss 1.500  val mIoU     -  elapsed 0:30  ETA 0:15"
    assert lines[2].endswith("elapsed 1:00  ETA 0:00")


def test_eta_of_a_resumed_run_counts_only_this_runs_epochs():
    out, clock = io.StringIO(), FakeClock()
    with EpochProgress("pdn-1", epochs=16, steps_per_epoch=1, start_epoch=10, stream=out, clock=clock) as p:
        clock.now += 40
        p.epoch(10, {"train_loss": 0.5, "val_miou": 0.5})
        clock.now += 20
        p.epoch(11, {"train_loss": 0.4, "val_miou": 0.5})
    lines = out.getvalue().splitlines()
    assert "epoch 11/16" in lines[0] and lines[0].endswith("elapsed 0:40  ETA 3:20")   # 40 s × 5
    assert "epoch 12/16" in lines[1] and lines[1].endswith("elapsed 1:00  ETA 2:00")   # 30 s × 4


def test_terminal_shows_a_step_bar_with_the_running_loss():
    out = TtyIO()
    with EpochProgress("ddsm-0", epochs=2, steps_per_epoch=4, stream=out) as progress:
        progress.step(4.0)
        time.sleep(0.15)   # past tqdm's 0.1 s redraw interval, so the next step redraws
        progress.step(2.0)
        bar = out.getvalue()
        progress.epoch(0, {"train_loss": 3.0, "val_miou": 0.1})
    assert "\r" in bar and "%|" in bar and "ddsm-0  epoch 1/2" in bar
    assert "loss 3.000" in bar   # mean of the steps so far
    assert "ddsm-0  epoch 1/2  train loss 3.000  val mIoU 10.00" in out.getvalue()


def test_bad_epoch_progress_arguments():
    with pytest.raises(ValueError, match="start_epoch"):
        EpochProgress("x", epochs=4, steps_per_epoch=1, start_epoch=4)


def test_track_prints_a_few_lines_without_a_terminal():
    out, clock = io.StringIO(), FakeClock()

    def items():
        for i in range(8):
            clock.now += 1
            yield i

    assert list(track(items(), total=8, label="sdn-0  predict", unit="batch", stream=out, clock=clock)) \
        == list(range(8))
    assert out.getvalue().splitlines() == [
        "sdn-0  predict: 0/8 batch",
        "sdn-0  predict: 2/8 batch (25%)  elapsed 0:02",
        "sdn-0  predict: 4/8 batch (50%)  elapsed 0:04",
        "sdn-0  predict: 6/8 batch (75%)  elapsed 0:06",
        "sdn-0  predict: 8/8 batch done in 0:08",
    ]
    short = io.StringIO()
    assert list(track([7], label="one", stream=short)) == [7]
    assert len(short.getvalue().splitlines()) == 2 and "\r" not in short.getvalue()


def test_track_draws_a_bar_on_a_terminal():
    out = TtyIO()
    assert list(track(range(5), label="stats", stream=out)) == list(range(5))
    text = out.getvalue()
    assert "\r" in text and "%|" in text and text.endswith("stats: 5/5 it done in 0:00\n")


def test_task_lines_and_no_done_line_on_failure():
    out = io.StringIO()
    with task("report: exporting HTML", stream=out):
        pass
    with pytest.raises(RuntimeError), task("report: executing notebook", stream=out):
        raise RuntimeError("cell failed")
    assert out.getvalue().splitlines() == ["report: exporting HTML...", "report: exporting HTML: done in 0:00",
                                           "report: executing notebook..."]


# --- The CLI's interrupt path, on a synthetic test split and an untrained checkpoint ---------------

@pytest.fixture(scope="module")
def eval_setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """params.yaml (latency measured for a very long time), a processed test split, a checkpoint."""
    from segrepro.models.build import build_model, model_kwargs

    tmp = tmp_path_factory.mktemp("interrupt")
    params_path = tmp / "params.yaml"
    params_path.write_text(yaml.safe_dump(tiny_params(evaluate={"latency_runs": 10 ** 7}, train={"epochs": 2})))
    params = load_params(params_path)
    rng = np.random.default_rng(0)
    processed = tmp / "processed"
    processed.mkdir()
    np.save(processed / "test_images.npy", rng.integers(0, 256, (2, 48, 64, 3), dtype=np.uint8))
    np.save(processed / "test_labels.npy", rng.integers(0, 12, (2, 48, 64), dtype=np.uint8))
    (processed / "test_names.txt").write_text("a\nb\n")
    kwargs = model_kwargs(params.model, "baseline", params.base.num_classes)
    model = build_model(**dict(kwargs, pretrained="", pretrained_sha256=""))
    state = {"model": model.state_dict(), "build": kwargs, "method": "baseline", "seed": 0,
             "train": asdict(params.train)}
    checkpoint = tmp / "baseline-0.pt"
    save_checkpoint(state, checkpoint)
    return params_path, processed, checkpoint


def _evaluate_args(setup: tuple[Path, Path, Path], out_dir: Path) -> list[str]:
    params_path, processed, checkpoint = setup
    return ["evaluate", "--params", str(params_path), "--method", "baseline", "--seed", "0",
            "--data", str(processed), "--checkpoint", str(checkpoint),
            "--out", str(out_dir / "m.json"), "--per-image", str(out_dir / "m.npz")]


def test_interrupt_while_writing_leaves_nothing(eval_setup, tmp_path, monkeypatch, capsys):
    """Ctrl-C in the middle of writing the per-image file: exit 130, one stderr line, no file at all."""
    import segrepro.evaluation.cost as cost
    import segrepro.evaluation.evaluate as evaluate_module

    monkeypatch.setattr(evaluate_module, "measure_latency", lambda *a, **k: cost.measure_latency(*a[:4], runs=1))

    def half_written(fh, **arrays):
        fh.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", half_written)
    assert cli.main(_evaluate_args(eval_setup, tmp_path)) == 130
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "segrepro evaluate: interrupted (SIGINT); the stage did not finish; rerun it"]
    assert "predicting the test split" in captured.out   # progress went to stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == []   # no output, no .partial scratch


def _default_signals() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_ends_the_stage_with_one_line(eval_setup, tmp_path, signum, status):
    """A real signal to `python -m segrepro.cli evaluate` while it measures latency."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # Default dispositions in the child: a runner started in the background (`cmd &`) passes
    # SIGINT on as ignored, which the CLI deliberately keeps, and the signal would never arrive.
    proc = subprocess.Popen([sys.executable, "-m", "segrepro.cli", *_evaluate_args(eval_setup, tmp_path)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_signals)
    try:
        seen = []
        for line in proc.stdout:   # wait (no time limit of ours) until the slow part has started
            seen.append(line)
            if "model cost" in line:
                break
        assert any("model cost" in line for line in seen), "".join(seen) + proc.stderr.read()
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == status, err
    name = signal.Signals(signum).name
    assert err.splitlines() == [f"segrepro evaluate: interrupted ({name}); the stage did not finish; rerun it"]
    assert "Traceback" not in out + err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith(("Z", "X"))
    except OSError:
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_stage_under_dvc_ends_when_dvc_is_killed(eval_setup, tmp_path):
    """SIGKILL of the parent (dvc) ends the stage too, cleaning up, instead of orphaning it."""
    parent_code = ("import subprocess, sys; child = subprocess.Popen(sys.argv[1:]); "
                   "print(child.pid, flush=True); child.wait()")
    env = dict(os.environ, PYTHONUNBUFFERED="1", DVC_STAGE="evaluate@baseline-0")
    parent = subprocess.Popen([sys.executable, "-c", parent_code, sys.executable, "-m", "segrepro.cli",
                               *_evaluate_args(eval_setup, tmp_path)],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, text=True, preexec_fn=_default_signals)
    child = int(parent.stdout.readline())
    try:
        for line in parent.stdout:   # the stage is in its (endless) latency measurement
            if "model cost" in line:
                break
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 60
        while not _gone(child) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _gone(child), "the stage outlived the killed dvc"
    finally:
        if not _gone(child):
            os.kill(child, signal.SIGKILL)
    assert sorted(p.name for p in tmp_path.iterdir()) == []   # it cleaned up on the way out
