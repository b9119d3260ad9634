from pathlib import Path

import pytest
import yaml

from segrepro.cli import main
from segrepro.errors import SegreproError
from segrepro.params import load_params
from tests.conftest import REPO, tiny_params


def write(tmp_path: Path, params: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_repository_params_are_valid():
    params = load_params(REPO / "params.yaml")
    assert params.base.methods[0] == "baseline"
    assert params.base.ignore_index == 11


def test_mistyped_key_is_named_with_a_suggestion(tmp_path):
    raw = tiny_params()
    raw["train"]["epoch"] = raw["train"].pop("epochs")
    with pytest.raises(SegreproError, match=r"unknown params key train.epoch \(did you mean train.epochs\?\)"):
        load_params(write(tmp_path, raw))


def test_missing_key_is_named(tmp_path):
    raw = tiny_params()
    del raw["model"]["backbone"]
    with pytest.raises(SegreproError, match="params key model.backbone is missing"):
        load_params(write(tmp_path, raw))


@pytest.mark.parametrize("section,key,value,message", [
    ("train", "lr", "fast", "train.lr must be of type float"),
    ("train", "epochs", 0, "train.epochs must be > 0"),
    ("base", "methods", ["baseline", "sdm"], "unknown method 'sdm'"),
    ("model", "decoder", "unet", "model.decoder must be 'fcn' or 'fpn'"),
    ("train", "device", "tpu", "train.device must be auto, cpu or cuda"),
])
def test_bad_values_are_rejected(tmp_path, section, key, value, message):
    raw = tiny_params()
    raw[section][key] = value
    with pytest.raises(SegreproError, match=message):
        load_params(write(tmp_path, raw))


def test_cli_reports_bad_params_without_traceback(tmp_path, capsys):
    raw = tiny_params()
    raw["report"]["titel"] = "x"
    code = main(["preprocess", "--params", str(write(tmp_path, raw)), "--raw", str(tmp_path / "r"),
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert "unknown params key report.titel (did you mean report.title?)" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()
