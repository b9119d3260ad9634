"""The image part of the interval: frames cut into batches, the jackknife, the part seeds share."""
from __future__ import annotations

import math

import numpy as np
import pytest

from segrepro.metrics.jackknife import batches_per_sequence, image_batches, jackknife_se, shared_image_se


def test_jackknife_se_of_a_mean_is_that_of_the_batch_means_even_for_unequal_batches():
    # For a mean over images the pseudo-value of batch g is the batch's own mean, so the standard
    # error is sqrt(sum_g m_g (mean_g - mean)^2 / (N - m_g) / G); equal batches give s_batch / sqrt(G).
    rng = np.random.default_rng(13)
    d = rng.normal(size=57)
    for sizes in ([19, 19, 19], [5, 30, 22], [1] * 57):
        edges = np.cumsum([0] + sizes)
        means = np.array([d[a:b].mean() for a, b in zip(edges[:-1], edges[1:])])
        deleted = np.array([np.delete(d, np.arange(a, b)).mean() for a, b in zip(edges[:-1], edges[1:])])
        m = np.array(sizes, dtype=float)
        expected = math.sqrt(np.sum(m * (means - d.mean()) ** 2 / (57 - m)) / len(sizes))
        assert jackknife_se(d.mean(), deleted, m) == pytest.approx(expected, rel=1e-12)
    assert jackknife_se(d.mean(), deleted, m) == pytest.approx(d.std(ddof=1) / math.sqrt(57), rel=1e-12)


def test_the_image_part_of_several_seeds_is_the_variation_they_share():
    rng = np.random.default_rng(15)
    sizes = np.full(6, 10.0)
    wobble = rng.normal(0, 0.01, 6)   # how the difference moves as each batch is left out
    one = jackknife_se(0.02, 0.02 + wobble, sizes)
    # Seeds that move together: all of it is shared, and the image part is the jackknife's.
    same = np.stack([0.02 + wobble, 0.02 + wobble, 0.02 + wobble])
    assert shared_image_se(0.02, same, np.full(3, 0.02), sizes) == pytest.approx(one, rel=1e-12)
    # Two seeds that move in opposite directions share nothing: their mean never moves, and
    # what each seed has alone is left to the spread over seeds.
    opposite = np.stack([0.02 + wobble, 0.02 - wobble])
    assert shared_image_se(0.02, opposite, np.full(2, 0.02), sizes) == 0.0
    # Independent movements: (S·A − B) / (S − 1) is the mean covariance of the seeds' replicates.
    own = 0.02 + rng.normal(0, 0.01, (4, 6))
    a = jackknife_se(0.02, own.mean(0), sizes) ** 2
    b = np.mean([jackknife_se(0.02, row, sizes) ** 2 for row in own])
    assert shared_image_se(0.02, own, np.full(4, 0.02), sizes) == pytest.approx(math.sqrt(max((4 * a - b) / 3, 0)))
    # One seed: nothing to separate; the jackknife's standard error itself.
    assert shared_image_se(0.02, same[:1], np.full(1, 0.02), sizes) == pytest.approx(one, rel=1e-12)


def test_frames_are_cut_into_batches_within_each_video():
    assert batches_per_sequence(171, 40) == 4 and batches_per_sequence(62, 40) == 2
    assert batches_per_sequence(10, 40) == 2 and batches_per_sequence(1, 40) == 1 and batches_per_sequence(7, 1) == 7
    videos = [np.arange(62, 233), np.arange(62)]
    batches = image_batches(233, videos, 40)
    assert [b.size for b in batches] == [43, 43, 42, 43, 31, 31]
    for b in batches:  # consecutive frames of one video, every frame once
        assert np.all(np.diff(b) == 1) and (b[0] >= 62) == (b[-1] >= 62)
    assert np.array_equal(np.sort(np.concatenate(batches)), np.arange(233))
    assert [b.tolist() for b in image_batches(3, None, 40)] == [[0], [1], [2]]
    # A video of one frame is one batch; the run still has two.
    assert [b.tolist() for b in image_batches(2, [np.array([1]), np.array([0])], 40)] == [[1], [0]]
