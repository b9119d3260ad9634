import math

import torch

from segrepro.metrics.confusion import confusion_matrix, per_image_confusion, scores


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
