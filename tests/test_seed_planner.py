"""benchmarks/seed_planner.py: projected half-widths start from the run's own interval."""
from __future__ import annotations

import sys

import pytest

from segrepro.errors import SegreproError
from segrepro.evaluation.compare import compare
from tests.conftest import REPO
from tests.evaluation.test_compare import labels, save

sys.path.insert(0, str(REPO / "benchmarks"))
import seed_planner  # noqa: E402


@pytest.fixture
def three_seeds(tmp_path):
    for seed in (0, 1, 2):
        pred, gt = labels(60 + seed, n=12)
        save(tmp_path, "baseline", seed, pred, gt)
        better, _ = labels(70 + seed, n=12)
        better[:, :, :4] = gt[:, :, :4].clamp(max=3)   # right on a quarter of every image
        save(tmp_path, "sdn", seed, better, gt)
    return tmp_path


def test_the_projection_starts_from_the_runs_own_interval_and_narrows_with_seeds(three_seeds, tmp_path):
    rows = seed_planner.plan(three_seeds, ["baseline", "sdn"], [0, 1, 2], [3, 5, 10])
    result = compare(three_seeds, ["baseline", "sdn"], [0, 1, 2], tmp_path / "c.json")
    assert [r.metric for r in rows] == ["miou", "bf@3px", "trimap@4px", "boundary_iou"]
    for r in rows:
        delta = result["methods"]["sdn"][r.metric]["delta"]
        assert r.point == pytest.approx(delta["point"], abs=1e-12)
        assert r.half[3] == pytest.approx(delta["high"] - delta["point"], rel=1e-9)   # the report's interval
        assert r.half[3] > r.half[5] > r.half[10] >= r.floor >= 0
    table = seed_planner.markdown(rows)
    assert "h(3) (this run)" in table and table.count("\n| sdn |") == 4


def test_one_seed_is_refused_naming_the_command(three_seeds):
    with pytest.raises(SegreproError, match=r"at least two seeds.*base.seeds=\[0,1,2\]"):
        seed_planner.plan(three_seeds, ["baseline", "sdn"], [0], [3])
    with pytest.raises(SegreproError, match="at least 2"):
        seed_planner.plan(three_seeds, ["baseline", "sdn"], [0, 1], [1, 5])


def test_the_command_reads_the_params_file_and_names_a_one_seed_run(three_seeds, tmp_path):
    import subprocess

    text = (REPO / "params.yaml").read_text()
    seeds_line = next(line for line in text.splitlines() if line.strip().startswith("seeds:"))
    three = tmp_path / "params.yaml"
    methods_line = next(line for line in text.splitlines() if line.strip().startswith("methods:"))
    three.write_text(text.replace(seeds_line, "  seeds: [0, 1, 2]").replace(methods_line, "  methods: [baseline, sdn]"))
    command = [sys.executable, str(REPO / "benchmarks" / "seed_planner.py"), "--per-image", str(three_seeds)]
    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(command + ["--params", str(three), "--seeds", "5"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "projected from 3 seeds (0, 1, 2)" in done.stdout and "| h(3) (this run) | h(5) | floor |" in done.stdout
    one = subprocess.run(command + ["--params", str(REPO / "params.yaml")], capture_output=True, text=True, env=env)
    assert one.returncode != 0 and "seed_planner: the seed planner needs a run of at least two seeds" in one.stderr
