"""Each paper's performance claim, quoted verbatim from its abstract, against what we measured.

The quotations are copied word for word from the abstracts reproduced with
the [Q] tag (verbatim quotation) in ``../shared/docs/methods.md`` — SDN §1.1
(arXiv 2302.02057), DDSM §2.1 (arXiv 2105.11657), PDN §3.1 (arXiv
1702.05839); a test checks every quotation against that file. No abstract
states a number and the papers' tables were not retrieved (§1.8, §2.5,
§3.5), so the "paper's number" cell always says not available: the report
never shows a paper number it does not have.

Which measured metric tests which claim is our reading (the abstracts name
no metric): a boundary claim is tested with boundary F at 2 px (the
smallest tolerance ≥ 2 px computed, else the largest) and Boundary IoU; an
effectiveness / performance claim with mIoU. The verdict reads the 95%
interval of the difference to the baseline that ``compare`` writes
(``metrics.stats``: test images by the paired jackknife over batches of
consecutive frames of their videos; training seeds by Student's t over the
per-seed differences):

* **reproduced** — the whole interval is above 0 (an improvement we can detect);
* **not reproduced** — the whole interval is below 0 (we measure a loss);
* **inconclusive** — the interval contains 0 (no difference detectable at this
  budget, number of seeds and test set), or only one training seed was run:
  then the interval covers test-image variation alone, not the seed-to-seed
  variation of training, and cannot carry a verdict.

Many claims at once: the table tests several (claim, metric) rows, each at 95%, against the same
baseline runs. Read claim by claim, each row is wrong about 1 time in 20 when its module changes
nothing, but the chance that SOME row of the table says reproduced or not reproduced by chance
is larger: simulated with six claims and no true effect, 3 seeds and frames correlated as
PDN's are (``benchmarks/bench_interval.py --family``;
docs/benchmarks.md, "Coverage of the verdict's interval"), 17% of tables at a
1-point seed spread and 31% at 0.3 points held at least one false verdict; read with Holm's
adjustment, 0.8% and 4.2%. So each row carries two verdicts: *this claim alone*, from its own
95% interval (the question of a reader of that one paper), and *all claims together*, from
Holm's adjusted p-values over every row of the table (``metrics.multiplicity``: at most
a 5% chance that the table holds any false verdict, whatever the dependence between rows, as far
as each row's interval holds its level; simulated up to 6.4% where it does not; one
of the procedures Demšar, JMLR 2006, "Statistical comparisons of classifiers over multiple data
sets", discusses for comparing several methods with one control). Choices where no
source prescribes one: the family is the claims table's rows (every claim and metric of the
methods run), not every metric of the report, which shows intervals but draws no verdicts from
them; Holm rather than Bonferroni, which rejects no more and sometimes less; a row's p is its
comparison's own (``compare``: the interval inverted), shown as "< 0.001" below 0.001 (six
rows × 0.001 is far below 0.05, so such a row's verdict does not hang on its exact p).

With exactly two seeds a verdict other than inconclusive is marked
*(two seeds: provisional)*: the seed variance then rests on one degree of
freedom, and the CPU's rounding alone moved two-seed verdicts. Measured
(docs/results.md, "Two seeds"; with the first, narrower interval): the same code and
seeds trained on an Intel Xeon and on an AMD EPYC (both AVX512, different
last bits) gave PDN's mIoU difference −0.78 [−1.88, +0.35] and +0.66
[+0.07, +1.33]. Three seeds or more give a plain verdict.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from segrepro.metrics import registry
from segrepro.metrics.multiplicity import holm_adjusted
from segrepro.reporting.labels import method_label
from segrepro.reporting.results import fmt_delta

NOT_AVAILABLE = "not available (no number in the abstract; the paper's tables were not retrieved)"
BF = "bf"   # placeholder metric: boundary F at the tolerance chosen by ``_resolve``
ALPHA = 0.05  # the verdicts' level: 95% intervals, 5% family-wise with Holm


@dataclass(frozen=True)
class Claim:
    method: str
    quote: str           # verbatim, from the [Q] abstract in docs/methods.md
    source: str
    metrics: tuple[str, ...]   # keys in the comparison results (``BF`` is resolved)


SDN_SOURCE = "SDN abstract, arXiv 2302.02057 (methods.md §1.1)"
DDSM_SOURCE = "DDSM abstract, arXiv 2105.11657 (methods.md §2.1)"
PDN_SOURCE = "PDN abstract, arXiv 1702.05839 (methods.md §3.1)"

CLAIMS = (
    Claim("sdn", "Our SDN aims to construct a differentiable mapping from the original feature to the "
                 "inter-class boundary-enhanced feature.", SDN_SOURCE, (BF, "boundary_iou")),
    Claim("ddsm", "The sampled features with high semantics are aggregated according to the affinities and then "
                  "propagated to detailed lower-layer features, leading to a fine-grained segmentation result "
                  "with well-preserved boundaries.", DDSM_SOURCE, (BF, "boundary_iou")),
    Claim("ddsm", "Experiment results on both Cityscapes and Camvid datasets validate the effectiveness and "
                  "efficiency of the proposed approach.", DDSM_SOURCE, ("miou",)),
    Claim("pdn", "From the extensive experiments on semantic image segmentation benchmarks (e.g., ImageNet "
                 "Parsing, PASCAL VOC2012 and PASCAL-Part), our framework demonstrates the effectiveness to "
                 "substantially improve the performances over the popular existing neural network models, and "
                 "achieves state-of-the-art on ImageNet Parsing for large scale semantic segmentation.",
          PDN_SOURCE, ("miou",)),
)


def verdict(low: float, high: float, seeds: int = 3) -> str:
    """The verdict of a 95% interval of the difference, from ``seeds`` training seeds (module docstring)."""
    return _verdict(low > 0 or high < 0, low > 0, seeds)


def family_verdict(point: float, p_adjusted: float, seeds: int = 3) -> str:
    """The verdict of one claim read with all the table's claims: its Holm-adjusted p at most
    ``ALPHA`` (module docstring), in the direction of its point estimate."""
    return _verdict(p_adjusted <= ALPHA, point > 0, seeds)


def _verdict(detected: bool, above: bool, seeds: int) -> str:
    if seeds < 2:
        return "inconclusive (one seed)"
    if not detected:
        return "inconclusive"
    outcome = "reproduced" if above else "not reproduced"
    return f"{outcome} (two seeds: provisional)" if seeds == 2 else outcome


P_SHOWN = 0.001  # the smallest p printed as a number; below it "< 0.001"


def fmt_p(p: float) -> str:
    """A p-value in three decimals, "< 0.001" below that."""
    return f"< {P_SHOWN:g}" if p < P_SHOWN else f"{p:.3f}"


PLANNER = ("How many seeds each claim would need, projected from this run's seed spread: "
           "`python benchmarks/seed_planner.py` (docs/benchmarks.md, \"Seeds a verdict needs\").")


def more_seeds_advice(seeds: list[int]) -> str:
    """Markdown naming the command that gives this run plain verdicts (three seeds) and, for a run of
    two or more seeds, the planner that projects how many each claim would need. The new seeds
    continue after the run's own, so DVC reuses every run already made."""
    seeds = sorted(seeds)
    if len(seeds) >= 3:
        return PLANNER
    wanted = seeds + list(range(seeds[-1] + 1, seeds[-1] + 4 - len(seeds)))
    # Up to the report, as the README's commands: an experiment's results need not pass the audit's pins.
    command = f"dvc exp run -S 'base.seeds=[{','.join(map(str, wanted))}]' report"
    return (f"This run trained {len(seeds)} seed{'s' if len(seeds) > 1 else ''} ({', '.join(map(str, seeds))}). "
            f"For plain verdicts train three: `{command}` trains only the new seeds, about "
            f"{(3 - len(seeds)) / len(seeds):g}× this run's training time again (README, \"One seed, and why\")."
            + (f" {PLANNER}" if len(seeds) > 1 else ""))


def _resolve(metric: str, computed: list[str]) -> str | None:
    if metric != BF:
        return metric if metric in computed else None
    return registry.headline_bf(computed)


ALONE = "verdict, this claim alone"
TOGETHER = "verdict, all claims together (Holm)"


def claims_table(comparison: dict) -> pd.DataFrame:
    """One row per (claim, metric) of a method present in the comparison, with both verdicts
    (module docstring, "Many claims at once")."""
    computed = list(comparison.get("metrics") or next(iter(comparison["methods"].values()), {}))
    seeds = len(comparison.get("seeds", []))
    rows, deltas = [], []
    for claim in CLAIMS:
        for metric in claim.metrics:
            key = _resolve(metric, computed)
            entry = comparison["methods"].get(claim.method, {}).get(key) if key else None
            if entry is None or "delta" not in entry:
                continue
            deltas.append(d := entry["delta"])
            rows.append({
                "method": method_label(claim.method),
                "claim (verbatim)": f"“{claim.quote}”",
                "source": claim.source,
                "paper's number": NOT_AVAILABLE,
                "metric": registry.label(key),
                "measured Δ vs baseline [95% CI]": fmt_delta(d),
                "p": fmt_p(d["p"]),
                ALONE: verdict(d["low"], d["high"], seeds),
            })
    adjusted = holm_adjusted([d["p"] for d in deltas]) if deltas else []
    for row, d, p in zip(rows, deltas, adjusted):
        row[f"p, Holm over {len(rows)}"] = fmt_p(p)
        row[TOGETHER] = family_verdict(d["point"], p, seeds)
    return pd.DataFrame(rows)
