"""benchmarks/bench_interval_fitted.py: the parts it measures are the parts a run was made of."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from segrepro.errors import SegreproError
from segrepro.metrics.registry import metrics
from tests.conftest import REPO, params_for_run
from tests.test_seed_planner import three_seeds  # noqa: F401 — the fixture

sys.path.insert(0, str(REPO / "benchmarks"))
import bench_interval_fitted as fitted  # noqa: E402

REGISTRY = {m.name: m for m in metrics((2,), (4,))}
VIDEOS = [np.arange(0, 1500), np.arange(1500, 4000)]


def test_pseudo_values_are_the_images_own_for_a_mean_and_average_to_the_metric_for_a_ratio():
    rng = np.random.default_rng(0)
    bf = rng.uniform(size=(2, 30, 11, 1))  # (S, N, C, T)
    assert fitted.pseudo_values(bf, REGISTRY["bf@2px"].reduce) == pytest.approx(bf[..., 0].mean(axis=-1), abs=1e-12)
    confusion = rng.integers(0, 50, size=(2, 30, 11, 11)).astype(float) + np.eye(11) * 200
    pseudo = fitted.pseudo_values(confusion, REGISTRY["miou"].reduce)
    full = REGISTRY["miou"].reduce(confusion.mean(axis=1))
    assert pseudo.mean(axis=1) == pytest.approx(full, abs=2e-3)  # first order: near, not equal
    assert not np.allclose(pseudo.mean(axis=1), full, atol=1e-12)


def test_the_memory_fit_recovers_white_and_slow_parts():
    exact = np.array([0.5 + 2.0] + [2.0 * 0.9 ** k for k in range(1, fitted.LAGS + 1)])
    assert fitted.fit_memory(exact) == pytest.approx((0.5, 2.0, 0.9), abs=1e-9)
    white_only = fitted.fit_memory(np.array([1.0] + [0.0] * fitted.LAGS))
    assert white_only.white == pytest.approx(1.0) and white_only.slow == pytest.approx(0.0)
    rng = np.random.default_rng(1)
    drawn = fitted.draw_part(rng, fitted.Memory(0.3, 1.0, 0.8), 40, VIDEOS, 4000)
    found = fitted.fit_memory(fitted.autocovariance(drawn, VIDEOS, fitted.LAGS))
    assert found.phi == pytest.approx(0.8, abs=0.03)
    assert found.slow == pytest.approx(1.0, rel=0.1) and found.white == pytest.approx(0.3, rel=0.15)


def test_a_series_centred_on_its_mean_is_fitted_as_it_was_before_centring():
    rng = np.random.default_rng(5)
    videos = [np.arange(62), np.arange(62, 233)]
    truth = fitted.Memory(0.2, 1.0, 0.95)
    drawn = fitted.draw_part(rng, truth, 4000, videos, 233)
    gamma = fitted.autocovariance(drawn - drawn.mean(axis=1, keepdims=True), videos, fitted.LAGS)
    naive, corrected = fitted.fit_memory(gamma), fitted.fit_centred(gamma, videos)
    assert naive.slow < 0.93 and naive.phi < 0.95  # the mean's variance (0.14) was taken off every lag
    assert corrected.slow == pytest.approx(1.0, rel=0.03) and corrected.phi == pytest.approx(0.95, abs=0.01)
    assert corrected.white == pytest.approx(0.2, abs=0.05)


def test_the_variance_of_a_mean_sums_every_pair_of_frames_within_a_video():
    videos = [np.arange(3), np.arange(3, 5)]
    assert fitted.mean_variance(fitted.Memory(2.0, 0.0, 0.0), videos) == pytest.approx(2.0 / 5)
    # slow, φ 0.5: video of 3 → 3 + 2·2·0.5 + 2·0.25 = 5.5; video of 2 → 2 + 2·0.5 = 3
    assert fitted.mean_variance(fitted.Memory(0.0, 1.0, 0.5), videos) == pytest.approx((5.5 + 3.0) / 25)


def test_measure_tells_the_seed_shared_and_own_parts_apart():
    rng = np.random.default_rng(2)
    seeds, n = 8, 4000
    shared, own = fitted.Memory(0.2, 0.5, 0.9), fitted.Memory(1.0, 0.8, 0.7)
    d = 0.3 + 0.4 * rng.standard_normal((seeds, 1)) + fitted.draw_part(rng, shared, 1, VIDEOS, n) \
        + fitted.draw_part(rng, own, seeds, VIDEOS, n)
    found = fitted.measure(d, VIDEOS)
    assert found.seeds == seeds and found.point == pytest.approx(d.mean())
    assert found.own.phi == pytest.approx(0.7, abs=0.05)
    assert found.own.white + found.own.slow == pytest.approx(1.8, rel=0.05)
    assert found.shared.white + found.shared.slow == pytest.approx(0.7, rel=0.25)
    assert found.shared.phi == pytest.approx(0.9, abs=0.06)
    assert found.seed_sd == pytest.approx(0.4, rel=0.5)  # eight draws of it: only roughly
    with pytest.raises(SegreproError, match="at least two seeds"):
        fitted.measure(d[:1], VIDEOS)


def test_the_simulations_interval_is_the_compare_stages():
    from segrepro.metrics.stats import paired_interval

    videos = [np.arange(62), np.arange(62, 233)]
    d = np.random.default_rng(4).normal(0.01, 0.05, size=(3, 233))
    point, half = fitted.interval(d, videos)
    ci = paired_interval(d[..., None], np.zeros((3, 233, 1)), lambda m: m[:, 0], sequences=videos,
                         frame_batch=fitted.FRAME_BATCH)
    assert (point - half, point + half) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_the_simulated_interval_holds_its_level_and_finds_a_large_gain():
    videos = [np.arange(62), np.arange(62, 233)]
    st = fitted.Structure(point=0.05, seeds=3, seed_sd=0.004, shared=fitted.Memory(0.0001, 0.0, 0.0),
                          own=fitted.Memory(0.0004, 0.0, 0.0))
    b = fitted.simulate(st, 3, videos, 400, np.random.default_rng(3))
    assert 0.92 <= b.coverage <= 0.98
    assert b.power > 0.95 and b.width > 0
    small = fitted.simulate(st._replace(point=0.0005), 3, videos, 400, np.random.default_rng(3))
    assert small.power < 0.2 and small.coverage == b.coverage  # same draws, the truth moved with them


def test_the_command_prints_every_method_and_metric_and_refuses_one_seed(three_seeds, tmp_path):  # noqa: F811
    command = [sys.executable, str(REPO / "benchmarks" / "bench_interval_fitted.py"), "--per-image", str(three_seeds)]
    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}
    for seeds, name in (("[0, 1, 2]", "three.yaml"), ("[0]", "one.yaml")):
        params_for_run(tmp_path / name, seeds)
    done = subprocess.run(command + ["--params", str(tmp_path / "three.yaml"), "--reps", "20"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "Fitted to 3 seeds (0, 1, 2)" in done.stdout and "| 1 seed | 3 seeds |" in done.stdout
    assert done.stdout.count("\n| sdn |") == 4
    refused = subprocess.run(command + ["--params", str(tmp_path / "one.yaml")], capture_output=True, text=True,
                             env=env)
    assert refused.returncode == 1 and "at least two seeds" in refused.stderr
