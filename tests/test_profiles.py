"""Profiles: dotted-key overrides of params.yaml, merged or passed to `dvc exp run -S`."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from segrepro import profiles
from segrepro.errors import SegreproError
from segrepro.params import load_params

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params.yaml"


def _profile(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return path


SAMPLE = """\
preprocess.height: 360
base.seeds: [0, 1, 2]
model.sdn.lam: 0.5
runtime.device: cpu
train.flip: false
train.scale_max: 1.25
audit.pins: pins-gpu.yaml
report.title: "a title: with colon, comma"
"""


def test_merge_equals_hand_made(tmp_path: Path) -> None:
    out = tmp_path / "merged.yaml"
    params = profiles.merge(PARAMS, _profile(tmp_path, SAMPLE), out)
    expected = yaml.safe_load(PARAMS.read_text())
    expected["preprocess"]["height"] = 360
    expected["base"]["seeds"] = [0, 1, 2]
    expected["model"]["sdn"]["lam"] = 0.5
    expected["runtime"]["device"] = "cpu"
    expected["train"]["flip"] = False
    expected["train"]["scale_max"] = 1.25
    expected["audit"]["pins"] = "pins-gpu.yaml"
    expected["report"]["title"] = "a title: with colon, comma"
    assert yaml.safe_load(out.read_text()) == expected
    assert params == load_params(out)
    assert params.base.seeds == (0, 1, 2) and params.model.options["sdn"]["lam"] == 0.5
    assert out.read_text().startswith("# Generated:")


def test_unknown_key_fails_with_hint_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "merged.yaml"
    with pytest.raises(SegreproError, match=r"train\.epoch, which is not a params.yaml key "
                                            r"\(did you mean train\.epochs\?\)"):
        profiles.merge(PARAMS, _profile(tmp_path, "train.epoch: 3\n"), out)
    assert not out.exists()
    with pytest.raises(SegreproError, match="train.epochs.x, which is not"):
        profiles.set_args(_profile(tmp_path, "train.epochs.x: 3\n"), PARAMS)


def test_invalid_value_fails_validation_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "merged.yaml"
    with pytest.raises(SegreproError, match="train.epochs must be of type int"):
        profiles.merge(PARAMS, _profile(tmp_path, "train.epochs: many\n"), out)
    assert not out.exists() and not list(tmp_path.glob(".*partial*"))


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "train..epochs: 1\n", "{1: 2}\n"])
def test_malformed_profile_fails(tmp_path: Path, text: str) -> None:
    with pytest.raises(SegreproError, match="profile"):
        profiles.load_profile(_profile(tmp_path, text))


def test_set_args_format(tmp_path: Path) -> None:
    args = profiles.set_args(_profile(tmp_path, SAMPLE), PARAMS)
    assert args == ["-S", "preprocess.height=360", "-S", "base.seeds=[0,1,2]", "-S", "model.sdn.lam=0.5",
                    "-S", "runtime.device=cpu", "-S", "train.flip=false", "-S", "train.scale_max=1.25",
                    "-S", "audit.pins=pins-gpu.yaml", "-S", "report.title='a title: with colon, comma'"]


@pytest.mark.parametrize("value, text", [(None, "null"), (True, "true"), (3, "3"), (1e-05, "1e-05"),
                                         ("true", "'true'"), ("it's", "'it\\'s'"), ({"a": [1, 2.5]}, "{a:[1,2.5]}")])
def test_hydra_value(value, text: str) -> None:
    assert profiles.hydra_value(value) == text


def test_set_args_through_dvc_parser_equals_merge(tmp_path: Path) -> None:
    hydra = pytest.importorskip("dvc.utils.hydra")
    profile = _profile(tmp_path, SAMPLE)
    copy = tmp_path / "params.yaml"
    shutil.copy(PARAMS, copy)
    args = profiles.set_args(profile, PARAMS)
    hydra.apply_overrides(copy, args[1::2])
    profiles.merge(PARAMS, profile, tmp_path / "merged.yaml")
    assert yaml.safe_load(copy.read_text()) == yaml.safe_load((tmp_path / "merged.yaml").read_text())


def test_cli_prints_args_one_per_line_and_errors_in_one_line(tmp_path: Path, capsys) -> None:
    assert profiles.main(["set-args", str(_profile(tmp_path, "train.epochs: 3\n")), "--params", str(PARAMS)]) == 0
    assert capsys.readouterr().out.splitlines() == ["-S", "train.epochs=3"]
    assert profiles.main(["set-args", str(_profile(tmp_path, "train.epoch: 3\n")), "--params", str(PARAMS)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("segrepro profiles: error: ")


def test_cuda_profile_without_cuda_says_so(tmp_path: Path, monkeypatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SegreproError, match="no visible CUDA device"):
        profiles.check_device(_profile(tmp_path, "runtime.device: cuda\n"))
    profiles.check_device(_profile(tmp_path, "runtime.device: cpu\n"))  # no error


def test_paper_gpu_profile_matches_params_yaml(tmp_path: Path) -> None:
    train = yaml.safe_load(PARAMS.read_text())["train"]
    pending = [k for k in ("class_weighting", "compile") if k not in train]
    if pending:
        pytest.skip(f"params.yaml has no train.{'/'.join(pending)} yet (being added); the profile sets them")
    params = profiles.merge(PARAMS, ROOT / "profiles" / "paper-gpu.yaml", tmp_path / "gpu.yaml")
    assert (params.preprocess.height, params.preprocess.width) == (360, 480)
    assert params.runtime.device == "cuda" and len(params.base.seeds) == 3
    assert params.runtime.threads == 4 and params.runtime.inference_batch_size == 16
    assert params.evaluate.bf_tolerances == (2, 4, 6, 10) and params.evaluate.trimap_widths == (4, 8, 16, 32)


def test_a_profile_with_a_moved_key_names_the_new_one(tmp_path: Path) -> None:
    with pytest.raises(SegreproError, match=r"sets train.device, which moved to runtime.device .*rename the key"):
        profiles.set_args(_profile(tmp_path, "train.device: cuda\n"), PARAMS)


def test_the_script_prints_its_help_and_refuses_an_unknown_profile_in_one_line() -> None:
    # Both answer before the set-up (.venv) runs.
    script = str(ROOT / "scripts" / "profile")
    shown = subprocess.run(["bash", script, "--help"], capture_output=True, text=True)
    assert shown.returncode == 0 and shown.stderr == ""
    assert "scripts/profile paper-gpu" in shown.stdout
    assert "`git checkout params.yaml dvc.lock && dvc checkout` returns to the" in shown.stdout
    unknown = subprocess.run(["bash", script, "no-such"], capture_output=True, text=True)
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert unknown.stderr.splitlines() == ["scripts/profile: no profile 'no-such' (profiles/no-such.yaml); "
                                           "available: paper-gpu"]
