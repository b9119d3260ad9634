"""Boundary metrics: hand-computed cases and equality with plain per-image, per-class references.

The references (``tests/metrics/boundary_reference.py``) loop over images and classes and use
standard scipy morphology, written from the definitions in docs/methods.md §5 independently of
the vectorised torch code; ``benchmarks/bench_boundary.py`` times the same references.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from segrepro.errors import SegreproError
from segrepro.metrics.boundary import (
    boundary_f_score, boundary_iou_counts, boundary_iou_dilation, reduce_boundary_f, reduce_boundary_iou,
    trimap_boundary, trimap_confusion,
)
from segrepro.metrics.confusion import iou
from segrepro.metrics.morphology import disk_dilation, seg2bmap
from tests.metrics.boundary_reference import (
    ref_boundary_f, ref_boundary_iou, ref_disk, ref_seg2bmap, ref_trimap_confusion,
)

# ----------------------------------------------------------------------------- data


def blobby_labels(rng, n, h, w, c, cell=4):
    low = rng.integers(0, c, size=(n, -(-h // cell), -(-w // cell)))
    lab = low.repeat(cell, axis=1).repeat(cell, axis=2)[:, :h, :w]
    return np.where(rng.random((n, h, w)) < 0.03, rng.integers(0, c, (n, h, w)), lab)


def perturb(gt, rng, c, ignore):
    """Prediction: gt shifted a few pixels, blobs of random classes, no ignore label."""
    pred = np.roll(gt, shift=(int(rng.integers(-3, 4)), int(rng.integers(-3, 4))), axis=(1, 2))
    for img in pred:
        for _ in range(4):
            y, x = rng.integers(0, img.shape[0]), rng.integers(0, img.shape[1])
            img[y:y + rng.integers(1, 40), x:x + rng.integers(1, 40)] = rng.integers(0, c)
    return np.where(pred == ignore, rng.integers(0, c, pred.shape), pred)


def with_void(gt, rng, ignore):
    gt = gt.copy()
    gt[rng.random(gt.shape) < 0.02] = ignore
    for img in gt:
        y, x = rng.integers(0, img.shape[0]), rng.integers(0, img.shape[1])
        img[y:y + img.shape[0] // 4 + 1, x:x + img.shape[1] // 5 + 1] = ignore
    return gt


def random_case(seed, n, h, w, c, ignore=255):
    rng = np.random.default_rng(seed)
    gt = with_void(blobby_labels(rng, n, h, w, c), rng, ignore)
    return perturb(gt, rng, c, ignore), gt


def all_metrics(pred, gt, c, ignore, tols=(0, 1, 3), widths=(0, 1, 2, 5), dilation=None):
    p, g = torch.from_numpy(pred), torch.from_numpy(gt)
    bf = boundary_f_score(p, g, num_classes=c, ignore_index=ignore, tolerances=list(tols))
    tri = trimap_confusion(p, g, num_classes=c, ignore_index=ignore, widths=list(widths))
    biou = boundary_iou_counts(p, g, num_classes=c, ignore_index=ignore, dilation=dilation)
    return bf, tri, biou


def assert_match_references(pred, gt, c, ignore, tols, widths, dilation):
    bf, tri, (inter, union) = all_metrics(pred, gt, c, ignore, tols, widths, dilation)
    f, p, r = ref_boundary_f(pred, gt, c, ignore, tols)
    np.testing.assert_allclose(bf.f.numpy(), f, rtol=0, atol=1e-12)
    np.testing.assert_allclose(bf.precision.numpy(), p, rtol=0, atol=1e-12)
    np.testing.assert_allclose(bf.recall.numpy(), r, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(tri.numpy(), ref_trimap_confusion(pred, gt, c, ignore, widths))
    ri, ru = ref_boundary_iou(pred, gt, c, ignore, dilation)
    np.testing.assert_array_equal(inter.numpy(), ri)
    np.testing.assert_array_equal(union.numpy(), ru)


# ----------------------------------------------------------------------------- morphology


def test_seg2bmap_hand_computed():
    m = torch.zeros(6, 6, dtype=torch.bool)
    m[1:4, 1:4] = True  # 3×3 square, rows/cols 1..3
    # Half a pixel towards the origin: the boundary is the ring of rows/cols 0..3 (12 px).
    ring = torch.zeros(6, 6, dtype=torch.bool)
    ring[0:4, 0:4] = True
    ring[1:3, 1:3] = False
    assert torch.equal(seg2bmap(m), ring)
    assert not seg2bmap(torch.ones(6, 6, dtype=torch.bool)).any()  # border is no boundary
    corner = torch.zeros(6, 6, dtype=torch.bool)
    corner[5, 5] = True  # bottom-right pixel: seen by (4,4) diagonally, (4,5) below, (5,4) right
    assert seg2bmap(corner).nonzero().tolist() == [[4, 4], [4, 5], [5, 4]]


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (2, 2), (9, 13), (16, 5)])
def test_seg2bmap_matches_reference_and_bit_packing(shape):
    rng = np.random.default_rng(sum(shape))
    masks = rng.random((8,) + shape) < 0.5
    got = seg2bmap(torch.from_numpy(masks)).numpy()
    for i in range(8):
        np.testing.assert_array_equal(got[i], ref_seg2bmap(masks[i]))
    packed = torch.from_numpy((masks * (1 << np.arange(8))[:, None, None]).sum(0).astype(np.uint8))
    bits = (seg2bmap(packed).numpy()[None] >> np.arange(8)[:, None, None]) & 1
    np.testing.assert_array_equal(bits.astype(bool), got)


def test_disk_is_euclidean_hand_computed():
    x = torch.zeros(9, 9, dtype=torch.bool)
    x[4, 4] = True
    # Offsets with dy² + dx² <= r²: r=1 -> 5 (plus), r=2 -> 13, r=3 -> 29; (1, 2) is out at r=2.
    assert [int(disk_dilation(x, r).sum()) for r in (0, 1, 2, 3)] == [1, 5, 13, 29]
    assert not disk_dilation(x, 2)[5, 6] and disk_dilation(x, 3)[5, 6]
    edge = torch.zeros(3, 3, dtype=torch.bool)
    edge[0, 0] = True
    assert int(disk_dilation(edge, 1).sum()) == 3  # clipped at the image border


@pytest.mark.parametrize("radius", [0, 1, 2, 3, 5, 8, 13, 40])
def test_disk_dilation_matches_scipy(radius):
    rng = np.random.default_rng(radius)
    for shape in [(17, 23), (1, 30), (30, 1), (8, 8)]:
        sparse = rng.random(shape) < 0.04
        got = disk_dilation(torch.from_numpy(sparse), radius).numpy()
        np.testing.assert_array_equal(got, ndimage.binary_dilation(sparse, ref_disk(radius)))
        np.testing.assert_array_equal(got, ndimage.distance_transform_edt(~sparse) <= radius
                                      if sparse.any() else np.zeros(shape, bool))


# ----------------------------------------------------------------------------- boundary F


def test_boundary_f_hand_computed_square_shift():
    gt = torch.ones(1, 6, 6, dtype=torch.long)
    gt[0, 1:4, 1:4] = 0  # class 0 square rows 1..3, cols 1..3; class 1 around; class 2 absent
    pred = torch.ones(1, 6, 6, dtype=torch.long)
    pred[0, 1:4, 1:5] = 0  # one column wider
    bf = boundary_f_score(pred, gt, num_classes=3, ignore_index=255, tolerances=[0, 1])
    # bG = ring rows 0..3 × cols 0..3 (12 px); bP = ring rows 0..3 × cols 0..4 (14 px); they
    # share the top and bottom rows at cols 0..3 and the left column: 10 px. At d = 0:
    # P = 10/14, R = 10/12, F = 2PR/(P+R) = 10/13. At d = 1 every pixel of each map is within
    # 1 px of the other: P = R = F = 1. Class 1 is the complement: same boundaries (XOR).
    for k in (0, 1):
        assert bf.precision[0, k].tolist() == pytest.approx([5 / 7, 1.0], abs=1e-15)
        assert bf.recall[0, k].tolist() == pytest.approx([5 / 6, 1.0], abs=1e-15)
        assert bf.f[0, k].tolist() == pytest.approx([10 / 13, 1.0], abs=1e-15)
    assert bf.f[0, 2].tolist() == [1.0, 1.0]  # absent from both: F = 1


def test_boundary_f_degenerate_cases():
    full = torch.zeros(1, 6, 6, dtype=torch.long)
    block = full.clone()
    block[0, 2:4, 2:4] = 1
    kw = dict(num_classes=3, ignore_index=255, tolerances=[2])
    bf = boundary_f_score(block, full, **kw)  # class 1 only in pred
    # class 0: GT fills the image (no boundary), pred has a hole: P = 0, R = 1, F = 0.
    assert (bf.precision[0, :, 0].tolist(), bf.recall[0, :, 0].tolist(), bf.f[0, :, 0].tolist()) \
        == ([0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 1.0])
    bf = boundary_f_score(full, block, **kw)  # class 1 only in gt: P = 1, R = 0, F = 0
    assert (bf.precision[0, :, 0].tolist(), bf.recall[0, :, 0].tolist(), bf.f[0, :, 0].tolist()) \
        == ([1.0, 1.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0])
    assert boundary_f_score(full, full, **kw).f.flatten().tolist() == [1.0, 1.0, 1.0]


def test_reduce_boundary_f_counts_absent_classes_as_one():
    gt = torch.zeros(2, 6, 6, dtype=torch.long)
    gt[1, 2:4, 2:4] = 1  # class 1: absent from image 0, GT-only in image 1
    pred = torch.zeros(2, 6, 6, dtype=torch.long)
    f = boundary_f_score(pred, gt, num_classes=2, ignore_index=255, tolerances=[1, 3]).f
    # Class 0: image 0 filled in both (F = 1), image 1 holed in GT only (F = 0) -> 1/2.
    # Class 1: absent from image 0 (F = 1, counted), GT-only in image 1 (F = 0) -> 1/2;
    # leaving absent images out would give 0.
    assert f.mean(dim=0).tolist() == [[0.5, 0.5], [0.5, 0.5]]
    assert reduce_boundary_f(f.mean(dim=0)).tolist() == [0.5, 0.5]
    assert reduce_boundary_f(torch.tensor([[[1.0], [0.0]], [[0.5], [0.5]]])).tolist() == [[0.5], [0.5]]


def test_ignore_pixels_are_zeroed_in_both_masks():
    gt = torch.full((1, 6, 6), 11, dtype=torch.long)
    gt[0, :, :3] = 0  # class 0 on the left, void on the right
    pred = torch.zeros(1, 6, 6, dtype=torch.long)  # class 0 everywhere, also under the void
    bf = boundary_f_score(pred, gt, num_classes=11, ignore_index=11, tolerances=[0])
    assert bf.f[0, 0, 0] == 1.0  # both masks end at column 2 once void is zeroed
    inter, union = boundary_iou_counts(pred, gt, num_classes=11, ignore_index=11, dilation=1)
    assert inter[0, 0] == union[0, 0] == 14  # the band runs along the void edge, as documented
    # Predictions under void pixels never matter, for any metric.
    pred_np, gt_np = random_case(3, 2, 30, 41, 5)
    other = np.where(gt_np == 255, np.random.default_rng(0).integers(0, 5, gt_np.shape), pred_np)
    for a, b in zip(all_metrics(pred_np, gt_np, 5, 255), all_metrics(other, gt_np, 5, 255)):
        for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
            assert torch.equal(x, y)


# ----------------------------------------------------------------------------- trimap


def test_trimap_hand_computed():
    gt = torch.zeros(1, 6, 6, dtype=torch.long)
    gt[0, :, 3:] = 1  # label change between columns 2 and 3
    gt[0, :, 5] = 255  # void column: its edge with class 1 is no boundary
    pred = torch.zeros(1, 6, 6, dtype=torch.long)
    b = trimap_boundary(gt, 255)[0]
    assert b.nonzero()[:, 1].unique().tolist() == [2, 3]  # both sides marked, 12 px
    conf = trimap_confusion(pred, gt, num_classes=2, ignore_index=255, widths=[2, 0, 1])
    # Bands: w=0 cols 2..3, w=1 cols 1..4, w=2 cols 0..5 minus the void column 5.
    assert conf[0].tolist() == [[[18, 0], [12, 0]], [[6, 0], [6, 0]], [[12, 0], [12, 0]]]
    # w=0: IoU_0 = 6 / (6 + 12 - 6) = 1/2, IoU_1 = 0 / 6 -> mIoU 1/4.
    assert iou(conf.sum(0))[1].item() == 0.25
    assert iou(conf.sum(0), per_class=True)[1].tolist() == [0.5, 0.0]
    nothing = torch.zeros(1, 6, 6, dtype=torch.long)
    assert trimap_confusion(pred, nothing, num_classes=2, ignore_index=255, widths=[3]).sum() == 0
    assert torch.isnan(iou(torch.zeros(2, 2, dtype=torch.long)))


# ----------------------------------------------------------------------------- Boundary IoU


def test_boundary_iou_hand_computed():
    gt = torch.zeros(1, 6, 6, dtype=torch.long)
    gt[0, :, 3:] = 1
    pred = torch.zeros(1, 6, 6, dtype=torch.long)
    pred[0, :, 4:] = 1
    inter, union = boundary_iou_counts(pred, gt, num_classes=2, ignore_index=255, dilation=1)
    # d = 1, outside = 0. G0 = cols 0..2: band = cols 0, 2 + (0,1), (5,1) = 14 px; P0 = cols
    # 0..3: band = cols 0, 3 + rows 0, 5 of cols 1..2 = 16 px; shared: col 0, (0,1), (5,1),
    # (0,2), (5,2) = 10 -> 10/20. G1 = cols 3..5: band 14 px; P1 = cols 4..5: all 12 px in
    # the band; shared: col 5, (0,4), (5,4) = 8 -> 8/18. Mean (1/2 + 4/9) / 2 = 17/36.
    assert inter.tolist() == [[10, 8]] and union.tolist() == [[20, 18]]
    assert reduce_boundary_iou(inter.sum(0), union.sum(0)).item() == pytest.approx(17 / 36)
    assert reduce_boundary_iou(torch.tensor([1, 0]), torch.tensor([2, 0])).item() == 0.5


@pytest.mark.parametrize("size, d", [((360, 480), 12), ((720, 960), 24), ((1024, 2048), 46),
                                     ((512, 512), 14), ((10, 10), 1)])
def test_boundary_iou_dilation_table(size, d):
    assert boundary_iou_dilation(*size) == d  # methods.md §5.3 table


# ----------------------------------------------------------------------------- references


@pytest.mark.parametrize("n, h, w, c, dilation", [
    (3, 37, 53, 11, 2), (2, 1, 40, 3, 1), (2, 40, 1, 4, 3), (9, 16, 12, 19, 4), (2, 23, 29, 8, 30),
])
def test_random_maps_match_references(n, h, w, c, dilation):
    pred, gt = random_case(n * h * w + c, n, h, w, c)
    assert_match_references(pred, gt, c, 255, tols=[0, 1, 2, 5], widths=[0, 1, 3, 7],
                            dilation=dilation)


def test_real_camvid_maps_match_references(mirror: Path):
    files = sorted((mirror / "CamVid" / "testannot").glob("*.png"))
    assert len(files) == 233
    gt = np.stack([np.array(Image.open(files[i])) for i in (0, 50, 100, 150, 232)])
    pred = perturb(gt, np.random.default_rng(0), 11, 11)
    assert (gt == 11).any() and gt.shape == (5, 360, 480)
    assert_match_references(pred, gt, 11, 11, tols=[1, 3, 12], widths=[2, 4, 8, 16],
                            dilation=boundary_iou_dilation(360, 480))


def test_batch_equals_single_images_and_dtypes_agree():
    pred, gt = random_case(7, 10, 19, 25, 11, ignore=11)  # 10 images: two packed words
    batch = all_metrics(pred, gt, 11, 11)
    for i in (0, 7, 9):
        single = all_metrics(pred[i:i + 1], gt[i:i + 1], 11, 11)
        assert torch.equal(batch[0].f[i:i + 1], single[0].f)
        assert torch.equal(batch[1][i:i + 1], single[1])
        assert torch.equal(batch[2][1][i:i + 1], single[2][1])
    small = all_metrics(pred.astype(np.uint8), gt.astype(np.uint8), 11, 11)
    assert torch.equal(small[0].f, batch[0].f) and torch.equal(small[1], batch[1])
    assert torch.equal(small[2][0], batch[2][0]) and torch.equal(small[2][1], batch[2][1])


def test_perfect_prediction():
    _, gt = random_case(11, 3, 20, 31, 6)
    pred = np.where(gt == 255, 0, gt)
    bf, tri, (inter, union) = all_metrics(pred, gt, 6, 255)
    assert (bf.f == 1).all()
    assert (tri.sum(dim=(-2, -1)) == torch.diagonal(tri, dim1=-2, dim2=-1).sum(-1)).all()
    assert torch.equal(inter, union)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    pred, gt = random_case(5, 11, 45, 61, 19)
    cpu = all_metrics(pred, gt, 19, 255, dilation=3)
    p, g = torch.from_numpy(pred).cuda(), torch.from_numpy(gt).cuda()
    kw = dict(num_classes=19, ignore_index=255)
    assert torch.equal(boundary_f_score(p, g, tolerances=[0, 1, 3], **kw).f.cpu(), cpu[0].f)
    assert torch.equal(trimap_confusion(p, g, widths=[0, 1, 2, 5], **kw).cpu(), cpu[1])
    assert torch.equal(boundary_iou_counts(p, g, dilation=3, **kw)[1].cpu(), cpu[2][1])


# ----------------------------------------------------------------------------- validation


def _labels(dtype=torch.long, shape=(1, 4, 4)):
    return torch.zeros(shape, dtype=dtype)


@pytest.mark.parametrize("call, match", [
    (lambda: boundary_f_score(_labels(torch.float32), _labels(), num_classes=2, ignore_index=255,
                              tolerances=[1]), "integer"),
    (lambda: boundary_f_score(_labels(shape=(4, 4)), _labels(shape=(4, 4)), num_classes=2,
                              ignore_index=255, tolerances=[1]), r"\(N, H, W\)"),
    (lambda: trimap_confusion(_labels(shape=(1, 4, 5)), _labels(), num_classes=2,
                              ignore_index=255, widths=[1]), "differ"),
    (lambda: trimap_confusion(_labels(), _labels() + 7, num_classes=2, ignore_index=255,
                              widths=[1]), "gt holds 7"),
    (lambda: boundary_iou_counts(_labels() + 255, _labels(), num_classes=2, ignore_index=255),
     "pred holds 255"),
    (lambda: boundary_iou_counts(_labels(), _labels(), num_classes=2, ignore_index=1), "outside"),
    (lambda: boundary_iou_counts(_labels(), _labels(), num_classes=2, ignore_index=255,
                                 dilation=0), "dilation"),
    (lambda: boundary_iou_dilation(4, 4, 0.0), "dilation_ratio"),
    (lambda: boundary_f_score(_labels(), _labels(), num_classes=2, ignore_index=255,
                              tolerances=[0.5]), "bound_th"),
    (lambda: boundary_f_score(_labels(), _labels(), num_classes=2, ignore_index=255,
                              tolerances=[]), "non-empty"),
    (lambda: trimap_confusion(_labels(), _labels(), num_classes=2, ignore_index=255,
                              widths=[-1]), ">= 0"),
    (lambda: trimap_confusion(_labels(), _labels(), num_classes=0, ignore_index=255,
                              widths=[1]), "num_classes"),
    (lambda: disk_dilation(_labels(), 1), "bool or bit-packed"),
    (lambda: disk_dilation(_labels(torch.bool), -1), "radius"),
    (lambda: iou(torch.zeros(2, 3)), r"\(\.\.\., C, C\)"),
    (lambda: reduce_boundary_iou(torch.zeros(2), torch.zeros(3)), "one shape"),
    (lambda: reduce_boundary_f(torch.zeros(3)), r"\(\.\.\., C, T\)"),
])
def test_invalid_arguments_raise(call, match):
    with pytest.raises(SegreproError, match=match):
        call()

