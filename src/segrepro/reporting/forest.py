"""Differences as a picture: a forest plot and a compact pivot of paired intervals.

A forest plot (one row per method × metric, point estimate and 95% interval,
a vertical line at zero) is the usual display of several effect sizes with
their confidence intervals (Lewis & Clarke, BMJ 2001, "Forest plots: trying
to see the wood and the trees"). The intervals are read from
``comparison.json`` as they are; nothing is recomputed.

Choices made where no source prescribes one: one panel per metric, stacked
with a shared x axis in percentage points, so every row reads against the
same zero line; an interval is coloured by where it lies — entirely above
zero (green), entirely below (red), containing zero (grey) — the same three
outcomes as the claims verdicts; these three colours are used by no other
figure of the report.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.patches import Patch

from segrepro.metrics import registry
from segrepro.reporting.labels import method_label
from segrepro.reporting.results import fmt_delta

ABOVE, BELOW, CONTAINS = "#1a9850", "#d73027", "#7f7f7f"
COLUMNS = ["method", "metric", "label", "point", "low", "high"]


def intervals_vs_reference(comparison: dict, methods: Sequence[str]) -> dict[str, dict[str, dict]]:
    """method → metric → {point, low, high} of method − reference, for the given methods."""
    return {m: {k: e["delta"] for k, e in comparison["methods"][m].items() if "delta" in e} for m in methods}


def intervals_vs_parent(comparison: dict, variants: Sequence[str]) -> dict[str, dict[str, dict]]:
    """variant → metric → {point, low, high} of variant − parent, for variants whose parent was run."""
    return {v: {k: d for k, d in comparison["vs_parent"][v].items() if k != "parent"}
            for v in variants if v in comparison["vs_parent"]}


def forest_frame(intervals: Mapping[str, Mapping[str, dict]], metrics: Sequence[str]) -> pd.DataFrame:
    """Long format in percentage points, metric-major (the plot's row order)."""
    records = [{"method": method_label(method), "metric": key, "label": registry.label(key),
                "point": d["point"] * 100, "low": d["low"] * 100, "high": d["high"] * 100}
               for key in metrics for method, by_metric in intervals.items()
               if (d := by_metric.get(key)) is not None]
    return pd.DataFrame(records, columns=COLUMNS)


def delta_pivot(intervals: Mapping[str, Mapping[str, dict]], metrics: Sequence[str]) -> pd.DataFrame:
    """Rows: methods; columns: metrics; cells "+1.23 [+0.40, +2.00]" (percentage points)."""
    table = pd.DataFrame({registry.label(k): {method_label(m): fmt_delta(by_metric.get(k))
                                              for m, by_metric in intervals.items()}
                          for k in metrics})
    table.index.name = "method"
    return table


def _colour(low: float, high: float) -> str:
    return ABOVE if low > 0 else BELOW if high < 0 else CONTAINS


def forest_plot(frame: pd.DataFrame, xlabel: str, title: str, width: float = 8.0) -> plt.Figure:
    """One panel per metric, one row per method, interval bars against a zero line."""
    if frame.empty:
        raise ValueError("forest_plot needs at least one interval")
    labels = list(dict.fromkeys(frame["label"]))
    sizes = [int((frame["label"] == label).sum()) for label in labels]
    fig, axes = plt.subplots(len(labels), 1, sharex=True, squeeze=False,
                             figsize=(width, 0.7 + sum(0.32 * n + 0.38 for n in sizes)),
                             gridspec_kw={"height_ratios": [n + 0.6 for n in sizes]})
    low, high = min(frame["low"].min(), 0.0), max(frame["high"].max(), 0.0)
    pad = 0.08 * (high - low) or 0.5   # zero is always inside, never on the frame's edge
    for ax, label in zip(axes[:, 0], labels):
        rows = frame[frame["label"] == label].reset_index(drop=True)
        for y, r in rows.iterrows():
            colour = _colour(r["low"], r["high"])
            ax.plot([r["low"], r["high"]], [y, y], color=colour, lw=2.4, solid_capstyle="butt")
            ax.plot([r["point"]], [y], "o", color=colour, ms=7)
        ax.axvline(0, color="black", lw=1)
        ax.set_yticks(range(len(rows)), rows["method"])
        ax.set_ylim(len(rows) - 0.4, -0.6)
        ax.set_title(label, loc="left", fontsize=10, fontweight="bold")
        ax.grid(axis="y", visible=False)
    axes[-1, 0].set_xlim(low - pad, high + pad)
    axes[-1, 0].set_xlabel(xlabel)
    handles = [Patch(color=ABOVE, label="interval above 0"), Patch(color=BELOW, label="interval below 0"),
               Patch(color=CONTAINS, label="interval contains 0")]
    fig.legend(handles=handles, loc="upper right", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(title, x=0.01, ha="left", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig
