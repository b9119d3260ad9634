"""Per-image statistics of every accuracy and boundary metric, and their dataset reducers.

The evaluate stage stores the per-image statistics (so the bootstrap can
resample test images) and the dataset values computed from them by the same
reducers the bootstrap uses — one definition for both:

* ``confusion`` (N, C, C) → mIoU;
* ``bf`` (N, C, T) per-image per-class boundary F at each pixel tolerance →
  mean over images, then over classes (absent class = F 1, the Gated-SCNN /
  DAVIS convention);
* ``trimap`` (N, W, C, C) confusions inside the band of width w around the
  ground-truth boundaries → mIoU per width;
* ``biou`` (N, 2, C) Boundary IoU intersections and unions → mean over
  classes of Σ inter / Σ union.

All reducers take image-averaged statistics with any leading batch
dimensions (``stats.paired_bootstrap_ci``'s contract). Void pixels are
excluded the same way everywhere (see ``metrics.boundary``).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from segrepro.metrics import boundary
from segrepro.metrics.confusion import per_image_confusion

Reducer = Callable[[np.ndarray], np.ndarray]


def _miou(conf: np.ndarray) -> np.ndarray:
    return boundary.trimap_miou(torch.from_numpy(conf)).numpy()  # mIoU of (..., C, C) confusions


def _bf(t: int) -> Reducer:
    return lambda f: boundary.reduce_boundary_f(torch.from_numpy(f)).numpy()[..., t]


def _trimap(w: int) -> Reducer:
    return lambda conf: _miou(conf)[..., w]


def _biou(counts: np.ndarray) -> np.ndarray:
    c = torch.from_numpy(counts)
    return boundary.reduce_boundary_iou(c[..., 0, :], c[..., 1, :]).numpy()


def metric_reducers(tolerances: Sequence[int], widths: Sequence[int]) -> dict[str, tuple[str, Reducer]]:
    """metric name → (per-image statistic it reads, reducer)."""
    metrics: dict[str, tuple[str, Reducer]] = {"miou": ("confusion", _miou)}
    metrics.update({f"bf@{d}px": ("bf", _bf(i)) for i, d in enumerate(tolerances)})
    metrics.update({f"trimap@{w}px": ("trimap", _trimap(i)) for i, w in enumerate(widths)})
    metrics["boundary_iou"] = ("biou", _biou)
    return metrics


def per_image_stats(pred: torch.Tensor, gt: torch.Tensor, num_classes: int, ignore_index: int,
                    tolerances: Sequence[int], widths: Sequence[int], biou_ratio: float,
                    batch: int = 32) -> dict[str, np.ndarray]:
    """All per-image statistics of (N, H, W) predictions, computed ``batch`` images at a time."""
    parts: dict[str, list[np.ndarray]] = {"confusion": [], "bf": [], "trimap": [], "biou": []}
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
    return {name: float(reducer(stats[key].astype(np.float64).mean(0)))
            for name, (key, reducer) in metric_reducers(tolerances, widths).items()}
