"""Many comparisons read together: Holm's adjustment of their p-values.

A table of verdicts, each read from its own 95% interval, is wrong somewhere far more often than 1
time in 20 when nothing changes (``reporting.claims``, "Many claims at once"). Holm's step-down
procedure (Holm, Scandinavian Journal of Statistics 1979, "A simple sequentially rejective
multiple test procedure") keeps the chance of ANY false rejection in the family at most α,
whatever the dependence between the tests, provided each test alone holds its level (the
intervals' coverage: docs/benchmarks.md, "Coverage of the verdict's interval"): the report's
claims all share the baseline's runs, so they are dependent. It rejects everything Bonferroni's
correction rejects, and sometimes more.
The p-values it adjusts are those of ``metrics.stats`` (the interval inverted).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from segrepro.errors import SegreproError


def holm_adjusted(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (module docstring): a hypothesis is rejected with
    family-wise error at most α exactly where its adjusted p is at most α. The i-th smallest of m
    p-values is multiplied by m − i + 1 (i from 1), made non-decreasing in that order, and capped
    at 1."""
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1 or not np.all((p >= 0) & (p <= 1)):
        raise SegreproError(f"holm_adjusted needs a 1-D list of p-values in [0, 1], got {p_values!r}")
    order = np.argsort(p, kind="stable")
    scaled = p[order] * np.arange(p.size, 0, -1)
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted
