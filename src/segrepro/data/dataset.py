"""Packed splits (written by ``preprocess``) loaded as tensors."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from segrepro.errors import SegreproError


@dataclass(frozen=True)
class Split:
    images: torch.Tensor  # (N, H, W, 3) uint8
    labels: torch.Tensor  # (N, H, W) uint8
    names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.names)


def load_split(processed: Path, split: str) -> Split:
    processed = Path(processed)
    paths = [processed / f"{split}_{part}" for part in ("images.npy", "labels.npy", "names.txt")]
    for path in paths:
        if not path.is_file():
            raise SegreproError(f"{path} is missing; run `dvc repro preprocess` first")
    try:
        images, labels = (np.load(p, allow_pickle=False) for p in paths[:2])
    except (ValueError, OSError) as exc:
        raise SegreproError(f"packed split {split} under {processed} is corrupt ({exc}); "
                            "rerun `dvc repro preprocess`") from exc
    names = tuple(paths[2].read_text().split())
    if images.ndim != 4 or labels.shape != images.shape[:3] or len(names) != len(images):
        raise SegreproError(f"packed split {split} under {processed} has inconsistent shapes "
                            f"{images.shape}, {labels.shape}, {len(names)} names; rerun preprocess")
    if len(names) == 0:
        raise SegreproError(f"split {split} under {processed} is empty")
    return Split(torch.from_numpy(images), torch.from_numpy(labels), names)


def split_length(processed: Path, split: str) -> int:
    """Number of images in a packed split, from its names file (no array is loaded)."""
    path = Path(processed) / f"{split}_names.txt"
    if not path.is_file():
        raise SegreproError(f"{path} is missing; run `dvc repro preprocess` first")
    return len(path.read_text().split())
