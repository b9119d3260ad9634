"""The report notebook runs on a fixture results folder and shows the right numbers."""
from __future__ import annotations

import base64
import html
import io
import json
import re

import numpy as np
import pytest

from segrepro.errors import SegreproError
from segrepro.reporting.claims import ALONE, TOGETHER
from segrepro.reporting.render import render_report
from tests.conftest import REPO
from tests.reporting.fixtures import (build, fake_md5, fixture_results, img_tag, params,  # noqa: F401
                                     parse_interval, render, rendered, tables)


def test_report_has_tables_with_the_numbers_and_embedded_plots(rendered):
    root, text = rendered
    assert "Fixture report" in text
    # mean ± sample std over the two seeds, in percent, as comparison.json gives them
    assert "51.00 ± 1.41" in text and "56.00 ± 1.41" in text
    assert "12.35" in text and "9.87" in text        # params (M), GFLOPs (cost table)
    assert "+5.00 [+3.10, +6.90]" in text             # Δ mIoU with its 95% interval
    assert text.count("a paired jackknife over the test images, deleting in turn each of 6 batches") >= 2  # how, from
    # comparison.json, under the main table and the forest plot
    assert "26.00 ± 1.41" in text                     # Boundary IoU of baseline (0.25, 0.27 → mean 26.00)
    assert "import seaborn" not in text               # input cells are hidden
    # Provenance: where every result was trained (its environment class, from train_environment).
    assert "cpu-AVX2-AMD EPYC 7763 64-Core Processor (family 25, model 1) (baseline-0, baseline-1" in text
    assert len(re.findall(r'<img[^>]+src="data:image/png;base64,', text)) >= 6   # forest, curves, training, ...
    # Main table: few short columns (no cost or setting columns), so it needs no sideways scrolling.
    main = tables(text)["dataframe comparison"]
    assert main[0] == ["", "seeds", "mIoU", "Δ mIoU [95% CI]", "BF@1px", "BF@3px", "trimap mIoU@2px", "Boundary IoU"]
    assert max(len(cell) for row in main for cell in row) <= 24
    # Claims: verbatim from the abstract, no paper number, a verdict from the CI (-2.0..+0.4 contains 0).
    assert "Our SDN aims to construct a differentiable mapping from the original feature to the inter-class " \
           "boundary-enhanced feature." in text
    claims = tables(text)["dataframe claims"]
    column = claims[0].index("paper's number")
    cells = [row[column] for row in claims[1:]]
    assert cells and all(cell.startswith("not available") and not re.search(r"\d", cell) for cell in cells), cells
    # Then p, the verdict of the claim alone, p after Holm over the table's two rows (0.2 × 2) and
    # the verdict of all claims together.
    assert re.search(r"Boundary IoU</td>\s*<td>-1.00 \[-2.00, \+0.40\]</td>\s*<td>0.200</td>\s*<td>inconclusive"
                     r"</td>\s*<td>0.400</td>\s*<td>inconclusive</td>", text)
    # Cost and Provenance name the machine that evaluated and timed the runs (evaluation_environment).
    machine = "AMD EPYC 7763 64-Core Processor (family 25, model 1) (AVX2, 2 threads), torch 2.13.0"
    assert f"latency measured on {machine} (batch 1" in text
    provenance = {row[0]: row[1] for row in tables(text)["dataframe provenance"] if len(row) == 2}
    assert provenance["evaluated on (machine)"] == machine
    assert provenance["runs (method-seed)"] == "baseline-0, baseline-1, sdn-0, sdn-1"
    # dvc.lock hashes of this report's runs only: not the entries DVC left of a run no longer configured.
    hashes = tables(text)["dataframe hashes"]
    assert [row[0] for row in hashes[1:]] == ["preprocess"] + [
        f"{stage}@{key}" for key in ("baseline-0", "baseline-1", "sdn-0", "sdn-1")
        for stage in ("train", "evaluate", "evaluate")]
    assert "pdn-1" not in text
    for name in ("main", "per_class", "claims", "cost", "deltas", "delta_pivot"):
        for suffix in (".csv", ".md", ".tex"):
            assert (root / "tables" / f"{name}{suffix}").is_file(), name + suffix
    assert "56.00 ± 1.41" in (root / "tables" / "main.csv").read_text()
    assert "params (M)" not in (root / "tables" / "main.csv").read_text()
    assert "\\begin{tabular}" in (root / "tables" / "main.tex").read_text()
    # The tables say where they came from: provenance.md beside them holds the same facts, hashes and params.
    beside = (root / "tables" / "provenance.md").read_text()
    assert re.search(r"\| evaluated on \(machine\) +\| " + re.escape(machine) + r" +\|", beside)
    assert re.search(r"\| git commit +\| ([0-9a-f]{40}|unknown \(not a git checkout\))", beside)
    assert "pdn-1" not in beside
    assert re.search(r"\| train@sdn-1 +\| models/sdn-1.pt +\| " + fake_md5("sdn-1") + r" +\|", beside)
    assert "```yaml\nbase:\n  methods: [baseline, sdn]\n" in beside


def test_forest_plot_and_pivot_show_the_comparison_values(rendered):
    root, text = rendered
    tag = img_tag(text, "forest-plot")
    assert 'alt="Forest plot: ' in tag and 'src="data:image/png;base64,' in tag
    assert text.index('id="forest-plot"') < text.index("<h2 id=\"Claims")   # right after the main table
    pivot = tables(text)["dataframe pivot"]
    header = pivot[0][1:]
    assert header == ["mIoU", "BF@1px", "BF@3px", "trimap mIoU@2px", "Boundary IoU"]
    keys = ["miou", "bf@1px", "bf@3px", "trimap@2px", "boundary_iou"]
    saved = json.loads((root / "results" / "comparison.json").read_text())
    body = {row[0]: row[1:] for row in pivot[1:] if len(row) == len(pivot[0]) and row[0] != "method"}
    assert list(body) == ["SDN"]                       # the reference has no row; methods by their labels
    for key, cell in zip(keys, body["SDN"]):
        d = saved["methods"]["sdn"][key]["delta"]
        assert parse_interval(cell) == pytest.approx((d["point"] * 100, d["low"] * 100, d["high"] * 100), abs=5e-3)
    # The old every-metric list is gone; the long table is still exported for machines, with the report's
    # metric labels and the unit in its column names.
    assert "Every metric against the baseline" not in text
    deltas = (root / "tables" / "deltas.csv").read_text().splitlines()
    assert deltas[0] == "method,against,metric,Δ (pp),95% CI low (pp),95% CI high (pp),p"
    assert "SDN,baseline,mIoU,5.0,3.1,6.9,0.004" in deltas
    assert "SDN,baseline,trimap mIoU@2px,-3.0,-4.1,-1.7,0.006" in deltas
    assert not any("bf@" in line or "miou" in line for line in deltas)


def test_ablation_section_without_variants_says_how_to_produce_them(rendered):
    root, text = rendered
    assert "<h2 id=\"Ablations" in text
    assert "No ablation variant was run" in text
    shown = html.unescape(re.sub(r"<[^>]+>", "", text))   # the page's text, as a reader copies it
    assert "dvc exp run -S 'base.methods=[baseline,sdn,sdn_cdc,pdn,pdn_1layer]' report" in shown
    assert "dvc exp run -S 'base.methods=[baseline,sdn,sdn_cdc]' report" in shown       # one parent at a time
    assert "dvc exp run -S 'base.methods=[baseline,pdn,pdn_1layer]' report" in shown
    assert "ablation-forest" not in text


def test_ablation_section_with_a_variant(tmp_path):
    root = build(tmp_path, ["baseline", "sdn", "sdn_cdc"], {"sdn_cdc": "sdn"})
    text = render(root, methods=("baseline", "sdn", "sdn_cdc"))
    assert "No ablation variant was run" not in text
    assert 'alt="Forest plot: each variant of SDN minus the full SDN"' in img_tag(text, "ablation-forest-sdn")
    assert "<h3 id=\"SDN:-sdn_cdc" in text              # the parent by its label, the variant by its name
    ablation = tables(text)["dataframe ablation"]
    flat = [cell for row in ablation for cell in row]
    assert "Δ vs SDN (full) [95% CI]" in flat
    assert "SDN (full)" in flat and "sdn_cdc" in flat
    assert "53.50 ± 0.71" in flat                      # sdn_cdc mIoU: seeds 0.53, 0.54
    assert "-2.50 [-4.12, -0.93]" in flat              # the vs-parent interval from comparison.json
    # The variant is in the ablation section, not among the main methods.
    main = tables(text)["dataframe comparison"]
    assert [row[0] for row in main[1:] if row and row[0] not in ("", "method")] == ["baseline", "SDN"]
    assert "sdn_cdc" in (tmp_path / "tables" / "ablation_sdn.csv").read_text()
    # Markdown export: one column per index level, not Python tuples as row labels.
    md = (tmp_path / "tables" / "ablation_sdn.md").read_text().splitlines()
    assert [cell.strip() for cell in md[0].strip("|").split("|")][:3] == ["metric", "version", "mean ± std"]
    assert "('" not in "\n".join(md) and any(line.startswith("| mIoU") and "sdn_cdc" in line for line in md)


@pytest.mark.parametrize("breakage, match", [
    ("nan_metric", r"sdn-1.json: metric boundary_iou is nan"),
    ("missing_method", r"comparison.json: method sdn is missing; rerun `dvc repro compare`"),
    ("nan_delta", r"comparison.json: sdn miou delta is not a finite interval"),
    ("stale_seeds", r"comparison.json: it was computed for seeds \[0\], the report is for \[0, 1\]"),
])
def test_bad_input_fails_the_report_with_one_line_naming_the_file(fixture_results, tmp_path, breakage, match):
    path = fixture_results / "results" / "comparison.json"
    saved = json.loads(path.read_text())
    if breakage == "nan_metric":
        metrics = fixture_results / "results" / "metrics" / "sdn-1.json"
        metrics.write_text(json.dumps({**json.loads(metrics.read_text()), "boundary_iou": float("nan")}))
    elif breakage == "missing_method":
        del saved["methods"]["sdn"]
    elif breakage == "nan_delta":
        saved["methods"]["sdn"]["miou"]["delta"]["low"] = float("nan")
    else:
        saved["seeds"] = [0]
    path.write_text(json.dumps(saved))
    html = tmp_path / "out.html"
    with pytest.raises(SegreproError, match=r"failed in cell \d+ .*" + match) as info:
        render_report(REPO / "notebooks" / "report.ipynb", tmp_path / "out.ipynb", html, params(fixture_results))
    assert "\n" not in str(info.value)
    assert not html.exists()


@pytest.mark.parametrize("p, problem", [(None, "no p-value"), (1.5, "no p-value"), (float("nan"), "no p-value")])
def test_a_comparison_without_valid_p_values_is_refused(fixture_results, p, problem):
    # A comparison.json of the compare before p-values (or a damaged one): refused, naming the fix.
    from segrepro.reporting.results import load_comparison

    path = fixture_results / "results" / "comparison.json"
    saved = json.loads(path.read_text())
    delta = saved["methods"]["sdn"]["bf@1px"]["delta"]
    if p is None:
        del delta["p"]
    else:
        delta["p"] = p
    path.write_text(json.dumps(saved))
    with pytest.raises(SegreproError, match=problem + r".*rerun `dvc repro compare`"):
        load_comparison(path, ["baseline", "sdn"], [0, 1])


def test_a_comparison_of_the_bootstrap_compare_is_refused(fixture_results):
    # comparison.json as the block-bootstrap compare wrote it (n_boot and frame_block, no batches):
    # its intervals are too narrow for frames this correlated, so the report refuses to read them.
    from segrepro.reporting.results import load_comparison

    path = fixture_results / "results" / "comparison.json"
    saved = json.loads(path.read_text())
    del saved["batches"]
    saved.update(n_boot=1000, frame_block=8)
    path.write_text(json.dumps(saved))
    with pytest.raises(SegreproError, match=r"keys batches are missing \(written by an older compare\); "
                                            r"rerun `dvc repro compare`"):
        load_comparison(path, ["baseline", "sdn"], [0, 1])


@pytest.mark.parametrize("environment, match", [
    (None, "key evaluation_environment is missing"),
    ({"torch": "2.13.0", "device": "cpu"}, "evaluation_environment lacks cpu_capability, cpu_model, gpu, cuda, threads"),
])
def test_results_without_the_evaluating_machine_are_refused(fixture_results, environment, match):
    from segrepro.reporting.results import load_results

    path = fixture_results / "results" / "metrics" / "sdn-1.json"
    row = json.loads(path.read_text())
    if environment is None:
        del row["evaluation_environment"]
    else:
        row["evaluation_environment"] = environment
    path.write_text(json.dumps(row))
    with pytest.raises(SegreproError) as info:
        load_results(fixture_results / "results" / "metrics", ["baseline", "sdn"], [0, 1])
    assert str(info.value) == f"results file {path}: {match} (written by an older evaluate); rerun evaluate@sdn-1"


def test_missing_data_is_one_line_before_the_kernel_starts(params_file, tmp_path, capsys):
    from segrepro import cli

    out = tmp_path / "out"
    code = cli.main(["report", "--params", str(params_file),
                     "--results", str(tmp_path / "results"), "--data", str(tmp_path / "nowhere"),
                     "--tables", str(out / "tables"), "--out", str(out / "r.html"), "--executed", str(out / "r.ipynb")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"segrepro report: error: dataset card {tmp_path / 'nowhere' / 'card.json'} is "
                                 "missing; pass --data the processed folder (`dvc repro preprocess` writes "
                                 "data/processed)"]
    assert not out.exists()


def test_failing_cell_fails_the_report_and_names_it(fixture_results, tmp_path):
    (fixture_results / "results" / "metrics" / "sdn-1.json").unlink()
    html = tmp_path / "out.html"
    with pytest.raises(SegreproError, match=r"failed in cell \d+ .*sdn-1.json is missing"):
        render_report(REPO / "notebooks" / "report.ipynb", tmp_path / "out.ipynb", html, params(fixture_results))
    assert not html.exists() and not (tmp_path / "out.ipynb").exists()


def test_claims_are_verbatim_quotations_from_methods_md():
    from segrepro.reporting.claims import CLAIMS

    doc = REPO.parent / "shared" / "docs" / "methods.md"
    if not doc.is_file():
        pytest.skip(f"{doc} not found (the shared docs sit beside the checkout)")
    text = " ".join(re.sub(r"^>\s?", "", line) for line in doc.read_text().splitlines())
    text = re.sub(r"\s+", " ", text)
    for claim in CLAIMS:
        assert claim.quote in text, claim.quote


def _chromium() -> str | None:
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_renders_in_headless_chromium(rendered, tmp_path):
    import os
    import subprocess

    from PIL import Image

    from segrepro.reporting.forest import ABOVE, BELOW

    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs Debian's chromium package")
        pytest.skip("chromium not installed (apt-get install chromium)")
    root, text = rendered
    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars", "--window-size=1280,1600",
         f"--screenshot={shot}", (root / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120)
    assert shot.is_file(), proc.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float64)
    assert pixels.shape[:2] == (1600, 1280)
    # A blank page is one colour; the report has text, tables and coloured plots.
    assert pixels.std() > 20
    assert len(np.unique(pixels.reshape(-1, 3)[::7], axis=0)) > 200

    # The screenshot covers the forest plot: its interval colours (used by no other figure) are on screen
    # in about the amount the embedded image itself holds.
    def count(image: np.ndarray, colour: str) -> int:
        rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.float64)
        return int((np.abs(image - rgb).max(-1) < 12).sum())

    encoded = re.search(r'src="data:image/png;base64,([^"]+)"', img_tag(text, "forest-plot")).group(1)
    forest = np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))).convert("RGB"), dtype=np.float64)
    for colour in (ABOVE, BELOW):
        assert count(forest, colour) > 100, colour
        assert count(pixels, colour) > 0.5 * count(forest, colour), colour


def test_one_seed_never_gives_a_verdict():
    from segrepro.reporting.claims import claims_table, verdict

    assert verdict(0.01, 0.02, seeds=3) == "reproduced"
    assert verdict(-0.02, -0.01, seeds=3) == "not reproduced"
    assert verdict(-0.02, 0.01, seeds=3) == "inconclusive"
    assert verdict(0.01, 0.02, seeds=1) == "inconclusive (one seed)"
    # Two seeds flipped verdicts between two CPUs' rounding (claims docstring): provisional.
    assert verdict(0.01, 0.02, seeds=2) == "reproduced (two seeds: provisional)"
    assert verdict(-0.02, -0.01, seeds=2) == "not reproduced (two seeds: provisional)"
    assert verdict(-0.02, 0.01, seeds=2) == "inconclusive"
    comparison = {"seeds": [0], "metrics": ["miou"],
                  "methods": {"pdn": {"miou": {"delta": {"point": -0.1, "low": -0.2, "high": -0.05, "p": 0.001}}}}}
    table = claims_table(comparison)
    assert table[ALONE].tolist() == table[TOGETHER].tolist() == ["inconclusive (one seed)"]


def test_claims_read_together_are_adjusted_by_holm():
    from segrepro.reporting.claims import claims_table

    def delta(point, p):   # an interval consistent with p: it leaves 0 out exactly when p <= 0.05
        half = abs(point) * (0.5 if p <= 0.05 else 2.0)
        return {"delta": {"point": point, "low": point - half, "high": point + half, "p": p}}

    p_values = {("sdn", "bf@2px"): (0.01, 0.03), ("sdn", "boundary_iou"): (0.002, 0.4),
                ("ddsm", "bf@2px"): (-0.01, 0.004), ("ddsm", "boundary_iou"): (0.003, 0.6),
                ("ddsm", "miou"): (0.001, 0.7), ("pdn", "miou"): (0.006, 0.02)}
    methods = {m: {k: delta(*v) for (mm, k), v in p_values.items() if mm == m} for m in ("sdn", "ddsm", "pdn")}
    table = claims_table({"seeds": [0, 1, 2], "metrics": ["miou", "bf@2px", "boundary_iou"], "methods": methods})
    by_row = {(r["method"], r["metric"]): r for r in table.to_dict("records")}
    assert len(by_row) == 6 and "p, Holm over 6" in table.columns
    # Alone, three rows clear 0.05. Together, Holm: 0.004 × 6 = 0.024 (passes), then 0.02 × 5 = 0.10
    # (fails) and every larger p fails too.
    assert by_row["SDN", "BF@2px"][ALONE] == "reproduced" and by_row["SDN", "BF@2px"][TOGETHER] == "inconclusive"
    assert by_row["PDN", "mIoU"][ALONE] == "reproduced" and by_row["PDN", "mIoU"][TOGETHER] == "inconclusive"
    assert by_row["DDSM", "BF@2px"][ALONE] == by_row["DDSM", "BF@2px"][TOGETHER] == "not reproduced"
    assert by_row["DDSM", "BF@2px"]["p"] == "0.004" and by_row["DDSM", "BF@2px"]["p, Holm over 6"] == "0.024"
    assert by_row["PDN", "mIoU"]["p, Holm over 6"] == "0.100"
    assert all(by_row[k][ALONE] == by_row[k][TOGETHER] == "inconclusive" for k in
               [("SDN", "Boundary IoU"), ("DDSM", "Boundary IoU"), ("DDSM", "mIoU")])
    # A p below 0.001 is shown as a bound.
    tiny = claims_table({"seeds": [0, 1, 2], "metrics": ["miou"], "methods": {"pdn": {"miou": delta(0.006, 1e-12)}}})
    assert tiny["p"].tolist() == tiny["p, Holm over 1"].tolist() == ["< 0.001"]
    # Two seeds: both readings carry the provisional mark.
    two = claims_table({"seeds": [0, 1], "metrics": ["miou", "bf@2px", "boundary_iou"], "methods": methods})
    assert set(two[TOGETHER]) == {"not reproduced (two seeds: provisional)", "inconclusive"}


def test_a_run_of_fewer_than_three_seeds_names_the_command_for_plain_verdicts(rendered):
    from segrepro.reporting.claims import more_seeds_advice

    one = more_seeds_advice([0])
    assert "`dvc exp run -S 'base.seeds=[0,1,2]' report`" in one and "2× this run's training time" in one
    assert "'base.seeds=[5,6,7]'" in more_seeds_advice([5])        # new seeds follow the run's own
    assert "0.5× this run's training time" in more_seeds_advice([1, 0])
    assert "seed_planner" not in one                                 # one seed shows no spread to project
    assert more_seeds_advice([0, 1, 2]).startswith("How many seeds each claim would need")
    text = rendered[1]                                                 # the fixture has seeds 0 and 1
    assert "This run trained 2 seeds (0, 1)" in text and "base.seeds=[0,1,2]" in text
    assert "benchmarks/seed_planner.py" in text


def test_failed_report_leaves_no_tables_and_a_title_is_escaped(fixture_results, tmp_path, capfd):
    """The report's outputs appear as a set or not at all; params are shown as text, never run as markup;
    a report that succeeds writes nothing to stderr (the stage's error line goes there, and the kernel
    inherits it: its start-up warning went there)."""
    work = tmp_path / "report-outputs"
    work.mkdir()
    html_out, tables_dir = work / "out.html", work / "tables"
    settings = dict(params(fixture_results), tables_dir=str(tables_dir), title="<script>alert(1)</script> & co")
    comparison = fixture_results / "results" / "comparison.json"
    good = comparison.read_text()
    comparison.write_text("{ not json")
    try:
        with pytest.raises(SegreproError, match="failed in cell"):
            render_report(REPO / "notebooks" / "report.ipynb", work / "out.ipynb", html_out, settings)
        assert sorted(p.name for p in work.iterdir()) == []   # no tables, notebook, HTML or scratch
    finally:
        comparison.write_text(good)
    capfd.readouterr()
    render_report(REPO / "notebooks" / "report.ipynb", work / "out.ipynb", html_out, settings)
    assert capfd.readouterr().err == ""
    text = html_out.read_text()
    assert "<script>alert(1)</script>" not in text
    heading = re.search(r"<h1[^>]*>(.*?)<", text).group(1)
    assert html.unescape(heading) == "<script>alert(1)</script> & co"   # shown as the text it is
    assert (tables_dir / "main.csv").is_file() and (tables_dir / ".segrepro-output").is_file()
