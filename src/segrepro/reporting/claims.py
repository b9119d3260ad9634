"""Each paper's claim, as its abstract states it, against what we measured.

The claims are quoted from the abstracts reproduced in ``docs/methods.md``
(§1.1, §2.1, §3.1); the papers' tables were not available, so their own
numbers are never shown ("not available"). The verdict reads the paired
bootstrap 95% interval of the difference to the baseline on the claim's
metric:

* **reproduced** — the whole interval is above 0 (an improvement we can detect);
* **not reproduced** — the whole interval is below 0 (we measure a loss);
* **inconclusive** — the interval contains 0 (no difference detectable at this
  budget, number of seeds and test set), or only one training seed was run:
  then the interval covers test-image variation alone, not the seed-to-seed
  variation of training, and cannot carry a verdict.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

NOT_AVAILABLE = "not available (paper tables not retrieved)"


@dataclass(frozen=True)
class Claim:
    method: str
    quote: str
    metric: str          # key in the comparison results
    metric_label: str


CLAIMS = (
    Claim("sdn", "SDN aims to construct a differentiable mapping from the original feature to the "
                 "inter-class boundary-enhanced feature (arXiv 2302.02057, abstract)", "bf@2px", "BF@2px"),
    Claim("sdn", "SDN aims to construct a differentiable mapping from the original feature to the "
                 "inter-class boundary-enhanced feature (arXiv 2302.02057, abstract)", "boundary_iou",
          "Boundary IoU"),
    Claim("ddsm", "…propagated to detailed lower-layer features, leading to a fine-grained segmentation "
                  "result with well-preserved boundaries (arXiv 2105.11657, abstract)", "boundary_iou", "Boundary IoU"),
    Claim("ddsm", "Experiment results on both Cityscapes and Camvid datasets validate the effectiveness "
                  "(arXiv 2105.11657, abstract)", "miou", "mIoU"),
    Claim("pdn", "…our framework demonstrates the effectiveness to substantially improve the performances "
                 "over the popular existing neural network models (arXiv 1702.05839, abstract)", "miou", "mIoU"),
)


def verdict(low: float, high: float, seeds: int = 2) -> str:
    if seeds < 2:
        return "inconclusive (one seed)"
    if low > 0:
        return "reproduced"
    if high < 0:
        return "not reproduced"
    return "inconclusive"


def claims_table(comparison: dict) -> pd.DataFrame:
    """One row per claim of a method present in the comparison."""
    rows = []
    for claim in CLAIMS:
        entry = comparison["methods"].get(claim.method, {}).get(claim.metric)
        if entry is None or "delta" not in entry:
            continue
        d = entry["delta"]
        rows.append({
            "method": claim.method.upper(),
            "claim (abstract)": claim.quote,
            "paper's number": NOT_AVAILABLE,
            "metric": claim.metric_label,
            "measured Δ vs baseline [95% CI]": f"{d['point'] * 100:+.2f} [{d['low'] * 100:+.2f}, {d['high'] * 100:+.2f}]",
            "verdict": verdict(d["low"], d["high"], len(comparison.get("seeds", []))),
        })
    return pd.DataFrame(rows)
