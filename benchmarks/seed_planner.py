"""How many training seeds a verdict needs: the interval's half-width projected from a run.

Every claim of the report reads the 95% interval of a difference method − baseline
(``metrics.stats``), whose half-width has two parts: the spread of the seeds' differences, which
shrinks as seeds are added, and the image variation the seeds share, which does not (it is the
test set's: which frames it happens to hold). This reads the per-image statistics of a run of
two or more seeds (``results/per_image``, for ``base.methods`` × ``base.seeds`` of the params
file), measures both parts for every method against the reference and every headline metric
(``metrics.registry.headline``), and prints the half-width the interval would have with K seeds
if both stayed as measured (``metrics.stats.half_width``)::

    h(K) = sqrt((t_{K−1} · sd / √K)² + (t_{G−1} · se)²)

sd: the sample standard deviation of the run's per-seed differences; se: the image part's
standard error (``jackknife.shared_image_se``), over G batches of frames (``compare.FRAME_BATCH``).
Its "floor" column is h(K) as K grows without end, t_{G−1} · se: no number of seeds narrows
the interval below it on this test set. Where the seeds' shared image variation did not show
above each seed's own (its estimate fell below 0 and is floored, se 0.00), the floor reads
"not measured": it is not zero, only hidden at this many seeds, and h(K) for large K is then
optimistic. How to read h(K): a true gain of h(K) is declared (its
interval clear of 0) about half the time, since the estimate falls on either side of it; a
gain well below h(K) rarely is. The column for the run's own seed count is the half-width of
the run's own interval, so the projection starts from what the report shows.

Two more columns say how many seeds would bring h(K) down to the run's own |Δ|, the count at which
a true gain of that size is declared about half the time: "seeds to reach Δ" with sd as
measured, and "cautious" with sd at its one-sided 90% upper bound, sd · √((S − 1) / χ²_{0.10, S−1})
(3.1 × sd from three seeds, 1.6 × from eight). sd from S seeds is itself uncertain (from three
seeds its 95% range runs from about half to about six times the estimate), and a plan read off
the measured sd alone can fall short: on the Zen 5, three seeds measured PDN's mIoU spread at 0.49
points and eight at 0.81 (docs/results.md, "Eight seeds"). "never" means the floor is at or above |Δ|;
"> 1000", that no count up to 1000 reaches it.

Choices where no source prescribes one: sd and se are taken as measured in the h(K) columns, so the
table is a planning guide, not a promise; the cautious bound's 90% (one-sided) is a planning
convention, not a test level; |Δ| is the run's own point, which is itself noisy and, when read
because it looked promising, more likely too large than too small; a run of one seed is refused,
as it shows no seed spread.

Usage::

    PYTHONPATH=src python benchmarks/seed_planner.py                          # params.yaml, results/per_image
    PYTHONPATH=src python benchmarks/seed_planner.py --params P --per-image D --seeds 3 5 10 20
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy.stats import chi2

from segrepro import layout
from segrepro.errors import SegreproError
from segrepro.evaluation.compare import FRAME_BATCH, load_run
from segrepro.metrics.registry import headline, label
from segrepro.metrics.stats import half_width, interval_parts
from segrepro.reporting.labels import method_label
from text_table import table


class Projection(NamedTuple):
    """One (method, metric) of a run and its projected half-widths, all in metric units."""

    method: str
    metric: str
    point: float  # the run's difference to the reference
    seeds: int  # the run's seed count
    seed_sd: float
    image_se: float
    batches: int
    half: dict[int, float]  # K seeds -> h(K)
    floor: float  # h(K) as K grows without end (image_floor)
    needed: int | str  # seeds for h(K) ≤ |point| with sd as measured, or why there is no such count
    needed_cautious: int | str  # the same with sd at its one-sided 90% upper bound (cautious_sd)


SEARCH_LIMIT = 1000  # the largest seed count seeds_needed tries
NEVER = "never"  # seeds_needed: the floor is at or above the target, so no seed count reaches it
BEYOND_LIMIT = f"> {SEARCH_LIMIT}"  # seeds_needed: no count up to SEARCH_LIMIT reaches it
CAUTIOUS_LEVEL = 0.90  # one-sided confidence of the seed spread's upper bound (module docstring)


def image_floor(image_se: float, batches: int) -> float:
    """h(K) as K grows without end: the image part alone, t_{G−1} · se."""
    return half_width(1, 0.0, image_se, batches)


def cautious_sd(seed_sd: float, seeds: int) -> float:
    """The one-sided ``CAUTIOUS_LEVEL`` upper bound of the seeds' standard deviation measured from
    ``seeds`` draws: sd · √((S − 1) / χ²_{1−level, S−1})."""
    dof = seeds - 1
    return seed_sd * float(np.sqrt(dof / chi2.ppf(1.0 - CAUTIOUS_LEVEL, dof)))


def seeds_needed(target: float, seed_sd: float, image_se: float, batches: int) -> int | str:
    """The fewest seeds K ≥ 2 whose half-width h(K) is at most ``target``, or why there is none:
    ``NEVER`` when the floor (``image_floor``) is already at or above it, ``BEYOND_LIMIT`` when no K up
    to ``SEARCH_LIMIT`` reaches it. h(K) falls as K grows (both t · sd / √K and t shrink), so the first
    K found is the fewest."""
    if image_floor(image_se, batches) >= target:
        return NEVER
    return next((k for k in range(2, SEARCH_LIMIT + 1) if half_width(k, seed_sd, image_se, batches) <= target),
                BEYOND_LIMIT)


def plan(per_image_dir: Path, methods: Sequence[str], seeds: Sequence[int],
         projected: Sequence[int]) -> list[Projection]:
    """Projections for every method but the first (the reference) and every headline metric."""
    if len(seeds) < 2:
        raise SegreproError(f"the seed planner needs a run of at least two seeds to measure their spread; this "
                            f"run has {len(seeds)} ({list(seeds)}): train more, e.g. "
                            "`dvc exp run -S 'base.seeds=[0,1,2]' report`")
    if any(k < 2 for k in projected):
        raise SegreproError(f"projected seed counts must be at least 2, got {list(projected)}")
    run = load_run(per_image_dir, methods, seeds)
    registry = {m.name: m for m in run.registry}
    reference = methods[0]
    counts = sorted(set(projected) | {len(seeds)})
    rows = []
    for method in methods[1:]:
        for name in headline(list(registry)):
            m = registry[name]
            parts = interval_parts(run.stats[method][m.statistic], run.stats[reference][m.statistic], m.reduce,
                                   sequences=run.videos, frame_batch=FRAME_BATCH)
            rows.append(Projection(method, name, parts.point, len(seeds), parts.seed_sd, parts.image_se,
                                   parts.batches,
                                   {k: half_width(k, parts.seed_sd, parts.image_se, parts.batches) for k in counts},
                                   image_floor(parts.image_se, parts.batches),
                                   seeds_needed(abs(parts.point), parts.seed_sd, parts.image_se, parts.batches),
                                   seeds_needed(abs(parts.point), cautious_sd(parts.seed_sd, len(seeds)),
                                                parts.image_se, parts.batches)))
    return rows


def markdown(rows: list[Projection]) -> str:
    """The projections as a markdown table, in points (metric × 100), methods and metrics by their labels."""
    counts = list(rows[0].half)
    head = ["method", "metric", f"Δ ({rows[0].seeds} seeds)", "seed sd", "shared image se"] + \
        [f"h({k}){' (this run)' if k == rows[0].seeds else ''}" for k in counts] + \
        ["floor", "seeds to reach Δ", "cautious"]  # no "|" in a cell: it would split the markdown column
    cells = [[method_label(r.method), label(r.metric), f"{100 * r.point:+.2f}", f"{100 * r.seed_sd:.2f}",
              f"{100 * r.image_se:.2f}"]
             + [f"{100 * r.half[k]:.2f}" for k in counts]
             + [f"{100 * r.floor:.2f}" if r.image_se else "not measured",
                str(r.needed), str(r.needed_cautious)] for r in rows]
    return table(head, cells, markdown=True)


def main(argv: list[str] | None = None) -> None:
    from segrepro.params import load_params

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--per-image", type=Path, default=layout.PER_IMAGE)
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 5, 10, 20],
                        help="seed counts to project to (default: %(default)s)")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    rows = plan(args.per_image, params.base.methods, params.base.seeds, args.seeds)
    print(f"95% half-widths in points, projected from {len(params.base.seeds)} seeds "
          f"({', '.join(map(str, params.base.seeds))}) with the measured seed spread and shared image part "
          f"over {rows[0].batches} batches of frames (docstring):\n")
    print(markdown(rows))


if __name__ == "__main__":
    try:
        main()
    except SegreproError as exc:
        raise SystemExit(f"seed_planner: {exc}") from None
