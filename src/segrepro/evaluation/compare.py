"""Across seeds, against the baseline and against a variant's parent: mean ± std and 95% intervals.

For every method of the run and every metric of ``metrics.registry``:

* mean and sample std over seeds (``metrics.stats.mean_std``) and the per-seed values;
* for every method other than the reference (the first of ``base.methods``),
  the 95% interval (``metrics.stats``: paired jackknife over batches of test
  frames, Student's t over seeds) of metric(method) − metric(reference);
* for every ablation variant (``params.yaml`` ``model.<name>: {of: <parent>}``)
  whose parent is also in the run, the same interval of
  metric(variant) − metric(parent): the ablation question "what does this
  component add to the full module".

Seeds are paired by their position in ``base.seeds``; images by their order
in the test split (checked by name). The test images are frames of two videos
(``data.camvid.video_sequences``), cut into batches of about ``FRAME_BATCH``
consecutive frames within each, which the jackknife deletes in turn
(``metrics.jackknife``, "Frames of a video"). Why 40 frames (40 s of driving): a
method's per-image difference to the baseline can stay correlated for tens of
frames (PDN's pixel accuracy in this project's Zen 5 three-seed runs: 0.66 at
lag 1, 0.45 at lag 8, 0.24 at lag 20, about 0 at lag 30), and simulated with
such memory (``benchmarks/bench_interval.py --frame-corr 0.95``) batches of 40
held the truth in 90% of one-seed comparisons where batches of 20 held 77%, of
30 87%, and the earlier circular blocks of 8 frames 55%; batches of 60 (91%)
leave five, too few for Student's t to pay back much more (the 62-frame video
is two batches either way); and on the real runs the standard error of an
mIoU difference levels off near 40 frames (README, "Statistics"). Other
choices where no source prescribes one: a variant whose parent is not in the
run is still recorded as a variant (``variants``) but gets no ``vs_parent``
entry.

``comparison.json`` holds everything the report shows, so the report never
recomputes a statistic::

    {"reference": "baseline", "seeds": [0, 1], "level": 0.95,
     "interval": "95% interval: a paired jackknife …",                # how the intervals were made
     "frame_batch": 40, "batches": 6,                                 # L asked for, G made
     "sequences": {"0001TP": 62, "Seq05VD": 171},                     # frames per test video
     "bf_tolerances_px": [1, ...], "trimap_widths_px": [2, ...],   # from the per-image files
     "classes": ["Sky", ...],
     "metrics": ["miou", "bf@1px", ..., "boundary_iou"],          # in registry order
     "variants": {"sdn_cdc": "sdn"},                               # variant → parent, every variant run
     "methods": {"<method>": {"<metric>": {"per_seed": [...], "mean": m, "std": s or null,
                                            "delta": {"point", "low", "high", "p"}}}},   # not for the reference
     "vs_parent": {"sdn_cdc": {"parent": "sdn", "<metric>": {"point", "low", "high", "p"}}}}

``p`` is the interval inverted (``metrics.stats``, "p-value"): the smallest α at which the
interval of level 1 − α leaves 0 out, so p ≤ 0.05 exactly where the 95% interval does; the
report's claims table adjusts the p of its claims together (``reporting.claims``).

With ``summary_out``, a compact view of it for ``dvc metrics show`` / ``dvc exp show``
(the pipeline's ``metrics``): only the headline metrics (``registry.headline``: mIoU,
one BF, one trimap width, Boundary IoU), per method the mean over seeds and, against
the reference, Δ, its 95% interval and its p::

    {"<method>": {"<metric>": {"mean": m, "delta": d, "low": l, "high": h, "p": p}}}   # no delta for the reference
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from segrepro import layout
from segrepro.atomic import write_json
from segrepro.data.camvid import video_sequences
from segrepro.errors import SegreproError, reason
from segrepro.metrics.registry import DESCRIPTION, STATISTICS, Metric, Reducer, headline, metrics
from segrepro.metrics.jackknife import image_batches
from segrepro.metrics.stats import describe_interval, mean_std, paired_interval


class _Described:
    """The description of the first per-image file read; every later file must match it."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.value: dict[str, list] = {}

    def check(self, path: Path, value: dict[str, list]) -> None:
        if self.path is None:
            self.path, self.value = path, value
            return
        differ = [k for k in DESCRIPTION if value[k] != self.value[k]]
        if differ:
            raise SegreproError(
                f"per-image statistics {path} and {self.path} were made with different "
                + "; ".join(f"{k} ({value[k]} vs {self.value[k]})" for k in differ)
                + ": their columns cannot be compared; rerun evaluate for every run with the same "
                  "`evaluate` parameters (`dvc repro`)")


def _load(per_image_dir: Path, method: str, seeds: Sequence[int],
          described: _Described) -> tuple[dict[str, np.ndarray], np.ndarray]:
    stacks: dict[str, list[np.ndarray]] = {}
    names = None
    for seed in seeds:
        path = layout.per_image(layout.run_key(method, seed), per_image_dir)
        if not path.is_file():
            raise SegreproError(f"per-image statistics {path} are missing; run `dvc repro` so that "
                                f"evaluate@{method}-{seed} writes them")
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [k for k in DESCRIPTION if k not in data.files]
                if missing:
                    raise SegreproError(f"per-image statistics {path} do not record {', '.join(missing)} "
                                        f"(written by an older evaluate); rerun evaluate@{method}-{seed}")
                described.check(path, {k: data[k].tolist() for k in DESCRIPTION})
                this_names = data["names"]
                for key in STATISTICS:
                    stacks.setdefault(key, []).append(data[key].astype(np.float64))
        except SegreproError:
            raise
        # Anything else is a damaged file. Flipping bytes of one (tests/evaluation/test_compare.py) raised
        # EOFError, zipfile.BadZipFile, zlib.error, ValueError, KeyError, OSError, NotImplementedError
        # (an unknown zip method), RuntimeError (a zip "encryption" bit) and tokenize.TokenError (the header).
        except Exception as exc:
            raise SegreproError(f"per-image statistics {path} are corrupt ({reason(exc)}); rerun evaluate") from exc
        if names is not None and not np.array_equal(names, this_names):
            raise SegreproError(f"{path} lists different test images than the other seeds of {method}")
        names = this_names
    return {k: np.stack(v) for k, v in stacks.items()}, names  # each (S, N, ...)


class Run(NamedTuple):
    """A run's per-image statistics, checked and ready to compare (:func:`load_run`)."""

    stats: dict[str, dict[str, np.ndarray]]  # method -> statistic -> (S, N, ...)
    names: np.ndarray  # the N test images, the same for every method
    description: dict[str, list]  # tolerances, widths and classes, the same in every file
    registry: list[Metric]  # the metrics those statistics give, in registry order
    sequences: dict[str, np.ndarray]  # test video -> indices of its frames, in time order

    @property
    def videos(self) -> list[np.ndarray]:
        """The frame indices of each test video: the ``sequences`` of ``stats.paired_interval``."""
        return list(self.sequences.values())


def load_run(per_image_dir: Path, methods: Sequence[str], seeds: Sequence[int]) -> Run:
    """Every run's per-image statistics, for ``methods`` × ``seeds``; refused with the fix when a
    file is missing, damaged, made with other evaluate parameters, or of other test images than
    the first method's."""
    described = _Described()
    loaded = {m: _load(per_image_dir, m, seeds, described) for m in methods}
    reference, names = methods[0], loaded[methods[0]][1]
    for method, (_, other) in loaded.items():
        if not np.array_equal(other, names):
            raise SegreproError(f"{method} and {reference} were evaluated on different test images; rerun "
                                "evaluate for every run on the same processed data (`dvc repro`)")
    description = described.value
    return Run({m: stats for m, (stats, _) in loaded.items()}, names, description,
               metrics(description["bf_tolerances_px"], description["trimap_widths_px"]),
               video_sequences([str(name) for name in names]))


def _check_parents(methods: Sequence[str], parents: Mapping[str, str]) -> dict[str, str]:
    """variant → parent for the methods of the run whose parent differs from themselves."""
    unknown = sorted(set(parents) - set(methods))
    if unknown:
        raise SegreproError(f"compare was given parents for {', '.join(unknown)}, which are not in base.methods")
    variants = {m: parents[m] for m in methods if parents.get(m, m) != m}
    nested = [v for v, p in variants.items() if p in variants]
    if nested:
        raise SegreproError(f"variant(s) {', '.join(nested)} name another variant as parent; "
                            "`of:` must name a main method (baseline, sdn, ddsm, pdn)")
    return variants


FRAME_BATCH = 40  # frames per batch of a test video that the jackknife deletes (module docstring)


def _interval(x: np.ndarray, y: np.ndarray, reducer: Reducer, videos: list[np.ndarray]) -> dict[str, float]:
    ci = paired_interval(x, y, reducer, sequences=videos, frame_batch=FRAME_BATCH)
    return {"point": float(ci.point), "low": float(ci.low), "high": float(ci.high), "p": float(ci.p)}


def summarize_comparison(comparison: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """The compact summary of a comparison (see the module docstring); nothing is recomputed."""
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for method, entry in comparison["methods"].items():
        summary[method] = {}
        for metric in headline(comparison["metrics"]):
            delta = entry[metric].get("delta")
            summary[method][metric] = {"mean": entry[metric]["mean"],
                                       **({"delta": delta["point"], "low": delta["low"], "high": delta["high"],
                                           "p": delta["p"]} if delta else {})}
    return summary


def compare(per_image_dir: Path, methods: Sequence[str], seeds: Sequence[int], out: Path,
            parents: Mapping[str, str] | None = None, summary_out: Path | None = None) -> dict[str, Any]:
    """Write ``out`` (see the module docstring) and return its content.

    ``parents`` maps a method name to the main method it is an ablation of
    (``segrepro.params.parent_method``); a main method maps to itself and may
    be left out. ``None`` means no variants (every method is a main method). The BF tolerances,
    trimap widths and class names come from the per-image files, which must all agree.
    """
    variants = _check_parents(methods, parents or {})
    run = load_run(per_image_dir, methods, seeds)
    reference, videos = methods[0], run.videos
    batches = len(image_batches(len(run.names), videos, FRAME_BATCH))
    result: dict[str, Any] = {"reference": reference, "seeds": list(seeds), "level": 0.95,
                              "interval": describe_interval(len(seeds), batches, len(videos), FRAME_BATCH),
                              "frame_batch": FRAME_BATCH, "batches": batches,
                              "sequences": {k: len(v) for k, v in run.sequences.items()},
                              "metrics": [m.name for m in run.registry], "variants": variants,
                              "methods": {}, "vs_parent": {}, **run.description}
    for method, stats in run.stats.items():
        entry: dict[str, Any] = {}
        for m in run.registry:
            per_seed = m.reduce(stats[m.statistic].mean(1))  # (S,)
            summary = mean_std(per_seed)
            entry[m.name] = {"per_seed": per_seed.tolist(), "mean": float(summary.mean),
                             "std": float(summary.std) if len(seeds) > 1 else None}
            if method != reference:
                entry[m.name]["delta"] = _interval(stats[m.statistic], run.stats[reference][m.statistic],
                                                   m.reduce, videos)
        result["methods"][method] = entry
    for variant, parent in variants.items():
        if parent in run.stats:
            vs = {"parent": parent}
            for m in run.registry:
                vs[m.name] = _interval(run.stats[variant][m.statistic], run.stats[parent][m.statistic],
                                       m.reduce, videos)
            result["vs_parent"][variant] = vs
    if summary_out is not None:
        write_json(summary_out, summarize_comparison(result))
    write_json(out, result)
    return result
