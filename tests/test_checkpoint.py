"""Checkpoint loading: past the content hash, every entry a stage reads is checked at load."""
from __future__ import annotations

import pytest
import torch

from segrepro import layout
from segrepro.checkpoint import load_checkpoint, save_checkpoint
from segrepro.errors import SegreproError


def _state(**changes) -> dict:
    state = {"model": {"w": torch.zeros(3)},
             "build": {"method": "baseline", "backbone": "resnet18", "decoder": "fpn", "output_stride": 8},
             "method": "baseline", "seed": 0, "train": {"epochs": 2, "crop_height": 48, "crop_width": 64}}
    for key, value in changes.items():
        if value is None:
            del state[key]
        else:
            state[key] = value
    return state


def test_a_complete_checkpoint_loads(tmp_path):
    path = tmp_path / "baseline-0.pt"
    save_checkpoint(_state(), path)
    assert load_checkpoint(path)["train"]["epochs"] == 2


@pytest.mark.parametrize("changes, problem", [
    ({"method": None}, "no 'method'"),
    ({"seed": None}, "no 'seed'"),
    ({"train": None}, "no 'train'"),
    ({"train": {}}, "'train' has no epochs, crop_height, crop_width"),
    ({"train": {"epochs": 2, "crop_height": "48", "crop_width": 64}}, "train.crop_height is str, not int"),
    ({"seed": "0"}, "'seed' is str, not int"),
    ({"seed": True}, "'seed' is bool, not int"),
    ({"method": 3}, "'method' is int, not str"),
    ({"build": {"method": "baseline", "decoder": "fpn", "output_stride": 8}}, "'build' has no backbone"),
], ids=["no-method", "no-seed", "no-train", "empty-train", "crop-str", "seed-str", "seed-bool", "method-int",
        "build-no-backbone"])
def test_an_incomplete_checkpoint_is_refused_at_load(tmp_path, monkeypatch, changes, problem):
    monkeypatch.chdir(tmp_path)
    path = layout.checkpoint("baseline-0")    # the pipeline's own path: the advice is DVC's
    save_checkpoint(_state(**changes), path)   # a valid hash: only the schema check can catch it
    with pytest.raises(SegreproError) as caught:
        load_checkpoint(path)
    assert str(caught.value) == (f"checkpoint {path} is incomplete ({problem}), so no stage can use it; retrain it "
                                 f"with `dvc repro -s -f train@baseline-0` (or restore the recorded one with "
                                 f"`dvc checkout {path}`)")


def test_an_unreadable_checkpoint_names_the_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = layout.checkpoint("baseline-0")
    path.parent.mkdir()
    path.write_bytes(b"")
    with pytest.raises(SegreproError, match=r"checkpoint .* is unreadable \(EOFError\); retrain it"):
        load_checkpoint(path)
    path.write_text("hello")
    with pytest.raises(SegreproError, match=r"checkpoint .* is unreadable \(KeyError: 101\); retrain it"):
        load_checkpoint(path)


def test_a_checkpoint_outside_the_pipeline_gets_advice_that_fits_it(tmp_path):
    # Its name is no stage's: `train@trunc` would name a stage that does not exist.
    path = tmp_path / "trunc.pt"
    path.write_bytes(b"")
    with pytest.raises(SegreproError) as caught:
        load_checkpoint(path)
    said = str(caught.value)
    assert f"retrain it with `segrepro train --checkpoint {path}`" in said and "train@trunc" not in said
    assert "dvc checkout" not in said


def test_a_directory_is_not_a_missing_checkpoint(tmp_path):
    with pytest.raises(SegreproError, match=r"checkpoint .* is a directory; pass the checkpoint file "
                                            r"\(models/<method>-<seed>\.pt\)"):
        load_checkpoint(tmp_path)
