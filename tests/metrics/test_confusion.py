import math

import torch

import pytest

from segrepro.errors import SegreproError
from segrepro.metrics.confusion import class_scores, confusion_matrix, iou, per_image_confusion, scores


def test_hand_computed_case():
    gt = torch.tensor([[0, 0, 1], [1, 2, 3]])      # 3 = void
    pred = torch.tensor([[0, 1, 1], [1, 2, 0]])
    conf = confusion_matrix(pred, gt, num_classes=3, ignore_index=3)
    assert conf.tolist() == [[1, 1, 0], [0, 2, 0], [0, 0, 1]]
    s = scores(conf)
    # IoU: class 0 = 1/(2+1-1) = 1/2, class 1 = 2/(2+3-2) = 2/3, class 2 = 1.
    assert math.isclose(s["miou"], (1 / 2 + 2 / 3 + 1) / 3)
    assert math.isclose(s["pixel_acc"], 4 / 5)
    assert math.isclose(s["mean_acc"], (1 / 2 + 1 + 1) / 3)


def test_absent_class_is_left_out_of_the_mean():
    gt = torch.tensor([0, 0, 1])
    s = scores(confusion_matrix(gt, gt, num_classes=3, ignore_index=255))
    assert math.isnan(s["iou"][2]) and s["miou"] == 1.0


def test_per_image_sums_to_dataset():
    g = torch.Generator().manual_seed(0)
    gt = torch.randint(0, 5, (6, 9, 11), generator=g)
    pred = torch.randint(0, 4, (6, 9, 11), generator=g)
    per = per_image_confusion(pred, gt, 4, 4)
    assert torch.equal(per.sum(0), confusion_matrix(pred, gt, 4, 4))
    assert torch.equal(per[2], confusion_matrix(pred[2], gt[2], 4, 4))


def test_iou_batched_matches_scores_and_flags_bad_shapes():
    g = torch.Generator().manual_seed(1)
    conf = torch.randint(0, 50, (3, 2, 4, 4), generator=g)
    conf[0, 0, 3] = 0
    conf[0, 0, :, 3] = 0  # class 3 absent from image 0: NaN per class, left out of the mean
    batched = iou(conf)
    assert batched.shape == (3, 2) and batched.dtype == torch.float64
    for i in range(3):
        for j in range(2):
            assert batched[i, j].item() == scores(conf[i, j])["miou"]   # one implementation, bit for bit
    assert math.isnan(iou(conf[0, 0], per_class=True)[3].item())
    # Image-averaged confusions (floats) give the mIoU of the counts: the ratio is scale-free.
    assert math.isclose(iou(conf[1, 0].double() / 7).item(), scores(conf[1, 0])["miou"], rel_tol=1e-12)
    with pytest.raises(SegreproError, match=r"\(\.\.\., C, C\)"):
        iou(torch.zeros(2, 3))


def test_class_scores_are_scores_without_the_miou():
    conf = torch.tensor([[3, 1, 0], [2, 5, 1], [0, 1, 4]])
    s = scores(conf)
    assert class_scores(conf) == {k: v for k, v in s.items() if k != "miou"}
    assert s["iou"][0] == 3 / (4 + 5 - 3) and s["pixel_acc"] == 12 / 17
