"""The synthetic CamVid-shaped tree: deterministic, read by the real loader, and as demanding as promised."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segrepro.data.camvid import CLASSES, SPLITS, VOID, split_pairs
from segrepro.data.dataset import load_split
from segrepro.data.preprocess import preprocess_camvid
from segrepro.data.synthetic import POLE, scene_label, write_synthetic_camvid
from segrepro.errors import SegreproError

ALL_VALUES = set(range(len(CLASSES))) | {VOID}


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _labels(raw: Path, split: str) -> list[np.ndarray]:
    return [np.asarray(Image.open(label)) for _, label in split_pairs(raw / "CamVid", split)]


def _run_lengths(row: np.ndarray) -> list[int]:
    """Lengths of the runs of True in a 1-D boolean array."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], row.astype(np.int8), [0]))))
    return (edges[1::2] - edges[0::2]).tolist()


def test_same_seed_gives_byte_identical_files(tmp_path, synthetic_raw):
    again = write_synthetic_camvid(tmp_path / "again", images_per_split=4)
    assert _files(again) == _files(synthetic_raw)
    # A smaller tree is the start of a larger one; another seed changes every image and label.
    small = _files(write_synthetic_camvid(tmp_path / "small", images_per_split=2))
    big = _files(synthetic_raw)
    pngs = [name for name in small if name.endswith(".png")]
    assert len(pngs) == 2 * 2 * len(SPLITS) and all(small[n] == big[n] for n in pngs)
    other = _files(write_synthetic_camvid(tmp_path / "other", images_per_split=2, seed=1))
    assert all(other[n] != small[n] for n in pngs)


def test_layout_and_encoding_match_camvid(synthetic_raw):
    root = synthetic_raw / "CamVid"
    for split in SPLITS:
        lines = (root / f"{split}.txt").read_text().splitlines()
        assert len(lines) == 4
        assert all(line.startswith(f"/SegNet/CamVid/{split}/") and f" /SegNet/CamVid/{split}annot/" in line
                   for line in lines)
        for image_path, label_path in split_pairs(root, split):
            with Image.open(image_path) as image, Image.open(label_path) as label:
                assert (image.format, image.mode, image.size) == ("PNG", "RGB", (480, 360))
                assert (label.format, label.mode, label.size) == ("PNG", "L", (480, 360))


def test_every_class_thin_poles_void_and_many_boundaries(synthetic_raw):
    for split in SPLITS:
        labels = _labels(synthetic_raw, split)
        assert set(np.unique(np.stack(labels)).tolist()) == ALL_VALUES, split
    pairs = set()
    for label in _labels(synthetic_raw, "train"):
        assert (label == VOID).any()
        runs = {n for row in (label == POLE) for n in _run_lengths(row)}
        assert {1, 2, 3} <= runs, runs            # poles 1, 2 and 3 px wide, seen row by row
        for a, b in ((label[:, :-1], label[:, 1:]), (label[:-1], label[1:])):
            differ = a != b
            pairs |= {tuple(sorted(p)) for p in zip(a[differ].tolist(), b[differ].tolist())}
    # Of the 66 class pairs (void included), those that touch: 32 here, 30 in the first four CamVid train labels.
    assert len(pairs) >= 25, sorted(pairs)


@pytest.mark.parametrize("height, width", [(32, 32), (48, 64), (32, 480), (480, 32), (97, 53)])
def test_every_class_at_small_and_odd_sizes(height, width):
    for seed in range(20):
        label = scene_label(height, width, np.random.default_rng((seed, 0, 0)))
        assert label.shape == (height, width) and label.dtype == np.uint8
        assert set(np.unique(label).tolist()) == ALL_VALUES, seed


def test_preprocess_reads_it_and_keeps_every_label(tmp_path, synthetic_raw, synthetic_processed):
    # At its own resolution preprocessing is the identity on labels: the PNGs round-trip exactly.
    full = tmp_path / "full"
    card = preprocess_camvid(synthetic_raw, full, 360, 480)
    for split in SPLITS:
        packed = load_split(full, split)
        assert packed.names == tuple(p.stem for p, _ in split_pairs(synthetic_raw / "CamVid", split))
        assert np.array_equal(packed.labels.numpy(), np.stack(_labels(synthetic_raw, split)))
        assert card["splits"][split]["images"] == 4 and card["splits"][split]["void_fraction"] > 0
    assert all(f > 0 for f in card["splits"]["train"]["class_pixel_frequency"].values())
    # The tiny packed form the unit tests use.
    tiny = json.loads((synthetic_processed / "card.json").read_text())
    assert (tiny["height"], tiny["width"]) == (48, 64)
    assert load_split(synthetic_processed, "train").images.shape == (4, 48, 64, 3)


def test_bad_arguments_and_foreign_directories_are_refused(tmp_path):
    for kwargs, message in (({"images_per_split": 0}, "at least one scene"),
                            ({"height": 16}, "at least 32×32"), ({"seed": -1}, "seed -1 is negative")):
        with pytest.raises(SegreproError, match=message):
            write_synthetic_camvid(tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(SegreproError, match="refusing to replace"):
        write_synthetic_camvid(mine, images_per_split=1, height=32, width=32)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    # Its own earlier output is replaced.
    tree = write_synthetic_camvid(tmp_path / "tree", images_per_split=1, height=32, width=32)
    write_synthetic_camvid(tree, images_per_split=2, height=32, width=32)
    assert len(split_pairs(tree / "CamVid", "val")) == 2
