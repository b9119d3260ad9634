"""The pins file: pinned results per environment class, read and rewritten.

Format (YAML, committed; ``audit.pins`` in ``params.yaml`` names it, e.g.
``pins.yaml`` for CPU and ``pins-gpu.yaml`` for a GPU profile)::

    tolerance: {same_class: 1.0e-06, cross_class_floor: 0.015, cross_class_sigmas: 3}
    data: {path: data/processed, md5: <dvc.lock md5>}        # class-independent
    classes:
      cpu-AVX512-AMD EPYC (family 25, model 17):             # see environment.class_key
        environment: {torch, device, cpu_capability, cpu_model, gpu, cuda}
        results:
          baseline-0:
            metrics: {miou: 0.31, ...}
            checkpoint: {path: models/baseline-0.pt, md5: <dvc.lock md5>}
        summary:                                             # per method, over its pinned seeds
          baseline: {seeds: 1, mean: {miou: 0.31, ...}, std: {miou: null, ...}}

``tolerance.same_class`` (default 1e-6) bounds a pinned metric for results of
the same class and torch version, which are bit-reproducible on CPU; the
pinned values are rounded to 6 decimals, within that bound. The two
``cross_class_*`` keys set the band of ``bands.py``. ``segrepro audit
--update`` rewrites only the class section the results were produced in,
keeps the others, and refuses to pin outputs edited after their stage ran or
made with params other than the current ones (``stale.py``).
"""
from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from pathlib import Path

import yaml

from segrepro.atomic import atomic_file
from segrepro.audit.bands import DEFAULT_FLOOR, DEFAULT_SIGMAS, mean_std
from segrepro.audit.edits import edit_checks
from segrepro.audit.environment import class_key, result_environment
from segrepro.audit.lock import out_md5, read_lock
from segrepro.audit.stale import stale_checks
from segrepro import layout
from segrepro.errors import SegreproError
from segrepro.metrics.registry import pinned_names
from segrepro.strict_yaml import read_yaml

DEFAULT_TOLERANCE = {"same_class": 1e-6, "cross_class_floor": DEFAULT_FLOOR,
                     "cross_class_sigmas": DEFAULT_SIGMAS}
DATA_STAGE, DATA_PATH = "preprocess", layout.PROCESSED.as_posix()
HEADER = ("# Pinned results for `segrepro audit`, one section per environment class;\n"
          "# regenerate deliberately with `segrepro audit --update` (rewrites only the class of the results).\n")
REPIN = "re-pin with `segrepro audit --update`"


def checkpoint_path(key: str) -> str:
    """The checkpoint's path as dvc.lock records it."""
    return layout.checkpoint(key).as_posix()


def tolerances(pins: dict) -> dict[str, float]:
    return {**DEFAULT_TOLERANCE, **(pins.get("tolerance") or {})}


FIX_BROKEN = "restore it with `git checkout -- <file>`, or mend the line named"


def load_pins(path: Path) -> dict:
    """Read and validate a pins file; one clear error for each way it can be wrong."""
    path = Path(path)
    if not path.is_file():
        raise SegreproError(f"pins file {path} is missing; create it with `segrepro audit --update`")
    pins = read_yaml(path, "pins file", FIX_BROKEN)
    if isinstance(pins, dict) and "results" in pins and "classes" not in pins:
        raise SegreproError(f"pins file {path} is in the old single-environment format (top-level "
                            f"'results'); {REPIN} or move it under classes.<class key>")
    if not isinstance(pins, dict) or not isinstance(pins.get("classes"), dict):
        raise SegreproError(f"pins file {path} has no 'classes' mapping; {REPIN}")
    unknown = set(pins.get("tolerance") or {}) - set(DEFAULT_TOLERANCE)
    if unknown:
        raise SegreproError(f"pins file {path}: unknown tolerance key(s) {sorted(unknown)}; "
                            f"valid keys are {sorted(DEFAULT_TOLERANCE)}")
    for key, section in pins["classes"].items():
        if not (isinstance(section, dict) and isinstance(section.get("environment"), dict)
                and isinstance(section.get("results"), dict) and isinstance(section.get("summary"), dict)):
            raise SegreproError(f"pins file {path}: class {key} needs 'environment', 'results' and "
                                f"'summary' mappings; {REPIN}")
    return pins


def load_result(metrics_dir: Path, key: str) -> dict | None:
    path = layout.metrics_json(key, metrics_dir)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SegreproError(f"{path} is not valid JSON ({exc}); rerun `dvc repro`") from exc


def summarise(results: dict[str, dict]) -> dict:
    """Per method: seed count, mean and sample std (None for one seed) of every pinned metric."""
    by_method: dict[str, list[dict]] = {}
    for key in sorted(results):
        by_method.setdefault(layout.method_of(key), []).append(results[key]["metrics"])
    summary = {}
    for method, runs in by_method.items():
        metrics = sorted(set.intersection(*(set(r) for r in runs)))
        stats = {m: mean_std([float(r[m]) for r in runs]) for m in metrics}
        summary[method] = {"seeds": len(runs),
                           "mean": {m: round(mu, 6) for m, (mu, _) in stats.items()},
                           "std": {m: None if sd is None else round(sd, 6) for m, (_, sd) in stats.items()}}
    return summary


def class_section(metrics_dir: Path, expected: list[str],
                  checkpoint_md5: Callable[[str], str | None]) -> tuple[str, dict]:
    """(class key, pins section) of the results of ``expected`` runs; all must share one class."""
    results, envs = {}, {}
    for key in expected:
        result = load_result(metrics_dir, key)
        md5 = checkpoint_md5(key)
        if result is None or md5 is None:
            raise SegreproError(f"cannot pin {key}: its results or checkpoint hash are missing; "
                                "run `dvc repro` first")
        envs[key] = result_environment(result)[0]
        results[key] = {"metrics": {m: round(float(result[m]), 6) for m in pinned_names(result)},
                        "checkpoint": {"path": checkpoint_path(key), "md5": md5}}
    keys = {class_key(env) for env in envs.values()}
    if len(keys) != 1:
        raise SegreproError(f"cannot pin: the results come from several environment classes {sorted(keys)}; "
                            "rerun them all on one machine class, then pin")
    (klass,) = keys
    return klass, {"environment": envs[sorted(envs)[0]], "results": results, "summary": summarise(results)}


def write_section(path: Path, klass: str, section: dict, data_md5: str | None) -> str:
    """Replace one class section of the pins file (others kept), atomically; return the diff."""
    path = Path(path)
    old_text = path.read_text() if path.is_file() else ""
    old = (read_yaml(path, "pins file", FIX_BROKEN) or {}) if old_text else {}
    classes = dict(old.get("classes") or {}) if isinstance(old.get("classes"), dict) else {}
    classes[klass] = section
    pins = {"tolerance": {**DEFAULT_TOLERANCE, **((old.get("tolerance") or {}) if "classes" in old else {})},
            "data": {"path": DATA_PATH, "md5": data_md5},
            "classes": classes}
    new_text = HEADER + yaml.safe_dump(pins, sort_keys=True)
    with atomic_file(path) as tmp:
        tmp.write_text(new_text)
    return "".join(difflib.unified_diff(old_text.splitlines(True), new_text.splitlines(True),
                                        str(path), str(path)))


def _grouped(bad: list) -> list[str]:
    """One phrase per distinct problem: outputs sharing a note (all missing, say) are listed once, the
    first three by name, so a workspace with nothing built is one readable line, not 24 repeats."""
    by_note: dict[str, list[str]] = {}
    for check in bad:
        by_note.setdefault(check.note, []).append(check.subject)
    phrases = []
    for note, subjects in by_note.items():
        if len(subjects) == 1:
            phrases.append(f"{subjects[0]}: {note}")
        else:
            more = f", … {len(subjects) - 3} more" if len(subjects) > 3 else ""
            phrases.append(f"{len(subjects)} outputs ({', '.join(subjects[:3])}{more}): {note}")
    return phrases


def update_pins(path: Path, metrics_dir: Path, lock_path: Path, expected: list[str]) -> str:
    """Rewrite the class section of the current results (other classes kept); return the diff."""
    lock_path = Path(lock_path)
    stages = read_lock(lock_path)
    bad = [c for c in edit_checks(stages, lock_path.parent, expected) + stale_checks(stages, lock_path.parent, expected)
           if c.failed]
    if bad:
        raise SegreproError("cannot pin: " + "; ".join(_grouped(bad)))
    klass, section = class_section(metrics_dir, expected,
                                   lambda key: out_md5(stages, f"train@{key}", checkpoint_path(key)))
    return write_section(path, klass, section, out_md5(stages, DATA_STAGE, DATA_PATH))
