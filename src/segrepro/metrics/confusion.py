"""Confusion-matrix metrics: (m)IoU, pixel and mean accuracy.

The matrix is accumulated over the whole split (dataset-level, as in
MMSegmentation and the Cityscapes scripts); void pixels are dropped before
counting. Rows are ground truth, columns prediction. A class that never
occurs in the ground truth nor the prediction has an undefined IoU (NaN)
and is left out of the mean.

``iou`` is the one IoU implementation: the test mIoU, the trimap mIoU (the
same formula on band-restricted confusions) and the validation mIoU all
call it, on any leading batch dimensions (the interval's replicates).
"""
from __future__ import annotations

import torch

from segrepro.errors import SegreproError


def confusion_matrix(pred: torch.Tensor, gt: torch.Tensor, num_classes: int,
                     ignore_index: int) -> torch.Tensor:
    """(…) int preds and labels → (C, C) int64 counts, void excluded."""
    keep = gt != ignore_index
    index = gt[keep].long() * num_classes + pred[keep].long()
    return torch.bincount(index, minlength=num_classes * num_classes).view(num_classes, num_classes)  # (C, C)


def per_image_confusion(pred: torch.Tensor, gt: torch.Tensor, num_classes: int,
                        ignore_index: int) -> torch.Tensor:
    """(N, H, W) → (N, C, C): one matrix per image, for the interval's replicates."""
    n = pred.shape[0]
    keep = (gt != ignore_index).reshape(n, -1)  # (N, HW)
    index = gt.reshape(n, -1).long() * num_classes + pred.reshape(n, -1).long()  # (N, HW)
    index = index + (torch.arange(n, device=pred.device) * num_classes * num_classes)[:, None]
    counts = torch.bincount(index[keep], minlength=n * num_classes * num_classes)
    return counts.view(n, num_classes, num_classes)  # (N, C, C)


def mean_ratio(num: torch.Tensor, den: torch.Tensor, per_class: bool = False) -> torch.Tensor:
    """num / den per class (..., C) in float64, NaN where den == 0; then the NaN-skipping class mean."""
    num, den = num.double(), den.double()
    ratio = torch.where(den > 0, num / torch.where(den > 0, den, 1.0), float("nan"))
    return ratio if per_class else torch.nanmean(ratio, dim=-1)


def iou(confusion: torch.Tensor, per_class: bool = False) -> torch.Tensor:
    """mIoU of (..., C, C) confusions, (...) float64; per class (..., C) with ``per_class``.

    IoU_c = TP / (TP + FP + FN); a class with zero union is NaN and left out
    of the mean. Counts or image-averaged counts alike (the ratio is scale-free).
    """
    if not isinstance(confusion, torch.Tensor) or confusion.dim() < 2 \
            or confusion.shape[-1] != confusion.shape[-2]:
        shape = tuple(confusion.shape) if isinstance(confusion, torch.Tensor) else type(confusion).__name__
        raise SegreproError(f"confusion must be (..., C, C), got {shape}")
    tp = torch.diagonal(confusion, dim1=-2, dim2=-1)  # (..., C)
    return mean_ratio(tp, confusion.sum(dim=-1) + confusion.sum(dim=-2) - tp, per_class)


def class_scores(confusion: torch.Tensor) -> dict[str, object]:
    """Per-class IoU, pixel accuracy and mean class accuracy of a (C, C) count matrix.

    Not the mIoU: the evaluate stage takes it from ``metrics.registry`` (the
    reducer the interval uses), so it is computed once.
    """
    conf = confusion.double()
    tp = conf.diag()
    gt_total = conf.sum(1)
    acc = torch.where(gt_total > 0, tp / gt_total.clamp(min=1), torch.full_like(tp, float("nan")))
    return {
        "iou": [float(v) for v in iou(confusion, per_class=True)],
        "pixel_acc": float(tp.sum() / conf.sum().clamp(min=1)),
        "mean_acc": float(acc.nanmean()),
    }


def scores(confusion: torch.Tensor) -> dict[str, object]:
    """mIoU and :func:`class_scores` of a (C, C) count matrix (training's validation mIoU)."""
    return {"miou": float(iou(confusion)), **class_scores(confusion)}
