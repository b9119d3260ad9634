from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segrepro.data.dataset import load_split
from segrepro.data.preprocess import preprocess_camvid
from segrepro.errors import SegreproError


@pytest.fixture()
def raw(tmp_path: Path, tiny_raw: Path) -> Path:
    copy = tmp_path / "raw"
    shutil.copytree(tiny_raw, copy)
    return copy


def first(raw: Path, folder: str) -> Path:
    return sorted((raw / "CamVid" / folder).iterdir())[0]


def test_packed_splits_and_card(tiny_processed, tiny_raw):
    card = json.loads((tiny_processed / "card.json").read_text())
    assert (card["height"], card["width"]) == (48, 64)
    test = load_split(tiny_processed, "test")
    assert test.images.shape == (4, 48, 64, 3) and test.labels.shape == (4, 48, 64)
    assert int(test.labels.max()) <= 11
    freq = card["splits"]["train"]["class_pixel_frequency"]
    assert abs(sum(freq.values()) + card["splits"]["train"]["void_fraction"] - 1) < 1e-9
    # Nearest-neighbour resizing: every label value comes from the source label.
    src = np.asarray(Image.open(first(tiny_raw, "testannot")))
    assert set(np.unique(test.labels[0].numpy())) <= set(np.unique(src))


def test_preprocess_is_byte_stable(tmp_path, tiny_raw, tiny_processed):
    again = tmp_path / "again"
    preprocess_camvid(tiny_raw, again, 48, 64, max_images=4)
    for path in tiny_processed.iterdir():
        assert path.read_bytes() == (again / path.name).read_bytes(), path.name


def test_corrupt_image_is_named(tmp_path, raw):
    victim = first(raw, "val")
    victim.write_bytes(b"not a png at all")
    out = tmp_path / "out"
    with pytest.raises(SegreproError, match=f"{victim.name} is not a readable image"):
        preprocess_camvid(raw, out, 48, 64, max_images=4)
    assert not out.exists()


def test_missing_image_is_named(tmp_path, raw):
    victim = first(raw, "train")
    victim.unlink()
    with pytest.raises(SegreproError, match=f"{victim.name} is missing"):
        preprocess_camvid(raw, tmp_path / "out", 48, 64, max_images=4)
    assert not (tmp_path / "out").exists()


def test_label_out_of_range_is_named(tmp_path, raw):
    victim = first(raw, "testannot")
    label = np.asarray(Image.open(victim)).copy()
    label[0, 0] = 37
    Image.fromarray(label).save(victim)
    with pytest.raises(SegreproError, match=rf"{victim.name} has values \[37\] outside 0..11"):
        preprocess_camvid(raw, tmp_path / "out", 48, 64, max_images=4)
    assert not (tmp_path / "out").exists()


def test_size_mismatch_is_named(tmp_path, raw):
    victim = first(raw, "trainannot")
    Image.open(victim).resize((240, 180), Image.NEAREST).save(victim)
    with pytest.raises(SegreproError, match="is 360×480 but its label .* is 180×240"):
        preprocess_camvid(raw, tmp_path / "out", 48, 64, max_images=4)
    assert not (tmp_path / "out").exists()


def test_truncated_packed_split_is_reported(tmp_path, tiny_processed):
    copy = tmp_path / "processed"
    shutil.copytree(tiny_processed, copy)
    data = (copy / "val_images.npy").read_bytes()
    (copy / "val_images.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(SegreproError, match="corrupt"):
        load_split(copy, "val")
