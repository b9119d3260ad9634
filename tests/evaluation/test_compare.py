"""Quality reducers agree with the plain metrics; compare writes mean ± std and bootstrap CIs."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from segrepro.errors import SegreproError
from segrepro.evaluation.compare import compare
from segrepro.evaluation.quality import per_image_stats, summarize
from segrepro.metrics.confusion import confusion_matrix, scores

TOL, WIDTHS = (1, 3), (2, 4)


def labels(seed: int, n: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    gt = torch.randint(0, 4, (n, 1, 6, 8), generator=g).repeat_interleave(4, 2).repeat_interleave(4, 3)[:, 0]
    gt[:, :2] = 4  # a void band
    pred = gt.clone().clamp(max=3)
    flip = torch.rand(gt.shape, generator=g) < 0.2
    pred[flip] = torch.randint(0, 4, (int(flip.sum()),), generator=g)
    return pred, gt


def test_summary_matches_plain_metrics():
    pred, gt = labels(0)
    stats = per_image_stats(pred, gt, 4, 4, TOL, WIDTHS, 0.05, batch=2)
    summary = summarize(stats, TOL, WIDTHS)
    assert summary["miou"] == pytest.approx(scores(confusion_matrix(pred, gt, 4, 4))["miou"], abs=1e-12)
    # With a band wider than the image the trimap covers every non-void pixel.
    wide = per_image_stats(pred, gt, 4, 4, TOL, (100,), 0.05)
    assert np.array_equal(wide["trimap"][:, 0], wide["confusion"])
    perfect = summarize(per_image_stats(gt.clamp(max=3), gt, 4, 4, TOL, WIDTHS, 0.05), TOL, WIDTHS)
    assert all(v == pytest.approx(1.0) for v in perfect.values())


def save(tmp_path, method, seed, pred, gt):
    stats = per_image_stats(pred, gt, 4, 4, TOL, WIDTHS, 0.05)
    np.savez(tmp_path / f"{method}-{seed}.npz", names=np.array([f"img{i}" for i in range(len(gt))]), **stats)


def test_compare_identical_methods_gives_zero_interval(tmp_path):
    for seed in (0, 1):
        pred, gt = labels(seed)
        save(tmp_path, "baseline", seed, pred, gt)
        save(tmp_path, "sdn", seed, pred, gt)
    out = tmp_path / "comparison.json"
    compare(tmp_path, ["baseline", "sdn"], [0, 1], TOL, WIDTHS, out, n_boot=200)
    saved = json.loads(out.read_text())
    for metric, entry in saved["methods"]["sdn"].items():
        assert entry["delta"] == {"point": 0.0, "low": 0.0, "high": 0.0}, metric
        assert entry["std"] is not None
    assert "delta" not in saved["methods"]["baseline"]["miou"]


def test_compare_detects_a_better_method(tmp_path):
    pred, gt = labels(3, n=12)
    save(tmp_path, "baseline", 0, pred, gt)
    save(tmp_path, "pdn", 0, gt.clamp(max=3), gt)  # perfect predictions
    result = compare(tmp_path, ["baseline", "pdn"], [0], TOL, WIDTHS, tmp_path / "c.json", n_boot=300)
    delta = result["methods"]["pdn"]["miou"]["delta"]
    assert 0 < delta["low"] <= delta["point"] <= delta["high"]
    assert result["methods"]["pdn"]["miou"]["std"] is None   # one seed: no spread to report


def test_missing_statistics_are_named(tmp_path):
    pred, gt = labels(0)
    save(tmp_path, "baseline", 0, pred, gt)
    with pytest.raises(SegreproError, match="ddsm-0.npz are missing"):
        compare(tmp_path, ["baseline", "ddsm"], [0], TOL, WIDTHS, tmp_path / "c.json")
    assert not (tmp_path / "c.json").exists()
