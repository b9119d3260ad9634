"""Across seeds and against the baseline: mean ± std, and paired bootstrap CIs of the difference.

For every method other than the reference (the first of ``base.methods``)
and every metric of ``quality.metric_reducers``, a paired percentile
bootstrap over test images and seeds (``metrics.stats``) gives the 95%
interval of metric(method) − metric(baseline). Seeds are paired by their
position in ``base.seeds``; images by their order in the test split (checked
by name).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from segrepro.atomic import write_json
from segrepro.errors import SegreproError
from segrepro.evaluation.quality import metric_reducers
from segrepro.metrics.stats import mean_std, paired_bootstrap_ci


def _load(per_image_dir: Path, method: str, seeds: Sequence[int]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    stacks: dict[str, list[np.ndarray]] = {}
    names = None
    for seed in seeds:
        path = Path(per_image_dir) / f"{method}-{seed}.npz"
        if not path.is_file():
            raise SegreproError(f"per-image statistics {path} are missing; run `dvc repro` so that "
                                f"evaluate@{method}-{seed} writes them")
        try:
            with np.load(path, allow_pickle=False) as data:
                this_names = data["names"]
                for key in ("confusion", "bf", "trimap", "biou"):
                    stacks.setdefault(key, []).append(data[key].astype(np.float64))
        except (KeyError, ValueError, OSError) as exc:
            raise SegreproError(f"per-image statistics {path} are corrupt ({exc}); rerun evaluate") from exc
        if names is not None and not np.array_equal(names, this_names):
            raise SegreproError(f"{path} lists different test images than the other seeds of {method}")
        names = this_names
    return {k: np.stack(v) for k, v in stacks.items()}, names  # each (S, N, ...)


def compare(per_image_dir: Path, methods: Sequence[str], seeds: Sequence[int], tolerances: Sequence[int],
            widths: Sequence[int], out: Path, n_boot: int = 1000) -> dict[str, Any]:
    reducers = metric_reducers(tolerances, widths)
    loaded = {m: _load(per_image_dir, m, seeds) for m in methods}
    reference = methods[0]
    result: dict[str, Any] = {"reference": reference, "seeds": list(seeds), "n_boot": n_boot,
                              "level": 0.95, "methods": {}}
    for method, (stats, names) in loaded.items():
        if not np.array_equal(names, loaded[reference][1]):
            raise SegreproError(f"{method} and {reference} were evaluated on different test images")
        entry: dict[str, Any] = {}
        for metric, (key, reducer) in reducers.items():
            per_seed = reducer(stats[key].mean(1))  # (S,)
            summary = mean_std(per_seed)
            entry[metric] = {"per_seed": per_seed.tolist(), "mean": float(summary.mean),
                             "std": float(summary.std) if len(seeds) > 1 else None}
            if method != reference:
                ci = paired_bootstrap_ci(stats[key], loaded[reference][0][key], reducer, n_boot=n_boot, seed=0)
                entry[metric]["delta"] = {"point": float(ci.point), "low": float(ci.low), "high": float(ci.high)}
        result["methods"][method] = entry
    write_json(out, result)
    return result
