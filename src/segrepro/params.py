"""``params.yaml`` → frozen dataclasses, validated strictly.

Unknown keys, missing keys and wrong types (``strict_yaml``) and
out-of-range values (``_check``) raise :class:`SegreproError` naming the key
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

Range choices beyond the obvious ones (``_check``): every number must be
finite (no ``.nan``/``.inf`` anywhere, option blocks included); the pipeline
supports only CamVid's labelling, so ``base.num_classes`` must be 11 and
``base.ignore_index`` (void) 11 (``data.camvid.CLASSES``, ``VOID``): the
labels preprocess writes, the loss, class weights and metrics all assume it;
``preprocess.height``/``width`` may upscale CamVid's frames
(``CAMVID_FRAME``; params.yaml halves them, the GPU profile keeps them) at
most ``MAX_UPSCALE`` times per side: an upscale adds no information, and
beyond that it is surely a typo (an extra zero) that would only fail later
for memory; seeds lie in ``SEEDS``, what NumPy's seeding accepts.

The file itself is read by ``strict_yaml.read_yaml`` (shared with the
profiles), so a syntax error names its line and column.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segrepro.data.camvid import CLASSES, VOID
from segrepro.data.class_weights import WEIGHTING_SCHEMES
from segrepro.data.input_norms import input_norm_problem
from segrepro.errors import SegreproError
from segrepro.models.methods import BASELINE, METHOD_NAMES
from segrepro.strict_yaml import build, read_yaml


@dataclass(frozen=True)
class Base:
    dataset: str
    num_classes: int    # must be len(data.camvid.CLASSES) (module docstring)
    ignore_index: int   # must be data.camvid.VOID, CamVid's void label (module docstring)
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


OPTIMIZERS = ("sgd", "adamw")  # train.optimizer; built by training.train.make_optimizer
SEEDS = range(2 ** 32)  # base.seeds and --seed: what NumPy's seeding accepts (runtime.make_deterministic)
CAMVID_FRAME = (360, 480)  # height, width of CamVid's frames (data.camvid's docstring)
MAX_UPSCALE = 4  # preprocess.height/width at most this many times CAMVID_FRAME (docstring)

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


def _nonfinite(value: Any, path: str) -> list[str]:
    """A problem for every NaN or infinite float in a params value (sections, option blocks, lists)."""
    if isinstance(value, Model):  # named as params.yaml spells them: model.<method>.<key>, model.<variant>.<key>
        value = {**{f.name: getattr(value, f.name) for f in dataclasses.fields(value)
                    if f.name not in ("options", "variants")}, **value.options, **value.variants}
    elif dataclasses.is_dataclass(value):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return [bad for k, v in value.items() for bad in _nonfinite(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, (list, tuple)):
        return [bad for i, v in enumerate(value) for bad in _nonfinite(v, f"{path}[{i}]")]
    if isinstance(value, float) and not math.isfinite(value):
        return [f"params key {path} must be a finite number, got {value}"]
    return []


def seed_problem(seed: int, what: str) -> str | None:
    """Why ``seed`` (named ``what``) cannot seed a run, or None."""
    if seed in SEEDS:
        return None
    return f"{what} must lie in 0..2^32-1 (what NumPy's seeding accepts), got {seed}"


def check_seed(seed: int, what: str = "--seed") -> None:
    """Refuse a seed outside ``SEEDS`` before any work (the CLI's ``--seed``)."""
    problem = seed_problem(seed, what)
    if problem:
        raise SegreproError(f"{problem}; pick one in that range, e.g. one of base.seeds")


def _check(params: Params) -> None:
    b, p, t = params.base, params.preprocess, params.train
    nonfinite = _nonfinite(params, "")
    if nonfinite:  # every comparison below is meaningless on NaN, and inf breaks the arithmetic after
        raise SegreproError("invalid params.yaml: " + "; ".join(nonfinite) + "; write a finite value (an "
                            "option that means 'unbounded' takes null, e.g. model.ddsm.offset_bound)")
    problems = []
    if b.dataset != "camvid":
        problems.append(f"base.dataset {b.dataset!r} is not supported; use 'camvid'")
    if (b.num_classes, b.ignore_index) != (len(CLASSES), VOID):
        problems.append(f"base.num_classes and base.ignore_index must be {len(CLASSES)} and {VOID} (CamVid's "
                        f"{len(CLASSES)} classes and its void label, the only labelling the pipeline supports), "
                        f"got {b.num_classes} and {b.ignore_index}; set base.num_classes: {len(CLASSES)} and "
                        f"base.ignore_index: {VOID}")
    with_options = [m for m in METHOD_NAMES if m != BASELINE]
    for name, block in params.model.variants.items():
        if block["of"] not in with_options:
            problems.append(f"model.{name}.of must name a method with options ({', '.join(with_options)}), "
                            f"got {block['of']!r}")
    known = METHOD_NAMES + tuple(params.model.variants)
    for m in b.methods:
        if m not in known:
            problems.append(f"base.methods contains unknown method {m!r}; choose from {', '.join(known)}")
    if not b.methods or not b.seeds:
        problems.append("base.methods and base.seeds must not be empty")
    if len(set(b.methods)) != len(b.methods) or len(set(b.seeds)) != len(b.seeds):
        problems.append("base.methods and base.seeds must not repeat entries")
    if b.methods and b.methods[0] != BASELINE and len(b.methods) > 1:
        problems.append(f"base.methods must start with {BASELINE!r}: methods are compared against it")
    positive = {"preprocess.height": p.height, "preprocess.width": p.width, "train.epochs": t.epochs,
                "train.batch_size": t.batch_size, "train.crop_height": t.crop_height,
                "train.crop_width": t.crop_width, "runtime.threads": params.runtime.threads,
                "runtime.inference_batch_size": params.runtime.inference_batch_size,
                "model.channels": params.model.channels}
    problems += [f"params key {k} must be > 0, got {v}" for k, v in positive.items() if v <= 0]
    for key, value, frame in (("preprocess.height", p.height, CAMVID_FRAME[0]),
                              ("preprocess.width", p.width, CAMVID_FRAME[1])):
        if value > MAX_UPSCALE * frame:
            problems.append(f"params key {key} must be at most {MAX_UPSCALE * frame} ({MAX_UPSCALE}x CamVid's "
                            f"{frame}), got {value}; CamVid's frames are {CAMVID_FRAME[0]}x{CAMVID_FRAME[1]}: "
                            "use that size or less")
    ev = params.evaluate
    if not ev.bf_tolerances or not ev.trimap_widths or min(ev.bf_tolerances + ev.trimap_widths) < 1:
        problems.append("evaluate.bf_tolerances and evaluate.trimap_widths must be non-empty lists of "
                        "pixel counts >= 1")
    if not 0 < ev.boundary_iou_ratio < 1:
        problems.append(f"evaluate.boundary_iou_ratio must be in (0, 1), got {ev.boundary_iou_ratio}")
    if p.max_images < 0:
        problems.append("params key preprocess.max_images must be >= 0 (0 keeps every image)")
    if t.lr <= 0:
        problems.append(f"train.lr must be > 0, got {t.lr}")
    if not 0 < t.scale_min <= t.scale_max:
        problems.append("train.scale_min and train.scale_max must satisfy 0 < scale_min <= scale_max")
    for key, value in (("train.momentum", t.momentum), ("train.weight_decay", t.weight_decay),
                       ("train.poly_power", t.poly_power), ("train.warmup_epochs", t.warmup_epochs)):
        if value < 0:
            problems.append(f"params key {key} must be >= 0, got {value}")
    if t.warmup_epochs > t.epochs > 0:
        problems.append(f"train.warmup_epochs ({t.warmup_epochs}) must not exceed train.epochs ({t.epochs})")
    if t.val_every < 1:
        problems.append(f"train.val_every must be >= 1, got {t.val_every}")
    if t.optimizer not in OPTIMIZERS:
        problems.append(f"train.optimizer must be one of {', '.join(OPTIMIZERS)}, got {t.optimizer!r}")
    if t.optimizer == "adamw" and not t.momentum < 1:
        problems.append(f"train.momentum is AdamW's beta1 and must be < 1, got {t.momentum}")
    if t.class_weighting not in WEIGHTING_SCHEMES:
        problems.append(f"train.class_weighting must be one of {', '.join(WEIGHTING_SCHEMES)}, "
                        f"got {t.class_weighting!r}")
    if min(p.height, p.width) > 0 and (t.crop_height > 2 * p.height * t.scale_max
                                       or t.crop_width > 2 * p.width * t.scale_max):
        problems.append(f"train crop {t.crop_height}x{t.crop_width} is more than twice the largest scaled image "
                        f"({p.height * t.scale_max:.0f}x{p.width * t.scale_max:.0f}); lower train.crop_height/"
                        "crop_width or raise train.scale_max")
    problems += filter(None, (seed_problem(s, "base.seeds") for s in b.seeds))
    if params.evaluate.latency_runs < 1:
        problems.append(f"evaluate.latency_runs must be >= 1, got {params.evaluate.latency_runs}")
    if params.runtime.device not in ("auto", "cpu", "cuda"):
        problems.append(f"runtime.device must be auto, cpu or cuda, got {params.runtime.device!r}")
    problems += filter(None, [input_norm_problem(params.model.input_norm)])
    if params.model.decoder not in ("fcn", "fpn"):
        problems.append(f"model.decoder must be 'fcn' or 'fpn', got {params.model.decoder!r}")
    if problems:
        raise SegreproError("invalid params.yaml: " + "; ".join(problems))


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
    _check(params)
    return params
