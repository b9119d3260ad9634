"""Resize CamVid to the configured resolution and pack each split into arrays.

Images are resized bilinearly (PIL, which low-pass filters when shrinking),
labels by nearest neighbour so no new class values appear; void (11) stays
the ignore label. Output, per split: ``<split>_images.npy`` (N, H, W, 3)
uint8, ``<split>_labels.npy`` (N, H, W) uint8, ``<split>_names.txt``; plus
``card.json`` (counts, class pixel frequencies, resolution, source hashes,
and the training split's median-frequency class weights — ``data.class_weights``).
``.npy`` rather than ``.npz`` because ``np.savez`` stamps the current time
into its zip entries and DVC would see a new hash on every run.

Refused, with nothing written: a split whose list names no pair (checked for
every split before any image is read) and a split whose labels are all void
(no class pixel to train on or to score; the training split's class weights
would be undefined).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from segrepro.atomic import atomic_dir
from segrepro.data.camvid import CLASSES, SPLITS, VOID, split_pairs
from segrepro.data.class_weights import median_frequency_weights
from segrepro.data.manifest import sha256_file
from segrepro.errors import SegreproError

FIX = "rerun `segrepro download`"


def _open(path: Path) -> Image.Image:
    if not path.is_file():
        raise SegreproError(f"{path} is missing; rerun `segrepro download`")
    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        raise SegreproError(f"{path} is not a readable image ({exc}); {FIX}") from exc
    return image


def load_pair(image_path: Path, label_path: Path, height: int, width: int,
              num_classes: int = len(CLASSES)) -> tuple[np.ndarray, np.ndarray]:
    """One validated, resized (image, label) pair as uint8 arrays."""
    image, label = _open(image_path), _open(label_path)
    if image.size != label.size:
        raise SegreproError(f"image {image_path.name} is {image.size[1]}×{image.size[0]} but its label "
                            f"{label_path.name} is {label.size[1]}×{label.size[0]}; the pair must match; {FIX}")
    if label.mode not in ("L", "P"):
        raise SegreproError(f"label {label_path} has mode {label.mode}; expected a single-channel uint8 PNG of "
                            f"class indices; {FIX}")
    values = np.asarray(label)
    if values.max() > num_classes:
        bad = sorted(int(v) for v in np.unique(values) if v > num_classes)
        raise SegreproError(f"label {label_path} has values {bad} outside 0..{num_classes} "
                            f"(classes 0..{num_classes - 1}, void {num_classes}); {FIX}")
    image = image.convert("RGB").resize((width, height), Image.BILINEAR)
    label = label.resize((width, height), Image.NEAREST)
    return np.asarray(image, dtype=np.uint8), np.asarray(label, dtype=np.uint8)


def preprocess_camvid(raw: Path, out: Path, height: int, width: int, max_images: int = 0,
                      num_classes: int = len(CLASSES), ignore_index: int = VOID) -> dict:
    """Write the packed splits and the dataset card into ``out`` atomically; return the card."""
    if num_classes != len(CLASSES) or ignore_index != VOID:
        raise SegreproError(f"CamVid has {len(CLASSES)} classes with void {VOID}; set "
                            f"base.num_classes={len(CLASSES)} and base.ignore_index={VOID}")
    root = Path(raw) / "CamVid"
    card: dict = {"dataset": "camvid", "height": height, "width": width, "classes": list(CLASSES),
                  "ignore_index": ignore_index, "splits": {}}
    splits = {split: split_pairs(root, split)[:max_images or None] for split in SPLITS}
    for split, pairs in splits.items():
        if not pairs:
            raise SegreproError(f"split list {root / f'{split}.txt'} names no image; {FIX}")
    with atomic_dir(out, "preprocess") as tmp:
        for split, pairs in splits.items():
            images = np.empty((len(pairs), height, width, 3), np.uint8)
            labels = np.empty((len(pairs), height, width), np.uint8)
            sources = hashlib.sha256()
            for i, (image_path, label_path) in enumerate(pairs):
                images[i], labels[i] = load_pair(image_path, label_path, height, width, num_classes)
                sources.update(f"{sha256_file(image_path)} {sha256_file(label_path)}\n".encode())
            counts = np.bincount(labels.ravel(), minlength=num_classes + 1)
            if not counts[:num_classes].any():
                more = " (or raise preprocess.max_images)" if max_images else ""
                raise SegreproError(f"the labels of split {split} ({len(pairs)} images) are all void "
                                    f"({ignore_index}): no class pixel to train on or score; {FIX}{more}")
            np.save(tmp / f"{split}_images.npy", images)
            np.save(tmp / f"{split}_labels.npy", labels)
            (tmp / f"{split}_names.txt").write_text("".join(f"{p.stem}\n" for p, _ in pairs))
            card["splits"][split] = {
                "images": len(pairs),
                "class_pixel_frequency": {c: float(counts[k] / counts.sum()) for k, c in enumerate(CLASSES)},
                "void_fraction": float(counts[ignore_index] / counts.sum()),
                "sources_sha256": sources.hexdigest(),
            }
            if split == "train":
                card["class_weights"] = {"median_frequency": dict(zip(
                    CLASSES, median_frequency_weights(labels, CLASSES, ignore_index)))}
        (tmp / "card.json").write_text(json.dumps(card, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return card
