"""The report notebook runs on a fixture results folder and shows the right numbers."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from segrepro.errors import SegreproError
from segrepro.reporting.render import render_report
from tests.conftest import REPO

CLASSES = ["Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car",
           "Pedestrian", "Bicyclist"]


def result(method: str, seed: int, miou: float) -> dict:
    return {"method": method, "seed": seed, "classes": CLASSES, "iou": [miou] * 11, "miou": miou,
            "pixel_acc": 0.9, "mean_acc": 0.7, "test_images": 233, "input_size": [180, 240],
            "params": 12_345_678, "flops": 9_870_000_000, "latency_s": 0.05, "device": "cpu",
            "torch": "2.13.0", "backbone": "resnet18", "decoder": "fpn", "output_stride": 16,
            "epochs": 30, "crop": [160, 224], "bf_tolerances_px": [1, 3], "trimap_widths_px": [2, 8],
            "bf@1px": miou - 0.2, "bf@3px": miou - 0.1, "trimap@2px": miou - 0.3, "trimap@8px": miou - 0.15,
            "boundary_iou": miou - 0.25, "boundary_iou_dilation_px": 6}


@pytest.fixture()
def fixture_results(tmp_path: Path) -> Path:
    metrics = tmp_path / "results" / "metrics"
    metrics.mkdir(parents=True)
    for method, seed, miou in [("baseline", 0, 0.50), ("baseline", 1, 0.52), ("sdn", 0, 0.55), ("sdn", 1, 0.57)]:
        (metrics / f"{method}-{seed}.json").write_text(json.dumps(result(method, seed, miou)))
    delta = {"point": 0.05, "low": 0.031, "high": 0.069}
    comparison = {"reference": "baseline", "n_boot": 1000, "level": 0.95, "seeds": [0, 1], "methods": {
        "baseline": {"miou": {"mean": 0.51}},
        "sdn": {"miou": {"mean": 0.56, "delta": delta},
                "boundary_iou": {"mean": 0.31, "delta": {"point": -0.01, "low": -0.02, "high": 0.004}}}}}
    (tmp_path / "results" / "comparison.json").write_text(json.dumps(comparison))
    freq = {c: 1 / 11 for c in CLASSES}
    card = {"height": 24, "width": 32, "splits": {s: {"images": n, "void_fraction": 0.05, "sources_sha256": "ab" * 32,
                                                      "class_pixel_frequency": freq}
                                                  for s, n in [("train", 367), ("val", 101), ("test", 233)]}}
    processed = tmp_path / "processed"
    processed.mkdir()
    (processed / "card.json").write_text(json.dumps(card))
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 12, (6, 24, 32), dtype=np.uint8)
    np.save(processed / "test_images.npy", rng.integers(0, 255, (6, 24, 32, 3), dtype=np.uint8))
    np.save(processed / "test_labels.npy", labels)
    (processed / "test_names.txt").write_text("".join(f"frame{i}\n" for i in range(6)))
    per_image = tmp_path / "results" / "per_image"
    per_image.mkdir()
    for method in ("baseline", "sdn"):
        np.savez(per_image / f"{method}-0.npz", sample_index=np.array([0, 5]),
                 sample_pred=np.minimum(labels[[0, 5]], 10))
    live = tmp_path / "results" / "train" / "baseline-0" / "plots" / "metrics" / "val"
    live.mkdir(parents=True)
    (live / "miou.tsv").write_text("step\tmiou\n0\t0.2\n1\t0.3\n")
    return tmp_path


def params(root: Path) -> dict:
    return {"results_dir": str(root / "results"), "processed_dir": str(root / "processed"),
            "lock_path": str(root / "dvc.lock"), "params_path": str(root / "params.yaml"),
            "tables_dir": str(root / "tables"), "dataset": "camvid", "methods": ["baseline", "sdn"],
            "seeds": [0, 1], "bf_tolerances": [1, 3], "title": "Fixture report"}


def test_report_has_tables_with_the_numbers_and_embedded_plots(fixture_results):
    html = fixture_results / "report.html"
    render_report(REPO / "notebooks" / "report.ipynb", fixture_results / "report.ipynb", html,
                  params(fixture_results))
    text = html.read_text()
    assert "Fixture report" in text
    # mean ± sample std over the two seeds, in percent
    assert "51.00 ± 1.41" in text and "56.00 ± 1.41" in text
    assert "12.35" in text and "9.87" in text        # params (M), GFLOPs
    assert "+5.00 [+3.10, +6.90]" in text             # Δ mIoU with its bootstrap CI
    assert "26.00 ± 1.41" in text                     # Boundary IoU of baseline (0.26, 0.27 → mean 26.00)
    assert re.search(r'<img[^>]+src="data:image/png;base64,', text)
    assert "import seaborn" not in text               # input cells are hidden
    assert len(re.findall(r'<img[^>]+src="data:image/png;base64,', text)) >= 5   # curves, training, per-class, overlays, card
    # Claims: quoted from the abstracts, no paper number, a verdict from the CI (+3.1..+6.9 > 0).
    assert "inter-class boundary-enhanced feature" in text and "not available" in text
    assert re.search(r"Boundary IoU</td>\s*<td>-1.00 \[-2.00, \+0.40\]</td>\s*<td>inconclusive", text)
    for name in ("main", "per_class", "claims", "cost"):
        for suffix in (".csv", ".md", ".tex"):
            assert (fixture_results / "tables" / f"{name}{suffix}").is_file(), name + suffix
    assert "56.00 ± 1.41" in (fixture_results / "tables" / "main.csv").read_text()
    assert "\\begin{tabular}" in (fixture_results / "tables" / "main.tex").read_text()


def test_failing_cell_fails_the_report_and_names_it(fixture_results, tmp_path):
    (fixture_results / "results" / "metrics" / "sdn-1.json").unlink()
    html = tmp_path / "out.html"
    with pytest.raises(SegreproError, match=r"failed in cell \d+ .*sdn-1.json is missing"):
        render_report(REPO / "notebooks" / "report.ipynb", tmp_path / "out.ipynb", html, params(fixture_results))
    assert not html.exists() and not (tmp_path / "out.ipynb").exists()


def _chromium() -> str | None:
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_renders_in_headless_chromium(fixture_results, tmp_path):
    import os
    import subprocess

    from PIL import Image

    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs Debian's chromium package")
        pytest.skip("chromium not installed (apt-get install chromium)")
    html = fixture_results / "report.html"
    render_report(REPO / "notebooks" / "report.ipynb", fixture_results / "report.ipynb", html,
                  params(fixture_results))
    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars", "--window-size=1280,1600",
         f"--screenshot={shot}", html.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert shot.is_file(), proc.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float64)
    assert pixels.shape[:2] == (1600, 1280)
    # A blank page is one colour; the report has text, tables and coloured plots.
    assert pixels.std() > 20
    assert len(np.unique(pixels.reshape(-1, 3)[::7], axis=0)) > 200


def test_one_seed_never_gives_a_verdict():
    from segrepro.reporting.claims import claims_table, verdict

    assert verdict(0.01, 0.02, seeds=3) == "reproduced"
    assert verdict(-0.02, -0.01, seeds=3) == "not reproduced"
    assert verdict(-0.02, 0.01, seeds=3) == "inconclusive"
    assert verdict(0.01, 0.02, seeds=1) == "inconclusive (one seed)"
    comparison = {"seeds": [0], "methods": {"pdn": {"miou": {"delta": {"point": -0.1, "low": -0.2, "high": -0.05}}}}}
    assert claims_table(comparison)["verdict"].tolist() == ["inconclusive (one seed)"]
