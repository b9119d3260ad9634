"""Fixture results for the report tests: metrics JSONs, comparison.json, processed data, dvc.lock and
params.yaml; HTML helpers."""
from __future__ import annotations

import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import yaml

from segrepro.metrics.stats import describe_interval
from segrepro.reporting.render import render_report
from tests.conftest import REPO

CLASSES = ["Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car",
           "Pedestrian", "Bicyclist"]
OFFSETS = {"miou": 0.0, "bf@1px": -0.2, "bf@3px": -0.1, "trimap@2px": -0.3, "trimap@8px": -0.15,
           "boundary_iou": -0.25}
MIOU = {("baseline", 0): 0.50, ("baseline", 1): 0.52, ("sdn", 0): 0.55, ("sdn", 1): 0.57,
        ("sdn_cdc", 0): 0.53, ("sdn_cdc", 1): 0.54}
DELTAS = {  # (method, against) → metric → (point, low, high, p), as compare would write them
    ("sdn", "baseline"): {"miou": (0.05, 0.031, 0.069, 0.004), "bf@1px": (0.02, 0.011, 0.029, 0.008),
                          "bf@3px": (0.004, -0.003, 0.012, 0.31), "trimap@2px": (-0.03, -0.041, -0.017, 0.006),
                          "trimap@8px": (0.01, 0.002, 0.02, 0.04), "boundary_iou": (-0.01, -0.02, 0.004, 0.2)},
    ("sdn_cdc", "baseline"): {k: (0.025, 0.01, 0.04, 0.003) for k in OFFSETS},
    ("sdn_cdc", "sdn"): {k: (-0.025, -0.0412, -0.0093, 0.002) for k in OFFSETS},
}


TRAINED_ON = {"torch": "2.13.0", "device": "cpu", "cpu_capability": "AVX2",
              "cpu_model": "AMD EPYC 7763 64-Core Processor (family 25, model 1)", "gpu": "", "cuda": ""}
EVALUATED_ON = {**TRAINED_ON, "threads": "2"}   # runtime.machine_description of the evaluating machine
STALE_RUN = "pdn-1"   # dvc.lock still holds its entries (DVC keeps them), but no report here has pdn


def result(method: str, seed: int, miou: float) -> dict:
    return {"method": method, "seed": seed, "classes": CLASSES, "iou": [miou] * 11, "pixel_acc": 0.9,
            "mean_acc": 0.7, "test_images": 233, "input_size": [180, 240], "params": 12_345_678,
            "flops": 9_870_000_000, "latency_s": 0.05, "device": "cpu", "torch": "2.13.0", "backbone": "resnet18",
            "decoder": "fpn", "output_stride": 16, "epochs": 30, "crop": [160, 224], "bf_tolerances_px": [1, 3],
            "trimap_widths_px": [2, 8], "boundary_iou_dilation_px": 6, "train_environment": TRAINED_ON,
            "evaluation_environment": EVALUATED_ON,
            **{k: miou + off for k, off in OFFSETS.items()}}


def interval(t: tuple[float, float, float, float]) -> dict:
    return dict(zip(("point", "low", "high", "p"), t))


def comparison(methods: list[str], variants: dict[str, str]) -> dict:
    """What compare writes for the fixture results (per-seed values equal the metrics JSONs)."""
    entries = {}
    for m in methods:
        entries[m] = {}
        for k, off in OFFSETS.items():
            per_seed = [MIOU[m, s] + off for s in (0, 1)]
            entries[m][k] = {"per_seed": per_seed, "mean": float(np.mean(per_seed)),
                             "std": float(np.std(per_seed, ddof=1))}
            if m != "baseline":
                entries[m][k]["delta"] = interval(DELTAS[m, "baseline"][k])
    vs_parent = {v: {"parent": p, **{k: interval(t) for k, t in DELTAS[v, p].items()}}
                 for v, p in variants.items() if p in methods}
    return {"reference": "baseline", "level": 0.95, "seeds": [0, 1], "batches": 6,
            "interval": describe_interval(2, 6, sequences=2, frame_batch=40), "metrics": list(OFFSETS),
            "variants": variants, "vs_parent": vs_parent, "methods": entries}


def fake_md5(name: str) -> str:
    return hashlib.md5(name.encode()).hexdigest()


def lock(keys: list[str]) -> dict:
    """A dvc.lock as DVC writes it (outputs only) for these runs, plus the leftover entries of STALE_RUN."""
    stages = {"preprocess": {"outs": [{"path": "data/processed", "hash": "md5",
                                       "md5": fake_md5("data") + ".dir"}]}}
    for key in [*keys, STALE_RUN]:
        stages[f"train@{key}"] = {"outs": [{"path": f"models/{key}.pt", "hash": "md5", "md5": fake_md5(key)}]}
        stages[f"evaluate@{key}"] = {"outs": [{"path": f"results/{sub}/{key}.{ext}", "hash": "md5",
                                               "md5": fake_md5(f"{sub}/{key}")}
                                              for sub, ext in (("metrics", "json"), ("per_image", "npz"))]}
    return {"schema": "2.0", "stages": stages}


def build(root: Path, methods: list[str], variants: dict[str, str]) -> Path:
    metrics = root / "results" / "metrics"
    metrics.mkdir(parents=True)
    for m in methods:
        for s in (0, 1):
            (metrics / f"{m}-{s}.json").write_text(json.dumps(result(m, s, MIOU[m, s])))
    (root / "results" / "comparison.json").write_text(json.dumps(comparison(methods, variants)))
    (root / "dvc.lock").write_text(yaml.safe_dump(lock([f"{m}-{s}" for m in methods for s in (0, 1)])))
    (root / "params.yaml").write_text("base:\n  methods: [" + ", ".join(methods) + "]\n  seeds: [0, 1]\n")
    freq = {c: 1 / 11 for c in CLASSES}
    card = {"height": 24, "width": 32, "splits": {s: {"images": n, "void_fraction": 0.05, "sources_sha256": "ab" * 32,
                                                      "class_pixel_frequency": freq}
                                                  for s, n in [("train", 367), ("val", 101), ("test", 233)]}}
    processed = root / "processed"
    processed.mkdir()
    (processed / "card.json").write_text(json.dumps(card))
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 12, (6, 24, 32), dtype=np.uint8)
    np.save(processed / "test_images.npy", rng.integers(0, 255, (6, 24, 32, 3), dtype=np.uint8))
    np.save(processed / "test_labels.npy", labels)
    (processed / "test_names.txt").write_text("".join(f"frame{i}\n" for i in range(6)))
    per_image = root / "results" / "per_image"
    per_image.mkdir()
    for method in methods:
        np.savez(per_image / f"{method}-0.npz", sample_index=np.array([0, 5]),
                 sample_pred=np.minimum(labels[[0, 5]], 10))
    live = root / "results" / "train" / "baseline-0" / "plots" / "metrics" / "val"
    live.mkdir(parents=True)
    (live / "miou.tsv").write_text("step\tmiou\n0\t0.2\n1\t0.3\n")
    return root


@pytest.fixture()
def fixture_results(tmp_path: Path) -> Path:
    return build(tmp_path, ["baseline", "sdn"], {})


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The fixture results and their report, rendered once per module with the default params.

    Each rendering executes the notebook (~12 s on the Zen 3); tests that only read the report
    share this one. A test that changes the results or the params builds its own from
    ``fixture_results`` and must not write into this folder.
    """
    root = build(tmp_path_factory.mktemp("rendered"), ["baseline", "sdn"], {})
    return root, render(root)


def params(root: Path, methods: tuple[str, ...] = ("baseline", "sdn"), variants: dict | None = None) -> dict:
    return {"results_dir": str(root / "results"), "processed_dir": str(root / "processed"),
            "lock_path": str(root / "dvc.lock"), "params_path": str(root / "params.yaml"),
            "tables_dir": str(root / "tables"), "dataset": "camvid", "methods": list(methods),
            "seeds": [0, 1], "title": "Fixture report",
            "variants": {"sdn_cdc": "sdn", "pdn_1layer": "pdn"} if variants is None else variants}


def render(root: Path, **kwargs) -> str:
    out = root / "report.html"
    render_report(REPO / "notebooks" / "report.ipynb", root / "report.ipynb", out, params(root, **kwargs))
    return out.read_text()


class _Tables(HTMLParser):
    """Cell texts of every <table>, keyed by its class attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._rows: list[list[str]] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._rows = self.tables.setdefault(dict(attrs).get("class", ""), [])
        elif tag == "tr" and self._rows is not None:
            self._rows.append([])
        elif tag in ("td", "th") and self._rows is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._rows[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._rows = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def tables(text: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(text)
    return parser.tables


def img_tag(text: str, element_id: str) -> str:
    """The <img> element with this id (nbconvert may reorder its attributes)."""
    tags = re.findall(r'<img[^>]*\bid="' + element_id + r'"[^>]*>', text)
    assert len(tags) == 1, f"{len(tags)} images with id {element_id}"
    return tags[0]


def parse_interval(cell: str) -> tuple[float, float, float]:
    match = re.fullmatch(r"([+-]\d+\.\d\d) \[([+-]\d+\.\d\d), ([+-]\d+\.\d\d)\]", cell)
    assert match, cell
    return tuple(float(g) for g in match.groups())
