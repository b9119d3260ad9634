"""Median-frequency class balancing (Eigen & Fergus, ICCV 2015; used by SegNet on CamVid).

For class ``c``: ``freq(c) = pixels of c / total pixels of the images in which c
appears`` and ``weight(c) = median_k freq(k) / freq(c)``, counted on the
training split only (void excluded from both counts). The weights are a
property of the data, so ``preprocess`` computes them and records them in
``card.json``; training reads them from there through ``card_weights``, which
refuses a table that is not one finite positive number per class (NaN, an
infinite, zero or negative weight would silently bend or break the loss).

Choice where the definition is silent: a class with no training pixel would
get an infinite weight; it gets the largest finite weight instead, with a
warning naming the class (it cannot contribute to the loss anyway, since no
target pixel carries it).
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from segrepro.errors import SegreproError

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
        raise SegreproError(f"the training labels hold no class pixel at all (every pixel is void, "
                            f"{ignore_index}); cannot balance classes; rerun `segrepro download`")
    freq = np.where(seen, pixels / np.where(present > 0, present, 1.0), np.nan)
    weights = np.nanmedian(freq) / freq
    if not seen.all():
        missing = [name for name, s in zip(class_names, seen) if not s]
        warnings.warn(f"classes with no training pixel get the largest finite weight: {', '.join(missing)}",
                      stacklevel=2)
        weights = np.where(seen, weights, np.nanmax(weights))
    return [float(w) for w in weights]


def _kind(value: object) -> str:
    """What a parsed JSON value is, in words (never the whole value: it may be long)."""
    if value is None:
        return "null"
    kinds = {bool: "a boolean", str: "a string", list: "a list", dict: "a table"}
    return next((name for t, name in kinds.items() if isinstance(value, t)), "a number")


def _weight_problem(value: object) -> str | None:
    """Why ``value`` (parsed from JSON) is no usable class weight, or None when it is one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"not a number ({_kind(value)})"
    try:
        number = float(value)
    except OverflowError:          # a JSON integer beyond float range
        return "too large"
    if math.isnan(number):
        return "nan"
    if math.isinf(number):
        return f"infinite ({number})"
    if number < 0:
        return f"negative ({number})"
    if number == 0:
        return "zero"
    if number > float(np.finfo(np.float32).max):
        return f"too large ({number:g}; the loss weights are float32)"
    return None


def card_weights(card: object, table_name: str, class_names: Sequence[str], card_path: Path) -> list[float]:
    """The ``class_weights.<table_name>`` table of a parsed ``card.json``, in class order, validated."""
    fix = "rerun `dvc repro preprocess`"
    if not isinstance(card, dict):
        raise SegreproError(f"{card_path} holds {_kind(card)}, not the dataset card's table; {fix}")
    value, where = card, ""
    for key in ("class_weights", table_name):
        where = f"{where}.{key}" if where else key
        if not isinstance(value, dict) or key not in value:
            raise SegreproError(f"{card_path} holds no {table_name} class weights ({where} is missing); {fix}")
        value = value[key]
        if not isinstance(value, dict):
            raise SegreproError(f"{card_path} holds no {table_name} class weights ({where} is {_kind(value)}, "
                                f"not a table of class: weight); {fix}")
    table = value
    missing = [name for name in class_names if name not in table]
    extra = sorted(set(table) - set(class_names))
    if missing or extra:
        raise SegreproError(f"{card_path} {table_name} class weights do not match the classes (missing: "
                            f"{', '.join(missing) or '-'}; unknown: {', '.join(extra) or '-'}); {fix}")
    for name in class_names:
        problem = _weight_problem(table[name])
        if problem:
            raise SegreproError(f"{card_path} class weight for {name} is {problem}; "
                                f"a weight must be a finite positive number; {fix}")
    return [float(table[name]) for name in class_names]
