"""Where every artefact lives: one run's key and each stage's output paths.

A run is one (method, seed); its key ``<method>-<seed>`` names its
checkpoint, DVCLive directory, metrics JSON and per-image statistics. The
CLI defaults, the audit, compare, the report and the notebook build paths
here; ``dvc.yaml`` has to spell them in its templates, and
``tests/test_layout.py`` checks that it spells them the same way.

The functions take the directory (a CLI argument, so a test or a GPU profile
can point elsewhere) and return the file inside it; the constants are the
pipeline's directories, relative to the repository root.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

RAW = Path("data/raw/camvid")
PROCESSED = Path("data/processed")
MODELS = Path("models")
RESULTS = Path("results")
TRAIN = RESULTS / "train"                # one DVCLive directory per run
METRICS = RESULTS / "metrics"            # one metrics JSON per run
PER_IMAGE = RESULTS / "per_image"        # one per-image statistics .npz per run
COMPARISON = RESULTS / "comparison.json"
SUMMARY = RESULTS / "summary.json"
TABLES = Path("reports/tables")


def in_results(results: Path, path: Path) -> Path:
    """``path`` (one of the constants under ``RESULTS``) inside another results directory."""
    return Path(results) / Path(path).relative_to(RESULTS)


def run_key(method: str, seed: int) -> str:
    return f"{method}-{seed}"


def run_keys(methods: Sequence[str], seeds: Sequence[int]) -> list[str]:
    """Every run of methods × seeds, method-major (the order of dvc.yaml's matrix)."""
    return [run_key(m, s) for m in methods for s in seeds]


def method_of(key: str) -> str:
    """``sdn-0`` → ``sdn`` (method names never end in ``-<int>``)."""
    return key.rsplit("-", 1)[0]


def checkpoint(key: str, models: Path = MODELS) -> Path:
    return Path(models) / f"{key}.pt"


def live_dir(key: str, train: Path = TRAIN) -> Path:
    return Path(train) / key


def live_metrics(key: str, train: Path = TRAIN) -> Path:
    """DVCLive's last values of the run (``Live(live_dir(key))`` writes it)."""
    return live_dir(key, train) / "metrics.json"


def live_plots(key: str, train: Path = TRAIN) -> Path:
    """DVCLive's curves of the run: ``train/loss.tsv`` and ``val/miou.tsv`` inside, one row per step."""
    return live_dir(key, train) / "plots" / "metrics"


def metrics_json(key: str, metrics: Path = METRICS) -> Path:
    return Path(metrics) / f"{key}.json"


def per_image(key: str, per_image_dir: Path = PER_IMAGE) -> Path:
    return Path(per_image_dir) / f"{key}.npz"
