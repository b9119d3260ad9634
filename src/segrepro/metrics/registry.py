"""Every quality metric in one list: name, per-image statistic, reducer, report label.

Evaluate, compare, the audit and the report all iterate :func:`metrics`; a
metric is named, reduced and labelled here and nowhere else.

Per-image statistics (the evaluate stage stores them, so the interval can
leave batches of test images out; :data:`STATISTICS`):

* ``confusion`` (N, C, C) → mIoU (``metrics.confusion.iou``);
* ``bf`` (N, C, T) per-image per-class boundary F at each pixel tolerance →
  mean over images, then over classes (absent class = F 1, the Gated-SCNN /
  DAVIS convention);
* ``trimap`` (N, W, C, C) confusions inside the band of width w around the
  ground-truth boundaries → mIoU per width (the same ``iou``);
* ``biou`` (N, 2, C) Boundary IoU intersections and unions → mean over
  classes of Σ inter / Σ union.

Every reducer takes image-averaged statistics with any leading batch
dimensions (``stats.paired_interval``'s contract); the dataset value
written by evaluate is the same reducer applied to the image mean, so the
point estimate and the interval use one definition. Void pixels are
excluded the same way everywhere (see ``metrics.boundary``).

Names: ``miou``, ``bf@<t>px``, ``trimap@<w>px``, ``boundary_iou`` (keys of
the metrics JSON, ``comparison.json`` and the pins). :data:`CONFUSION_SCORES`
(pixel and mean class accuracy) are dataset-level scores of the summed
confusion only: pinned and shown, without an interval.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from segrepro.metrics import boundary
from segrepro.metrics.confusion import iou, per_image_confusion

Reducer = Callable[[np.ndarray], np.ndarray]

STATISTICS = ("confusion", "bf", "trimap", "biou")
CONFUSION_SCORES = ("pixel_acc", "mean_acc")
_NAME = re.compile(r"^(bf|trimap)@(\d+)px$")
_LABELS = {"miou": "mIoU", "bf": "BF@{px}px", "trimap": "trimap mIoU@{px}px", "boundary_iou": "Boundary IoU"}


@dataclass(frozen=True)
class Metric:
    """One quality metric: ``reduce(stats[statistic] image-mean)`` is its dataset value."""

    name: str
    statistic: str
    reduce: Reducer
    family: str               # miou | bf | trimap | boundary_iou
    px: int | None = None     # tolerance (bf) or band half-width (trimap)

    @property
    def label(self) -> str:
        return _LABELS[self.family].format(px=self.px)


def _miou(conf: np.ndarray) -> np.ndarray:
    return iou(torch.from_numpy(conf)).numpy()  # (..., C, C) -> (...)


def _bf(t: int) -> Reducer:
    return lambda f: boundary.reduce_boundary_f(torch.from_numpy(f)).numpy()[..., t]


def _trimap(w: int) -> Reducer:
    return lambda conf: _miou(conf)[..., w]


def _biou(counts: np.ndarray) -> np.ndarray:
    c = torch.from_numpy(counts)
    return boundary.reduce_boundary_iou(c[..., 0, :], c[..., 1, :]).numpy()


def metric_name(family: str, px: int | None = None) -> str:
    return family if px is None else f"{family}@{px}px"


def metrics(tolerances: Sequence[int], widths: Sequence[int]) -> list[Metric]:
    """The quality metrics for these BF tolerances and trimap widths, in report order."""
    out = [Metric("miou", "confusion", _miou, "miou")]
    out += [Metric(metric_name("bf", d), "bf", _bf(i), "bf", d) for i, d in enumerate(tolerances)]
    out += [Metric(metric_name("trimap", w), "trimap", _trimap(i), "trimap", w) for i, w in enumerate(widths)]
    out.append(Metric("boundary_iou", "biou", _biou, "boundary_iou"))
    return out


def parse(name: str) -> tuple[str, int | None] | None:
    """(family, px) of a quality-metric name; None for any other key."""
    if name in ("miou", "boundary_iou"):
        return name, None
    match = _NAME.match(name)
    return (match.group(1), int(match.group(2))) if match else None


def label(name: str) -> str:
    """Report label of a quality-metric name (``bf@2px`` → ``BF@2px``)."""
    parsed = parse(name)
    return _LABELS[parsed[0]].format(px=parsed[1]) if parsed else name


MAIN_TRIMAP_WIDTH = 4      # px: close to the Boundary IoU band at 180×240 (the README's headline)
HEADLINE_BF_TOLERANCE = 2  # px: the smallest tolerance >= this (else the largest) stands for BF


def _pixels(names: Sequence[str], family: str) -> list[int]:
    return sorted(parsed[1] for name in names if (parsed := parse(name)) and parsed[0] == family)


def main_trimap(names: Sequence[str]) -> str | None:
    """The trimap metric the report and the summary show: 4 px when computed, else the narrowest
    (a choice, no paper fixes it); None without trimap metrics."""
    widths = _pixels(names, "trimap")
    if not widths:
        return None
    return metric_name("trimap", MAIN_TRIMAP_WIDTH if MAIN_TRIMAP_WIDTH in widths else widths[0])


def headline_bf(names: Sequence[str]) -> str | None:
    """The one BF that stands for boundary F (claims, summary): 2 px, else the smallest tolerance
    above it, else the largest; None without BF metrics."""
    tolerances = _pixels(names, "bf")
    if not tolerances:
        return None
    return metric_name("bf", next((t for t in tolerances if t >= HEADLINE_BF_TOLERANCE), tolerances[-1]))


def headline(names: Sequence[str]) -> list[str]:
    """mIoU, the headline BF, the main trimap width and Boundary IoU, of those in ``names``."""
    picked = ["miou" if "miou" in names else None, headline_bf(names), main_trimap(names),
              "boundary_iou" if "boundary_iou" in names else None]
    return [name for name in picked if name]


def pinned_names(result: dict) -> list[str]:
    """The quality metrics and confusion scores a results dict holds, sorted (what the audit pins)."""
    return sorted(k for k in result if parse(k) is not None or k in CONFUSION_SCORES)


DESCRIPTION = ("bf_tolerances_px", "trimap_widths_px", "classes")


def describe(tolerances: Sequence[int], widths: Sequence[int], classes: Sequence[str]) -> dict[str, np.ndarray]:
    """What a per-image statistics file stores beside the statistics, so that its columns can be named
    without the parameters that made it: the BF tolerances, the trimap widths, the class names."""
    return {"bf_tolerances_px": np.asarray(tolerances, np.int64), "trimap_widths_px": np.asarray(widths, np.int64),
            "classes": np.asarray(classes, dtype=str)}


def per_image_stats(pred: torch.Tensor, gt: torch.Tensor, num_classes: int, ignore_index: int,
                    tolerances: Sequence[int], widths: Sequence[int], biou_ratio: float,
                    batch: int = 32) -> dict[str, np.ndarray]:
    """Every statistic of :data:`STATISTICS` for (N, H, W) predictions, ``batch`` images at a time."""
    parts: dict[str, list[np.ndarray]] = {key: [] for key in STATISTICS}
    kw = {"num_classes": num_classes, "ignore_index": ignore_index}
    for start in range(0, len(pred), batch):
        p, g = pred[start:start + batch].long(), gt[start:start + batch].long()
        parts["confusion"].append(per_image_confusion(p, g, num_classes, ignore_index).cpu().numpy())
        parts["bf"].append(boundary.boundary_f_score(p, g, tolerances=list(tolerances), **kw).f.cpu().numpy())
        parts["trimap"].append(boundary.trimap_confusion(p, g, widths=list(widths), **kw).cpu().numpy())
        inter, union = boundary.boundary_iou_counts(p, g, dilation_ratio=biou_ratio, **kw)
        parts["biou"].append(torch.stack([inter, union], 1).cpu().numpy())  # (n, 2, C)
    return {k: np.concatenate(v) for k, v in parts.items()}


def summarize(stats: dict[str, np.ndarray], tolerances: Sequence[int], widths: Sequence[int]) -> dict[str, float]:
    """Dataset value of every metric: its reducer applied to the image mean."""
    return {m.name: float(m.reduce(stats[m.statistic].astype(np.float64).mean(0)))
            for m in metrics(tolerances, widths)}
