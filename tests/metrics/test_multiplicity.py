"""Holm's adjustment: known values, refusals, and the family-wise error it keeps."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from segrepro.errors import SegreproError
from segrepro.metrics.multiplicity import holm_adjusted
from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import bench_interval  # noqa: E402  (the benchmark's families of null claims)


def test_holm_adjusted_known_values():
    # Sorted p 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> monotone 0.06.
    adjusted = holm_adjusted([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm_adjusted([0.5, 0.9]), [1.0, 1.0])   # capped at 1
    np.testing.assert_allclose(holm_adjusted([0.02]), [0.02])           # one claim: unchanged
    assert holm_adjusted([]).size == 0
    for bad in ([0.1, 1.5], [-0.1], [[0.1]], [float("nan")]):
        with pytest.raises(SegreproError, match="p-values in"):
            holm_adjusted(bad)


def test_holm_keeps_a_family_of_null_claims_to_about_five_percent():
    # Six claims against one baseline, 3 seeds 0.3 points apart, frames correlated as PDN's, no true effect
    # (benchmarks/bench_interval.py --family): read claim by claim some claim of a table gets a
    # verdict far more often than 5%; Holm's adjustment brings the table back to about 5%.
    rates = bench_interval.family_error(6, seeds=3, seed_sd=0.003, reps=150, frame_corr=0.95)
    assert rates.false_alone >= 0.12 and rates.found_alone is None
    assert rates.false_holm <= 0.09 and rates.false_alone - rates.false_holm >= 0.06
