"""Coverage and power of the verdict's interval under a run's own measured structure.

``bench_interval.py`` checks the interval (``metrics.stats.paired_interval``) on a model whose
sizes are set by hand; its per-frame gain is sized for a short memory, so at the long memory of
this project's runs its intervals come out wider than the real ones and its power is too low.
This fits the model to a run instead: it reads the per-image statistics of a run of two or more
seeds (``results/per_image``, for ``base.methods`` × ``base.seeds`` of the params file),
measures how each method's difference to the reference varies (over seeds, over the frames the
seeds share, over each seed's own frames, and how long each remembers along the video), then
simulates comparisons with exactly those parts and a known truth, and counts how often the
interval holds the truth (coverage) and how often it declares a gain as large as the measured
one (power), at the run's own seed count and at others.

1. **Per-image differences.** Every seed's metric is written as a mean over test images of
   per-image terms, the delete-one-image pseudo-values ``N·θ − (N − 1)·θ₍₋ᵢ₎`` (Quenouille and
   Tukey's jackknife): for boundary F, a plain mean over images, they are exactly each image's
   value; for the ratio metrics (mIoU, trimap mIoU, Boundary IoU) a first-order linearisation,
   whose mean is the metric to within the ratio's curvature. ``d[s, i]``: method minus reference,
   seed s, image i.
2. **Parts.** ``d[s, i] = Δ + a_s + c_i + e_si``: ``a_s`` the seed's own draw (what the spread over
   seeds holds beyond the images), ``c_i`` the image part every seed shares (which frames the
   test set happens to hold), ``e_si`` each seed's own image part (the frames that trained model
   gets wrong). With ``r = d`` less each seed's mean, ``ĉ_i`` is the mean of ``r`` over seeds and
   ``ê = r − ĉ``; their autocovariances are corrected for what each estimate borrows from the
   other (``γ_e = γ_ê · S/(S − 1)``, ``γ_c = γ_ĉ − γ_e / S``). The seed part's variance is
   that of the seeds' means less what ``e`` adds to a mean over images (its autocovariance summed
   over every pair of frames of a video), floored at 0.
3. **Memory along each video.** Each image part is modelled as white noise plus a first-order
   autoregressive series: ``γ(0) = v_white + v_slow``, ``γ(k) = v_slow · φᵏ`` for k ≥ 1, fitted by
   least squares to the autocovariance at lags 1 to ``LAGS`` (frames of one video only, pooled
   over videos and seeds), φ on a grid of 0.01; each part was centred on its mean over the test
   frames, which takes that mean's variance off every lag, so the fit adds it back
   (:func:`fit_centred`). On the Zen 5's runs the real correlations fade
   this way (PDN − baseline: 0.66 at lag 1, 0.45 at lag 8, 0.24 at lag 20; ``compare``).
4. **Simulation.** ``S`` seeds of ``d`` drawn with those parts along the run's own videos (same
   frame counts), the truth set to ``Δ``, the interval made as the compare stage makes it
   (``stats.interval_parts`` and ``half_width``, batches of ``compare.FRAME_BATCH`` frames),
   repeated ``--reps`` times; seeded.

Choices where no source prescribes one: pseudo-values for the ratio metrics (their
linearisation error is second order in one image's share, 1/233); white + AR(1) for each part
(two numbers of memory; a longer tail would make the real coverage lower than this one); parts
independent of one another and normal; a gap between the videos' mean gains kept in the parts
(they are centred over all frames, not per video), where it fits as a slow part of φ near 1
and is drawn anew in every simulated comparison, as a new pair of videos would give it; lags
up to 30 frames (the Zen 5 runs' correlation is about 0 there); the parts taken as measured, though from a few seeds they are themselves
uncertain (the seed part most: its variance from S seeds has S − 1 degrees of freedom), so
the output is the interval's behaviour at this run's estimated structure, not a promise for the
true one.

Usage::

    PYTHONPATH=src python benchmarks/bench_interval_fitted.py --params P --per-image D
    PYTHONPATH=src python benchmarks/bench_interval_fitted.py --params P --per-image D --seeds 1 3 8 --reps 500

Prints, for every method and headline metric, the measured parts (in points) and, for each seed
count, % of intervals holding the truth, their mean width, and % declaring a gain equal to the
measured difference (its own sign).
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy.signal import lfilter

from segrepro import layout
from segrepro.errors import SegreproError
from segrepro.evaluation.compare import FRAME_BATCH, load_run
from segrepro.metrics.registry import Reducer, headline
from segrepro.metrics.stats import half_width, interval_parts
from text_table import table

LAGS = 30  # autocovariance lags fitted (docstring, step 3)
PHI_GRID = np.round(np.arange(0.0, 1.0, 0.01), 2)  # candidate φ (0 … 0.99)


def pseudo_values(stats: np.ndarray, reduce: Reducer) -> np.ndarray:
    """Delete-one-image pseudo-values (S, N) of a metric from its per-image statistics (S, N, ...)."""
    s, n = stats.shape[:2]
    total = stats.sum(axis=1)  # (S, ...)
    out = np.empty((s, n))
    for seed in range(s):
        full = float(reduce(total[seed][None] / n)[0])
        without = reduce((total[seed][None] - stats[seed]) / (n - 1))  # (N,): image i left out
        out[seed] = n * full - (n - 1) * np.asarray(without, dtype=np.float64)
    return out


def autocovariance(series: np.ndarray, videos: Sequence[np.ndarray], lags: int) -> np.ndarray:
    """γ(0 … lags) of zero-mean series (R, N), frames paired only within each video, pooled."""
    gamma = np.zeros(lags + 1)
    for k in range(lags + 1):
        pairs = [(series[:, v[:-k or None]] * series[:, v[k:]]) for v in videos if v.size > k]
        gamma[k] = sum(p.sum() for p in pairs) / sum(p.size for p in pairs)
    return gamma


class Memory(NamedTuple):
    """One image part: white variance, slow (AR(1)) variance and its lag-1 correlation φ."""

    white: float
    slow: float
    phi: float

    @property
    def sd(self) -> float:
        return float(np.sqrt(self.white + self.slow))


def fit_memory(gamma: np.ndarray) -> Memory:
    """White + AR(1) fitted to γ(0 … K) (docstring, step 3); variances floored at 0."""
    k = np.arange(1, gamma.size)
    powers = PHI_GRID[:, None] ** k[None, :]  # (Φ, K)
    slow = np.clip((powers * gamma[1:]).sum(axis=1) / np.maximum((powers ** 2).sum(axis=1), 1e-300), 0, None)
    slow = np.minimum(slow, max(gamma[0], 0.0))
    best = int(np.argmin(((gamma[1:] - slow[:, None] * powers) ** 2).sum(axis=1)))
    return Memory(max(gamma[0] - slow[best], 0.0), float(slow[best]), float(PHI_GRID[best]))


def fit_centred(gamma: np.ndarray, videos: Sequence[np.ndarray], rounds: int = 20) -> Memory:
    """:func:`fit_memory` of a series whose own mean over all frames was subtracted before ``gamma``
    was taken: that takes about the variance of the mean off every lag (much of it at a long
    memory: at φ 0.95 the mean of CamVid's 233 test frames has a seventh of the slow part's variance), so it is added back with the
    fitted memory's own, until the fit settles."""
    memory = fit_memory(gamma)
    for _ in range(rounds):
        memory = fit_memory(gamma + mean_variance(memory, videos))
    return memory


def mean_variance(memory: Memory, videos: Sequence[np.ndarray]) -> float:
    """Variance of the mean over all frames of a part with ``memory`` (videos independent)."""
    n = sum(v.size for v in videos)
    total = 0.0
    for v in videos:
        lag = np.abs(np.subtract.outer(np.arange(v.size), np.arange(v.size)))
        total += memory.white * v.size + (memory.slow * memory.phi ** lag).sum()
    return total / n ** 2


class Structure(NamedTuple):
    """A difference's measured parts (docstring, step 2), in metric units."""

    point: float
    seeds: int
    seed_sd: float
    shared: Memory
    own: Memory


def measure(d: np.ndarray, videos: Sequence[np.ndarray], lags: int = LAGS) -> Structure:
    """The parts of per-image differences ``d`` (S, N), S ≥ 2, along ``videos``."""
    s = d.shape[0]
    if s < 2:
        raise SegreproError(f"a run of at least two seeds is needed to tell the seeds' parts apart; it has {s}")
    lags = min(lags, max(v.size for v in videos) - 1)  # a short test video holds fewer lags
    if lags < 1:
        raise SegreproError("every test video has a single frame: no memory along a video can be measured")
    means = d.mean(axis=1)
    r = d - means[:, None]
    shared_hat = r.mean(axis=0, keepdims=True)  # (1, N)
    own_hat = r - shared_hat
    gamma_own = autocovariance(own_hat, videos, lags) * s / (s - 1)
    gamma_shared = autocovariance(shared_hat, videos, lags) - gamma_own / s
    own, shared = fit_centred(gamma_own, videos), fit_centred(gamma_shared, videos)
    seed_var = max(float(np.var(means, ddof=1)) - mean_variance(own, videos), 0.0)
    return Structure(float(means.mean()), s, float(np.sqrt(seed_var)), shared, own)


def draw_part(rng: np.random.Generator, memory: Memory, rows: int, videos: Sequence[np.ndarray],
              n: int) -> np.ndarray:
    """``rows`` independent draws (rows, N) of a part with ``memory`` along each video."""
    out = np.sqrt(memory.white) * rng.standard_normal((rows, n))
    innovations = rng.standard_normal((rows, n))
    for v in videos:
        e = innovations[:, v] * np.sqrt(1 - memory.phi ** 2)
        e[:, 0] = innovations[:, v[0]]  # the stationary start
        out[:, v] += np.sqrt(memory.slow) * lfilter([1.0], [1.0, -memory.phi], e, axis=1)
    return out


class Behaviour(NamedTuple):
    """Over the simulated comparisons: share holding the truth, mean width, share declaring the gain."""

    coverage: float
    width: float
    power: float


def interval(d: np.ndarray, videos: Sequence[np.ndarray]) -> tuple[float, float]:
    """The compare stage's 95% interval of the mean of per-image differences ``d`` (S, N) as (point,
    half-width): ``stats.interval_parts`` and ``half_width``, without the p-value it does not need."""
    parts = interval_parts(d[..., None], np.zeros(d.shape + (1,)), lambda m: m[:, 0], sequences=videos,
                           frame_batch=FRAME_BATCH)
    return parts.point, half_width(d.shape[0], parts.seed_sd, parts.image_se, parts.batches)


def simulate(structure: Structure, seeds: int, videos: Sequence[np.ndarray], reps: int,
             rng: np.random.Generator) -> Behaviour:
    """``reps`` comparisons of ``seeds`` seeds drawn with ``structure``: coverage and width at the
    truth 0, and power at the measured difference (declared: the interval clear of 0 on its
    side). The statistic is the difference itself, so the interval at a truth δ is the one at 0
    moved by δ."""
    n = sum(v.size for v in videos)
    held = declared = 0
    width = 0.0
    for _ in range(reps):
        noise = structure.seed_sd * rng.standard_normal((seeds, 1)) \
            + draw_part(rng, structure.shared, 1, videos, n) + draw_part(rng, structure.own, seeds, videos, n)
        point, half = interval(noise, videos)
        held += abs(point) <= half
        width += 2 * half
        gain = point + structure.point
        declared += gain - half > 0 if structure.point > 0 else gain + half < 0
    return Behaviour(held / reps, width / reps, declared / reps)


def structures(per_image_dir: Path, methods: Sequence[str], seeds: Sequence[int]
               ) -> tuple[dict[tuple[str, str], Structure], list[np.ndarray]]:
    """(method, headline metric) -> its measured structure, for every method but the reference;
    and the test videos (frame indices in time order)."""
    run = load_run(per_image_dir, methods, seeds)
    registry = {m.name: m for m in run.registry}
    reference, videos = methods[0], run.videos
    names = headline(list(registry))
    ref = {name: pseudo_values(run.stats[reference][registry[name].statistic], registry[name].reduce)
           for name in names}  # the reference's pseudo-values, once per metric
    found = {}
    for method in methods[1:]:
        for name in names:
            m = registry[name]
            x, y = run.stats[method][m.statistic], run.stats[reference][m.statistic]
            point = float(np.mean(m.reduce(x.mean(axis=1)) - m.reduce(y.mean(axis=1))))  # compare's Δ
            found[(method, name)] = measure(pseudo_values(x, m.reduce) - ref[name], videos)._replace(point=point)
    return found, videos


def main(argv: list[str] | None = None) -> None:
    from segrepro.params import load_params

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--per-image", type=Path, default=layout.PER_IMAGE)
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="seed counts to simulate (default: 1, 3 and the run's own)")
    parser.add_argument("--reps", type=int, default=1000)
    args = parser.parse_args(argv)
    params = load_params(args.params)
    run_seeds = len(params.base.seeds)
    counts = args.seeds or sorted({1, 3, run_seeds})
    if args.reps < 1 or min(counts) < 1:
        raise SegreproError("--reps and every --seeds count must be at least 1")
    found, videos = structures(args.per_image, params.base.methods, params.base.seeds)
    print(f"Fitted to {run_seeds} seeds ({', '.join(map(str, params.base.seeds))}); {args.reps} simulated "
          f"comparisons per cell, batches of {FRAME_BATCH} frames; parts in points (sd; φ: lag-1 correlation "
          "of the slow part); % holding the truth (mean width) / % declaring a gain of the measured size:\n")
    head = ["method", "metric", "Δ", "seed sd", "shared: white, slow (φ)", "own: white, slow (φ)"] + \
        [f"{k} seed{'s' if k > 1 else ''}" for k in counts]
    rng = np.random.default_rng(2026)
    rows = []
    for (method, name), st in found.items():
        cells = [method, name, f"{100 * st.point:+.2f}", f"{100 * st.seed_sd:.2f}"]
        for part in (st.shared, st.own):
            cells.append(f"{100 * np.sqrt(part.white):.2f}, {100 * np.sqrt(part.slow):.2f} ({part.phi:.2f})")
        for k in counts:
            b = simulate(st, k, videos, args.reps, rng)
            cells.append(f"{100 * b.coverage:.1f} ({100 * b.width:.2f}) / {100 * b.power:.1f}")
        rows.append(cells)
    print(table(head, rows, markdown=True))


if __name__ == "__main__":
    try:
        main()
    except SegreproError as exc:
        raise SystemExit(f"bench_interval_fitted: {exc}") from None
