"""Statistics over seeds and test images: mean ± std, and the interval every verdict reads.

* :func:`mean_std`: mean and sample standard deviation (ddof = 1, Bessel's correction) over
  training seeds. With one seed the standard deviation is undefined and returned as NaN, not
  0: a single run says nothing about seed variance, and a report must not print "± 0".
* :func:`paired_interval`: the 95% interval of the difference method − baseline of a
  dataset-level metric, from two sources of variation:

  - **test images**, by the delete-a-group jackknife over batches of consecutive frames
    (Kott, Journal of Official Statistics 2001, "The delete-a-group jackknife"; for batches of
    unequal size, Busing, Meijer & van der Leeden, Statistics and Computing 1999, "Delete-m
    jackknife for unequal m"), paired: deleting a batch deletes it from both methods and every
    seed, so per-image difficulty cancels in the difference. The test images are cut into G
    batches ("Frames of a video" below); replicate g is the difference on every image but those
    of batch g, and the spread of the G replicates gives the standard error of the difference,
    read with Student's t on G − 1 degrees of freedom (the batch-means interval of simulation
    output analysis: Schmeiser, Operations Research 1982, "Batch size effects in the analysis
    of simulation output");
  - **training seeds**, from the spread of the per-seed differences d_s (each on the full test
    set), by Student's t.

  One seed: the image part alone, point ± t_{G−1, 1−α/2} · se (no seed variation can be seen;
  the verdict of one seed is "inconclusive" whatever the interval). S >= 2 seeds: the two
  parts' half-widths are combined in quadrature, each at its own quantile (the MOVER
  construction of Zou & Donner, Statistics in Medicine 2008, "Construction of confidence
  limits about effect measures: a general approach", for a sum of independent parts):
  point ± sqrt(h_seed² + h_image²), where h_seed = t_{S−1, 1−α/2} · sd_s(d_s) / √S is the
  half-width of the t-interval over the seeds' differences and h_image = t_{G−1, 1−α/2} ·
  se_shared that of the image variation the seeds share (below). With no seed variation this
  is the one-seed interval; with no image variation, the textbook t-interval over the seeds.

  Seeds share only part of the image variation. A seed's difference on the test set is
  d_s = δ + u_s + I + E_s: the true difference δ, the seed's training draw u_s, an image
  term I common to every seed (which frames happen to be in the test set, and how the two
  methods differ on them in general) and an image term E_s of that seed alone (the frames
  where this trained model happens to err). Var(mean of d_s) = (σ_u² + σ_E²) / S + σ_I². The
  spread of the d_s over seeds already holds σ_u² + σ_E² (I cancels in it); the jackknife
  variance A of the seed-averaged difference holds σ_I² + σ_E² / S, and the mean B of each
  seed's own jackknife variance σ_I² + σ_E². So σ_I² = (S · A − B) / (S − 1) (the mean
  covariance of two seeds' jackknife replicates), floored at 0, and se_shared is its root;
  adding A instead (this module's first jackknife) counts σ_E² / S twice. In this project's
  runs σ_E is not small: each seed's own image standard error of an mIoU difference (0.40–0.57
  points on the Zen 5) is as large as the spread of the d_s (0.38–0.49), so most of what
  looked like seed-to-seed variation is each model's own errors on stretches of frames.
  Simulated with such seed-specific frame errors (``benchmarks/bench_interval.py
  --seed-frames``), counting σ_E² twice held the truth in 97.1–99.7% of comparisons, and
  this interval in 94.1–98.2% with intervals 1–17% narrower (README, "Benchmarks").

  The jackknife's standard error, with m_g images in batch g of N and θ_(g) the difference
  without batch g: pseudo-values θ̃_g = h_g θ − (h_g − 1) θ_(g), h_g = N / m_g, their
  weighted mean θ_J = G θ − Σ_g (1 − m_g / N) θ_(g), and se² = (1 / G) Σ_g (θ̃_g − θ_J)² /
  (h_g − 1) (Busing et al.). For a metric that is a mean over images, θ̃_g is batch g's own
  mean and se² the classical variance of a mean of G batch means. The interval is centred on
  θ, the difference on the full data, not on the bias-corrected θ_J.

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
(README, "Benchmarks"); the price is a wider interval: with independent frames, a quarter
wider at one seed (1.79 against 1.42 points in that simulation), 1% at three seeds a point apart.

Frames of a video: with ``sequences`` (index arrays, frames in time order, together every
image once), each sequence of k frames is cut into max(2, round(k / L)) batches of consecutive
frames as equal in size as whole frames allow (at most k batches: a one-frame sequence is one
batch), L = ``frame_batch``; batches never span two sequences. Without ``sequences`` every
image is its own batch (the delete-one jackknife, images taken as independent). Choices where
no source prescribes one: at least two batches per sequence, so that a short video still
contributes a spread of its own; the deleted batch's images are not replaced, so a replicate
also shifts the mix of videos by a few frames, which counts a method's gain differing between
the videos as variation (a wider interval, not a narrower one); the caller chooses L
(``evaluation.compare`` says why its value).

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


def _check_sequences(sequences: Sequence[ArrayLike], n: int) -> list[np.ndarray]:
    """The sequences as int arrays, refused unless together they hold every image index once."""
    parts = [np.asarray(q) for q in sequences]
    if not parts or any(q.ndim != 1 or q.size == 0 or not np.issubdtype(q.dtype, np.integer) for q in parts):
        raise SegreproError("sequences must be a non-empty list of non-empty 1-D integer index arrays")
    joined = np.sort(np.concatenate(parts))
    if joined.shape != (n,) or not np.array_equal(joined, np.arange(n)):
        raise SegreproError(f"sequences must hold every image index 0..{n - 1} exactly once "
                            f"(got {joined.size} indices for {n} images)")
    return parts


def batches_per_sequence(frames: int, frame_batch: int) -> int:
    """How many batches a sequence of ``frames`` frames is cut into: round(frames / ``frame_batch``),
    at least 2 and at most ``frames`` (module docstring, "Frames of a video")."""
    return min(frames, max(2, round(frames / frame_batch)))


def image_batches(n: int, sequences: Sequence[ArrayLike] | None, frame_batch: int) -> list[np.ndarray]:
    """The batches the jackknife deletes, as index arrays into the ``n`` images: consecutive frames
    of each sequence, or every image alone without ``sequences`` (module docstring)."""
    if sequences is None:
        return [np.array([i]) for i in range(n)]
    batches = []
    for frames in _check_sequences(sequences, n):
        edges = np.linspace(0, frames.size, batches_per_sequence(frames.size, frame_batch) + 1).round().astype(int)
        batches += [frames[a:b] for a, b in zip(edges[:-1], edges[1:])]
    return batches


def _metric(reducer: Callable[[np.ndarray], np.ndarray], agg: np.ndarray) -> np.ndarray:
    out = np.asarray(reducer(agg), dtype=np.float64)
    if out.shape != (agg.shape[0],):
        raise SegreproError(f"reducer must map image-averaged stats (B, ...) to a (B,) array, "
                            f"got shape {out.shape} for input {agg.shape}")
    return out


def jackknife_se(point: float, deleted: np.ndarray, sizes: np.ndarray) -> float:
    """The delete-a-group jackknife's standard error for batches of ``sizes`` images (module
    docstring; Busing et al. 1999): ``deleted[g]`` is the statistic without batch g, ``point``
    with every image."""
    n, g = sizes.sum(), sizes.size
    h = n / sizes
    pseudo = h * point - (h - 1) * deleted
    centre = g * point - np.sum((1 - sizes / n) * deleted)
    return float(np.sqrt(np.sum((pseudo - centre) ** 2 / (h - 1)) / g))


def shared_image_se(point: float, deleted: np.ndarray, seed_diffs: np.ndarray, sizes: np.ndarray) -> float:
    """The image part's standard error (module docstring, "Seeds share only part of the image
    variation"): with one seed the jackknife's standard error of the difference; with S >= 2 the
    square root of the variation the seeds share, (S · A − B) / (S − 1) floored at 0, where A is
    the jackknife variance of the seed-averaged difference and B the mean of each seed's own.

    ``deleted`` (S, G): each seed's difference without batch g; ``seed_diffs`` (S,): with every
    image; ``point``: their mean."""
    together = jackknife_se(point, deleted.mean(axis=0), sizes) ** 2  # A
    s = seed_diffs.size
    if s == 1:
        return float(np.sqrt(together))
    each = np.mean([jackknife_se(float(d), row, sizes) ** 2 for d, row in zip(seed_diffs, deleted)])  # B
    return float(np.sqrt(max((s * together - each) / (s - 1), 0.0)))


class IntervalParts(NamedTuple):
    """What an interval is built from (module docstring): the difference on the full data, each
    seed's difference, the image part's standard error and the number of image batches."""

    point: float
    seed_diffs: np.ndarray  # (S,)
    image_se: float  # shared_image_se
    batches: int  # G


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
            consecutive frames within each video (module docstring, "Frames of a video").
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
    s = parts.seed_diffs.size
    seed_sd = float(np.std(parts.seed_diffs, ddof=1)) if s > 1 else 0.0
    half = half_width(s, seed_sd, parts.image_se, parts.batches, alpha)
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
