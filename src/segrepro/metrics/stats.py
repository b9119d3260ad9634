"""Statistics over seeds and test images: mean ± std, and the interval every verdict reads.

* :func:`mean_std`: mean and sample standard deviation (ddof = 1, Bessel's correction) over
  training seeds. With one seed the standard deviation is undefined and returned as NaN, not
  0: a single run says nothing about seed variance, and a report must not print "± 0".
* :func:`paired_interval`: the 95% interval of the difference method − baseline of a
  dataset-level metric, from two sources of variation:

  - **test images**, by the delete-a-group jackknife over G batches of consecutive frames
    (``metrics.jackknife``: sources, the standard error, how frames are cut), paired:
    deleting a batch deletes it from both methods and every seed, so per-image difficulty
    cancels in the difference; read with Student's t on G − 1 degrees of freedom;
  - **training seeds**, from the spread of the per-seed differences d_s (each on the full test
    set), by Student's t.

  One seed: the image part alone, point ± t_{G−1, 1−α/2} · se (no seed variation can be seen;
  the verdict of one seed is "inconclusive" whatever the interval). S >= 2 seeds: the two
  parts' half-widths are combined in quadrature, each at its own quantile (the MOVER
  construction of Zou & Donner, Statistics in Medicine 2008, "Construction of confidence
  limits about effect measures: a general approach", for a sum of independent parts):
  point ± sqrt(h_seed² + h_image²), where h_seed = t_{S−1, 1−α/2} · sd_s(d_s) / √S is the
  half-width of the t-interval over the seeds' differences and h_image = t_{G−1, 1−α/2} ·
  se_shared that of the image variation the seeds share (``metrics.jackknife``, "Seeds
  share only part of the image variation"). With no seed variation this
  is the one-seed interval; with no image variation, the textbook t-interval over the seeds.

Why not the bootstrap (this module's earlier versions): resampling seeds with the images
(the first) made "every seed came out ahead" a verdict (25% false verdicts at S = 3 where 5%
was meant); resampling single frames (the second) ignored that a method's gain on one frame of
a video predicts its gain on the next; resampling circular blocks of 8 frames (the third,
Politis & Romano 1992) held the truth in 86% of simulated one-seed comparisons at a lag-1
correlation of 0.7, but this project's PDN − baseline pixel accuracy stays correlated far longer
(Zen 5 three-seed runs: 0.66 at lag 1, 0.45 at lag 8, 0.24 at lag 20, about 0 at lag 30), and
simulated with such memory (an AR(1) series with φ = 0.95, ``benchmarks/bench_interval.py
--frame-corr 0.95``) blocks of 8 held the truth in 55% of one-seed comparisons and 68% of
three-seed ones; a percentile interval also has no small-sample correction for the handful of
independent stretches such a series holds. Batches of 40 frames with t on G − 1 degrees of
freedom held 90% and 92% there, and 95% of one-seed comparisons with independent frames
(docs/benchmarks.md, "Coverage of the verdict's interval"); the price is a wider interval: with
independent frames, a quarter wider at one seed (1.79 against 1.42 points in that simulation),
1% at three seeds a point apart.

p-value: the interval inverted. For a level 1 − α the interval above is built at α; as α grows
both t quantiles shrink, so the interval narrows monotonically, and :attr:`PairedInterval.p` is
the smallest α at which it excludes 0 (found by bisection, ``P_STEPS``). So p ≤ 0.05 exactly
where the 95% interval excludes 0, and a verdict can be read at any level (the duality of a
two-sided test and a confidence interval). With one seed it is the two-sided p of the t-test
point / se on G − 1 degrees of freedom.

A family of such tests read together: ``metrics.multiplicity``.

Reducer contract: the dataset metric must be a function of the MEAN over images of the
per-image statistics (a replicate is then a weighted mean, computed for all replicates with one
matrix product). This covers the segrepro metrics: mean per-image F (boundary F-score),
mIoU from summed confusion matrices (IoU is scale-invariant, so mean = sum / N works) and
Boundary IoU from summed intersections and unions. It excludes e.g. medians over images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import t as student_t

from segrepro.errors import SegreproError
from segrepro.metrics.jackknife import image_batches, shared_image_se


class MeanStd(NamedTuple):
    """Mean and sample std (ddof = 1) over seeds, shape values.shape[1:]; n = seed count."""

    mean: np.ndarray | float
    std: np.ndarray | float
    n: int


@dataclass(frozen=True)
class PairedInterval:
    """The interval of the difference method − baseline (module docstring)."""

    point: float  # on the full data: mean over seeds of metric(method) − same for baseline
    low: float  # interval bounds at ``level``: jackknife over image batches, and t over seeds
    high: float
    level: float
    p: float  # the smallest 1 − level whose interval excludes 0 (module docstring, "p-value")
    batches: int  # G, the image batches the jackknife deleted one at a time


def describe_interval(seeds: int, batches: int, sequences: int = 0, frame_batch: int = 1) -> str:
    """How :func:`paired_interval` made the intervals of a run of ``seeds`` seeds, in one sentence.

    ``batches``: G, the image batches; ``sequences``: how many video sequences they were cut from
    (0: every image its own batch); ``frame_batch``: the batch length L asked for, in frames.
    """
    if sequences:
        videos = "their one video sequence" if sequences == 1 else f"each of the {sequences} video sequences"
        images = (f"a paired jackknife over the test images, deleting in turn each of {batches} batches of "
                  f"about {frame_batch} consecutive frames of {videos}, with Student's t on {batches - 1} "
                  "degrees of freedom")
    else:
        images = (f"a paired delete-one jackknife over the {batches} test images, with Student's t on "
                  f"{batches - 1} degrees of freedom")
    if seeds < 2:
        return f"95% interval: {images}; with one seed it shows no seed-to-seed variation."
    return f"95% interval: {images}, and Student's t over the {seeds} seeds' differences."


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


def _metric(reducer: Callable[[np.ndarray], np.ndarray], agg: np.ndarray) -> np.ndarray:
    out = np.asarray(reducer(agg), dtype=np.float64)
    if out.shape != (agg.shape[0],):
        raise SegreproError(f"reducer must map image-averaged stats (B, ...) to a (B,) array, "
                            f"got shape {out.shape} for input {agg.shape}")
    return out


class IntervalParts(NamedTuple):
    """What an interval is built from (module docstring): the difference on the full data, each
    seed's difference, the image part's standard error and the number of image batches."""

    point: float
    seed_diffs: np.ndarray  # (S,)
    image_se: float  # shared_image_se
    batches: int  # G

    @property
    def seed_sd(self) -> float:
        """The sample standard deviation of the seeds' differences (0 for one seed, which shows none)."""
        return float(np.std(self.seed_diffs, ddof=1)) if self.seed_diffs.size > 1 else 0.0


def interval_parts(method: ArrayLike, baseline: ArrayLike, reducer: Callable[[np.ndarray], np.ndarray], *,
                   sequences: Sequence[ArrayLike] | None = None, frame_batch: int = 1) -> IntervalParts:
    """The parts of :func:`paired_interval`'s interval (its arguments, without ``level``)."""
    x = np.asarray(method, dtype=np.float64)
    y = np.asarray(baseline, dtype=np.float64)
    if x.shape != y.shape or x.ndim < 2 or x.shape[0] < 1 or x.shape[1] < 2:
        raise SegreproError(f"method and baseline must share a shape (S, N, ...) with S >= 1 seeds and "
                            f"N >= 2 images; got {x.shape} and {y.shape}")
    if isinstance(frame_batch, bool) or not isinstance(frame_batch, int) or frame_batch < 1:
        raise SegreproError(f"frame_batch must be an int >= 1, got {frame_batch!r}")
    s, n, stat = x.shape[0], x.shape[1], x.shape[2:]
    batches = image_batches(n, sequences, frame_batch)  # at least 2, as N >= 2
    xf, yf = x.reshape(s, n, -1), y.reshape(s, n, -1)  # (S, N, K)

    def per_seed(data: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """(S, N, K) data, (B, N) image weights -> metric per seed and replicate (S, B)."""
        agg = np.einsum("bn,snk->sbk", weights, data) / n  # (S, B, K)
        return np.stack([_metric(reducer, a.reshape(a.shape[0], *stat)) for a in agg])

    full = np.ones((1, n))
    on_full_x, on_full_y = per_seed(xf, full)[:, 0], per_seed(yf, full)[:, 0]  # (S,)
    point = float(on_full_x.mean() - on_full_y.mean())
    sizes = np.array([b.size for b in batches], dtype=np.float64)
    weights = np.repeat((n / (n - sizes))[:, None], n, axis=1)  # (G, N)
    for g, members in enumerate(batches):
        weights[g, members] = 0.0
    deleted = per_seed(xf, weights) - per_seed(yf, weights)  # (S, G): each seed without batch g
    if not np.all(np.isfinite(deleted)):
        raise SegreproError("the reducer returned a non-finite metric with a batch of test images left out; "
                            "make it robust to classes missing from a subset (e.g. nanmean)")
    seed_diffs = on_full_x - on_full_y  # (S,): each seed's difference on the full test set
    return IntervalParts(point, seed_diffs, shared_image_se(point, deleted, seed_diffs, sizes), len(batches))


def paired_interval(method: ArrayLike, baseline: ArrayLike, reducer: Callable[[np.ndarray], np.ndarray], *,
                    level: float = 0.95, sequences: Sequence[ArrayLike] | None = None,
                    frame_batch: int = 1) -> PairedInterval:
    """Interval of metric(method) − metric(baseline) over test images and seeds (module docstring).

    Args:
        method, baseline: per-image statistics, shape (S, N, ...): S seeds, N >= 2 test images
            in the same order for both (e.g. per-image F (S, N, C), confusions (S, N, W, C, C)),
            seed s of one paired with seed s of the other.
        reducer: maps image-averaged statistics (B, ...) -> metric (B,), vectorised over a
            leading batch of B replicates, e.g. ``lambda m: m[..., 0].mean(axis=-1)`` for BF
            at the first tolerance. See the module docstring for the contract.
        level: two-sided coverage.
        sequences: None (images independent: each its own batch), or the images as frames of
            videos: a list of index arrays into the N images, one per video, each in time order,
            together every index once; then cut into batches of about ``frame_batch``
            consecutive frames within each video (``metrics.jackknife``, "Frames of a video").
        frame_batch: the batch length L in frames (with ``sequences``).

    Deterministic: no random draw is made. Replicate g gives the images of batch g weight 0 and
    every other image N / (N − m_g), so that each replicate is still a mean over images:
    r_g = Σ_s 1/S · [metric(Σ_n w_gn x_sn / N) − metric(Σ_n w_gn y_sn / N)].
    """
    if not 0 < level < 1:
        raise SegreproError(f"level must be in (0, 1), got {level!r}")
    parts = interval_parts(method, baseline, reducer, sequences=sequences, frame_batch=frame_batch)
    low, high = _bounds(parts, 1.0 - level)
    return PairedInterval(point=parts.point, low=low, high=high, level=level, p=_p_value(parts),
                          batches=parts.batches)


def half_width(seeds: int, seed_sd: float, image_se: float, batches: int, alpha: float = 0.05) -> float:
    """The half-width at level 1 − ``alpha`` (module docstring): t on ``batches`` − 1 degrees of freedom
    times ``image_se``, combined in quadrature, with several ``seeds``, with t on ``seeds`` − 1 times
    ``seed_sd`` / √seeds (``seed_sd``, the spread of the seeds' differences, is unused for one seed)."""
    half = float(student_t.ppf(1 - alpha / 2, batches - 1)) * image_se
    if seeds > 1:
        half = float(np.hypot(float(student_t.ppf(1 - alpha / 2, seeds - 1)) * seed_sd / seeds ** 0.5, half))
    return half


def _bounds(parts: IntervalParts, alpha: float) -> tuple[float, float]:
    """The interval at level 1 − ``alpha`` around the point estimate."""
    half = half_width(parts.seed_diffs.size, parts.seed_sd, parts.image_se, parts.batches, alpha)
    return parts.point - half, parts.point + half


P_STEPS = 40  # bisection steps of the p-value: a resolution of 2**-40 in α


def _p_value(parts: IntervalParts) -> float:
    """The smallest α at which the interval of level 1 − α excludes 0 (module docstring, "p-value"):
    1.0 when even α = 1 keeps 0 inside."""
    def excludes(alpha: float) -> bool:
        low, high = _bounds(parts, alpha)
        return low > 0 or high < 0

    if not excludes(1.0):
        return 1.0
    keeps, drops = 0.0, 1.0  # drops excludes 0; keeps (α = 0, the widest interval) is taken not to
    for _ in range(P_STEPS):
        middle = (keeps + drops) / 2
        keeps, drops = (keeps, middle) if excludes(middle) else (middle, drops)
    return drops
