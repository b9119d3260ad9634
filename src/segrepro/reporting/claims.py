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
(``metrics.stats``: test images by the paired bootstrap, in blocks of frames
of their videos; training seeds by Student's t over the per-seed differences):

* **reproduced** — the whole interval is above 0 (an improvement we can detect);
* **not reproduced** — the whole interval is below 0 (we measure a loss);
* **inconclusive** — the interval contains 0 (no difference detectable at this
  budget, number of seeds and test set), or only one training seed was run:
  then the interval covers test-image variation alone, not the seed-to-seed
  variation of training, and cannot carry a verdict.

With exactly two seeds a verdict other than inconclusive is marked
*(two seeds: provisional)*: the seed variance then rests on one degree of
freedom, and the CPU's rounding alone moved two-seed verdicts. Measured
(README, "Two seeds"; with the first, narrower interval): the same code and
seeds trained on an Intel Xeon and on an AMD EPYC (both AVX512, different
last bits) gave PDN's mIoU difference −0.78 [−1.88, +0.35] and +0.66
[+0.07, +1.33]. Three seeds or more give a plain verdict.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from segrepro.metrics import registry
from segrepro.reporting.results import fmt_delta

NOT_AVAILABLE = "not available (no number in the abstract; the paper's tables were not retrieved)"
BF = "bf"   # placeholder metric: boundary F at the tolerance chosen by ``_resolve``


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
    if seeds < 2:
        return "inconclusive (one seed)"
    if low > 0:
        outcome = "reproduced"
    elif high < 0:
        outcome = "not reproduced"
    else:
        return "inconclusive"
    return f"{outcome} (two seeds: provisional)" if seeds == 2 else outcome


def more_seeds_advice(seeds: list[int]) -> str:
    """Markdown naming the command that gives this run plain verdicts (three seeds), or "" when it has
    them. The new seeds continue after the run's own, so DVC reuses every run already made."""
    seeds = sorted(seeds)
    if len(seeds) >= 3:
        return ""
    wanted = seeds + list(range(seeds[-1] + 1, seeds[-1] + 4 - len(seeds)))
    command = f"dvc exp run -S 'base.seeds=[{','.join(map(str, wanted))}]'"
    return (f"This run trained {len(seeds)} seed{'s' if len(seeds) > 1 else ''} ({', '.join(map(str, seeds))}). "
            f"For plain verdicts train three: `{command}` trains only the new seeds, about "
            f"{(3 - len(seeds)) / len(seeds):g}× this run's training time again (README, \"One seed, and why\").")


def _resolve(metric: str, computed: list[str]) -> str | None:
    if metric != BF:
        return metric if metric in computed else None
    return registry.headline_bf(computed)


def claims_table(comparison: dict) -> pd.DataFrame:
    """One row per (claim, metric) of a method present in the comparison."""
    computed = list(comparison.get("metrics") or next(iter(comparison["methods"].values()), {}))
    rows = []
    for claim in CLAIMS:
        for metric in claim.metrics:
            key = _resolve(metric, computed)
            entry = comparison["methods"].get(claim.method, {}).get(key) if key else None
            if entry is None or "delta" not in entry:
                continue
            d = entry["delta"]
            rows.append({
                "method": claim.method.upper(),
                "claim (verbatim)": f"“{claim.quote}”",
                "source": claim.source,
                "paper's number": NOT_AVAILABLE,
                "metric": registry.label(key),
                "measured Δ vs baseline [95% CI]": fmt_delta(d),
                "verdict": verdict(d["low"], d["high"], len(comparison.get("seeds", []))),
            })
    return pd.DataFrame(rows)
