"""Results files → validated dicts and pandas tables for the report.

The report never recomputes a statistic: mean ± std over seeds and every
paired interval come from ``results/comparison.json`` (written by
``evaluation.compare``); the metrics JSONs supply cost, per-class IoU, the
setting and the curves. A bad input — a missing file, a NaN metric, a method
or metric missing from the comparison, a comparison computed for other seeds —
raises one ``SegreproError`` line naming the file and the fix, so a report
never renders silently from broken results.

Main metrics (the report's headline columns and forest-plot rows): mIoU,
boundary F at each tolerance the comparison holds, trimap mIoU at one band
width (``registry.main_trimap``) and Boundary IoU.
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from segrepro import layout
from segrepro.errors import SegreproError
from segrepro.metrics import registry
from segrepro.reporting.labels import method_label

SCALARS = ("miou", "pixel_acc", "mean_acc", "params", "flops", "latency_s")
# The machine that evaluated and timed a run (``runtime.machine_description``), named in the report.
EVALUATION_ENVIRONMENT = ("torch", "device", "cpu_capability", "cpu_model", "gpu", "cuda", "threads")


def _read_json(path: Path, producer: str) -> dict:
    if not path.is_file():
        raise SegreproError(f"results file {path} is missing; run `dvc repro` so that {producer} produces it")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SegreproError(f"results file {path} is not valid JSON ({exc}); rerun {producer}") from exc


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def load_results(metrics_dir: Path, methods: Sequence[str], seeds: Sequence[int]) -> list[dict]:
    """The metrics JSON of every configured (method, seed); a missing file, a non-finite metric or a missing
    ``evaluation_environment`` (the machine the report names for the run) is an error."""
    rows = []
    for m in methods:
        for s in seeds:
            path = layout.metrics_json(layout.run_key(m, s), metrics_dir)
            row = _read_json(path, f"evaluate@{m}-{s}")
            if row.get("method") != m or row.get("seed") != s:
                raise SegreproError(f"results file {path} holds {row.get('method')}-{row.get('seed')}, "
                                    f"not {m}-{s}; rerun evaluate@{m}-{s}")
            env = row.get("evaluation_environment")
            lacking = [k for k in EVALUATION_ENVIRONMENT if not isinstance(env, dict) or k not in env]
            if lacking:
                what = "key evaluation_environment is missing" if not isinstance(env, dict) else \
                    f"evaluation_environment lacks {', '.join(lacking)}"
                raise SegreproError(f"results file {path}: {what} (written by an older evaluate); "
                                    f"rerun evaluate@{m}-{s}")
            for key in SCALARS + tuple(quality_metric_names(row)):
                if not _finite(row.get(key)):
                    raise SegreproError(f"results file {path}: metric {key} is {row.get(key)!r}, not a finite "
                                        f"number; rerun evaluate@{m}-{s}")
            rows.append(row)
    return rows


def _check_interval(d: object, where: str) -> str | None:
    if not isinstance(d, dict) or not all(_finite(d.get(k)) for k in ("point", "low", "high")):
        return f"{where} is not a finite interval ({d!r})"
    if not _finite(d.get("p")) or not 0 <= d["p"] <= 1:
        return f"{where} has no p-value in [0, 1] ({d.get('p')!r}; written by an older compare)"
    return None


def _comparison_problem(comparison: dict, methods: Sequence[str], seeds: Sequence[int]) -> str | None:
    missing = [k for k in ("reference", "seeds", "batches", "interval", "metrics", "methods", "variants", "vs_parent")
               if k not in comparison]
    if missing:
        return f"keys {', '.join(missing)} are missing (written by an older compare)"
    if list(comparison["seeds"]) != list(seeds):
        return f"it was computed for seeds {comparison['seeds']}, the report is for {list(seeds)}"
    if comparison["reference"] != methods[0]:
        return f"its reference is {comparison['reference']}, the report's is {methods[0]}"
    for method in methods:
        entry = comparison["methods"].get(method)
        if entry is None:
            return f"method {method} is missing"
        for metric in comparison["metrics"]:
            e = entry.get(metric)
            if not isinstance(e, dict) or not _finite(e.get("mean")) \
                    or len(e.get("per_seed", [])) != len(seeds) or not all(map(_finite, e["per_seed"])):
                return f"{method} {metric} has no finite mean and per-seed values ({e!r})"
            if len(seeds) > 1 and not _finite(e.get("std")):
                return f"{method} {metric} has std {e.get('std')!r} with {len(seeds)} seeds"
            if method != methods[0] and (problem := _check_interval(e.get("delta"), f"{method} {metric} delta")):
                return problem
    for variant, vs in comparison["vs_parent"].items():
        for metric in comparison["metrics"]:
            if problem := _check_interval(vs.get(metric), f"{variant} {metric} vs {vs.get('parent')}"):
                return problem
    return None


def load_comparison(path: Path, methods: Sequence[str], seeds: Sequence[int]) -> dict:
    """The compare stage's output, checked against the report's methods and seeds."""
    comparison = _read_json(Path(path), "the compare stage")
    problem = _comparison_problem(comparison, methods, seeds)
    if problem:
        raise SegreproError(f"results file {path}: {problem}; rerun `dvc repro compare`")
    return comparison


def main_methods(comparison: dict, methods: Sequence[str]) -> list[str]:
    """The configured methods that are not ablation variants, in configured order."""
    return [m for m in methods if m not in comparison["variants"]]


def main_metrics(comparison: dict, bf_tolerances: Sequence[int] | None = None) -> list[str]:
    """Keys of the main metrics, in display order (see the module docstring); BF at ``bf_tolerances``,
    at every tolerance the comparison holds by default."""
    computed = {registry.parse(k): k for k in comparison["metrics"]}
    if bf_tolerances is None:
        bf_tolerances = [px for family, px in computed if family == "bf"]
    bf = [computed[("bf", t)] for t in bf_tolerances if ("bf", t) in computed]
    trimap = registry.main_trimap(comparison["metrics"])
    return ["miou"] + bf + ([trimap] if trimap else []) + (["boundary_iou"] if ("boundary_iou", None) in computed else [])


def fmt_mean_std(entry: dict) -> str:
    """Percent, "mean ± std" (mean only with one seed, whose std is undefined)."""
    if entry.get("std") is None:
        return f"{entry['mean'] * 100:.2f}"
    return f"{entry['mean'] * 100:.2f} ± {entry['std'] * 100:.2f}"


def fmt_delta(d: dict | None) -> str:
    """Percentage points, "+point [+low, +high]"; "—" where there is no interval."""
    if d is None:
        return "—"
    return f"{d['point'] * 100:+.2f} [{d['low'] * 100:+.2f}, {d['high'] * 100:+.2f}]"


def setting_text(rows: list[dict]) -> str:
    """The shared training setting in one sentence (several values are listed if methods differ)."""
    def values(fmt) -> str:
        return " / ".join(dict.fromkeys(fmt(r) for r in rows))
    backbone = values(lambda r: f"{r['backbone']} (OS{r['output_stride']})")
    crop = values(lambda r: "×".join(map(str, r["crop"])))
    return (f"backbone {backbone}, {values(lambda r: r['decoder'])} decoder, crop {crop}, "
            f"{values(lambda r: str(r['epochs']))} epochs")


def comparison_table(comparison: dict, methods: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """One row per main method: seeds, each main metric as mean ± std (percent), Δ mIoU [95% CI]."""
    records = []
    for method in main_methods(comparison, methods):
        entry = comparison["methods"][method]
        record = {"method": method_label(method), "seeds": len(comparison["seeds"]),
                  "mIoU": fmt_mean_std(entry["miou"]), "Δ mIoU [95% CI]": fmt_delta(entry["miou"].get("delta"))}
        record.update({registry.label(k): fmt_mean_std(entry[k]) for k in metrics if k != "miou"})
        records.append(record)
    return pd.DataFrame(records).set_index("method")


DELTA_COLUMNS = ["method", "against", "metric", "Δ (pp)", "95% CI low (pp)", "95% CI high (pp)", "p"]


def delta_table(comparison: dict) -> pd.DataFrame:
    """Long format, every metric by its report label: method, against (reference or parent), metric,
    Δ and its 95% interval bounds in percentage points, and the comparison's own p (unadjusted)."""
    records = []
    for method in sorted(comparison["methods"]):
        for metric in comparison["metrics"]:
            intervals = [(comparison["reference"], comparison["methods"][method][metric].get("delta"))]
            vs = comparison["vs_parent"].get(method)
            if vs is not None:
                intervals.append((vs["parent"], vs[metric]))
            records += [dict(zip(DELTA_COLUMNS, (method_label(method), method_label(against), registry.label(metric),
                                                 d["point"] * 100, d["low"] * 100, d["high"] * 100, d["p"])))
                        for against, d in intervals if d]
    return pd.DataFrame(records, columns=DELTA_COLUMNS)


def quality_metric_names(row: dict) -> list[str]:
    """The registry's metrics for the tolerances and widths a results row records, in report order."""
    return [m.name for m in registry.metrics(row.get("bf_tolerances_px", []), row.get("trimap_widths_px", []))]


def cost_table(rows: list[dict]) -> pd.DataFrame:
    """Per method: parameters (M), GFLOPs, median latency (ms), and each as overhead vs the first method."""
    runs = pd.DataFrame([{"method": method_label(r["method"]), "params (M)": r["params"] / 1e6,
                          "GFLOPs": r["flops"] / 1e9, "latency (ms)": r["latency_s"] * 1e3} for r in rows])
    cost = runs.groupby("method", sort=False).median()
    ref = cost.iloc[0]
    for col in list(cost.columns):
        cost[f"{col.split(' ')[0]} overhead"] = (cost[col] / ref[col] - 1).map(lambda v: f"{v:+.0%}")
    return cost


def curve_table(rows: list[dict], family: str) -> pd.DataFrame:
    """Long format for the metric curves of one family (``trimap``: mIoU vs width, ``bf``: F vs tolerance)."""
    records = [{"method": method_label(r["method"]), "seed": r["seed"], "px": parsed[1], "value": v * 100}
               for r in rows for k, v in r.items()
               if (parsed := registry.parse(k)) and parsed[0] == family and not math.isnan(v)]
    return pd.DataFrame(records)


def per_class_table(rows: list[dict]) -> pd.DataFrame:
    """Long format: method, seed, class, IoU (percent) — for plots and the per-class table."""
    records = [{"method": method_label(r["method"]), "seed": r["seed"], "class": c, "IoU": v * 100}
               for r in rows for c, v in zip(r["classes"], r["iou"])]
    return pd.DataFrame(records)
