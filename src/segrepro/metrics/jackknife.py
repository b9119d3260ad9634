"""The image part of the verdict's interval: test frames cut into batches, the delete-a-group
jackknife over them, and the part of its variation that the seeds share (``metrics.stats`` builds
the interval from it).

The jackknife (Kott, Journal of Official Statistics 2001, "The delete-a-group jackknife"; for
batches of unequal size, Busing, Meijer & van der Leeden, Statistics and Computing 1999,
"Delete-m jackknife for unequal m"): the test images are cut into G batches; replicate g is the
difference method − baseline on every image but those of batch g, and the spread of the G
replicates gives the standard error of the difference, read with Student's t on G − 1 degrees
of freedom (the batch-means interval of simulation output analysis: Schmeiser, Operations
Research 1982, "Batch size effects in the analysis of simulation output").

The jackknife's standard error, with m_g images in batch g of N and θ_(g) the difference
without batch g: pseudo-values θ̃_g = h_g θ − (h_g − 1) θ_(g), h_g = N / m_g, their
weighted mean θ_J = G θ − Σ_g (1 − m_g / N) θ_(g), and se² = (1 / G) Σ_g (θ̃_g − θ_J)² /
(h_g − 1) (Busing et al.). For a metric that is a mean over images, θ̃_g is batch g's own
mean and se² the classical variance of a mean of G batch means. The interval is centred on
θ, the difference on the full data, not on the bias-corrected θ_J.

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

Seeds share only part of the image variation. A seed's difference on the test set is
d_s = δ + u_s + I + E_s: the true difference δ, the seed's training draw u_s, an image
term I common to every seed (which frames happen to be in the test set, and how the two
methods differ on them in general) and an image term E_s of that seed alone (the frames
where this trained model happens to err). Var(mean of d_s) = (σ_u² + σ_E²) / S + σ_I². The
spread of the d_s over seeds already holds σ_u² + σ_E² (I cancels in it); the jackknife
variance A of the seed-averaged difference holds σ_I² + σ_E² / S, and the mean B of each
seed's own jackknife variance σ_I² + σ_E². So σ_I² = (S · A − B) / (S − 1) (the mean
covariance of two seeds' jackknife replicates), floored at 0, and se_shared is its root;
adding A instead (``metrics.stats`` at 5371a10) counts σ_E² / S twice. In this project's
runs σ_E is not small: each seed's own image standard error of an mIoU difference (0.40–0.57
points on the Zen 5) is as large as the spread of the d_s (0.38–0.49), so most of what
looked like seed-to-seed variation is each model's own errors on stretches of frames.
Simulated with such seed-specific frame errors (``benchmarks/bench_interval.py
--seed-frames``), counting σ_E² twice held the truth in 97.1–99.7% of comparisons, and
this interval in 94.1–98.2% with intervals 1–17% narrower
(docs/benchmarks.md, "Coverage of the verdict's interval").
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike

from segrepro.errors import SegreproError


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
