"""Quality reducers agree with the plain metrics; compare writes mean ± std and 95% intervals."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from segrepro.errors import SegreproError
from segrepro.evaluation.compare import FRAME_BATCH, compare, load_run
from segrepro.metrics.registry import describe, per_image_stats, summarize
from segrepro.metrics.confusion import confusion_matrix, scores
from segrepro.metrics.stats import describe_interval

TOL, WIDTHS, CLASSES = (1, 3), (2, 4), ("road", "sky", "car", "tree")


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
    np.savez(tmp_path / f"{method}-{seed}.npz", names=np.array([f"0001TP_{30 * i:06d}" for i in range(len(gt))]), **stats,
             **describe(TOL, WIDTHS, CLASSES))


def test_compare_identical_methods_gives_zero_interval(tmp_path):
    for seed in (0, 1):
        pred, gt = labels(seed)
        save(tmp_path, "baseline", seed, pred, gt)
        save(tmp_path, "sdn", seed, pred, gt)
    out = tmp_path / "comparison.json"
    compare(tmp_path, ["baseline", "sdn"], [0, 1], out)
    saved = json.loads(out.read_text())
    for metric, entry in saved["methods"]["sdn"].items():
        # No difference anywhere: no level excludes 0, so p is 1.
        assert entry["delta"] == {"point": 0.0, "low": 0.0, "high": 0.0, "p": 1.0}, metric
        assert entry["std"] is not None
    assert "delta" not in saved["methods"]["baseline"]["miou"]
    # The artefact says how its intervals were made: the test images as frames of one video here.
    assert saved["interval"] == describe_interval(2, 2, sequences=1, frame_batch=FRAME_BATCH)
    assert saved["sequences"] == {"0001TP": len(gt)} and saved["frame_batch"] == FRAME_BATCH
    assert saved["batches"] == 2   # a short video is still cut in two


def test_compare_detects_a_better_method(tmp_path):
    pred, gt = labels(3, n=12)
    save(tmp_path, "baseline", 0, pred, gt)
    save(tmp_path, "pdn", 0, gt.clamp(max=3), gt)  # perfect predictions
    result = compare(tmp_path, ["baseline", "pdn"], [0], tmp_path / "c.json")
    delta = result["methods"]["pdn"]["miou"]["delta"]
    assert 0 < delta["low"] <= delta["point"] <= delta["high"]
    assert delta["p"] <= 0.05   # the 95% interval leaves 0 out: the inverted interval agrees
    assert result["methods"]["pdn"]["miou"]["std"] is None   # one seed: no spread to report


def test_missing_statistics_are_named(tmp_path):
    pred, gt = labels(0)
    save(tmp_path, "baseline", 0, pred, gt)
    with pytest.raises(SegreproError, match="ddsm-0.npz are missing"):
        compare(tmp_path, ["baseline", "ddsm"], [0], tmp_path / "c.json")
    assert not (tmp_path / "c.json").exists()


def _cut(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _flip_data_byte(data: bytes) -> bytes:
    """A byte of the stored arrays changed: the zip member's CRC no longer matches."""
    out = bytearray(data)
    out[len(out) // 3] ^= 0x10
    return bytes(out)


def _unknown_method(data: bytes) -> bytes:
    """The first member's compression method (central directory) set to one zipfile does not know."""
    out = bytearray(data)
    at = out.index(b"PK\x01\x02") + 10
    out[at:at + 2] = (99).to_bytes(2, "little")
    return bytes(out)


@pytest.mark.parametrize("damage", [lambda data: b"", _cut, _flip_data_byte, _unknown_method],
                         ids=["empty", "truncated", "flipped-byte", "unknown-zip-method"])
def test_corrupt_statistics_are_named(tmp_path, damage):
    pred, gt = labels(0)
    save(tmp_path, "baseline", 0, pred, gt)
    path = tmp_path / "baseline-0.npz"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(SegreproError, match=f"per-image statistics {path} are corrupt \\(.+\\); rerun evaluate$"):
        compare(tmp_path, ["baseline"], [0], tmp_path / "c.json")
    assert not (tmp_path / "c.json").exists()


def test_variant_gets_its_interval_against_the_parent(tmp_path):
    """A variant predicting exactly what the baseline predicts, of a perfect parent: every answer is known."""
    for seed in (0, 1):
        pred, gt = labels(10 + seed, n=10)
        save(tmp_path, "baseline", seed, pred, gt)
        save(tmp_path, "sdn", seed, gt.clamp(max=3), gt)   # the full module: perfect
        save(tmp_path, "sdn_cdc", seed, pred, gt)           # the ablation: no better than the baseline
        save(tmp_path, "pdn_1layer", seed, pred, gt)        # a variant whose parent is not run
    out = tmp_path / "c.json"
    compare(tmp_path, ["baseline", "sdn", "sdn_cdc", "pdn_1layer"], [0, 1], out,
            parents={"sdn_cdc": "sdn", "pdn_1layer": "pdn", "sdn": "sdn"})
    saved = json.loads(out.read_text())
    assert saved["variants"] == {"sdn_cdc": "sdn", "pdn_1layer": "pdn"}
    assert list(saved["vs_parent"]) == ["sdn_cdc"]           # pdn is not in the run: no interval against it
    vs = saved["vs_parent"]["sdn_cdc"]
    assert vs["parent"] == "sdn"
    assert saved["metrics"] == ["miou", "bf@1px", "bf@3px", "trimap@2px", "trimap@4px", "boundary_iou"]
    for metric in saved["metrics"]:
        full = saved["methods"]["sdn"][metric]
        variant = saved["methods"]["sdn_cdc"][metric]
        assert variant["delta"] == {"point": 0.0, "low": 0.0, "high": 0.0, "p": 1.0}, metric   # = the baseline
        # variant − parent is baseline − sdn resample by resample: the mirror image of sdn's interval
        assert vs[metric]["point"] == pytest.approx(variant["mean"] - full["mean"], abs=1e-12)
        assert vs[metric]["point"] == pytest.approx(-full["delta"]["point"], abs=1e-12)
        assert vs[metric]["low"] == pytest.approx(-full["delta"]["high"], abs=1e-12)
        assert vs[metric]["high"] == pytest.approx(-full["delta"]["low"], abs=1e-12)
        assert vs[metric]["p"] == pytest.approx(full["delta"]["p"], abs=1e-9)   # the same test, mirrored
    assert vs["miou"]["high"] < 0 < full["mean"]             # the ablation loses against the perfect parent


def test_no_parents_means_no_variants_and_bad_parents_are_named(tmp_path):
    pred, gt = labels(0)
    for method in ("baseline", "sdn", "sdn_cdc"):
        save(tmp_path, method, 0, pred, gt)
    result = compare(tmp_path, ["baseline", "sdn"], [0], tmp_path / "c.json")
    assert result["variants"] == {} and result["vs_parent"] == {}
    with pytest.raises(SegreproError, match="parents for ddsm_spatial, which are not in base.methods"):
        compare(tmp_path, ["baseline", "sdn"], [0], tmp_path / "d.json",
                parents={"ddsm_spatial": "ddsm"})
    with pytest.raises(SegreproError, match="sdn_cdc name another variant"):
        compare(tmp_path, ["baseline", "sdn", "sdn_cdc"], [0], tmp_path / "d.json",
                parents={"sdn": "baseline", "sdn_cdc": "sdn"})
    assert not (tmp_path / "d.json").exists()


def test_compare_output_is_what_the_report_reads(tmp_path):
    """The report's validator accepts compare's file, and its tables show compare's numbers."""
    from segrepro.reporting.ablations import ablation_table
    from segrepro.reporting.forest import delta_pivot, intervals_vs_reference
    from segrepro.reporting.results import load_comparison, main_metrics

    methods = ["baseline", "pdn", "pdn_3layer"]
    for seed in (0, 1):
        pred, gt = labels(20 + seed, n=8)
        for i, method in enumerate(methods):
            noisy = pred.clone()
            noisy[:, :, : 4 * i] = 0                       # each method a little different
            save(tmp_path, method, seed, noisy, gt)
    out = tmp_path / "comparison.json"
    compare(tmp_path, methods, [0, 1], out, parents={"pdn_3layer": "pdn"})
    comparison = load_comparison(out, methods, [0, 1])
    metrics = main_metrics(comparison, [3])
    assert metrics == ["miou", "bf@3px", "trimap@4px", "boundary_iou"]
    pivot = delta_pivot(intervals_vs_reference(comparison, ["pdn"]), metrics)
    d = comparison["methods"]["pdn"]["boundary_iou"]["delta"]
    assert pivot.loc["PDN", "Boundary IoU"] == f"{d['point'] * 100:+.2f} [{d['low'] * 100:+.2f}, {d['high'] * 100:+.2f}]"
    table = ablation_table(comparison, "pdn", ["pdn_3layer"], metrics)
    v = comparison["vs_parent"]["pdn_3layer"]["miou"]
    assert table.loc[("mIoU", "pdn_3layer")].iloc[1] == f"{v['point'] * 100:+.2f} [{v['low'] * 100:+.2f}, {v['high'] * 100:+.2f}]"
    with pytest.raises(SegreproError, match="comparison.json: method ddsm is missing"):
        load_comparison(out, ["baseline", "ddsm"], [0, 1])


def test_compare_refuses_files_made_with_other_tolerances_or_classes(tmp_path):
    """A per-image file describes its columns; compare never pairs columns of different meaning."""
    pred, gt = labels(5)
    save(tmp_path, "baseline", 0, pred, gt)
    stats = per_image_stats(pred, gt, 4, 4, (1, 2), WIDTHS, 0.05)
    names = np.array([f"0001TP_{30 * i:06d}" for i in range(len(gt))])
    np.savez(tmp_path / "sdn-0.npz", names=names, **stats, **describe((1, 2), WIDTHS, CLASSES))
    with pytest.raises(SegreproError, match=r"sdn-0.npz and .*baseline-0.npz were made with different "
                                            r"bf_tolerances_px \(\[1, 2\] vs \[1, 3\]\)"):
        compare(tmp_path, ["baseline", "sdn"], [0], tmp_path / "c.json")
    save(tmp_path, "sdn", 0, pred, gt)
    stats = per_image_stats(pred, gt, 4, 4, TOL, WIDTHS, 0.05)
    np.savez(tmp_path / "pdn-0.npz", names=names, **stats, **describe(TOL, WIDTHS, CLASSES[::-1]))
    with pytest.raises(SegreproError, match="different classes"):
        compare(tmp_path, ["baseline", "sdn", "pdn"], [0], tmp_path / "c.json")
    np.savez(tmp_path / "pdn-0.npz", names=names, **stats)   # an older evaluate: no description
    with pytest.raises(SegreproError, match="do not record bf_tolerances_px, trimap_widths_px, classes"):
        compare(tmp_path, ["baseline", "pdn"], [0], tmp_path / "c.json")
    assert not (tmp_path / "c.json").exists()
    result = compare(tmp_path, ["baseline", "sdn"], [0], tmp_path / "c.json")
    assert (result["bf_tolerances_px"], result["trimap_widths_px"], result["classes"]) == ([1, 3], [2, 4], list(CLASSES))
    assert result["metrics"] == ["miou", "bf@1px", "bf@3px", "trimap@2px", "trimap@4px", "boundary_iou"]


def test_summary_is_the_comparison_headline(tmp_path):
    """The pipeline's DVC metrics file: per method the headline metrics' mean, Δ and CI, copied."""
    for seed in (0, 1):
        pred, gt = labels(40 + seed)
        save(tmp_path, "baseline", seed, pred, gt)
        save(tmp_path, "sdn", seed, pred.flip(-1), gt)
    summary_path = tmp_path / "summary.json"
    result = compare(tmp_path, ["baseline", "sdn"], [0, 1], tmp_path / "c.json", summary_out=summary_path)
    summary = json.loads(summary_path.read_text())
    assert set(summary["sdn"]) == {"miou", "bf@3px", "trimap@4px", "boundary_iou"}   # BF ≥ 2 px, trimap 4 px
    for metric, entry in summary["sdn"].items():
        full = result["methods"]["sdn"][metric]
        assert entry == {"mean": full["mean"], "delta": full["delta"]["point"], "low": full["delta"]["low"],
                         "high": full["delta"]["high"], "p": full["delta"]["p"]}
    assert summary["baseline"]["miou"] == {"mean": result["methods"]["baseline"]["miou"]["mean"]}


def test_test_images_are_grouped_into_their_videos_and_unplaceable_names_refused(tmp_path):
    pred, gt = labels(4, n=6)
    stats = {**per_image_stats(pred, gt, 4, 4, TOL, WIDTHS, 0.05), **describe(TOL, WIDTHS, CLASSES)}

    def save_named(names: list[str]) -> None:
        for method in ("baseline", "ddsm"):
            np.savez(tmp_path / f"{method}-0.npz", names=np.array(names), **stats)

    save_named(["Seq05VD_f00060", "0001TP_008580", "Seq05VD_f00000", "0001TP_008550", "Seq05VD_f00030",
                "0001TP_008610"])
    result = compare(tmp_path, ["baseline", "ddsm"], [0], tmp_path / "c.json")
    assert result["sequences"] == {"0001TP": 3, "Seq05VD": 3}
    save_named([f"frame{i}" for i in range(6)])
    with pytest.raises(SegreproError, match=r"frame0, frame1, frame2 are not <sequence>_<frame>.*preprocess"):
        compare(tmp_path, ["baseline", "ddsm"], [0], tmp_path / "d.json")
    assert not (tmp_path / "d.json").exists()


def test_methods_evaluated_on_other_test_images_are_refused_by_every_reader(tmp_path):
    """compare, the seed planner and the fitted coverage benchmark all read through load_run."""
    pred, gt = labels(5, n=6)
    stats = {**per_image_stats(pred, gt, 4, 4, TOL, WIDTHS, 0.05), **describe(TOL, WIDTHS, CLASSES)}
    frames = [f"0001TP_{30 * i:06d}" for i in range(6)]
    np.savez(tmp_path / "baseline-0.npz", names=np.array(frames), **stats)
    np.savez(tmp_path / "sdn-0.npz", names=np.array(frames[:5] + ["0001TP_009999"]), **stats)
    with pytest.raises(SegreproError, match=r"sdn and baseline were evaluated on different test images; rerun "
                                            r"evaluate .*`dvc repro`"):
        load_run(tmp_path, ["baseline", "sdn"], [0])
    with pytest.raises(SegreproError, match="different test images"):
        compare(tmp_path, ["baseline", "sdn"], [0], tmp_path / "c.json")
    assert not (tmp_path / "c.json").exists()
    run = load_run(tmp_path, ["baseline"], [0])
    assert list(run.sequences) == ["0001TP"] and run.videos[0].tolist() == list(range(6))
    assert [m.name for m in run.registry][0] == "miou" and run.stats["baseline"]["bf"].shape[:2] == (1, 6)


def test_the_command_writes_its_summary_beside_its_comparison(tmp_path, monkeypatch):
    """A side run (`segrepro compare --out elsewhere`) leaves the pipeline's results/summary.json alone;
    the pipeline's own --out (layout.COMPARISON) still puts the summary at layout.SUMMARY."""
    from segrepro import layout
    from segrepro.cli import main
    from tests.conftest import params_for_run

    per_image = tmp_path / "per_image"
    per_image.mkdir()
    for seed in (0, 1):
        pred, gt = labels(80 + seed, n=6)
        save(per_image, "baseline", seed, pred, gt)
        save(per_image, "sdn", seed, *labels(90 + seed, n=6))
    params = params_for_run(tmp_path / "params.yaml", "[0, 1]")
    monkeypatch.chdir(tmp_path)

    main(["compare", "--params", str(params), "--per-image", str(per_image), "--out", "side/c.json"])
    assert (tmp_path / "side" / "summary.json").is_file() and not (tmp_path / layout.SUMMARY).exists()
    main(["compare", "--params", str(params), "--per-image", str(per_image), "--out", str(layout.COMPARISON)])
    summary = json.loads((tmp_path / layout.SUMMARY).read_text())
    assert summary == json.loads((tmp_path / "side" / "summary.json").read_text()) and "sdn" in summary
