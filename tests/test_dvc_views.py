"""dvc.yaml's top-level ``plots`` and ``metrics`` show what the pipeline writes, without warnings.

Runs the real ``dvc plots show`` / ``dvc metrics show`` on files written the way the
stages write them: DVCLive (as ``training.stage`` calls it) and ``compare``'s summary.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from segrepro import layout
from segrepro.evaluation.compare import summarize_comparison

REPO = Path(__file__).resolve().parents[1]
DVC = Path(sys.executable).parent / "dvc"


def _dvc(args: list[str], cwd: Path) -> dict:
    proc = subprocess.run([str(DVC), *args, "--json"], cwd=cwd, capture_output=True, text=True, check=True)
    assert "WARNING" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture()
def views_repo(tmp_path: Path) -> tuple[Path, list[str]]:
    """A git + DVC repository with this dvc.yaml and params.yaml, and, for every run, DVCLive's
    files written as train writes them, plus a compare summary; no stage is run."""
    if not DVC.is_file():
        pytest.skip("dvc is not installed beside this Python")
    from dvclive import Live

    for name in ("dvc.yaml", "params.yaml"):
        (tmp_path / name).write_text((REPO / name).read_text())
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([str(DVC), "init", "-q"], cwd=tmp_path, check=True)
    base = yaml.safe_load((REPO / "params.yaml").read_text())["base"]
    keys = layout.run_keys(base["methods"], base["seeds"])
    for key in keys:
        with Live(str(tmp_path / layout.live_dir(key)), dvcyaml=False, save_dvc_exp=False, report=None) as live:
            for epoch in range(3):
                live.log_metric("train/loss", 2.0 - epoch / 2)
                if epoch == 2:
                    live.log_metric("val/miou", 0.3)
                live.next_step()
    names = ["miou", "bf@1px", "bf@2px", "trimap@2px", "trimap@4px", "boundary_iou"]
    delta = {"point": 0.01, "low": -0.01, "high": 0.03, "p": 0.4}
    comparison = {"metrics": names, "methods": {"baseline": {m: {"mean": 0.3} for m in names},
                                                "sdn": {m: {"mean": 0.31, "delta": delta} for m in names}}}
    (tmp_path / layout.SUMMARY).write_text(json.dumps(summarize_comparison(comparison)))
    return tmp_path, keys


def test_plots_find_the_fields_dvclive_writes(views_repo):
    root, keys = views_repo
    shown = _dvc(["plots", "show"], root)
    assert not shown.get("errors"), shown.get("errors")
    curves = {name: plots[0]["content"]["encoding"] | plots[0]["content"]["layer"][0]["encoding"]
              for name, plots in shown["data"].items()}
    assert len(keys) >= 2 and len(shown["data"]) == 2 * len(keys)   # every run's two curves, one view
    for key in keys:
        loss = (layout.live_plots(key) / "train" / "loss.tsv").as_posix()
        miou = (layout.live_plots(key) / "val" / "miou.tsv").as_posix()
        assert curves[loss]["y"]["field"] == "loss" and curves[miou]["y"]["field"] == "miou"
        assert curves[loss]["x"]["field"] == "step"
    values = shown["data"][loss][0]["content"]["data"]["values"]
    assert [float(v["loss"]) for v in values] == [2.0, 1.5, 1.0]


def test_metrics_are_the_compact_summary(views_repo):
    shown = _dvc(["metrics", "show"], views_repo[0])
    (data,) = shown.values()
    summary = data["data"][layout.SUMMARY.as_posix()]["data"]
    assert set(summary) == {"baseline", "sdn"}
    assert set(summary["sdn"]) == {"miou", "bf@2px", "trimap@4px", "boundary_iou"}   # headline metrics only
    assert summary["sdn"]["miou"] == {"mean": 0.31, "delta": 0.01, "low": -0.01, "high": 0.03, "p": 0.4}
    assert summary["baseline"]["miou"] == {"mean": 0.3}
