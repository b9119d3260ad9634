"""The metric registry: names, order, labels and reducers, known answers."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from segrepro.metrics import registry
from segrepro.metrics.confusion import confusion_matrix, iou, scores


def _labels(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    gt = torch.randint(0, 4, (5, 4, 4), generator=g).repeat_interleave(6, 1).repeat_interleave(6, 2)  # blocks
    gt[:, :2] = 4  # void rows
    noise = torch.randint(0, 4, gt.shape, generator=g)
    pred = torch.where(torch.rand(gt.shape, generator=g) < 0.2, noise, gt.clamp(max=3))
    return pred, gt


def test_names_order_and_statistics():
    ms = registry.metrics([1, 3], [2, 8])
    assert [m.name for m in ms] == ["miou", "bf@1px", "bf@3px", "trimap@2px", "trimap@8px", "boundary_iou"]
    assert [m.statistic for m in ms] == ["confusion", "bf", "bf", "trimap", "trimap", "biou"]
    assert {m.statistic for m in ms} == set(registry.STATISTICS)
    assert [m.label for m in ms] == ["mIoU", "BF@1px", "BF@3px", "trimap mIoU@2px", "trimap mIoU@8px",
                                     "Boundary IoU"]
    for m in ms:  # every name parses back to its family and pixels, and labels the same way
        assert registry.parse(m.name) == (m.family, m.px)
        assert registry.label(m.name) == m.label


@pytest.mark.parametrize("key", ["bf_tolerances_px", "pixel_acc", "bf@px", "trimap@2", "iou", "latency_s"])
def test_other_keys_are_not_quality_metrics(key):
    assert registry.parse(key) is None
    assert registry.label(key) == key


def test_pinned_names_are_quality_metrics_and_confusion_scores():
    row = {"miou": 0.3, "bf@2px": 0.2, "trimap@4px": 0.1, "boundary_iou": 0.2, "pixel_acc": 0.5,
           "mean_acc": 0.4, "latency_s": 0.01, "bf_tolerances_px": [2], "iou": [0.1]}
    assert registry.pinned_names(row) == ["bf@2px", "boundary_iou", "mean_acc", "miou", "pixel_acc", "trimap@4px"]


def test_summarize_is_each_reducer_of_the_image_mean():
    pred, gt = _labels()
    stats = registry.per_image_stats(pred, gt, 4, 4, [1, 2], [1, 3], 0.05, batch=2)
    assert {k: v.shape[0] for k, v in stats.items()} == dict.fromkeys(registry.STATISTICS, 5)
    summary = registry.summarize(stats, [1, 2], [1, 3])
    # mIoU of the mean confusion = mIoU of the dataset confusion (up to rounding).
    assert summary["miou"] == pytest.approx(scores(confusion_matrix(pred, gt, 4, 4))["miou"], abs=1e-12)
    assert summary["bf@2px"] == pytest.approx(stats["bf"][:, :, 1].mean(0).mean())
    # Each trimap width reads its own band: mIoU of the dataset confusion summed inside that band.
    for i, width in enumerate([1, 3]):
        band = torch.from_numpy(stats["trimap"][:, i].sum(0))
        assert summary[f"trimap@{width}px"] == pytest.approx(iou(band).item(), abs=1e-12)
    assert summary["trimap@1px"] != summary["trimap@3px"]  # else the test could not tell the widths apart
    assert 0 < summary["trimap@1px"] < 1 and 0 < summary["boundary_iou"] < 1
    # Batching changes nothing.
    one = registry.per_image_stats(pred, gt, 4, 4, [1, 2], [1, 3], 0.05, batch=32)
    assert all(np.array_equal(one[k], stats[k]) for k in registry.STATISTICS)


def test_headline_choices():
    names = [m.name for m in registry.metrics([1, 3, 5], [2, 8, 16])]
    assert registry.headline(names) == ["miou", "bf@3px", "trimap@2px", "boundary_iou"]  # no 4 px: the narrowest
    assert registry.main_trimap(["trimap@8px", "trimap@4px"]) == "trimap@4px"
    assert registry.headline_bf(["bf@1px"]) == "bf@1px" and registry.headline_bf(["miou"]) is None
    assert registry.headline(["miou"]) == ["miou"]
