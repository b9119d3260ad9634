"""Statistics over seeds and test images: mean ± std, paired bootstrap confidence intervals.

* :func:`mean_std`: mean and sample standard deviation (ddof = 1, Bessel's correction) over
  training seeds. With one seed the standard deviation is undefined and returned as NaN, not
  0: a single run says nothing about seed variance, and a report must not print "± 0".
* :func:`paired_bootstrap_ci`: percentile bootstrap (Efron & Tibshirani, "An Introduction to
  the Bootstrap", 1993, ch. 13) of the difference method − baseline of a dataset-level metric,
  paired over test images (Koehn, EMNLP 2004, "Statistical significance tests for machine
  translation evaluation", for the paired-resampling design). Each replicate draws N test
  images with replacement and, optionally, S seeds with replacement; the SAME draws are used
  for both methods, so per-image difficulty cancels in the difference.

Reducer contract: the dataset metric must be a function of the MEAN over images of the
per-image statistics (a resample is then a weighted mean, computed for all replicates with one
matrix product). This covers the segrepro metrics: mean per-image F (boundary F-score),
mIoU from summed confusion matrices (IoU is scale-invariant, so mean = sum / N works) and
Boundary IoU from summed intersections and unions. It excludes e.g. medians over images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from segrepro.errors import SegreproError


class MeanStd(NamedTuple):
    """Mean and sample std (ddof = 1) over seeds, shape values.shape[1:]; n = seed count."""

    mean: np.ndarray | float
    std: np.ndarray | float
    n: int


@dataclass(frozen=True)
class BootstrapCI:
    """Paired bootstrap result for the difference method − baseline."""

    point: float  # on the full data: mean over seeds of metric(method) − same for baseline
    low: float  # percentile CI bounds at ``level``
    high: float
    n_boot: int
    level: float


def mean_std(values: ArrayLike) -> MeanStd:
    """Mean and sample standard deviation (ddof = 1) over axis 0 (seeds) of values (S, ...).

    One seed gives std = NaN (undefined). NaN entries propagate (e.g. an absent class).
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 0 or x.shape[0] == 0:
        raise SegreproError(f"mean_std needs values of shape (S, ...) with S >= 1 seeds, got "
                            f"shape {x.shape}")
    mean = x.mean(axis=0)
    std = x.std(axis=0, ddof=1) if x.shape[0] > 1 else np.full_like(mean, np.nan)
    if x.ndim == 1:
        return MeanStd(float(mean), float(std), x.shape[0])
    return MeanStd(mean, std, x.shape[0])


def _counts(draws: np.ndarray, n: int) -> np.ndarray:
    """(B, m) indices in [0, n) drawn with replacement -> (B, n) float64 draw counts."""
    flat = draws + (np.arange(draws.shape[0]) * n)[:, None]  # row-offset item indices
    return np.bincount(flat.ravel(), minlength=draws.shape[0] * n).reshape(-1, n).astype(float)


def _metric(reducer: Callable[[np.ndarray], np.ndarray], agg: np.ndarray) -> np.ndarray:
    out = np.asarray(reducer(agg), dtype=np.float64)
    if out.shape != (agg.shape[0],):
        raise SegreproError(f"reducer must map image-averaged stats (B, ...) to a (B,) array, "
                            f"got shape {out.shape} for input {agg.shape}")
    return out


def paired_bootstrap_ci(method: ArrayLike, baseline: ArrayLike,
                        reducer: Callable[[np.ndarray], np.ndarray], *, n_boot: int = 1000,
                        level: float = 0.95, seed: int = 0, resample_seeds: bool = True,
                        block: int = 256) -> BootstrapCI:
    """Paired percentile-bootstrap CI of metric(method) − metric(baseline).

    Args:
        method, baseline: per-image statistics, shape (S, N, ...): S seeds, N test images in
            the same order for both (e.g. per-image F (S, N, C), confusions (S, N, W, C, C)).
        reducer: maps image-averaged statistics (B, ...) -> metric (B,), vectorised over a
            leading batch of B replicates, e.g. ``lambda m: m[..., 0].mean(axis=-1)`` for BF
            at the first tolerance. See the module docstring for the contract.
        n_boot: bootstrap replicates; level: two-sided coverage (percentile method).
        seed: seed of the numpy Generator (same seed, same inputs -> same interval).
        resample_seeds: also resample seeds with replacement (paired), when S > 1.
        block: replicates processed per vectorised block (bounds memory).

    Each replicate draws image counts w (N,) and seed counts v (S,) once and applies them to
    both methods: diff = Σ_s v_s/S · [metric(Σ_n w_n x_sn / N) − metric(Σ_n w_n y_sn / N)].
    """
    x = np.asarray(method, dtype=np.float64)
    y = np.asarray(baseline, dtype=np.float64)
    if x.shape != y.shape or x.ndim < 2 or min(x.shape[:2]) < 1:
        raise SegreproError(f"method and baseline must share a shape (S, N, ...) with S, N >= 1; "
                            f"got {x.shape} and {y.shape}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise SegreproError(f"n_boot must be an int >= 1, got {n_boot!r}")
    if isinstance(block, bool) or not isinstance(block, int) or block < 1:
        raise SegreproError(f"block must be an int >= 1, got {block!r}")
    if not 0 < level < 1:
        raise SegreproError(f"level must be in (0, 1), got {level!r}")
    s, n, stat = x.shape[0], x.shape[1], x.shape[2:]
    xf, yf = x.reshape(s, n, -1), y.reshape(s, n, -1)  # (S, N, K)

    def per_seed(data: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """(S, N, K) data, (B, N) image weights -> metric per seed and replicate (S, B)."""
        agg = np.einsum("bn,snk->sbk", weights, data) / n  # (S, B, K)
        return np.stack([_metric(reducer, a.reshape(a.shape[0], *stat)) for a in agg])

    full = np.ones((1, n))
    point = float(per_seed(xf, full).mean() - per_seed(yf, full).mean())
    rng = np.random.default_rng(seed)  # all draws up front: blocking cannot change them
    image_draws = rng.integers(0, n, size=(n_boot, n))  # (n_boot, N)
    seed_draws = rng.integers(0, s, size=(n_boot, s)) if resample_seeds and s > 1 else None
    diffs = []
    for start in range(0, n_boot, block):
        stop = min(start + block, n_boot)
        w = _counts(image_draws[start:stop], n)  # (B, N)
        v = _counts(seed_draws[start:stop], s) if seed_draws is not None \
            else np.ones((stop - start, s))  # (B, S)
        delta = per_seed(xf, w) - per_seed(yf, w)  # (S, B)
        diffs.append((v * delta.T).sum(axis=1) / s)  # (B,)
    d = np.concatenate(diffs)
    if not np.all(np.isfinite(d)):
        raise SegreproError("the reducer returned a non-finite metric on a bootstrap resample; "
                            "make it robust to classes missing from a resample (e.g. nanmean)")
    alpha = 1.0 - level
    low, high = np.percentile(d, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return BootstrapCI(point=point, low=float(low), high=float(high), n_boot=n_boot, level=level)
