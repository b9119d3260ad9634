"""benchmarks/seed_planner.py: projected half-widths start from the run's own interval."""
from __future__ import annotations

import sys

import pytest

from segrepro.errors import SegreproError
from segrepro.evaluation.compare import compare
from tests.conftest import REPO, params_for_run
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
    assert "h(3) (this run)" in table and table.count("\n| SDN |") == 4
    assert all(line.count("|") == table.splitlines()[0].count("|") for line in table.splitlines())  # no split cell


def test_one_seed_is_refused_naming_the_command(three_seeds):
    with pytest.raises(SegreproError, match=r"at least two seeds.*base.seeds=\[0,1,2\]"):
        seed_planner.plan(three_seeds, ["baseline", "sdn"], [0], [3])
    with pytest.raises(SegreproError, match="at least 2"):
        seed_planner.plan(three_seeds, ["baseline", "sdn"], [0, 1], [1, 5])


def test_the_command_reads_the_params_file_and_names_a_one_seed_run(three_seeds, tmp_path):
    import subprocess

    three = params_for_run(tmp_path / "params.yaml", "[0, 1, 2]")
    command = [sys.executable, str(REPO / "benchmarks" / "seed_planner.py"), "--per-image", str(three_seeds)]
    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(command + ["--params", str(three), "--seeds", "5"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "projected from 3 seeds (0, 1, 2)" in done.stdout and "| h(3) (this run) | h(5) | floor |" in done.stdout
    assert "\n| SDN | mIoU | " in done.stdout and "\n| SDN | Boundary IoU | " in done.stdout   # labels, not code names
    one = subprocess.run(command + ["--params", str(REPO / "params.yaml")], capture_output=True, text=True, env=env)
    assert one.returncode != 0 and "seed_planner: the seed planner needs a run of at least two seeds" in one.stderr


def test_seeds_needed_is_the_first_count_whose_half_width_reaches_the_point(three_seeds):
    for r in seed_planner.plan(three_seeds, ["baseline", "sdn"], [0, 1, 2], [5]):
        target = abs(r.point)
        assert r.floor == seed_planner.image_floor(r.image_se, r.batches)
        for needed, sd in ((r.needed, r.seed_sd), (r.needed_cautious, seed_planner.cautious_sd(r.seed_sd, 3))):
            if needed == seed_planner.NEVER:           # the image part alone is as wide as the point, or wider
                assert r.floor >= target
                continue
            if needed == seed_planner.BEYOND_LIMIT:
                assert r.floor < target
                assert seed_planner.half_width(seed_planner.SEARCH_LIMIT, sd, r.image_se, r.batches) > target
                continue
            assert seed_planner.half_width(needed, sd, r.image_se, r.batches) <= target
            if needed > 2:
                assert seed_planner.half_width(needed - 1, sd, r.image_se, r.batches) > target
        if isinstance(r.needed, int) and isinstance(r.needed_cautious, int):
            assert r.needed_cautious >= r.needed        # a wider seed spread never needs fewer seeds
        elif r.needed == seed_planner.NEVER:
            assert r.needed_cautious == seed_planner.NEVER  # the floor does not depend on the seed spread
        else:
            assert isinstance(r.needed_cautious, str)   # the cautious plan can only be the harder one


def test_the_cautious_spread_is_the_chi_square_upper_bound():
    from scipy.stats import chi2

    assert seed_planner.cautious_sd(1.0, 3) == pytest.approx((2 / chi2.ppf(0.10, 2)) ** 0.5)
    assert seed_planner.cautious_sd(1.0, 3) == pytest.approx(3.08, abs=0.01)       # the docstring's 3.1
    assert seed_planner.cautious_sd(1.0, 8) == pytest.approx(1.57, abs=0.01)       # and its 1.6
    assert seed_planner.cautious_sd(0.5, 8) == pytest.approx(0.5 * seed_planner.cautious_sd(1.0, 8))


def test_a_point_under_the_floor_is_never_reached():
    assert seed_planner.image_floor(0.01, 10) == pytest.approx(0.0226, abs=1e-4)      # t_9 · se
    assert seed_planner.seeds_needed(0.01, seed_sd=0.02, image_se=0.01, batches=10) == "never"
    assert seed_planner.seeds_needed(0.05, seed_sd=0.0, image_se=0.01, batches=10) == 2
    k = seed_planner.seeds_needed(0.03, seed_sd=0.02, image_se=0.01, batches=10)
    assert isinstance(k, int) and k > 2


def test_a_point_just_over_the_floor_is_beyond_the_search_limit():
    floor = seed_planner.image_floor(0.01, 10)
    assert seed_planner.seeds_needed(floor + 1e-6, seed_sd=0.5, image_se=0.01, batches=10) == "> 1000"
    assert seed_planner.seeds_needed(floor + 1e-6, seed_sd=0.0, image_se=0.01, batches=10) == 2
