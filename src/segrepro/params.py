"""``params.yaml`` → frozen dataclasses, validated strictly.

Unknown keys, missing keys and wrong types (``strict_yaml``) and
out-of-range values (``params_ranges``) raise :class:`SegreproError` naming the key
path, so a typo fails before any work is done. The methods are those of ``models/methods.py`` (the one
method list; torch-free, so parsing params never imports torch). Their
option blocks (``model.sdn`` …, gathered in ``Model.options``) are free-form
mappings here and validated by the method's own constructor.

Ablation variants: any other key under ``model`` whose value is a mapping
with ``of: <method>`` is a *variant* — a complete option block for that
parent method (the papers' own ablation questions, e.g. ``sdn_vanilla``).
A variant can be listed in ``base.methods`` like a method; it is trained,
evaluated and compared like one, and ``compare`` also sets it against its
parent. Variant blocks are complete (no inheritance) so that each run's DVC
params are exactly what built it; ``tests/test_params.py`` checks that every
variant differs from its parent block only in the keys it is about.

The ``runtime`` section holds what several stages read about *where* they
run (device, CPU threads, inference batch size), so no stage reads another
stage's section; a file that still sets the old keys (``MOVED_KEYS``) fails
naming the new ones.

Out-of-range values are ``params_ranges``' business (what each key may
hold and why), called once the file has its shape.

The file itself is read by ``strict_yaml.read_yaml`` (shared with the
profiles), so a syntax error names its line and column.
"""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segrepro.errors import SegreproError
from segrepro.models.methods import METHOD_NAMES
from segrepro.params_ranges import check_ranges
from segrepro.strict_yaml import build, read_yaml


@dataclass(frozen=True)
class Base:
    dataset: str
    num_classes: int    # must be len(data.camvid.CLASSES) (params_ranges)
    ignore_index: int   # must be data.camvid.VOID, CamVid's void label (params_ranges)
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
    input_norm: str = "imagenet"  # data.input_norms.INPUT_NORMS; recorded in the checkpoint's build arguments
    zero_init_residual: bool = False  # residual blocks start as identities (models.backbone); recorded when true
    options: dict = field(default_factory=dict)   # method (METHOD_NAMES) -> its block, model.<method> in params.yaml
    variants: dict = field(default_factory=dict)  # name -> complete option block with "of"

    def resolve(self, name: str) -> tuple[str, dict]:
        """The method a run name builds and its options: a method's own block, or a variant's parent
        and the variant's block without ``of``."""
        if name in self.variants:
            return self.variants[name]["of"], {k: v for k, v in self.variants[name].items() if k != "of"}
        if name not in self.options:
            raise SegreproError(f"unknown method {name!r}; choose from {', '.join((*self.options, *self.variants))}")
        return name, dict(self.options[name])


@dataclass(frozen=True)
class Runtime:
    device: str                  # auto | cpu | cuda
    threads: int                 # torch CPU threads per run (CPU bits depend on it)
    inference_batch_size: int    # images per forward pass: validation in train, the test split in evaluate


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
    class_weighting: str = "none"   # data.class_weights.WEIGHTING_SCHEMES (tables in card.json)
    warmup_epochs: float = 0.0      # linear warm-up from 0 to lr, counted in iterations
    val_every: int = 1              # validate every k epochs (and always after the last)
    compile: bool = False           # torch.compile the training model (pays on CUDA)
    channels_last: bool = True      # NHWC model and batches (always on CUDA; on CPU see bench_train)
    optimizer: str = "sgd"          # OPTIMIZERS: sgd (momentum) | adamw (β1 = momentum, β2 = 0.999)


@dataclass(frozen=True)
class Evaluate:
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
    runtime: Runtime
    train: Train
    evaluate: Evaluate
    report: Report
    audit: Audit


# Keys that moved to another section: where each lives now (checked before anything else).
MOVED_KEYS = {"train.device": "runtime.device", "train.threads": "runtime.threads",
              "evaluate.batch_size": "runtime.inference_batch_size"}


def _check_moved(raw: Any, path: Path) -> None:
    """Name every moved key the file still sets, with its new place (before the generic unknown-key error)."""
    found = []
    for key in MOVED_KEYS:
        section, name = key.split(".")
        if isinstance(raw, dict) and isinstance(raw.get(section), dict) and name in raw[section]:
            found.append(key)
    if found:
        moves = ", ".join(f"{key} → {MOVED_KEYS[key]}" for key in found)
        raise SegreproError(f"params file {path}: {moves} (moved to the shared runtime section); move the "
                            "value(s) there, e.g. runtime: {device: auto, threads: 2, inference_batch_size: 8}")


def _group_model(model: dict) -> dict:
    """Gather ``model.<method>`` blocks into ``options`` and ``model.<name>: {of: ...}`` blocks into
    ``variants`` (see the module docstring); every other key must be a plain ``Model`` field."""
    grouped = {"options", "variants"}
    plain = [f.name for f in dataclasses.fields(Model) if f.name not in grouped]
    out: dict = {}
    options: dict = {}
    variants: dict = {}
    for key, value in model.items():
        if key in grouped:
            raise SegreproError(f"params key model.{key} is reserved; write each method's options as "
                                f"model.<method> and each variant as model.<name>: {{of: <method>, ...}}")
        if key in METHOD_NAMES:
            if not isinstance(value, dict):
                raise SegreproError(f"params key model.{key} must be a mapping of {key}'s options "
                                    f"({{}} for none), got {value!r}")
            if "of" in value:
                raise SegreproError(f"model.{key} is the options of method {key}; 'of' belongs to ablation "
                                    f"variants only: remove it, or give the variant its own name")
            options[key] = value
        elif key in plain:
            out[key] = value
        elif isinstance(value, dict) and "of" in value:
            variants[key] = value
        else:
            guess = difflib.get_close_matches(str(key), plain + list(METHOD_NAMES), n=1)
            hint = f" (did you mean model.{guess[0]}?)" if guess else ""
            raise SegreproError(f"unknown params key model.{key}{hint}; allowed keys: {', '.join(plain)}, "
                                f"one block per method ({', '.join(METHOD_NAMES)}) or an ablation variant "
                                f"model.<name>: {{of: <method>, ...}}")
    out["options"] = {name: options.get(name, {}) for name in METHOD_NAMES}
    out["variants"] = variants
    return out


def parent_method(params: Params, name: str) -> str:
    """The method a run name builds: itself for a method, ``of`` for an ablation variant."""
    return params.model.resolve(name)[0]


def method_options(params: Params, name: str) -> dict:
    """The option block of a method or variant (without the variant's ``of``)."""
    return params.model.resolve(name)[1]


def read_params_raw(path: str | Path = "params.yaml") -> dict:
    """The params file as parsed YAML, a mapping of sections (unchecked): what ``load_params`` and the
    profiles read."""
    path = Path(path)
    raw = read_yaml(path, "params file", "run from the repository root or pass --params", unique=True)
    restore = "restore it (`git checkout -- params.yaml` restores the repository's) or pass a complete one"
    if raw is None:
        raise SegreproError(f"params file {path} is empty; {restore}")
    if not isinstance(raw, dict):
        raise SegreproError(f"params file {path} must be a mapping of sections (base:, download:, ...), got a "
                            f"{type(raw).__name__}; {restore}")
    return raw


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate the whole params file (every stage does, so a typo anywhere fails early)."""
    path = Path(path)
    raw = read_params_raw(path)
    _check_moved(raw, path)
    if isinstance(raw.get("model"), dict):
        raw = dict(raw, model=_group_model(raw["model"]))
    params = build(Params, raw, "")
    check_ranges(params, str(path))
    return params
