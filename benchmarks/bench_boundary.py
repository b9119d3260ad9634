"""Speed of the vectorised boundary metrics against plain per-image, per-class references.

Data: the full CamVid test split (233 label maps, 360×480, 11 classes, void = 11) from the
mirror; predictions are the labels perturbed (shifted by up to 3 px, four blobs of random
classes, void replaced by random classes), seeded. Both sides get the same uint8 arrays.

References (defined here, written from docs/methods.md §5, one image and one class at a time):
boundary F with ``scipy.ndimage.binary_dilation`` and a disk (the GSCNN/DAVIS algorithm);
trimap bands with ``distance_transform_edt``; Boundary IoU with iterated 3×3
``binary_erosion`` on the 1-px zero-padded mask. Every value is checked for equality.

Usage::

    PYTHONPATH=src python benchmarks/bench_boundary.py            # CPU, 1 thread
    PYTHONPATH=src python benchmarks/bench_boundary.py --device cuda --ref-limit 20
    PYTHONPATH=src python benchmarks/bench_boundary.py --synthetic   # no mirror: not CamVid

``--threads 1`` (default) compares single-threaded code on both sides. ``--ref-limit K``
runs the references on the first K images only and extrapolates their time linearly
(marked in the table); values are then compared on those K images.
"""
from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from segrepro.metrics.boundary import (
    boundary_f_score, boundary_iou_counts, boundary_iou_dilation, trimap_confusion,
)

NUM_CLASSES, IGNORE = 11, 11
TOLERANCES, WIDTHS = [3, 5, 9, 12], [2, 4, 8, 16]
MIRROR = Path(os.environ.get("SEGREPRO_CAMVID_MIRROR",
                             Path(__file__).resolve().parents[2] / "shared" / "datasets" / "camvid"))


# ----------------------------------------------------------------------------- references

def ref_seg2bmap(mask: np.ndarray) -> np.ndarray:
    """DAVIS rule: differs from an existing right, bottom or bottom-right neighbour."""
    h, w = mask.shape
    b = np.zeros_like(mask)
    for dy, dx in ((0, 1), (1, 0), (1, 1)):
        b[:h - dy, :w - dx] |= mask[:h - dy, :w - dx] != mask[dy:, dx:]
    return b


def ref_boundary_f(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N, C, T) F-scores, looping over images, classes and tolerances."""
    disks = []
    for d in TOLERANCES:
        yy, xx = np.mgrid[-d:d + 1, -d:d + 1]
        disks.append(yy ** 2 + xx ** 2 <= d ** 2)
    out = np.zeros((len(gt), NUM_CLASSES, len(TOLERANCES)))
    for n in range(len(gt)):
        valid = gt[n] != IGNORE
        for c in range(NUM_CLASSES):
            bp, bg = ref_seg2bmap((pred[n] == c) & valid), ref_seg2bmap((gt[n] == c) & valid)
            n_p, n_g = bp.sum(), bg.sum()
            for t, disk in enumerate(disks):
                if n_p == 0 or n_g == 0:  # P = R = 1 / P = 0, R = 1 / P = 1, R = 0
                    out[n, c, t] = float(n_p == 0 and n_g == 0)
                    continue
                p = (bp & ndimage.binary_dilation(bg, disk)).sum() / float(n_p)
                r = (bg & ndimage.binary_dilation(bp, disk)).sum() / float(n_g)
                out[n, c, t] = 0.0 if p + r == 0 else 2 * p * r / (p + r)
    return out


def ref_trimap(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N, W, C, C) confusions inside {edt(~B) <= w}, B = 4-connected non-void label changes."""
    c = NUM_CLASSES
    out = np.zeros((len(gt), len(WIDTHS), c, c), dtype=np.int64)
    for n in range(len(gt)):
        g = gt[n]
        valid = g != IGNORE
        b = np.zeros(g.shape, dtype=bool)
        for a, o, sa, so in (
                (g[:, :-1], g[:, 1:], np.s_[:, :-1], np.s_[:, 1:]),
                (g[:-1, :], g[1:, :], np.s_[:-1, :], np.s_[1:, :])):
            change = (a != o) & valid[sa] & valid[so]
            b[sa] |= change
            b[so] |= change
        if not b.any():
            continue
        dist = ndimage.distance_transform_edt(~b)
        for i, w in enumerate(WIDTHS):
            sel = (dist <= w) & valid
            key = g[sel].astype(np.int64) * c + pred[n][sel]
            out[n, i] = np.bincount(key, minlength=c * c).reshape(c, c)
    return out


def ref_boundary_iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(2, N, C): intersection and union of inner bands, per image and class."""
    d = boundary_iou_dilation(*gt.shape[1:])
    out = np.zeros((2, len(gt), NUM_CLASSES), dtype=np.int64)
    for n in range(len(gt)):
        valid = gt[n] != IGNORE
        for c in range(NUM_CLASSES):
            bands = []
            for lab in (gt[n], pred[n]):
                m = (lab == c) & valid
                er = ndimage.binary_erosion(np.pad(m, 1), np.ones((3, 3), bool), iterations=d)
                bands.append(m & ~er[1:-1, 1:-1])
            out[:, n, c] = (bands[0] & bands[1]).sum(), (bands[0] | bands[1]).sum()
    return out


# ----------------------------------------------------------------------------- harness

def load_split(mirror: Path, synthetic: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    if synthetic:  # same size and classes, blobby random labels: for machines without the mirror
        low = rng.integers(0, NUM_CLASSES + 1, size=(233, 23, 30))
        gt = low.repeat(16, axis=1).repeat(16, axis=2)[:, :360, :480].astype(np.uint8)
    else:
        files = sorted((mirror / "CamVid" / "testannot").glob("*.png"))
        if len(files) != 233:
            raise SystemExit(f"expected 233 CamVid test label maps in {mirror}, found {len(files)}")
        gt = np.stack([np.array(Image.open(f)) for f in files])  # (233, 360, 480) uint8
    pred = np.empty_like(gt)
    for n, g in enumerate(gt):
        p = np.roll(g, shift=tuple(int(s) for s in rng.integers(-3, 4, size=2)), axis=(0, 1))
        for _ in range(4):
            y, x = rng.integers(0, 360), rng.integers(0, 480)
            p[y:y + rng.integers(5, 60), x:x + rng.integers(5, 60)] = rng.integers(0, NUM_CLASSES)
        pred[n] = np.where(p == IGNORE, rng.integers(0, NUM_CLASSES, p.shape), p)
    return pred, gt


def vectorised(name: str, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    kw = dict(num_classes=NUM_CLASSES, ignore_index=IGNORE)
    if name == "bf":
        return boundary_f_score(pred, gt, tolerances=TOLERANCES, **kw).f
    if name == "trimap":
        return trimap_confusion(pred, gt, widths=WIDTHS, **kw)
    return torch.stack(boundary_iou_counts(pred, gt, **kw))  # (2, N, C)


def time_vectorised(name: str, pred: np.ndarray, gt: np.ndarray, batch: int,
                    device: torch.device) -> tuple[np.ndarray, float]:
    p_all, g_all = torch.from_numpy(pred).to(device), torch.from_numpy(gt).to(device)
    vectorised(name, p_all[:batch], g_all[:batch])  # warm-up (CUDA context, allocator)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    outs = [vectorised(name, p_all[i:i + batch], g_all[i:i + batch])
            for i in range(0, len(gt), batch)]
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    axis = 1 if name == "biou" else 0  # image axis
    return torch.cat(outs, dim=axis).cpu().numpy(), seconds


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mirror", type=Path, default=MIRROR)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=16, help="images per vectorised call")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--ref-limit", type=int, default=None, help="reference on first K images")
    ap.add_argument("--synthetic", action="store_true", help="random CamVid-sized maps instead")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    pred, gt = load_split(args.mirror, args.synthetic)
    k = len(gt) if args.ref_limit is None else min(args.ref_limit, len(gt))
    print(f"{'SYNTHETIC maps' if args.synthetic else 'CamVid test split'}: {len(gt)} maps {gt.shape[1]}×{gt.shape[2]}, {NUM_CLASSES} classes, "
          f"void {IGNORE}, {(gt == IGNORE).mean():.1%} void pixels; torch {torch.__version__} on "
          f"{device}{'' if device.type == 'cuda' else f' ({args.threads} thread(s))'}, "
          f"batch {args.batch}; reference on {k} image(s), single-threaded numpy/scipy")
    if device.type == "cuda":
        print(f"GPU: {torch.cuda.get_device_name(device)}")
    rows = []
    for name, label, ref in (
            ("bf", f"Boundary F @ {TOLERANCES} px", ref_boundary_f),
            ("trimap", f"trimap confusion, w = {WIDTHS} px", ref_trimap),
            ("biou", f"Boundary IoU (d = {boundary_iou_dilation(*gt.shape[1:])} px)",
             ref_boundary_iou)):
        got, t_vec = time_vectorised(name, pred, gt, args.batch, device)
        start = time.perf_counter()
        want = ref(pred[:k], gt[:k])
        t_ref = (time.perf_counter() - start) * len(gt) / k
        sub = got[:, :k] if name == "biou" else got[:k]
        if name == "bf":
            assert np.abs(sub - want).max() <= 1e-12, f"{name}: values differ"
        else:
            assert np.array_equal(sub, want), f"{name}: values differ"
        rows.append((label, t_ref, t_vec, k))
    print(f"\n{'metric':40s} {'reference':>12s} {'vectorised':>12s} {'speed-up':>9s}  values")
    for label, t_ref, t_vec, k in rows:
        est = "" if k == len(gt) else " (extrapolated)"
        print(f"{label:40s} {t_ref:11.2f}s {t_vec:11.2f}s {t_ref / t_vec:8.1f}×  identical on "
              f"{k} images{est}")
    total_ref, total_vec = sum(r[1] for r in rows), sum(r[2] for r in rows)
    print(f"{'all three':40s} {total_ref:11.2f}s {total_vec:11.2f}s {total_ref / total_vec:8.1f}×")
    print(f"per image: reference {1e3 * total_ref / len(gt):.1f} ms, vectorised "
          f"{1e3 * total_vec / len(gt):.2f} ms ({math.ceil(len(gt) / args.batch)} calls per metric)")


if __name__ == "__main__":
    main()
