"""Statistics over seeds and test images: mean ± std, and the interval every verdict reads.

* :func:`mean_std`: mean and sample standard deviation (ddof = 1, Bessel's correction) over
  training seeds. With one seed the standard deviation is undefined and returned as NaN, not
  0: a single run says nothing about seed variance, and a report must not print "± 0".
* :func:`paired_bootstrap_ci`: the 95% interval of the difference method − baseline of a
  dataset-level metric, from two sources of variation:

  - **test images**, by the paired bootstrap (Efron & Tibshirani, "An Introduction to the
    Bootstrap", 1993; Koehn, EMNLP 2004, "Statistical significance tests for machine
    translation evaluation", for the paired-resampling design): each replicate draws N test
    images with replacement and applies the SAME draw to both methods and to every seed, so
    per-image difficulty cancels in the difference. Test images that are frames of videos
    (``sequences``) are drawn in blocks of consecutive frames, each sequence on its own: the
    circular block bootstrap (Politis & Romano, "A circular block-resampling procedure for
    stationary data", 1992; Künsch, Annals of Statistics 1989, for the moving blocks),
    described under "Frames of a video" below;
  - **training seeds**, from the spread of the per-seed differences d_s (each on the full test
    set), by Student's t.

  One seed: the percentile interval of the image bootstrap (no seed variation can be seen; the
  verdict of one seed is "inconclusive" whatever the interval). S >= 2 seeds: the two parts'
  intervals around the point estimate are combined in quadrature, each at its own quantile
  (the MOVER construction of Zou & Donner, Statistics in Medicine 2008, "Construction of
  confidence limits about effect measures: a general approach", for a sum of independent
  parts): low = point − sqrt(h_seed² + h_low²), high = point + sqrt(h_seed² + h_high²), where
  h_seed = t_{S−1, 1−α/2} · sd_s(d_s) / √S is the half-width of the t-interval over the seeds'
  differences, and h_low, h_high are the distances from the point estimate to the percentiles
  of the image bootstrap of the seed-averaged difference. With no seed variation this is the
  one-seed interval; with no image variation, the textbook t-interval over the seeds.

  Why not resample seeds in the bootstrap as well (this module's first version did): with
  S = 3 a resample takes one seed three times with probability 1/27 > 2.5%, so the
  percentile interval ran from about the smallest to the largest d_s — "reproduced" meant
  "every seed came out ahead", which happens 1 time in 8 with no effect at all. Simulated
  (``benchmarks/bench_interval.py``: 233 images, shared image difficulty, per-image noise, a
  seed-to-seed spread of 1 point like this project's, no true effect, 1000 comparisons), that
  interval excluded 0 in 34% of comparisons at S = 2, 25% at S = 3 and 14% at S = 5, where 5%
  was meant (run against the first version, commit d106ebc). This one holds the true
  difference in 94.6–99.7% of comparisons at S = 2, 3 and 5 and each of four seed spreads (README,
  "Benchmarks"); tests/metrics/test_stats.py checks the rate at S = 3. Choices where no
  source prescribes one: Student's t with S − 1 degrees of freedom for the seed part, not a
  Welch–Satterthwaite blend (tried: it held only 88–91% at S = 2 and 92–94% at S = 3, its
  degrees of freedom leaning on the same noisy seed variance); the seed-by-image interaction
  is counted in both parts, which widens the interval when the seeds barely differ (97–100%
  coverage then) rather than narrowing it.

Frames of a video: a method's gain on one frame predicts its gain on the next (CamVid's test
frames are 1 s apart, from two drives: in this project's three-seed runs the lag-1
autocorrelation of PDN − baseline per-image pixel accuracy is 0.7 over the 171 frames of
Seq05VD), so resampling frames independently counts N images' worth of evidence where there is
less, and narrows the interval: simulated with that correlation, the independent draw held the
truth in 69% of one-seed comparisons, blocks of 8 frames in 86% (``benchmarks/bench_interval.py
--frame-corr 0.7``; still short of 95%: 171 frames this correlated hold little evidence of
their own spread, and longer blocks gained 1 point). With ``sequences`` (index arrays, frames in time order, together every image once), each
replicate rebuilds every sequence of k frames from ceil(k / L) blocks of L consecutive frames
with uniformly drawn starts, wrapping at the end (so each frame is equally likely), cut to k
frames; the replicate keeps each sequence's size. Choices where no source prescribes one: the
sequences are resampled separately (the test split's mix of drives is fixed by its design, not
drawn); L = ``frame_block`` frames, capped at k // ``MIN_BLOCKS`` for a short sequence so that it still
varies (a sequence of L frames or fewer drawn as one block would always come back whole);
the caller chooses L (``evaluation.compare`` says why its value).

p-value: the interval inverted. For a level 1 − α the interval above is built at α; as α grows,
the image percentiles move inward and the t quantile shrinks, so the interval narrows
monotonically, and :attr:`BootstrapCI.p` is the smallest α at which it excludes 0 (found by
bisection, ``P_STEPS``). So p ≤ 0.05 exactly where the 95% interval excludes 0, and a verdict
can be read at any level (the duality of a two-sided test and a confidence interval: the test
rejects a zero difference at level α exactly where the 1 − α interval leaves 0 out). Its
resolution: with one seed the image percentiles stop moving below
α = 2 / n_boot, so a smaller p means that no resample crossed 0; with seeds the t part keeps
widening the interval as α shrinks.

A family of such tests read together: ``metrics.multiplicity``.

Reducer contract: the dataset metric must be a function of the MEAN over images of the
per-image statistics (a resample is then a weighted mean, computed for all replicates with one
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
class BootstrapCI:
    """The interval of the difference method − baseline (module docstring)."""

    point: float  # on the full data: mean over seeds of metric(method) − same for baseline
    low: float  # interval bounds at ``level``: image-bootstrap percentiles (one seed), else t
    high: float
    n_boot: int
    level: float
    p: float  # the smallest 1 − level whose interval excludes 0 (module docstring, "p-value")


def describe_interval(n_boot: int, seeds: int, sequences: int = 0, frame_block: int = 1) -> str:
    """How :func:`paired_bootstrap_ci` made the intervals of a run of ``seeds`` seeds, in one sentence.

    ``sequences``: how many video sequences the test images were resampled within (0: images
    drawn independently); ``frame_block``: the block length L in frames.
    """
    if sequences:
        videos = "their one video sequence" if sequences == 1 else f"each of the {sequences} video sequences"
        images = (f"a paired bootstrap over the test images in blocks of up to {frame_block} consecutive "
                  f"frames within {videos} ({n_boot} resamples)")
    else:
        images = f"a paired bootstrap over the test images ({n_boot} resamples)"
    if seeds < 2:
        return (f"95% interval: percentiles of {images}; with one seed it shows no "
                "seed-to-seed variation.")
    return f"95% interval: {images} and Student's t over the {seeds} seeds' differences."


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


MIN_BLOCKS = 4  # a sequence is cut into at least this many blocks (module docstring)


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


def block_length(frames: int, frame_block: int) -> int:
    """Frames per block in a sequence of ``frames`` frames: ``frame_block``, capped so that the
    sequence has at least ``MIN_BLOCKS`` blocks (and at least 1 frame)."""
    return max(1, min(frame_block, frames // MIN_BLOCKS))


def _image_draws(rng: np.random.Generator, n: int, n_boot: int, sequences: list[np.ndarray] | None,
                 frame_block: int) -> np.ndarray:
    """(n_boot, n) image indices of every replicate: independent draws, or circular blocks of
    consecutive frames within each sequence (module docstring)."""
    if sequences is None:
        return rng.integers(0, n, size=(n_boot, n))
    draws = []
    for frames in sequences:
        k = frames.size
        length = block_length(k, frame_block)
        starts = rng.integers(0, k, size=(n_boot, -(-k // length)))  # ceil(k / length) blocks
        positions = (starts[:, :, None] + np.arange(length)) % k  # wrap at the sequence's end
        draws.append(frames[positions.reshape(n_boot, -1)[:, :k]])
    return np.concatenate(draws, axis=1)


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
                        level: float = 0.95, seed: int = 0, block: int = 256,
                        sequences: Sequence[ArrayLike] | None = None, frame_block: int = 1) -> BootstrapCI:
    """Interval of metric(method) − metric(baseline) over test images and seeds (module docstring).

    Args:
        method, baseline: per-image statistics, shape (S, N, ...): S seeds, N test images in
            the same order for both (e.g. per-image F (S, N, C), confusions (S, N, W, C, C)),
            seed s of one paired with seed s of the other.
        reducer: maps image-averaged statistics (B, ...) -> metric (B,), vectorised over a
            leading batch of B replicates, e.g. ``lambda m: m[..., 0].mean(axis=-1)`` for BF
            at the first tolerance. See the module docstring for the contract.
        n_boot: image-bootstrap replicates; level: two-sided coverage.
        seed: seed of the numpy Generator (same seed, same inputs -> same interval).
        block: replicates processed per vectorised block (bounds memory).
        sequences: None (images drawn independently), or the images as frames of videos: a list
            of index arrays into the N images, one per video, each in time order, together
            every index once; then drawn in circular blocks of ``frame_block`` consecutive
            frames within each video (module docstring, "Frames of a video").
        frame_block: the block length L in frames (with ``sequences``; 1 draws frames singly,
            still within their sequence).

    Each replicate draws image counts w (N,) once and applies them to both methods and every
    seed: r = Σ_s 1/S · [metric(Σ_n w_n x_sn / N) − metric(Σ_n w_n y_sn / N)].
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
    if isinstance(frame_block, bool) or not isinstance(frame_block, int) or frame_block < 1:
        raise SegreproError(f"frame_block must be an int >= 1, got {frame_block!r}")
    s, n, stat = x.shape[0], x.shape[1], x.shape[2:]
    videos = None if sequences is None else _check_sequences(sequences, n)
    xf, yf = x.reshape(s, n, -1), y.reshape(s, n, -1)  # (S, N, K)

    def per_seed(data: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """(S, N, K) data, (B, N) image weights -> metric per seed and replicate (S, B)."""
        agg = np.einsum("bn,snk->sbk", weights, data) / n  # (S, B, K)
        return np.stack([_metric(reducer, a.reshape(a.shape[0], *stat)) for a in agg])

    full = np.ones((1, n))
    on_full_x, on_full_y = per_seed(xf, full)[:, 0], per_seed(yf, full)[:, 0]  # (S,)
    point = float(on_full_x.mean() - on_full_y.mean())
    rng = np.random.default_rng(seed)  # all draws up front: blocking cannot change them
    image_draws = _image_draws(rng, n, n_boot, videos, frame_block)  # (n_boot, N)
    replicates = []
    for start in range(0, n_boot, block):
        w = _counts(image_draws[start:min(start + block, n_boot)], n)  # (B, N)
        replicates.append((per_seed(xf, w) - per_seed(yf, w)).mean(axis=0))  # (B,)
    r = np.concatenate(replicates)
    if not np.all(np.isfinite(r)):
        raise SegreproError("the reducer returned a non-finite metric on a bootstrap resample; "
                            "make it robust to classes missing from a resample (e.g. nanmean)")
    seed_diffs = on_full_x - on_full_y  # (S,): each seed's difference on the full test set
    low, high = _bounds(point, r, seed_diffs, 1.0 - level)
    return BootstrapCI(point=point, low=low, high=high, n_boot=n_boot, level=level,
                       p=_p_value(point, r, seed_diffs))


def _bounds(point: float, r: np.ndarray, seed_diffs: np.ndarray, alpha: float) -> tuple[float, float]:
    """The interval at level 1 − ``alpha`` from the image replicates ``r`` and the seeds' differences
    (module docstring): the percentile interval with one seed, else the MOVER combination."""
    image_low, image_high = (float(q) for q in np.percentile(r, [100 * alpha / 2, 100 * (1 - alpha / 2)]))
    s = seed_diffs.size
    if s == 1:
        return image_low, image_high
    seed_half = float(student_t.ppf(1 - alpha / 2, s - 1)) * float(np.std(seed_diffs, ddof=1)) / s ** 0.5
    low = point - float(np.hypot(seed_half, max(point - image_low, 0.0)))
    high = point + float(np.hypot(seed_half, max(image_high - point, 0.0)))
    return low, high


P_STEPS = 40  # bisection steps of the p-value: a resolution of 2**-40 in α


def p_resolution(n_boot: int) -> float:
    """The smallest p that ``n_boot`` image resamples resolve with one seed (module docstring,
    "p-value"): below it no resample crossed 0."""
    return 2 / n_boot


def _p_value(point: float, r: np.ndarray, seed_diffs: np.ndarray) -> float:
    """The smallest α at which the interval of level 1 − α excludes 0 (module docstring, "p-value"):
    1.0 when even α = 1 keeps 0 inside."""
    def excludes(alpha: float) -> bool:
        low, high = _bounds(point, r, seed_diffs, alpha)
        return low > 0 or high < 0

    if not excludes(1.0):
        return 1.0
    keeps, drops = 0.0, 1.0  # drops excludes 0; keeps (α = 0, the widest interval) is taken not to
    for _ in range(P_STEPS):
        middle = (keeps + drops) / 2
        keeps, drops = (keeps, middle) if excludes(middle) else (middle, drops)
    return drops
