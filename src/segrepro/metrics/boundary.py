"""Boundary-quality metrics for semantic segmentation, vectorised over images and classes.

Definitions: ``docs/methods.md`` §5. Boundary F-score (§5.1): Martin et al., TPAMI 2004;
Perazzi et al., CVPR 2016 (DAVIS ``seg2bmap``); per class as Takikawa et al., "Gated-SCNN",
ICCV 2019. Trimap mIoU (§5.2): Kohli et al., IJCV 2009; Chen et al., "DeepLab", ICLR 2015.
Boundary IoU (§5.3): Cheng, Girshick, Dollar, Berg, Kirillov, CVPR 2021, arXiv:2103.16562.

Conventions. Inputs are integer label maps (N, H, W); gt in [0, C) or ``ignore_index``, pred
in [0, C); a pixel is *valid* iff gt != ignore_index. Void: each per-class mask is
``[label == c] & valid`` for pred and gt alike (§5.1 item 1); trimap ignores void pixels for
boundaries and counts. Distance is Euclidean: the disk of radius d is {dy² + dx² <= d²} (as
``skimage.morphology.disk``), so disk dilation of S = {p : min_s ||p - s||₂ <= d} =
``distance_transform_edt(~S) <= d``; outside the image counts as 0. Boundary IoU bands use
the reference's 3×3 erosions (Chebyshev distance).

Vectorisation (no loop over images or classes): the F-score bit-packs the C class masks into
ceil(C/8) uint8 words per pixel (class c = bit c % 8 of word c // 8), and its boundary and
dilation operators are bitwise, so they act on all classes at once exactly as on bool masks.
Trimap and Boundary IoU test each pixel for its own class on the label map, and run their
morphology on 8 images per byte.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch

from segrepro.errors import SegreproError
from segrepro.metrics.bitpack import (_bit_counts, _histogram, _pack_classes,
                                       _pack_images, _unpack_images)
from segrepro.metrics.confusion import mean_ratio
from segrepro.metrics.morphology import _and_window, _desc, disk_dilation, seg2bmap
from segrepro.params_ranges import MAX_TRIMAP_WIDTHS


class BoundaryFScore(NamedTuple):
    """Per-image, per-class, per-tolerance scores, each (N, C, T) float64."""

    f: torch.Tensor
    precision: torch.Tensor
    recall: torch.Tensor


def _check_labels(pred: torch.Tensor, gt: torch.Tensor, num_classes: int,
                  ignore_index: int) -> torch.Tensor:
    """Validate (N, H, W) label maps; return the valid mask gt != ignore_index (N, H, W)."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise SegreproError(f"num_classes must be an int >= 1, got {num_classes!r}")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int) \
            or 0 <= ignore_index < num_classes:
        raise SegreproError(f"ignore_index must be an int outside [0, {num_classes}) (a class "
                            f"id cannot be void), got {ignore_index!r}")
    for name, x in (("pred", pred), ("gt", gt)):
        if not isinstance(x, torch.Tensor) or x.dtype == torch.bool \
                or x.dtype.is_floating_point or x.dtype.is_complex:
            raise SegreproError(f"{name} must be an integer tensor of class ids (argmax labels, "
                                f"not scores), got {getattr(x, 'dtype', type(x).__name__)}")
        if x.dim() != 3 or min(x.shape) < 1:
            raise SegreproError(f"{name} must have shape (N, H, W) with N, H, W >= 1, got "
                                f"{tuple(x.shape)}; add a batch axis with x[None] for one image")
    if pred.shape != gt.shape or pred.device != gt.device:
        raise SegreproError(f"pred and gt differ in shape or device: {tuple(pred.shape)} on "
                            f"{pred.device} vs {tuple(gt.shape)} on {gt.device}")
    valid = gt != ignore_index
    for name, x in (("gt", gt), ("pred", pred)):
        lo, hi = torch.aminmax(x)
        if name == "gt" and not (0 <= lo and hi < num_classes):  # ignore present: exclude it
            lo, hi = torch.aminmax(gt * valid)
        if lo < 0 or hi >= num_classes:
            void = f" and is not ignore_index={ignore_index}" if name == "gt" else ""
            raise SegreproError(f"{name} holds {int(lo if lo < 0 else hi)}, outside "
                                f"[0, {num_classes}){void}")
    return valid


def _check_ints(name: str, values: Sequence[int], minimum: int) -> list[int]:
    if isinstance(values, (int, str)) or len(values) == 0 or any(
            isinstance(v, bool) or not isinstance(v, int) or v < minimum for v in values):
        raise SegreproError(f"{name} must be a non-empty list of ints >= {minimum} (absolute "
                            f"pixels), got {values!r}; convert a relative bound_th < 1 to ceil(bound_th * "
                            "sqrt(H**2 + W**2)) px (methods.md §5.1)")
    return list(values)


def boundary_f_score(pred: torch.Tensor, gt: torch.Tensor, *, num_classes: int,
                     ignore_index: int, tolerances: Sequence[int]) -> BoundaryFScore:
    """Per-image, per-class F-score at absolute pixel tolerances, (N, C, T) float64 (§5.1).

    bP, bG = seg2bmap of [pred==c] & valid, [gt==c] & valid; P = |bP ∩ dil_d(bG)| / |bP|,
    R = |bG ∩ dil_d(bP)| / |bG|, F = 2PR / (P + R), 0 if P + R = 0. Degenerate (§5.1 item 5):
    no boundary in either map (class absent from both, or filling the image in both):
    P = R = F = 1; pred boundary only: P = 0, R = 1; GT boundary only: P = 1, R = 0.
    """
    valid = _check_labels(pred, gt, num_classes, ignore_index)
    tols = _check_ints("tolerances", tolerances, 0)
    bp = seg2bmap(_pack_classes(pred, valid, num_classes))  # (N, K, H, W), K = ceil(C/8)
    bg = seg2bmap(_pack_classes(gt, valid, num_classes))  # (N, K, H, W)
    at_p = bp.reshape(-1).nonzero().squeeze(1)  # flat positions holding a pred boundary bit
    at_g = bg.reshape(-1).nonzero().squeeze(1)
    n_p = _bit_counts(bp, at_p, num_classes).double()  # (N, C)
    n_g = _bit_counts(bg, at_g, num_classes).double()  # (N, C)
    precisions, recalls = [], []
    for d in tols:
        match_p = _bit_counts(bp & disk_dilation(bg, d), at_p, num_classes).double()  # (N, C)
        match_g = _bit_counts(bg & disk_dilation(bp, d), at_g, num_classes).double()  # (N, C)
        # n_p == 0 -> P = 1 and n_g == 0 -> R = 1; a non-empty map facing an empty one has no
        # matches, which gives every degenerate case of the reference.
        precisions.append(torch.where(n_p > 0, match_p / n_p.clamp(min=1), 1.0))
        recalls.append(torch.where(n_g > 0, match_g / n_g.clamp(min=1), 1.0))
    precision = torch.stack(precisions, dim=-1)  # (N, C, T)
    recall = torch.stack(recalls, dim=-1)  # (N, C, T)
    total = precision + recall
    f = torch.where(total > 0, 2 * precision * recall / torch.where(total > 0, total, 1.0), 0.0)
    return BoundaryFScore(f=f, precision=precision, recall=recall)


def reduce_boundary_f(f_mean: torch.Tensor) -> torch.Tensor:
    """Dataset BF, mean over classes of image-averaged F: (..., C, T) -> (..., T).

    Usage: ``reduce_boundary_f(f.mean(dim=0))`` (``f.mean(dim=0)`` is the per-class BF).
    Absent-class convention (§5.1 item 6, GSCNN/DAVIS code): every image counts for every
    class, so an image where c is absent from pred and gt adds F = 1 to class c's mean.
    """
    if not isinstance(f_mean, torch.Tensor) or f_mean.dim() < 2:
        raise SegreproError(f"f_mean must be (..., C, T), got {_desc(f_mean)}")
    return f_mean.mean(dim=-2)


def trimap_boundary(gt: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """GT boundary set B of the trimap metric (§5.2): (N, H, W) labels -> (N, H, W) bool.

    p is in B iff gt(p) != ignore and a 4-neighbour q inside the image has gt(q) != ignore
    and gt(q) != gt(p): both sides of a label change are marked; changes to or from ignore
    pixels and the image border make no boundary.
    """
    if not isinstance(gt, torch.Tensor) or gt.dim() != 3 or gt.dtype.is_floating_point:
        raise SegreproError(f"gt must be an integer (N, H, W) tensor, got {_desc(gt)}")
    valid = gt != ignore_index
    horiz = (gt[:, :, 1:] != gt[:, :, :-1]) & valid[:, :, 1:] & valid[:, :, :-1]  # (N, H, W-1)
    vert = (gt[:, 1:, :] != gt[:, :-1, :]) & valid[:, 1:, :] & valid[:, :-1, :]  # (N, H-1, W)
    b = torch.zeros_like(valid)
    b[:, :, 1:] |= horiz
    b[:, :, :-1] |= horiz
    b[:, 1:, :] |= vert
    b[:, :-1, :] |= vert
    return b


def trimap_confusion(pred: torch.Tensor, gt: torch.Tensor, *, num_classes: int,
                     ignore_index: int, widths: Sequence[int]) -> torch.Tensor:
    """Per-image confusion matrices inside trimap bands, (N, W, C, C) int64 (§5.2).

    T_w = {p : dist(p, B) <= w} (Euclidean; disk dilation of B = :func:`trimap_boundary`,
    T_0 = B); counted pixels T_w ∩ valid; [n, i, g, p] = pixels of image n in T_widths[i]
    with gt g, prediction p. Dataset value: ``confusion.iou(conf.sum(dim=0))``.
    """
    valid = _check_labels(pred, gt, num_classes, ignore_index)
    ws = _check_ints("widths", widths, 0)
    n, nw = gt.shape[0], len(ws)
    if nw > MAX_TRIMAP_WIDTHS:
        raise SegreproError(f"at most {MAX_TRIMAP_WIDTHS} widths per call, got {nw}")
    order = sorted(range(nw), key=lambda i: ws[i])
    # Bands are nested: a valid pixel lies in the bands of the `inside` largest widths. Count
    # it once at its smallest band (level nw - inside; level nw = none), then cumulate.
    inside = torch.zeros_like(gt, dtype=torch.uint8)
    packed = _pack_images(trimap_boundary(gt, ignore_index))  # (ceil(N/8), H, W)
    for i in order:
        inside += _unpack_images(disk_dilation(packed, ws[i]), n)
    level = nw - inside * valid.view(torch.uint8)  # ignore pixels: level nw
    hist = _histogram(gt, pred, level, nw + 1, num_classes)[:, :nw].cumsum(dim=1)
    back = torch.empty(nw, dtype=torch.long)
    back[torch.tensor(order)] = torch.arange(nw)  # rank of each requested width in `order`
    return hist[:, back.to(gt.device)]  # (N, levels, C, C) -> (N, W, C, C)


def boundary_iou_dilation(height: int, width: int, dilation_ratio: float = 0.02) -> int:
    """Band width d = max(1, round(ratio · sqrt(H² + W²))), as the Boundary IoU API (§5.3)."""
    if isinstance(dilation_ratio, bool) or not dilation_ratio > 0:
        raise SegreproError(f"dilation_ratio must be > 0, got {dilation_ratio!r}")
    return max(1, int(round(dilation_ratio * math.sqrt(height ** 2 + width ** 2))))


def _label_band(labels: torch.Tensor, valid: torch.Tensor, d: int) -> torch.Tensor:
    """(N, H, W) bool: p is in the inner band of its own class mask [labels == c] & valid.

    Valid p survives the (2d+1)² erosion iff its window lies in the image and all adjacent
    pairs in it are valid and equal: cols x-d..x+d constant in each row y-d..y+d, and col x
    constant over those rows."""
    same_h = torch.zeros_like(valid)  # [y, x]: pixels x and x+1 valid and equal
    same_h[:, :, :-1] = (labels[:, :, 1:] == labels[:, :, :-1]) & valid[:, :, 1:] & valid[:, :, :-1]
    same_v = torch.zeros_like(valid)  # [y, x]: pixels y and y+1 valid and equal
    same_v[:, :-1, :] = (labels[:, 1:, :] == labels[:, :-1, :]) & valid[:, 1:, :] & valid[:, :-1, :]
    same_h, same_v = _pack_images(same_h), _pack_images(same_v)  # (ceil(N/8), H, W)
    rows = _and_window(_and_window(same_h, -1, -d, d - 1), -2, -d, d)
    inner = _unpack_images(rows & _and_window(same_v, -2, -d, d - 1), labels.shape[0])
    return valid & (inner == 0)


def boundary_iou_counts(pred: torch.Tensor, gt: torch.Tensor, *, num_classes: int,
                        ignore_index: int, dilation_ratio: float = 0.02,
                        dilation: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image, per-class Boundary IoU intersection and union, each (N, C) int64 (§5.3).

    G_c = [gt==c] & valid, P_c = [pred==c] & valid; inner band = mask minus its d-fold 3×3
    erosion after a 1-px zero pad (Cheng et al.), d = ``dilation`` or
    :func:`boundary_iou_dilation` (12 px at 360×480). Bands lie inside the zeroed masks, so
    void pixels are never counted (a band does run along a void edge). Returns |G_d ∩ P_d|,
    |G_d ∪ P_d|; dataset value: ``reduce_boundary_iou(inter.sum(0), union.sum(0))``.
    """
    valid = _check_labels(pred, gt, num_classes, ignore_index)
    d = boundary_iou_dilation(gt.shape[-2], gt.shape[-1], dilation_ratio) if dilation is None \
        else dilation
    if isinstance(d, bool) or not isinstance(d, int) or d < 1:
        raise SegreproError(f"dilation must be an int >= 1, got {d!r}")
    in_g, in_p = _label_band(gt, valid, d), _label_band(pred, valid, d)  # (N, H, W) each
    flags = in_g.view(torch.uint8) * 2 + in_p.view(torch.uint8)  # 0 at ignore pixels
    hist = _histogram(gt, pred, flags, 4, num_classes)  # (N, 2·G + P, C, C)
    size_g = hist[:, 2:].sum(dim=(1, 3))  # (N, C): |G_d| by gt class
    size_p = hist[:, 1::2].sum(dim=(1, 2))  # (N, C): |P_d| by pred class
    inter = torch.diagonal(hist[:, 3], dim1=-2, dim2=-1)  # (N, C): gt == pred, in both bands
    return inter, size_g + size_p - inter


def reduce_boundary_iou(intersection: torch.Tensor, union: torch.Tensor,
                        per_class: bool = False) -> torch.Tensor:
    """Dataset Boundary IoU: mean over classes of Σ inter / Σ union, from counts summed
    over images, (..., C) -> (...) float64. Classes with zero union (no band in any image)
    are left out (NaN per class with ``per_class``)."""
    if not isinstance(intersection, torch.Tensor) or not isinstance(union, torch.Tensor) \
            or intersection.shape != union.shape or intersection.dim() < 1:
        raise SegreproError("intersection and union must be tensors of one shape (..., C), "
                            f"got {_desc(intersection)} and {_desc(union)}")
    return mean_ratio(intersection, union, per_class)
