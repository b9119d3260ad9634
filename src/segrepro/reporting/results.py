"""Results files → pandas tables for the report (and anything else that reads them)."""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from segrepro.errors import SegreproError


def _read_json(path: Path, producer: str) -> dict:
    if not path.is_file():
        raise SegreproError(f"results file {path} is missing; run `dvc repro` so that {producer} produces it")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SegreproError(f"results file {path} is not valid JSON ({exc}); rerun {producer}") from exc


def load_results(metrics_dir: Path, methods: Sequence[str], seeds: Sequence[int]) -> list[dict]:
    """The metrics JSON of every configured (method, seed); a missing one is an error."""
    return [_read_json(Path(metrics_dir) / f"{m}-{s}.json", f"evaluate@{m}-{s}")
            for m in methods for s in seeds]


def load_comparison(path: Path) -> dict:
    return _read_json(Path(path), "the compare stage")


def _mean_std(values: pd.Series) -> str:
    values = values * 100
    if len(values) == 1:
        return f"{values.iloc[0]:.2f}"
    return f"{values.mean():.2f} ± {values.std(ddof=1):.2f}"


def _delta(comparison: dict, method: str, metric: str) -> str:
    delta = comparison["methods"].get(method, {}).get(metric, {}).get("delta")
    if delta is None:
        return "—"
    return f"{delta['point'] * 100:+.2f} [{delta['low'] * 100:+.2f}, {delta['high'] * 100:+.2f}]"


def boundary_metric_names(row: dict) -> list[str]:
    """bf@…, trimap@… and boundary_iou keys of a results row, in a stable order."""
    bf = [f"bf@{t}px" for t in row.get("bf_tolerances_px", [])]
    trimap = [f"trimap@{w}px" for w in row.get("trimap_widths_px", [])]
    return bf + trimap + (["boundary_iou"] if "boundary_iou" in row else [])


def comparison_table(rows: list[dict], comparison: dict | None = None) -> pd.DataFrame:
    """One row per method: setting, cost, and every metric as mean ± std over seeds (percent).

    With ``comparison`` (the compare stage's output), Δ mIoU vs the reference
    method carries its paired-bootstrap 95% CI.
    """
    df = pd.DataFrame(rows)
    metrics = boundary_metric_names(rows[0])
    out = []
    for method, group in df.groupby("method", sort=False):
        first = group.iloc[0]
        record = {
            "method": method,
            "backbone": f"{first['backbone']} (OS{first['output_stride']})",
            "decoder": first["decoder"],
            "crop": "×".join(map(str, first["crop"])),
            "schedule": f"{first['epochs']} ep",
            "seeds": len(group),
            "params (M)": f"{first['params'] / 1e6:.2f}",
            "GFLOPs": f"{first['flops'] / 1e9:.2f}",
            "latency (ms)": f"{group['latency_s'].median() * 1e3:.1f}",
            "mIoU": _mean_std(group["miou"]),
        }
        if comparison is not None:
            record["Δ mIoU [95% CI]"] = _delta(comparison, method, "miou")
        for name in metrics:
            label = name.replace("bf@", "BF@").replace("trimap@", "trimap mIoU@").replace("boundary_iou", "Boundary IoU")
            record[label] = _mean_std(group[name])
        out.append(record)
    return pd.DataFrame(out).set_index("method")


def delta_table(comparison: dict) -> pd.DataFrame:
    """Long format: method, metric, Δ point and CI bounds (percentage points), for every metric."""
    records = []
    for method, metrics in comparison["methods"].items():
        for metric, entry in metrics.items():
            if "delta" in entry:
                d = entry["delta"]
                records.append({"method": method, "metric": metric, "delta": d["point"] * 100,
                                "low": d["low"] * 100, "high": d["high"] * 100})
    return pd.DataFrame(records, columns=["method", "metric", "delta", "low", "high"])


def curve_table(rows: list[dict], prefix: str) -> pd.DataFrame:
    """Long format for the metric curves (trimap mIoU vs width, BF vs tolerance)."""
    records = [{"method": r["method"], "seed": r["seed"], "px": int(k[len(prefix):-2]), "value": v * 100}
               for r in rows for k, v in r.items() if k.startswith(prefix) and not math.isnan(v)]
    return pd.DataFrame(records)


def per_class_table(rows: list[dict]) -> pd.DataFrame:
    """Long format: method, seed, class, IoU (percent) — for plots and the per-class table."""
    records = [{"method": r["method"], "seed": r["seed"], "class": c, "IoU": v * 100}
               for r in rows for c, v in zip(r["classes"], r["iou"])]
    return pd.DataFrame(records)
