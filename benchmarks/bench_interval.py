"""Coverage of the verdict's interval (``metrics.stats.paired_bootstrap_ci``) by simulation.

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
give an image-bootstrap half-width of about 0.3 points at N = 233, the size of this project's
one-seed intervals, and ``--seed-sd`` 0.01 the 1-point seed spread of its runs (README).

Usage::

    PYTHONPATH=src python benchmarks/bench_interval.py                 # S 2, 3, 5 × four seed spreads
    PYTHONPATH=src python benchmarks/bench_interval.py --seeds 3 --seed-sd 0.01 --reps 300

Prints one line per setting: how often the interval holds the true difference and how often
it excludes 0 (with ``--effect 0``: the false-verdict rate). Seeded: the same numbers on any
machine with the same numpy.
"""
from __future__ import annotations

import argparse

import numpy as np

from segrepro.metrics.stats import paired_bootstrap_ci


def mean_score(stats: np.ndarray) -> np.ndarray:
    """Image-averaged per-class scores (B, C) -> their mean over classes (B,)."""
    return stats.mean(axis=-1)


def coverage(seeds: int, seed_sd: float, effect: float, reps: int, images: int, n_boot: int,
             classes: int = 4) -> tuple[float, float]:
    """(fraction of intervals holding ``effect``, fraction excluding 0) over ``reps`` comparisons."""
    rng = np.random.default_rng(7)
    holds = excludes_zero = 0
    for rep in range(reps):
        image = rng.normal(0.6, 0.15, size=(1, images, 1))
        base = image + rng.normal(0, seed_sd, (seeds, 1, 1)) + rng.normal(0, 0.05, (seeds, images, classes))
        meth = image + effect + rng.normal(0, seed_sd, (seeds, 1, 1)) \
            + rng.normal(0, 0.05, (seeds, images, classes))
        ci = paired_bootstrap_ci(meth, base, mean_score, n_boot=n_boot, seed=rep)
        holds += ci.low <= effect <= ci.high
        excludes_zero += ci.low > 0 or ci.high < 0
    return holds / reps, excludes_zero / reps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[2, 3, 5])
    parser.add_argument("--seed-sd", type=float, nargs="+", default=[0.02, 0.01, 0.003, 0.0005])
    parser.add_argument("--effect", type=float, default=0.0)
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--images", type=int, default=233)
    parser.add_argument("--n-boot", type=int, default=400)
    args = parser.parse_args(argv)
    print(f"{args.reps} comparisons per line, {args.images} images, {args.n_boot} bootstrap resamples, "
          f"true difference {args.effect}")
    for seeds in args.seeds:
        for seed_sd in args.seed_sd:
            held, excluded = coverage(seeds, seed_sd, args.effect, args.reps, args.images, args.n_boot)
            print(f"  S={seeds}  seed sd {seed_sd:<7g}  holds the truth {held:6.1%}   excludes 0 {excluded:6.1%}")


if __name__ == "__main__":
    main()
