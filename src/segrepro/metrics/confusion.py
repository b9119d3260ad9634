"""Confusion-matrix metrics: mIoU, per-class IoU, pixel and mean accuracy.

The matrix is accumulated over the whole split (dataset-level, as in
MMSegmentation and the Cityscapes scripts); void pixels are dropped before
counting. Rows are ground truth, columns prediction. A class that never
occurs in the ground truth nor the prediction has an undefined IoU (NaN)
and is left out of the mean.
"""
from __future__ import annotations

import torch


def confusion_matrix(pred: torch.Tensor, gt: torch.Tensor, num_classes: int,
                     ignore_index: int) -> torch.Tensor:
    """(…) int preds and labels → (C, C) int64 counts, void excluded."""
    keep = gt != ignore_index
    index = gt[keep].long() * num_classes + pred[keep].long()
    return torch.bincount(index, minlength=num_classes * num_classes).view(num_classes, num_classes)  # (C, C)


def per_image_confusion(pred: torch.Tensor, gt: torch.Tensor, num_classes: int,
                        ignore_index: int) -> torch.Tensor:
    """(N, H, W) → (N, C, C): one matrix per image, for bootstrap statistics."""
    n = pred.shape[0]
    keep = (gt != ignore_index).reshape(n, -1)  # (N, HW)
    index = gt.reshape(n, -1).long() * num_classes + pred.reshape(n, -1).long()  # (N, HW)
    index = index + (torch.arange(n, device=pred.device) * num_classes * num_classes)[:, None]
    counts = torch.bincount(index[keep], minlength=n * num_classes * num_classes)
    return counts.view(n, num_classes, num_classes)  # (N, C, C)


def scores(confusion: torch.Tensor) -> dict[str, object]:
    """mIoU, per-class IoU, pixel accuracy and mean class accuracy of a (C, C) matrix."""
    conf = confusion.double()
    tp = conf.diag()
    gt_total, pred_total = conf.sum(1), conf.sum(0)
    union = gt_total + pred_total - tp
    iou = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))
    acc = torch.where(gt_total > 0, tp / gt_total.clamp(min=1), torch.full_like(tp, float("nan")))
    return {
        "miou": float(iou.nanmean()),
        "iou": [float(v) for v in iou],
        "pixel_acc": float(tp.sum() / conf.sum().clamp(min=1)),
        "mean_acc": float(acc.nanmean()),
    }
