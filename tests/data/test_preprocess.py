from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segrepro.data.camvid import CLASSES
from segrepro.data.class_weights import median_frequency_weights
from segrepro.data.dataset import load_split
from segrepro.data.preprocess import preprocess_camvid
from segrepro.errors import SegreproError
from tests.conftest import assert_one_error_line
from tests.data.test_dataset import segrepro_cli


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


@pytest.mark.parametrize("split", ["train", "test"])
def test_empty_split_list_is_refused_before_anything_is_written(tmp_path, raw, split):
    listing = raw / "CamVid" / f"{split}.txt"
    listing.write_text("\n")
    with pytest.raises(SegreproError, match=rf"split list {listing} names no image; rerun `segrepro download`"):
        preprocess_camvid(raw, tmp_path / "out", 48, 64, max_images=4)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def _all_void(raw: Path, split: str) -> None:
    for label in (raw / "CamVid" / f"{split}annot").iterdir():
        Image.fromarray(np.full_like(np.asarray(Image.open(label)), 11)).save(label)


@pytest.mark.parametrize("split", ["train", "val"])
def test_all_void_split_is_refused_and_nothing_is_left(tmp_path, raw, split):
    _all_void(raw, split)
    out = tmp_path / "out"
    with pytest.raises(SegreproError, match=rf"the labels of split {split} \(4 images\) are all void \(11\): "
                                            r".*rerun `segrepro download` \(or raise preprocess.max_images\)"):
        preprocess_camvid(raw, out, 48, 64, max_images=4)
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_median_frequency_of_void_only_labels_is_a_segrepro_error():
    with pytest.raises(SegreproError, match="hold no class pixel at all"):
        median_frequency_weights(np.full((2, 4, 4), 11, np.uint8), CLASSES, 11)


def test_decompression_bomb_is_named(tmp_path, raw):
    """A PNG header claiming 100000×100000 pixels: PIL refuses it with DecompressionBombError."""
    victim = first(raw, "train")
    Image.new("RGB", (1, 1)).save(victim)
    data = bytearray(victim.read_bytes())
    data[16:24] = struct.pack(">II", 100_000, 100_000)                     # IHDR width, height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))        # IHDR CRC
    victim.write_bytes(bytes(data))
    with pytest.raises(SegreproError, match=rf"{victim.name} is not a readable image \(Image size .*decompression "
                                            r"bomb.*\); rerun `segrepro download`"):
        preprocess_camvid(raw, tmp_path / "out", 48, 64, max_images=4)
    assert not (tmp_path / "out").exists()


def test_rgb_label_names_the_fix(tmp_path, raw):
    victim = first(raw, "valannot")
    Image.open(victim).convert("RGB").save(victim)
    with pytest.raises(SegreproError, match=r"has mode RGB; expected a single-channel .*rerun `segrepro download`"):
        preprocess_camvid(raw, tmp_path / "out", 48, 64, max_images=4)


def test_cli_refuses_an_empty_split_list_in_one_line(tmp_path, raw, params_file):
    (raw / "CamVid" / "test.txt").write_text("")
    done = segrepro_cli(tmp_path, "preprocess", "--params", str(params_file), "--raw", "raw", "--out", "out/processed")
    assert_one_error_line(done, "segrepro preprocess: error: split list raw/CamVid/test.txt names no image",
                          "rerun `segrepro download`")
    assert not (tmp_path / "out").exists()
