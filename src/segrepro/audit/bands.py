"""The statistical band for results trained in another environment class.

Why a band and not a tolerance: a run on another CPU class (AVX2 instead of
AVX-512) or on a GPU (bf16 autocast, cuDNN autotuning) starts from the same
seed but its floating-point path diverges in the first steps, and the
divergence is amplified over training; statistically the run is a *fresh
training draw* from the same recipe. Its metrics differ from the pinned ones
by about the seed-to-seed spread (observed: 1–2 mIoU points for three of the
four methods on AVX2 against AVX-512), so a fixed 0.01 tolerance fails
correct runs, while a tolerance wide enough for them says nothing.

What is compared: each method's **mean over seeds** of each pinned metric,
``m_run`` over ``S_run`` seeds, with the pinned mean ``m_pin`` over ``S_pin``
seeds of a pinned class. If both are means of independent draws with
seed-to-seed standard deviation ``σ``, then ``m_run − m_pin`` has standard
deviation ``σ·sqrt(1/S_run + 1/S_pin)``. The check passes when

    |m_run − m_pin| ≤ band = max(floor, k · s · sqrt(1/S_run + 1/S_pin))

with ``k = tolerance.cross_class_sigmas`` (default 3: a correct run fails
one comparison 0.3% of the time if σ were known; with ``s`` estimated from
4 / 8 degrees of freedom the t distribution puts it at 4% / 1.7%, and the
floor lowers it further) and ``floor = tolerance.cross_class_floor``
(default 0.015: the smallest shift in a 0–1 metric we call a regression, and
the band used when no spread is pinned).

``s`` is the pinned sample standard deviation over seeds *pooled over
methods* for that metric: ``s² = Σ_m (n_m − 1)·s_m² / Σ_m (n_m − 1)``. With
2–3 seeds per method a per-method std is itself very noisy (with 2 seeds it
has one degree of freedom), so a method that happened to land two close seeds
would get a band too narrow to pass a correct run; pooling over the four
methods gives 4–8 degrees of freedom, assuming (choice) that the seed spread
of a metric is similar across methods trained with the same recipe.

A real regression still fails: with s ≈ 0.01, 3 pinned seeds and 3 run seeds
the band is 3·0.01·0.82 ≈ 0.025, so a method 5 points (0.05) worse fails,
while a run 1 point off (a plausible fresh draw) passes. With a single pinned
seed per method no spread is known and the band is the floor alone (the
report says so); pin two or more seeds for a statistical band.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_FLOOR = 0.015
DEFAULT_SIGMAS = 3.0


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (ddof 1; None for fewer than two values)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def pooled_std(summary: dict, metric: str) -> tuple[float | None, int]:
    """(pooled sample std of ``metric`` over the methods of a class summary, degrees of freedom)."""
    ss, dof = 0.0, 0
    for method in summary.values():
        std, n = (method.get("std") or {}).get(metric), int(method.get("seeds", 0))
        if std is not None and n >= 2:
            ss += (n - 1) * float(std) ** 2
            dof += n - 1
    return (math.sqrt(ss / dof), dof) if dof else (None, 0)


@dataclass(frozen=True)
class Band:
    width: float
    reason: str


def band(s: float | None, dof: int, s_run: int, s_pin: int, floor: float, sigmas: float) -> Band:
    """The band of the module docstring, with a sentence saying how it was set."""
    if s is None:
        return Band(floor, f"floor {floor:g} (no seed spread pinned: one seed per method)")
    scale = math.sqrt(1 / s_run + 1 / s_pin)
    statistical = sigmas * s * scale
    how = (f"{sigmas:g}·s·√(1/{s_run}+1/{s_pin}) = {statistical:.4f}, "
           f"s = {s:.4f} pooled over methods ({dof} dof)")
    if statistical < floor:
        return Band(floor, f"floor {floor:g} (> {how})")
    return Band(statistical, how)
