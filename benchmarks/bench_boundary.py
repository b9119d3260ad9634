"""Speed of the vectorised boundary metrics against plain per-image, per-class references.

Data: the full CamVid test split (233 label maps, 360×480, 11 classes, void = 11) from the
mirror; predictions are the labels perturbed (shifted by up to 3 px, four blobs of random
classes, void replaced by random classes), seeded. Both sides get the same uint8 arrays.

References: the test suite's (``tests/metrics/boundary_reference.py``, written from
docs/methods.md §5, one image and one class at a time): boundary F with
``scipy.ndimage.binary_dilation`` and a disk (the GSCNN/DAVIS algorithm); trimap bands with
``distance_transform_edt``; Boundary IoU with iterated 3×3 ``binary_erosion`` on the 1-px
zero-padded mask. Every value is checked for equality.

Usage::

    PYTHONPATH=src python benchmarks/bench_boundary.py            # CPU, 1 thread
    PYTHONPATH=src python benchmarks/bench_boundary.py --device cuda --ref-limit 20
    PYTHONPATH=src python benchmarks/bench_boundary.py --synthetic   # no mirror: not CamVid

``--threads 1`` (default) compares single-threaded code on both sides. ``--ref-limit K``
runs the references on the first K images only and extrapolates their time linearly
(marked in the table); values are then compared on those K images (K ≥ 1; a K above the
split's size runs them all).

Every argument is checked before anything is loaded or timed (``bench_args``): ``--device``
``cpu`` or a CUDA device torch sees, ``--batch`` ≥ 1, ``--threads`` within the CPUs this
process may use (``cpu_class.check_threads``), and without ``--synthetic`` the mirror must
hold the 233 test label maps; a mistake is one ``bench_boundary: error:`` line on stderr,
exit status 2.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench_args import check_device, check_min, run_cli
from cpu_class import check_threads
from segrepro.errors import SegreproError
from segrepro.metrics.boundary import (
    boundary_f_score, boundary_iou_counts, boundary_iou_dilation, trimap_confusion,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout: its tests/ package
from tests.metrics.boundary_reference import ref_boundary_f, ref_boundary_iou, ref_trimap_confusion  # noqa: E402

NUM_CLASSES, IGNORE = 11, 11
TOLERANCES, WIDTHS = [3, 5, 9, 12], [2, 4, 8, 16]
MIRROR = Path(os.environ.get("SEGREPRO_CAMVID_MIRROR",
                             Path(__file__).resolve().parents[2] / "shared" / "datasets" / "camvid"))


# ----------------------------------------------------------------------------- harness

def load_split(mirror: Path, synthetic: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    if synthetic:  # same size and classes, blobby random labels: for machines without the mirror
        low = rng.integers(0, NUM_CLASSES + 1, size=(233, 23, 30))
        gt = low.repeat(16, axis=1).repeat(16, axis=2)[:, :360, :480].astype(np.uint8)
    else:
        files = sorted((mirror / "CamVid" / "testannot").glob("*.png"))
        if len(files) != 233:
            raise SegreproError(f"expected 233 CamVid test label maps in {mirror / 'CamVid' / 'testannot'}, "
                                f"found {len(files)}; pass --mirror the folder that holds CamVid/, or --synthetic")
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


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mirror", type=Path, default=MIRROR)
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    ap.add_argument("--batch", type=int, default=16, help="images per vectorised call, ≥ 1")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads, 1 to the CPUs usable")
    ap.add_argument("--ref-limit", type=int, default=None, help="reference on first K images, K ≥ 1")
    ap.add_argument("--synthetic", action="store_true", help="random CamVid-sized maps instead")
    return ap


def main(argv: list[str] | None = None) -> int:
    """Check every argument, then time and print; exit status 2 with one line on a refusal."""
    return run_cli("bench_boundary", parser(), run, argv)


def run(args: argparse.Namespace) -> None:
    device = check_device(args.device)
    check_min("--batch", args.batch, 1)
    if args.ref_limit is not None:
        check_min("--ref-limit", args.ref_limit, 1)
    torch.set_num_threads(check_threads(args.threads))
    pred, gt = load_split(args.mirror, args.synthetic)
    k = len(gt) if args.ref_limit is None else min(args.ref_limit, len(gt))
    print(f"{'SYNTHETIC maps' if args.synthetic else 'CamVid test split'}: {len(gt)} maps {gt.shape[1]}×{gt.shape[2]}, {NUM_CLASSES} classes, "
          f"void {IGNORE}, {(gt == IGNORE).mean():.1%} void pixels; torch {torch.__version__} on "
          f"{device}{'' if device.type == 'cuda' else f' ({args.threads} thread(s))'}, "
          f"batch {args.batch}; reference on {k} image(s), single-threaded numpy/scipy")
    if device.type == "cuda":
        print(f"GPU: {torch.cuda.get_device_name(device)}")
    dilation = boundary_iou_dilation(*gt.shape[1:])
    references = {  # name → (label, reference on (pred, gt) in the vectorised code's layout)
        "bf": (f"Boundary F @ {TOLERANCES} px",
               lambda p, g: ref_boundary_f(p, g, NUM_CLASSES, IGNORE, TOLERANCES)[0]),
        "trimap": (f"trimap confusion, w = {WIDTHS} px",
                   lambda p, g: ref_trimap_confusion(p, g, NUM_CLASSES, IGNORE, WIDTHS)),
        "biou": (f"Boundary IoU (d = {dilation} px)",
                 lambda p, g: np.stack(ref_boundary_iou(p, g, NUM_CLASSES, IGNORE, dilation))),
    }
    rows = []
    for name, (label, ref) in references.items():
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
    sys.exit(main())
