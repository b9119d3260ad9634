"""Median-frequency class balancing (Eigen & Fergus, ICCV 2015; used by SegNet on CamVid).

For class ``c``: ``freq(c) = pixels of c / total pixels of the images in which c
appears`` and ``weight(c) = median_k freq(k) / freq(c)``, counted on the
training split only (void excluded from both counts). The weights are a
property of the data, so ``preprocess`` computes them and records them in
``card.json``; training reads them from there.

Choice where the definition is silent: a class with no training pixel would
get an infinite weight; it gets the largest finite weight instead, with a
warning naming the class (it cannot contribute to the loss anyway, since no
target pixel carries it).
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

# train.class_weighting → (weight table in card.json, exponent applied to it); None: unweighted.
# The square root softens median-frequency balancing (on CamVid's training split the largest/smallest
# weight ratio goes from ~60 to ~8). It is derived at training time, not stored, because it is a
# choice of the loss; the table it starts from is the property of the data.
WEIGHTING_SCHEMES: dict[str, tuple[str, float] | None] = {
    "none": None,
    "median_frequency": ("median_frequency", 1.0),
    "sqrt_median_frequency": ("median_frequency", 0.5),
}


def median_frequency_weights(labels: np.ndarray, class_names: Sequence[str], ignore_index: int) -> list[float]:
    """(N, H, W) uint8 training labels → one weight per class, in class order."""
    k = len(class_names)
    pixels = np.zeros(k, np.float64)      # pixels of class c over the split
    present = np.zeros(k, np.float64)     # non-void pixels of the images where c appears
    for label in labels:
        counts = np.bincount(label.ravel(), minlength=max(k, ignore_index + 1))[:k].astype(np.float64)
        pixels += counts
        present += (counts > 0) * counts.sum()
    seen = pixels > 0
    if not seen.any():
        raise ValueError("the training labels hold no class pixel at all; cannot balance classes")
    freq = np.where(seen, pixels / np.where(present > 0, present, 1.0), np.nan)
    weights = np.nanmedian(freq) / freq
    if not seen.all():
        missing = [name for name, s in zip(class_names, seen) if not s]
        warnings.warn(f"classes with no training pixel get the largest finite weight: {', '.join(missing)}",
                      stacklevel=2)
        weights = np.where(seen, weights, np.nanmax(weights))
    return [float(w) for w in weights]
