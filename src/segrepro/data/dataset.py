"""Packed splits (written by ``preprocess``) loaded as tensors, checked before use.

``load_split`` refuses a split whose files a pull, a full disk or a hand edit
damaged: unreadable ``.npy`` files, a dtype other than uint8, images without
3 channels, shapes that disagree, label values outside the classes and void,
or no image at all. Each array is memory-mapped first, so the header (dtype,
shape, size against the file's length) is checked before the data are read;
the label range check is one ``max()`` over the uint8 labels unless a value
is out of range.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from segrepro.data.camvid import CLASSES, VOID
from segrepro.errors import SegreproError, reason

FIX = "rerun `dvc repro preprocess`"


@dataclass(frozen=True)
class Split:
    images: torch.Tensor  # (N, H, W, 3) uint8
    labels: torch.Tensor  # (N, H, W) uint8
    names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.names)


def _paths(processed: Path, split: str) -> list[Path]:
    paths = [processed / f"{split}_{part}" for part in ("images.npy", "labels.npy", "names.txt")]
    for path in paths:
        if not path.is_file():
            raise SegreproError(f"{path} is missing; run `dvc repro preprocess` first")
    return paths


def _corrupt(processed: Path, split: str, why: str) -> SegreproError:
    return SegreproError(f"packed split {split} under {processed} is corrupt ({why}); {FIX}")


def _names(path: Path, processed: Path, split: str) -> tuple[str, ...]:
    try:
        return tuple(path.read_text(encoding="utf-8").split())
    except (OSError, UnicodeDecodeError) as exc:
        raise _corrupt(processed, split, f"{path.name}: {exc}") from exc


def _read_uint8(path: Path, processed: Path, split: str) -> np.ndarray:
    """The uint8 array in ``path``, read into memory; any damage raises ``_corrupt``."""
    try:
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - numpy's header parser raises EOFError, ValueError,
        # OSError, SyntaxError, tokenize.TokenError... for a damaged file; every one means the same.
        raise _corrupt(processed, split, f"{path.name}: {reason(exc)}") from exc
    if not isinstance(mapped, np.ndarray):   # an .npz archive under an .npy name
        mapped.close()
        raise _corrupt(processed, split, f"{path.name} is not a single .npy array")
    if mapped.dtype != np.uint8:
        raise _corrupt(processed, split, f"{path.name} holds {mapped.dtype}, not uint8")
    return np.array(mapped)


def load_split(processed: Path, split: str, num_classes: int = len(CLASSES), ignore_index: int = VOID) -> Split:
    """The packed ``split`` under ``processed``; labels must lie in ``[0, num_classes)`` or be ``ignore_index``."""
    processed = Path(processed)
    paths = _paths(processed, split)
    names = _names(paths[2], processed, split)
    if not names:
        raise SegreproError(f"split {split} under {processed} is empty; {FIX}")
    images, labels = (_read_uint8(p, processed, split) for p in paths[:2])
    if images.ndim != 4 or images.shape[3] != 3:
        raise _corrupt(processed, split, f"images have shape {images.shape}, not (N, H, W, 3)")
    if labels.shape != images.shape[:3] or len(names) != len(images):
        raise SegreproError(f"packed split {split} under {processed} has inconsistent shapes "
                            f"{images.shape}, {labels.shape}, {len(names)} names; {FIX}")
    top = int(labels.max())
    if top >= num_classes and (top != ignore_index or ignore_index > num_classes):
        counts = np.bincount(labels.ravel(), minlength=256)
        bad = [v for v in range(num_classes, 256) if counts[v] and v != ignore_index]
        if bad:
            raise _corrupt(processed, split, f"label values {bad[:10]} outside classes 0..{num_classes - 1} "
                                             f"and void {ignore_index}")
    return Split(torch.from_numpy(images), torch.from_numpy(labels), names)


def split_length(processed: Path, split: str) -> int:
    """Number of images in a packed split, from its names file (no array is loaded)."""
    processed = Path(processed)
    path = processed / f"{split}_names.txt"
    if not path.is_file():
        raise SegreproError(f"{path} is missing; run `dvc repro preprocess` first")
    return len(_names(path, processed, split))
