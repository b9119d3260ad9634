"""``params.yaml`` → frozen dataclasses, validated strictly.

Unknown keys (with a did-you-mean hint), missing keys, wrong types and
out-of-range values all raise :class:`SegreproError` naming the key path, so
a typo in ``params.yaml`` fails before any work is done instead of being
silently ignored. Method-specific blocks (``model.sdn`` …) are free-form
mappings here and validated by the method's own constructor.
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from segrepro.errors import SegreproError

METHOD_NAMES = ("baseline", "sdn", "ddsm", "pdn")


@dataclass(frozen=True)
class Base:
    dataset: str
    num_classes: int
    ignore_index: int
    methods: tuple[str, ...]
    seeds: tuple[int, ...]


@dataclass(frozen=True)
class Download:
    url: str


@dataclass(frozen=True)
class Preprocess:
    height: int
    width: int
    max_images: int  # per split; 0 keeps every image


@dataclass(frozen=True)
class Model:
    backbone: str
    output_stride: int
    decoder: str
    channels: int
    pretrained: str
    pretrained_sha256: str
    baseline: dict = field(default_factory=dict)
    sdn: dict = field(default_factory=dict)
    ddsm: dict = field(default_factory=dict)
    pdn: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Train:
    epochs: int
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    poly_power: float
    crop_height: int
    crop_width: int
    scale_min: float
    scale_max: float
    flip: bool
    threads: int
    device: str


@dataclass(frozen=True)
class Evaluate:
    batch_size: int
    latency_runs: int
    bf_tolerances: tuple[int, ...]     # absolute pixels at the evaluated resolution
    trimap_widths: tuple[int, ...]     # absolute pixels
    boundary_iou_ratio: float          # of the image diagonal (Cheng et al. use 0.02)


@dataclass(frozen=True)
class Report:
    title: str


@dataclass(frozen=True)
class Audit:
    pins: str


@dataclass(frozen=True)
class Params:
    base: Base
    download: Download
    preprocess: Preprocess
    model: Model
    train: Train
    evaluate: Evaluate
    report: Report
    audit: Audit


def _convert(value: Any, hint: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, path)
    if origin is tuple:
        if not isinstance(value, list):
            raise SegreproError(f"params key {path} must be a list, got {value!r}")
        (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
        return tuple(_convert(v, item, f"{path}[{i}]") for i, v in enumerate(value))
    if hint is dict:
        if not isinstance(value, dict):
            raise SegreproError(f"params key {path} must be a mapping, got {value!r}")
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, bool) or not isinstance(value, hint):
        raise SegreproError(f"params key {path} must be of type {hint.__name__}, got {value!r}")
    return value


def _build(cls: type, raw: Any, path: str) -> Any:
    if not isinstance(raw, dict):
        raise SegreproError(f"params section {path or '<root>'} must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            guess = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean {path + '.' if path else ''}{guess[0]}?)" if guess else ""
            raise SegreproError(f"unknown params key {path + '.' if path else ''}{key}{hint}; "
                                f"allowed keys: {', '.join(fields)}")
    values = {}
    for name, f in fields.items():
        key_path = f"{path}.{name}" if path else name
        if name not in raw:
            if f.default_factory is not dataclasses.MISSING:
                values[name] = f.default_factory()
                continue
            raise SegreproError(f"params key {key_path} is missing; add it to params.yaml")
        values[name] = _convert(raw[name], hints[name], key_path)
    return cls(**values)


def _check(params: Params) -> None:
    b, p, t = params.base, params.preprocess, params.train
    problems = []
    if b.dataset != "camvid":
        problems.append(f"base.dataset {b.dataset!r} is not supported; use 'camvid'")
    for m in b.methods:
        if m not in METHOD_NAMES:
            problems.append(f"base.methods contains unknown method {m!r}; choose from {', '.join(METHOD_NAMES)}")
    if not b.methods or not b.seeds:
        problems.append("base.methods and base.seeds must not be empty")
    if len(set(b.methods)) != len(b.methods) or len(set(b.seeds)) != len(b.seeds):
        problems.append("base.methods and base.seeds must not repeat entries")
    if b.methods and b.methods[0] != "baseline" and len(b.methods) > 1:
        problems.append("base.methods must start with 'baseline': methods are compared against it")
    positive = {"preprocess.height": p.height, "preprocess.width": p.width, "train.epochs": t.epochs,
                "train.batch_size": t.batch_size, "train.crop_height": t.crop_height,
                "train.crop_width": t.crop_width, "train.threads": t.threads,
                "evaluate.batch_size": params.evaluate.batch_size,
                "model.channels": params.model.channels}
    problems += [f"params key {k} must be > 0, got {v}" for k, v in positive.items() if v <= 0]
    ev = params.evaluate
    if not ev.bf_tolerances or not ev.trimap_widths or min(ev.bf_tolerances + ev.trimap_widths) < 1:
        problems.append("evaluate.bf_tolerances and evaluate.trimap_widths must be non-empty lists of "
                        "pixel counts >= 1")
    if not 0 < ev.boundary_iou_ratio < 1:
        problems.append(f"evaluate.boundary_iou_ratio must be in (0, 1), got {ev.boundary_iou_ratio}")
    if p.max_images < 0:
        problems.append("params key preprocess.max_images must be >= 0 (0 keeps every image)")
    if t.lr <= 0 or not 0 < t.scale_min <= t.scale_max:
        problems.append("train.lr must be > 0 and 0 < train.scale_min <= train.scale_max")
    if t.device not in ("auto", "cpu", "cuda"):
        problems.append(f"train.device must be auto, cpu or cuda, got {t.device!r}")
    if params.model.decoder not in ("fcn", "fpn"):
        problems.append(f"model.decoder must be 'fcn' or 'fpn', got {params.model.decoder!r}")
    if problems:
        raise SegreproError("invalid params.yaml: " + "; ".join(problems))


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate the whole params file (every stage does, so a typo anywhere fails early)."""
    path = Path(path)
    if not path.is_file():
        raise SegreproError(f"params file {path} not found; run from the repository root or pass --params")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SegreproError(f"params file {path} is not valid YAML: {exc}") from exc
    params = _build(Params, raw, "")
    _check(params)
    return params
