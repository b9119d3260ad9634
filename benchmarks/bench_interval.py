"""Coverage of the verdict's interval (``metrics.stats.paired_interval``) by simulation.

A verdict is only as good as its interval: a 95% interval should hold the true difference in
95% of comparisons, so that "reproduced" / "not reproduced" is wrong about 1 time in 20 when
there is no effect. This simulates comparisons whose truth is known and counts how often the
interval holds it.

Model of one comparison (S seeds, N test images, C classes, a linear metric: the mean over
images and classes of a per-image score, like boundary F): every image has a difficulty shared
by both methods and all seeds (normal, sd 0.15); every (method, seed) run is shifted by its
own training draw (normal, sd ``--seed-sd``: the seed-to-seed spread of one method); every
(method, seed, image, class) score gets its own noise (normal, sd 0.05). The method's true
difference to the baseline is ``--effect``. Choices where nothing prescribes one: these sds
give an image half-width of about 0.3 points at N = 233 independent images, the size of this
project's one-seed intervals before frames were batched, and ``--seed-sd`` 0.01 the 1-point seed spread of its runs (README).

With ``--frame-corr φ`` the images are the frames of CamVid's two test videos (62 and 171
frames, ``TEST_VIDEOS``) and each method also has its own gain on every frame, shared by its
seeds and classes: a first-order autoregressive series along each video (normal, sd
``FRAME_SD`` = 0.03, correlation φ from one frame to the next), so a method's advantage on one
frame predicts its advantage on the next, as in the project's runs (PDN − baseline: lag-1
autocorrelation 0.66, still 0.45 at lag 8 and 0.24 at lag 20, which φ = 0.95 mimics;
``evaluation.compare``'s docstring). Each comparison is then made twice from the same data:
with every frame its own batch (frames taken as independent), and in batches of
``compare.FRAME_BATCH`` consecutive frames within each video as the compare stage does
(``--frame-batch`` overrides the length). With ``--seed-frames w`` a share w of that per-frame
gain's variance is each seed's own (an independent series per seed: the stretches of frames
where that trained model errs) and 1 − w common to the method's seeds; in this project's runs
each seed's own image variation is as large as the spread over seeds (``metrics.jackknife``,
"Seeds share only part of the image variation").

Usage::

    PYTHONPATH=src python benchmarks/bench_interval.py                 # S 2, 3, 5 × four seed spreads
    PYTHONPATH=src python benchmarks/bench_interval.py --seeds 3 --seed-sd 0.01 --reps 300
    PYTHONPATH=src python benchmarks/bench_interval.py --seeds 1 3 --seed-sd 0.003 --frame-corr 0 0.7 0.95
    PYTHONPATH=src python benchmarks/bench_interval.py --family 6 --seeds 3 --seed-sd 0.01 --frame-corr 0.95

Prints one line per setting: how often the interval holds the true difference, how often it
excludes 0 (with ``--effect 0``: the false-verdict rate) and its mean width in points (what the
coverage costs). With ``--family K``: families of K
claims with no true effect, each a method against one shared baseline (the report's claims
table), and how often at least one claim of a family gets a verdict, read claim by claim at 95%
and after Holm's adjustment (``metrics.multiplicity``); with ``--effect`` the first claim of each
family has that true difference, and how often it is found is printed beside (the cost of the
adjustment). Seeded: the same numbers on any
machine with the same numpy and scipy.

Every argument is checked before anything is simulated (``check_args``): every float
(``--seed-sd``, ``--effect``, ``--frame-corr``, ``--seed-frames``) finite (argparse takes ``nan`` and
``inf``; before, ``--effect nan`` or ``--seed-sd inf`` ran and then blamed the reducer, and
``--frame-corr nan`` was called out of range), ``--reps``, ``--seeds``
and ``--family`` ≥ 1, ``--seed-sd`` ≥ 0, ``--images`` ≥ 2 (an interval needs a spread),
``--frame-corr`` in [-1, 1] (the AR(1) series' correlation), ``--seed-frames`` in [0, 1],
``--frame-batch`` ≥ 1; ``--seed-frames`` and ``--frame-batch`` only with ``--frame-corr``, and
``--images`` not with it (the frames are the test videos'), since they would be ignored. A
mistake is one ``bench_interval: error:`` line on stderr, exit status 2. ``--images`` also sets
the image count of ``--family`` without ``--frame-corr`` (233 before it was honoured there).
"""
from __future__ import annotations

import argparse
import sys
from typing import NamedTuple

import numpy as np

from bench_args import check_finite, check_min, run_cli
from segrepro.errors import SegreproError
from segrepro.evaluation.compare import FRAME_BATCH
from segrepro.metrics.multiplicity import holm_adjusted
from segrepro.metrics.stats import paired_interval
from segrepro.reporting.claims import ALPHA

TEST_VIDEOS = (62, 171)  # frames of 0001TP and Seq05VD in CamVid's test split (data.camvid)
FRAME_SD = 0.03  # sd of a method's own per-frame gain with --frame-corr (docstring)


def mean_score(stats: np.ndarray) -> np.ndarray:
    """Image-averaged per-class scores (B, C) -> their mean over classes (B,)."""
    return stats.mean(axis=-1)


def frame_gains(rng: np.random.Generator, corr: float) -> np.ndarray:
    """One method's gain on every test frame (1, N, 1): an AR(1) series along each video,
    stationary with sd ``FRAME_SD`` and correlation ``corr`` between neighbouring frames."""
    series = []
    for frames in TEST_VIDEOS:
        x = np.empty(frames)
        x[0] = rng.normal(0, FRAME_SD)
        for i in range(1, frames):
            x[i] = corr * x[i - 1] + rng.normal(0, FRAME_SD * (1 - corr ** 2) ** 0.5)
        series.append(x)
    return np.concatenate(series)[None, :, None]


def with_frame_gains(rng: np.random.Generator, scores: np.ndarray, corr: float, seed_share: float) -> np.ndarray:
    """One method's scores (S, N, C) plus its per-frame gains (``frame_gains``): a part common to
    its seeds and, with ``seed_share`` > 0, a part of each seed alone (the frames where that
    trained model errs), the two splitting the gain's variance ``1 − seed_share`` : ``seed_share``."""
    if not seed_share:
        return scores + frame_gains(rng, corr)
    common = (1 - seed_share) ** 0.5 * frame_gains(rng, corr)
    own = seed_share ** 0.5 * np.concatenate([frame_gains(rng, corr) for _ in range(scores.shape[0])])
    return scores + common + own


def runs(rng: np.random.Generator, image: np.ndarray, seeds: int, seed_sd: float, shift: float,
         classes: int) -> np.ndarray:
    """One method's per-image scores (S, N, C): the shared image difficulty, its true ``shift``, a
    training draw per seed and noise per (seed, image, class) (docstring)."""
    return image + shift + rng.normal(0, seed_sd, (seeds, 1, 1)) \
        + rng.normal(0, 0.05, (seeds, image.shape[1], classes))


def video_batches(frame_batch: int) -> dict:
    """The compare stage's batches of the frames of ``TEST_VIDEOS``: paired_interval's keywords."""
    starts = np.cumsum((0,) + TEST_VIDEOS[:-1])
    return {"sequences": [np.arange(a, a + k) for a, k in zip(starts, TEST_VIDEOS)], "frame_batch": frame_batch}


def coverage(seeds: int, seed_sd: float, effect: float, reps: int, images: int,
             classes: int = 4, frame_corr: float | None = None, frame_batch: int = FRAME_BATCH,
             seed_frames: float = 0.0) -> dict[str, tuple[float, float, float]]:
    """How each way of batching the images fared over ``reps`` comparisons: way -> (fraction of
    intervals holding ``effect``, fraction excluding 0, mean width in points). Ways: "independent" (every image its own
    batch), and with ``frame_corr`` also "batches" (frames of ``TEST_VIDEOS`` in batches of
    ``frame_batch``)."""
    rng = np.random.default_rng(7)
    ways: dict[str, dict] = {"independent": {}}
    if frame_corr is not None:
        images = sum(TEST_VIDEOS)
        ways["batches"] = video_batches(frame_batch)
    holds = dict.fromkeys(ways, 0)
    excludes_zero = dict.fromkeys(ways, 0)
    width = dict.fromkeys(ways, 0.0)
    for rep in range(reps):
        image = rng.normal(0.6, 0.15, size=(1, images, 1))
        base = runs(rng, image, seeds, seed_sd, 0.0, classes)
        meth = runs(rng, image, seeds, seed_sd, effect, classes)
        if frame_corr is not None:
            base = with_frame_gains(rng, base, frame_corr, seed_frames)
            meth = with_frame_gains(rng, meth, frame_corr, seed_frames)
        for way, how in ways.items():
            ci = paired_interval(meth, base, mean_score, **how)
            holds[way] += ci.low <= effect <= ci.high
            excludes_zero[way] += ci.low > 0 or ci.high < 0
            width[way] += 100 * (ci.high - ci.low)
    return {way: (holds[way] / reps, excludes_zero[way] / reps, width[way] / reps) for way in ways}


class FamilyRates(NamedTuple):
    """Over the families simulated: how often SOME null claim got a verdict, and how often the one
    true effect (if any) was found, read claim by claim at 95% and with Holm's adjustment."""

    false_alone: float
    false_holm: float
    found_alone: float | None
    found_holm: float | None


def family_error(claims: int, seeds: int, seed_sd: float, reps: int, classes: int = 4,
                 frame_corr: float | None = None, frame_batch: int = FRAME_BATCH, seed_frames: float = 0.0,
                 effect: float = 0.0, images: int = 233) -> FamilyRates:
    """Families of ``claims`` comparisons, each a method against the SAME baseline runs, as the
    report's claims are (so they are correlated through the baseline's draws). The first claim's
    method carries the true ``effect`` (0: every claim is null); a verdict counts as found only in
    the effect's direction. ``images`` independent images, or with ``frame_corr`` the frames of
    ``TEST_VIDEOS``, in batches as the compare stage cuts them."""
    rng = np.random.default_rng(13)
    images, how = (sum(TEST_VIDEOS), video_batches(frame_batch)) if frame_corr is not None else (images, {})
    false = {"alone": 0, "holm": 0}
    found = {"alone": 0, "holm": 0}
    for rep in range(reps):
        image = rng.normal(0.6, 0.15, size=(1, images, 1))
        base = runs(rng, image, seeds, seed_sd, 0.0, classes)
        methods = [runs(rng, image, seeds, seed_sd, effect if k == 0 else 0.0, classes) for k in range(claims)]
        if frame_corr is not None:
            base = with_frame_gains(rng, base, frame_corr, seed_frames)
            methods = [with_frame_gains(rng, m, frame_corr, seed_frames) for m in methods]
        cis = [paired_interval(m, base, mean_score, **how) for m in methods]
        p = np.array([ci.p for ci in cis])
        nulls = slice(1, None) if effect else slice(None)
        for reading, q in (("alone", p), ("holm", holm_adjusted(p))):
            false[reading] += bool(np.any(q[nulls] <= ALPHA))
            found[reading] += bool(effect and q[0] <= ALPHA and (cis[0].point > 0) == (effect > 0))
    return FamilyRates(false["alone"] / reps, false["holm"] / reps,
                       found["alone"] / reps if effect else None, found["holm"] / reps if effect else None)


def _frame_settings(args: argparse.Namespace) -> list[tuple[float | None, float]]:
    """(frame correlation, seed-own share) pairs to simulate; the share only with frames."""
    return [(corr, own) for corr in args.frame_corr for own in (args.seed_frames if corr is not None else [0.0])]


def check_args(args: argparse.Namespace) -> None:
    """Refuse, before anything is simulated, a value the model cannot take or a flag that would be
    ignored; fill in the defaults of ``--images`` (233) and ``--frame-batch`` (``FRAME_BATCH``)."""
    for flag, values in (("--seed-sd", args.seed_sd), ("--effect", [args.effect]),
                         ("--frame-corr", [c for c in args.frame_corr if c is not None]),
                         ("--seed-frames", args.seed_frames)):
        for value in values:  # first: a nan passes every bound below
            check_finite(flag, value)
    check_min("--reps", args.reps, 1)
    for flag, values, low in (("--seeds", args.seeds, 1), ("--seed-sd", args.seed_sd, 0),
                              ("--family", args.family or [], 1)):
        for value in values:
            check_min(flag, value, low)
    frames = args.frame_corr != [None]
    for flag, values in (("--frame-corr", [c for c in args.frame_corr if c is not None]),
                         ("--seed-frames", args.seed_frames)):
        low = -1 if flag == "--frame-corr" else 0
        bad = [v for v in values if not low <= v <= 1]
        if bad:
            raise SegreproError(f"{flag} {bad[0]:g} is out of range; pass values in [{low}, 1]")
    for flag, given in (("--seed-frames", args.seed_frames != [0.0]), ("--frame-batch", args.frame_batch is not None)):
        if given and not frames:
            raise SegreproError(f"{flag} applies to the frames of --frame-corr only; add --frame-corr or drop {flag}")
    if args.images is not None and frames:
        raise SegreproError(f"--frame-corr simulates the {sum(TEST_VIDEOS)} frames of the test videos; "
                            "drop --images or --frame-corr")
    args.images = 233 if args.images is None else args.images
    check_min("--images", args.images, 2)  # an interval needs two images' spread
    args.frame_batch = FRAME_BATCH if args.frame_batch is None else args.frame_batch
    check_min("--frame-batch", args.frame_batch, 1)


def _frame_label(corr: float | None, own: float) -> str:
    return ("" if corr is None else f"  frame corr {corr:<4g}") + (f"  seed-own {own:g}" if own else "")


def main(argv: list[str] | None = None) -> int:
    """Check every argument, then simulate and print; exit status 2 with one line on a refusal."""
    return run_cli("bench_interval", parser(), run, argv)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[2, 3, 5])
    parser.add_argument("--seed-sd", type=float, nargs="+", default=[0.02, 0.01, 0.003, 0.0005])
    parser.add_argument("--effect", type=float, default=0.0)
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--images", type=int, help="independent images, ≥ 2 (default 233; not with --frame-corr)")
    parser.add_argument("--frame-corr", type=float, nargs="+", default=[None],
                        help="frames of two videos, each method's gain correlated along them (docstring)")
    parser.add_argument("--frame-batch", type=int, help=f"with --frame-corr: frames a batch (default {FRAME_BATCH})")
    parser.add_argument("--seed-frames", type=float, nargs="+", default=[0.0],
                        help="with --frame-corr: the share of the per-frame gain's variance that is each seed's own")
    parser.add_argument("--family", type=int, nargs="+", metavar="CLAIMS",
                        help="instead: how often families of this many null claims give a false verdict")
    return parser


def run(args: argparse.Namespace) -> None:
    check_args(args)
    videos = f"frames of videos of {TEST_VIDEOS} frames, batches of {args.frame_batch}" \
        if args.frame_corr != [None] else f"{args.images} images"
    if args.family:
        truth = "every claim without a true effect" if not args.effect else \
            f"the first claim with a true difference of {args.effect}, the others without"
        print(f"{args.reps} families per line, {truth}, {videos}")
        for claims in args.family:
            for seeds in args.seeds:
                for seed_sd in args.seed_sd:
                    for corr, own in _frame_settings(args):
                        rates = family_error(claims, seeds, seed_sd, args.reps, frame_corr=corr,
                                             frame_batch=args.frame_batch, seed_frames=own, effect=args.effect,
                                             images=args.images)
                        setting = f"  {claims} claims  S={seeds}  seed sd {seed_sd:<7g}" + _frame_label(corr, own)
                        found = "" if rates.found_alone is None else (
                            f"   effect found: claim by claim {rates.found_alone:6.1%}, Holm {rates.found_holm:6.1%}")
                        print(f"{setting}   some false verdict: claim by claim {rates.false_alone:6.1%}, "
                              f"Holm {rates.false_holm:6.1%}{found}")
        return
    print(f"{args.reps} comparisons per line, {videos}, true difference {args.effect}")
    for seeds in args.seeds:
        for seed_sd in args.seed_sd:
            for corr, own in _frame_settings(args):
                found = coverage(seeds, seed_sd, args.effect, args.reps, args.images,
                                 frame_corr=corr, frame_batch=args.frame_batch, seed_frames=own)
                setting = f"  S={seeds}  seed sd {seed_sd:<7g}" + _frame_label(corr, own)
                print(setting + "".join(f"   {way}: holds the truth {held:6.1%}, excludes 0 {excluded:6.1%}, "
                                        f"width {wide:.2f}" for way, (held, excluded, wide) in found.items()))


if __name__ == "__main__":
    sys.exit(main())
