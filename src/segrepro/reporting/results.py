"""Results files → pandas tables for the report (and anything else that reads them)."""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from segrepro.errors import SegreproError


def load_results(metrics_dir: Path, methods: Sequence[str], seeds: Sequence[int]) -> list[dict]:
    """The metrics JSON of every configured (method, seed); a missing one is an error."""
    rows = []
    for method in methods:
        for seed in seeds:
            path = Path(metrics_dir) / f"{method}-{seed}.json"
            if not path.is_file():
                raise SegreproError(f"results file {path} is missing; run `dvc repro` so that "
                                    f"evaluate@{method}-{seed} produces it")
            try:
                rows.append(json.loads(path.read_text()))
            except json.JSONDecodeError as exc:
                raise SegreproError(f"results file {path} is not valid JSON ({exc}); rerun evaluate") from exc
    return rows


def _mean_std(values: pd.Series) -> str:
    if len(values) == 1:
        return f"{values.iloc[0]:.2f}"
    return f"{values.mean():.2f} ± {values.std(ddof=1):.2f}"


def comparison_table(rows: list[dict]) -> pd.DataFrame:
    """One row per method: setting columns, cost, and mean ± std over seeds (percent)."""
    df = pd.DataFrame(rows)
    out = []
    for method, group in df.groupby("method", sort=False):
        first = group.iloc[0]
        out.append({
            "method": method,
            "backbone": f"{first['backbone']} (OS{first['output_stride']})",
            "decoder": first["decoder"],
            "crop": "×".join(map(str, first["crop"])),
            "schedule": f"{first['epochs']} ep",
            "seeds": len(group),
            "params (M)": f"{first['params'] / 1e6:.2f}",
            "GFLOPs": f"{first['flops'] / 1e9:.2f}",
            "latency (ms)": f"{group['latency_s'].median() * 1e3:.1f}",
            "mIoU": _mean_std(group["miou"] * 100),
            "pixel acc": _mean_std(group["pixel_acc"] * 100),
            "mean acc": _mean_std(group["mean_acc"] * 100),
        })
    return pd.DataFrame(out).set_index("method")


def per_class_table(rows: list[dict]) -> pd.DataFrame:
    """Long format: method, seed, class, IoU (percent) — for plots and the per-class table."""
    records = [{"method": r["method"], "seed": r["seed"], "class": c, "IoU": v * 100}
               for r in rows for c, v in zip(r["classes"], r["iou"])]
    return pd.DataFrame(records)
