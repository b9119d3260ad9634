"""Plain references for the boundary metrics: one image and one class at a time, numpy and scipy.

Written from the definitions in docs/methods.md §5, independently of the vectorised torch code in
``segrepro.metrics.boundary``: boundary F with ``scipy.ndimage.binary_dilation`` by a Euclidean
disk (the GSCNN/DAVIS algorithm), trimap bands with ``distance_transform_edt``, Boundary IoU with
iterated 3×3 ``binary_erosion`` of the 1-px zero-padded mask. They are the oracle of
``tests/metrics/test_boundary.py`` and the baseline ``benchmarks/bench_boundary.py`` times the
vectorised code against, so each loop is kept to what the definition needs (no per-pixel Python).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage


def ref_disk(d: int) -> np.ndarray:
    """Pixels within Euclidean distance ``d`` of the centre."""
    yy, xx = np.mgrid[-d:d + 1, -d:d + 1]
    return yy ** 2 + xx ** 2 <= d ** 2


def ref_seg2bmap(mask: np.ndarray) -> np.ndarray:
    """Boundary iff the pixel differs from an existing right, bottom or bottom-right pixel (DAVIS)."""
    h, w = mask.shape
    b = np.zeros_like(mask)
    for dy, dx in ((0, 1), (1, 0), (1, 1)):
        b[:h - dy, :w - dx] |= mask[:h - dy, :w - dx] != mask[dy:, dx:]
    return b


def ref_boundary_f(pred: np.ndarray, gt: np.ndarray, c: int, ignore: int, tols: Sequence[int]) -> np.ndarray:
    """(3, N, C, T): F, precision and recall per image, class and tolerance (void masked out).

    An empty boundary on one side: P = 1, R = 0 (nothing predicted) or P = 0, R = 1 (nothing to
    find), so F = 0; both empty: P = R = F = 1.
    """
    disks = [ref_disk(d) for d in tols]
    out = np.zeros((3, len(gt), c, len(tols)))
    for n in range(len(gt)):
        valid = gt[n] != ignore
        for k in range(c):
            bp = ref_seg2bmap((pred[n] == k) & valid)
            bg = ref_seg2bmap((gt[n] == k) & valid)
            n_p, n_g = bp.sum(), bg.sum()
            for t, disk in enumerate(disks):
                if n_p == 0 or n_g == 0:
                    p, r = float(n_p == 0), float(n_g == 0)
                else:
                    p = (bp & ndimage.binary_dilation(bg, disk)).sum() / n_p
                    r = (bg & ndimage.binary_dilation(bp, disk)).sum() / n_g
                f = 0.0 if p + r == 0 else 2 * p * r / (p + r)
                out[:, n, k, t] = f, p, r
    return out


def ref_trimap_boundary(g: np.ndarray, ignore: int) -> np.ndarray:
    """Pixels with a 4-neighbour of another class, neither of the two void."""
    valid = g != ignore
    b = np.zeros(g.shape, dtype=bool)
    for sa, so in ((np.s_[:, :-1], np.s_[:, 1:]), (np.s_[:-1, :], np.s_[1:, :])):
        change = (g[sa] != g[so]) & valid[sa] & valid[so]
        b[sa] |= change
        b[so] |= change
    return b


def ref_trimap_confusion(pred: np.ndarray, gt: np.ndarray, c: int, ignore: int,
                         widths: Sequence[int]) -> np.ndarray:
    """(N, W, C, C) confusion (rows ground truth) of the non-void pixels within ``w`` of the boundary."""
    out = np.zeros((len(gt), len(widths), c, c), dtype=np.int64)
    for n in range(len(gt)):
        b = ref_trimap_boundary(gt[n], ignore)
        if not b.any():
            continue
        dist = ndimage.distance_transform_edt(~b)
        for i, w in enumerate(widths):
            sel = (dist <= w) & (gt[n] != ignore)
            key = gt[n][sel].astype(np.int64) * c + pred[n][sel]
            out[n, i] = np.bincount(key, minlength=c * c).reshape(c, c)
    return out


def ref_boundary_iou(pred: np.ndarray, gt: np.ndarray, c: int, ignore: int,
                     d: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, C) intersection and (N, C) union of the inner ``d``-px bands of prediction and ground truth."""
    inter = np.zeros((len(gt), c), dtype=np.int64)
    union = np.zeros_like(inter)
    for n in range(len(gt)):
        valid = gt[n] != ignore
        for k in range(c):
            bands = []
            for lab in (gt[n], pred[n]):
                m = (lab == k) & valid
                er = ndimage.binary_erosion(np.pad(m, 1), np.ones((3, 3), bool), iterations=d)
                bands.append(m & ~er[1:-1, 1:-1])
            inter[n, k] = (bands[0] & bands[1]).sum()
            union[n, k] = (bands[0] | bands[1]).sum()
    return inter, union
