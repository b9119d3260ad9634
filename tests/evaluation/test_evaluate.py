from __future__ import annotations

import json
import os
import platform

import numpy as np
import pytest
import torch
import yaml

from segrepro import atomic, cli
from segrepro.checkpoint import save_checkpoint
from segrepro.errors import SegreproError
from segrepro.evaluation.cost import count_flops
from segrepro.evaluation.evaluate import evaluate
from segrepro.params import load_params
from segrepro.runtime import machine_description, select_device
from segrepro.training.stage import train
from tests.conftest import tiny_params


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synthetic_processed):
    tmp = tmp_path_factory.mktemp("eval")
    params_path = tmp / "params.yaml"
    params_path.write_text(yaml.safe_dump(tiny_params()))
    params = load_params(params_path)
    ckpt = tmp / "baseline-0.pt"
    train(params, "baseline", 0, synthetic_processed, ckpt, tmp / "live")
    return params, ckpt, tmp


def test_metrics_json(trained, synthetic_processed):
    params, ckpt, tmp = trained
    out = tmp / "m.json"
    result = evaluate(params, "baseline", 0, synthetic_processed, ckpt, out, tmp / "m.npz")
    saved = json.loads(out.read_text())
    stats = np.load(tmp / "m.npz")
    assert stats["confusion"].shape == (4, 11, 11) and stats["bf"].shape == (4, 11, 4)
    assert stats["trimap"].shape == (4, 4, 11, 11) and stats["biou"].shape == (4, 2, 11)
    # The file describes its own columns (compare and the report read these, not params.yaml).
    assert stats["bf_tolerances_px"].tolist() == [1, 2, 3, 5] and stats["trimap_widths_px"].tolist() == [2, 4, 8, 16]
    assert stats["classes"].tolist() == saved["classes"] and len(saved["classes"]) == 11
    assert set(saved) >= {"bf@1px", "bf@5px", "trimap@2px", "trimap@16px", "boundary_iou"}
    # Trimap confusions only count pixels inside the bands: never more than the whole image.
    assert (stats["trimap"].sum((2, 3)) <= stats["confusion"].sum((1, 2))[:, None]).all()
    assert saved["miou"] == result["miou"] and 0 <= saved["miou"] <= 1
    assert len(saved["iou"]) == 11 and saved["test_images"] == 4
    assert saved["input_size"] == [48, 64] and saved["flops"] > 0 and saved["latency_s"] > 0
    # Where it ran, for the report's latency: this machine, with the thread count evaluate set.
    device = select_device(params.runtime.device)
    assert saved["evaluation_environment"] == machine_description(device)
    assert saved["evaluation_environment"]["threads"] == str(params.runtime.threads)
    assert saved["device"] == (torch.cuda.get_device_name(device) if device.type == "cuda"
                               else platform.processor() or "cpu")   # kept as before
    # Evaluating twice gives the same accuracy numbers (latency aside).
    again = evaluate(params, "baseline", 0, synthetic_processed, ckpt, tmp / "m2.json", tmp / "m2.npz")
    assert again["iou"] == result["iou"]


def test_wrong_checkpoint_is_rejected(trained, synthetic_processed):
    params, ckpt, tmp = trained
    with pytest.raises(SegreproError, match=f"holds baseline-0, not baseline-1; pass {tmp / 'baseline-1.pt'} "
                                            "or rerun `dvc repro train@baseline-1`"):
        evaluate(params, "baseline", 1, synthetic_processed, ckpt, tmp / "x.json", tmp / "x.npz")
    broken = tmp / "broken.pt"
    broken.write_bytes(ckpt.read_bytes()[:1000])
    with pytest.raises(SegreproError, match="unreadable"):
        evaluate(params, "baseline", 0, synthetic_processed, broken, tmp / "y.json", tmp / "y.npz")
    assert not (tmp / "x.json").exists() and not (tmp / "y.json").exists()


def test_flop_count_of_a_single_conv():
    conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
    # 2 FLOPs per multiply-add: 2 · (8 · 3 · 9) · (10 · 12)
    assert count_flops(conv, 10, 12, torch.device("cpu")) == 2 * 8 * 3 * 9 * 10 * 12


def test_train_environment_and_progress_lines(trained, synthetic_processed, capsys):
    """The checkpoint's training environment lands in the metrics JSON ({} for an older checkpoint)."""
    params, ckpt, tmp = trained
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    env = {"torch": "2.13.0", "device": "cpu", "cpu_capability": "AVX2", "gpu": "", "cuda": ""}
    for name, environment in (("with-env", env), ("without-env", None)):
        state.pop("environment", None)
        if environment is not None:
            state["environment"] = environment
        path = tmp / f"{name}.pt"
        save_checkpoint(state, path)
        out = tmp / f"{name}.json"
        evaluate(params, "baseline", 0, synthetic_processed, path, out, tmp / f"{name}.npz")
        assert json.loads(out.read_text())["train_environment"] == (environment or {})
    printed = capsys.readouterr().out
    # Progress goes to stdout, as plain lines when it is not a terminal (4 test images, batch 4: one batch).
    assert "baseline-0  predicting the test split: 1/1 batch done in " in printed
    assert "baseline-0  per-image statistics: 1/1 batch done in " in printed
    assert "baseline-0  model cost (FLOPs, latency over 1 runs): done in " in printed
    assert "\r" not in printed


# --- Tampered checkpoints: evaluate refuses them, naming the file and the fix ----------------------

def _evaluate_cli(params_path, processed, checkpoint, out_dir) -> list[str]:
    return ["evaluate", "--params", str(params_path), "--method", "baseline", "--seed", "0",
            "--data", str(processed), "--checkpoint", str(checkpoint),
            "--out", str(out_dir / "t.json"), "--per-image", str(out_dir / "t.npz")]


def flip_weight_byte(checkpoint, target) -> str:
    """Copy ``checkpoint`` to ``target`` with the lowest byte of one stored weight flipped; return its name."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    data = bytearray(checkpoint.read_bytes())
    for name, tensor in state["model"].items():
        raw = tensor.contiguous().numpy().tobytes()
        if tensor.is_floating_point() and len(raw) >= 64 and data.count(raw) == 1:
            data[data.index(raw)] ^= 0x01   # little-endian: the mantissa's last bits, a finite value
            target.write_bytes(bytes(data))
            return name
    raise AssertionError("no uniquely stored weight found")


def test_flipped_byte_fails_evaluate(trained, synthetic_processed, tmp_path, capsys):
    params, ckpt, tmp = trained
    bad = tmp_path / "baseline-0.pt"
    name = flip_weight_byte(ckpt, bad)
    changed = torch.load(bad, map_location="cpu", weights_only=True)["model"][name]
    assert torch.isfinite(changed).all()   # the load alone would not notice
    code = cli.main(_evaluate_cli(tmp / "params.yaml", synthetic_processed, bad, tmp_path))
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines() == [f"segrepro evaluate: error: checkpoint {bad} was modified after training "
                                f"(content hash mismatch); retrain it with `segrepro train --checkpoint {bad}` "
                                "(in the pipeline, models/<method>-<seed>.pt: `dvc repro -s -f train@<method>-<seed>`)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["baseline-0.pt"]   # no metrics written


def test_non_finite_weight_and_unhashed_checkpoint_are_refused(trained, synthetic_processed, tmp_path):
    params, ckpt, _ = trained
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    name = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][name] = state["model"][name].clone()
    state["model"][name].view(-1)[0] = float("nan")
    nan_path = tmp_path / "nan.pt"
    save_checkpoint(state, nan_path)   # a valid hash over a NaN: training itself went wrong
    with pytest.raises(SegreproError, match=f"{nan_path} holds non-finite weights \\({name}\\); retrain"):
        evaluate(params, "baseline", 0, synthetic_processed, nan_path, tmp_path / "n.json", tmp_path / "n.npz")
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    del state["sha256"]
    old = tmp_path / "old.pt"
    torch.save(state, old)
    with pytest.raises(SegreproError, match=f"has no content hash .* retrain it with `segrepro train "
                                            f"--checkpoint {old}`"):
        evaluate(params, "baseline", 0, synthetic_processed, old, tmp_path / "o.json", tmp_path / "o.npz")
    assert not list(tmp_path.glob("*.json"))


# --- Output paths: checked before the work, written together ----------------------------------------

def test_bad_output_paths_fail_before_the_checkpoint_is_read(trained, synthetic_processed, tmp_path, capsys):
    params, ckpt, tmp = trained
    missing = tmp_path / "no-such.pt"   # reading it would be the first error, were outputs checked later
    (tmp_path / "t.json").mkdir()
    assert cli.main(_evaluate_cli(tmp / "params.yaml", synthetic_processed, missing, tmp_path)) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"segrepro evaluate: error: cannot write {tmp_path / 't.json'}: it is a directory; pass a file path "
        "(or remove the directory if it is an old output)"]
    (tmp_path / "t.json").rmdir()
    (tmp_path / "file").write_text("x")
    args = _evaluate_cli(tmp / "params.yaml", synthetic_processed, missing, tmp_path)
    args[args.index("--per-image") + 1] = str(tmp_path / "file" / "t.npz")
    assert cli.main(args) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"segrepro evaluate: error: cannot write {tmp_path / 'file' / 't.npz'}: {tmp_path / 'file'} is a file, "
        "not a directory; pass a path inside a directory"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_a_failed_metrics_rename_leaves_no_half_pair(trained, synthetic_processed, tmp_path, monkeypatch):
    """The .npz is renamed first; if the .json's rename then fails, neither the new .npz nor the old
    .json stays (a new .npz beside an old .json would look like one result)."""
    params, ckpt, _ = trained
    out, per_image = tmp_path / "m.json", tmp_path / "m.npz"
    evaluate(params, "baseline", 0, synthetic_processed, ckpt, out, per_image)
    real = os.replace

    def replace(src, dst):
        if os.fspath(dst) == os.fspath(out):
            raise OSError(28, "No space left on device", os.fspath(src), None, os.fspath(dst))
        real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)
    with pytest.raises(SegreproError, match=f"cannot write {out}: No space left on device; free space"):
        evaluate(params, "baseline", 0, synthetic_processed, ckpt, out, per_image)
    assert list(tmp_path.iterdir()) == []


def test_weights_that_do_not_fit_are_one_short_line(trained, synthetic_processed, tmp_path, capsys):
    params, ckpt, tmp = trained
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    del state["sha256"]
    names = list(state["model"])
    for name in names[:5]:
        del state["model"][name]
    state["model"]["extra.weight"] = torch.zeros(1)
    bad = tmp_path / "baseline-0.pt"
    save_checkpoint(state, bad)
    assert cli.main(_evaluate_cli(tmp / "params.yaml", synthetic_processed, bad, tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"segrepro evaluate: error: checkpoint {bad} does not fit the model it records (5 missing ({names[0]}, "
        f"{names[1]}, {names[2]}, … 2 more); 1 unexpected (extra.weight)); retrain it with "
        f"`segrepro train --checkpoint {bad}` (in the pipeline, models/<method>-<seed>.pt: "
        "`dvc repro -s -f train@<method>-<seed>`)"]


def test_a_checkpoint_without_its_run_fails_before_evaluating(trained, synthetic_processed, tmp_path):
    params, ckpt, _ = trained
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    del state["sha256"], state["method"]
    bad = tmp_path / "baseline-0.pt"
    save_checkpoint(state, bad)
    with pytest.raises(SegreproError, match=r"checkpoint .* is incomplete \(no 'method'\)"):
        evaluate(params, "baseline", 0, synthetic_processed, bad, tmp_path / "m.json", tmp_path / "m.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["baseline-0.pt"]
