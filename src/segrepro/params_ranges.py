"""What the values of ``params.yaml`` may be: the range rules ``params.load_params`` applies.

``params`` gives the file its shape (sections, keys, types); this module
refuses values that have the right type but cannot work, all problems in one
line, each naming its key and the fix.

Choices beyond the obvious ones: every number must be
finite (no ``.nan``/``.inf`` anywhere, option blocks included); the pipeline
supports only CamVid's labelling, so ``base.num_classes`` must be 11 and
``base.ignore_index`` (void) 11 (``data.camvid.CLASSES``, ``VOID``): the
labels preprocess writes, the loss, class weights and metrics all assume it;
``preprocess.height``/``width`` may upscale CamVid's frames
(``CAMVID_FRAME``; params.yaml halves them, the GPU profile keeps them) at
most ``MAX_UPSCALE`` times per side: an upscale adds no information, and
beyond that it is surely a typo (an extra zero) that would only fail later
for memory; seeds lie in ``SEEDS``, what NumPy's seeding accepts.

``train.lr`` must be below ``MAX_LR`` (1): this pipeline's recipes use 0.001
(AdamW) and 0.01 (SGD), as do published segmentation recipes (SGD ~0.01,
AdamW 1e-4 to 1e-3); even ImageNet's linear-scaling rule (0.1 per 256
images) reaches 1 only at a batch of 2560, far beyond what fits here. A rate
of 1 or more is a slipped exponent or decimal point, which would otherwise
show only as a diverged run.
``train.momentum`` must be < 1 for SGD too, not only as AdamW's beta1: at 1
or more past gradients never fade and the steps accumulate without limit (a
diverged run, noticed only in its losses). ``train.lr × train.weight_decay``
must be < 1: the decay term alone moves each weight by that fraction of
itself every step, so at 1 it zeroes the weights and beyond it flips them.
``train.scale_max`` is at most ``MAX_SCALE`` (4): random-scale recipes span
0.5-2 (the GPU profile's 2.0 is the largest here), and a dropped decimal
point (15 for 1.5) would resize every training frame 15 times per side
before a small crop is taken from it, and larger typos exhaust memory (the
crop rule, at most twice the largest scaled image, grows with scale_max, so
it bounds nothing then).

``model.output_stride`` is one of ``OUTPUT_STRIDES`` and ``model.backbone``
one of ``BACKBONES``: ``models.backbone`` builds only those (it imports both
from here, so the lists exist once and params stay torch-free);
``pretrained_problem`` holds the checks of ``model.pretrained`` and its
sha256 that need no file (``models.backbone.load_pretrained`` applies them
too), plus one only params can see: a sha256 without weights to check it
against is a forgotten ``model.pretrained``, a silent run from scratch.

``evaluate.bf_tolerances`` and ``evaluate.trimap_widths`` are strictly
increasing: each value names a metric (``bf@2px``; ``metrics.registry``), so
a repeat would make two metrics of one name, and one order per set keeps one
spelling per experiment (another order writes the same numbers in other
bytes, a different DVC experiment, with the report's columns out of order).
Each is at most the diagonal of the processed image, ``isqrt(height² +
width²)`` px (300 at 180×240): no two pixels lie farther apart, so a larger
value scores exactly as the diagonal does, while the morphology's cost grows
with it (10**9 never finishes). ``evaluate.trimap_widths`` holds at most
``MAX_TRIMAP_WIDTHS`` (255) widths: ``metrics.boundary`` counts the bands
around a pixel in one byte, so a longer list would fail only at evaluate,
after every training.

``runtime.threads`` is at most ``MAX_THREADS`` (1024), a fixed bound rather
than ``os.cpu_count()``: params.yaml must stay valid on every machine (CPU
results are bit-identical only at the same thread count, so a file written
for a large host must still load on a small one, merely oversubscribed),
and 1024 exceeds the hardware threads of today's largest two-socket hosts.
The batch sizes, ``train.epochs``, ``model.channels`` and
``evaluate.latency_runs`` have no upper bound: train takes at most the whole
split per batch and inference slices the split, so a huge batch size means
"the whole split at once" (memory permitting: a GPU out-of-memory error
names ``train.batch_size``), and a long schedule or many timing runs work,
just slowly, with nothing to tell a large intended value from a typo.
``audit.pins`` must name a file: an empty or blank path would read and
rewrite the working directory as the pins file.
"""
from __future__ import annotations

import dataclasses
import math
import re
from typing import TYPE_CHECKING, Any

from segrepro.data.camvid import CLASSES, VOID
from segrepro.data.class_weights import WEIGHTING_SCHEMES
from segrepro.data.input_norms import input_norm_problem
from segrepro.errors import SegreproError
from segrepro.models.methods import BASELINE

if TYPE_CHECKING:
    from segrepro.params import Params

OPTIMIZERS = ("sgd", "adamw")  # train.optimizer; built by training.train.make_optimizer
SEEDS = range(2 ** 32)  # base.seeds and --seed: what NumPy's seeding accepts (runtime.make_deterministic)
CAMVID_FRAME = (360, 480)  # height, width of CamVid's frames (data.camvid's docstring)
MAX_UPSCALE = 4  # preprocess.height/width at most this many times CAMVID_FRAME (docstring)
MAX_LR = 1.0  # train.lr must be below it (docstring)
MAX_SCALE = 4.0  # train.scale_max at most this (docstring)
MAX_THREADS = 1024  # runtime.threads at most this (docstring)
MAX_TRIMAP_WIDTHS = 255  # evaluate.trimap_widths: metrics.boundary counts the bands holding a pixel in a uint8
OUTPUT_STRIDES = (8, 16, 32)  # model.output_stride: models.backbone dilates layer4 for 16, layers 3 and 4 for 8
BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101")  # model.backbone; their depths: models.backbone
DECODERS = ("fcn", "fpn")  # model.decoder; built by models.build
DEVICES = ("auto", "cpu", "cuda")  # runtime.device; resolved by runtime (auto: cuda when available)


def _nonfinite(value: Any, path: str) -> list[str]:
    """A problem for every NaN or infinite float in a params value (sections, option blocks, lists)."""
    if dataclasses.is_dataclass(value) and hasattr(value, "options") and hasattr(value, "variants"):
        # the model section, named as params.yaml spells it: model.<method>.<key>, model.<variant>.<key>
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


def choice_problem(key: str, value: Any, choices: tuple, hint: str = "") -> str | None:
    """What is wrong with a params value that must be one of ``choices`` (None when it is one)."""
    if value in choices:
        return None
    return (f"{key} must be one of {', '.join(map(str, choices))}, got {value!r}"
            + (f"; {hint}" if hint else ""))


def seed_problem(seed: int, what: str) -> str | None:
    """Why ``seed`` (named ``what``) cannot seed a run, or None."""
    if seed in SEEDS:
        return None
    return f"{what} must lie in 0..2^32-1 (what NumPy's seeding accepts), got {seed}"


def pretrained_problem(source: str, sha256: str | None) -> str | None:
    """Why ``model.pretrained`` (``source``) and ``model.pretrained_sha256`` cannot load weights, or None:
    the checks that need no file (module docstring)."""
    # torch.hub compares only as many digits as it is given: a shortened sha256 must not pass.
    if sha256 and not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        return (f"model.pretrained_sha256 {sha256!r} is not a sha256; give all 64 hex digits "
                "(sha256sum of the weights file)")
    if source.startswith(("http://", "https://")) and not sha256:
        return "model.pretrained is an URL: set model.pretrained_sha256 to its sha256"
    if sha256 and not source:
        return ("model.pretrained_sha256 is set but model.pretrained is empty, so no weights would be loaded "
                "(a run from scratch); set model.pretrained to the weights' path or URL, or clear "
                "model.pretrained_sha256")
    return None


def check_seed(seed: int, what: str = "--seed") -> None:
    """Refuse a seed outside ``SEEDS`` before any work (the CLI's ``--seed``)."""
    problem = seed_problem(seed, what)
    if problem:
        raise SegreproError(f"{problem}; pick one in that range, e.g. one of base.seeds")


def check_ranges(params: Params, source: str = "params.yaml") -> None:
    """Refuse every out-of-range value of ``params`` (read from the file ``source``) at once, one line
    (module docstring)."""
    b, p, t = params.base, params.preprocess, params.train
    nonfinite = _nonfinite(params, "")
    if nonfinite:  # every comparison below is meaningless on NaN, and inf breaks the arithmetic after
        raise SegreproError(f"invalid {source}: " + "; ".join(nonfinite) + "; write a finite value (an "
                            "option that means 'unbounded' takes null, e.g. model.ddsm.offset_bound)")
    problems = []
    if b.dataset != "camvid":
        problems.append(f"base.dataset {b.dataset!r} is not supported; use 'camvid'")
    if (b.num_classes, b.ignore_index) != (len(CLASSES), VOID):
        problems.append(f"base.num_classes and base.ignore_index must be {len(CLASSES)} and {VOID} (CamVid's "
                        f"{len(CLASSES)} classes and its void label, the only labelling the pipeline supports), "
                        f"got {b.num_classes} and {b.ignore_index}; set base.num_classes: {len(CLASSES)} and "
                        f"base.ignore_index: {VOID}")
    method_names = tuple(params.model.options)  # one block per listed method (params groups them)
    with_options = [m for m in method_names if m != BASELINE]
    for name, block in params.model.variants.items():
        if block["of"] not in with_options:
            problems.append(f"model.{name}.of must name a method with options ({', '.join(with_options)}), "
                            f"got {block['of']!r}")
    known = method_names + tuple(params.model.variants)
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
    diagonal = math.isqrt(p.height ** 2 + p.width ** 2)  # px: no two pixels of the processed image lie farther
    for key, pixels, name in (("evaluate.bf_tolerances", ev.bf_tolerances, "bf@<t>px"),
                              ("evaluate.trimap_widths", ev.trimap_widths, "trimap@<w>px")):
        if list(pixels) != sorted(set(pixels)):
            problems.append(f"{key} must be strictly increasing (each value names a metric, {name}), got "
                            f"{list(pixels)}; write {sorted(set(pixels))}")
        if key == "evaluate.trimap_widths" and len(pixels) > MAX_TRIMAP_WIDTHS:
            problems.append(f"{key} may hold at most {MAX_TRIMAP_WIDTHS} widths (a pixel's bands are counted in "
                            f"one byte), got {len(pixels)}; keep the widths the report needs")
        if pixels and min(p.height, p.width) > 0 and max(pixels) > diagonal:
            problems.append(f"{key} must be at most {diagonal} px, the diagonal of the {p.height}x{p.width} "
                            f"images preprocess writes (a larger value scores as {diagonal} does), got "
                            f"{max(pixels)}; lower it")
    if not 0 < ev.boundary_iou_ratio < 1:
        problems.append(f"evaluate.boundary_iou_ratio must be in (0, 1), got {ev.boundary_iou_ratio}")
    if p.max_images < 0:
        problems.append("params key preprocess.max_images must be >= 0 (0 keeps every image)")
    if t.lr <= 0:
        problems.append(f"train.lr must be > 0, got {t.lr}")
    elif not t.lr < MAX_LR:
        problems.append(f"train.lr must be < {MAX_LR:g}, got {t.lr}; this pipeline's recipes use 0.001 with "
                        "AdamW and 0.01 with SGD")
    elif t.weight_decay >= 0 and not t.lr * t.weight_decay < 1:
        problems.append(f"train.lr x train.weight_decay must be < 1 (the decay alone moves every weight by that "
                        f"fraction of itself each step), got {t.lr} x {t.weight_decay}; lower "
                        "train.weight_decay (AdamW runs use 0.01, SGD runs 0.0005)")
    if not 0 < t.scale_min <= t.scale_max:
        problems.append("train.scale_min and train.scale_max must satisfy 0 < scale_min <= scale_max")
    if t.scale_max > MAX_SCALE:
        problems.append(f"train.scale_max must be at most {MAX_SCALE:g}, got {t.scale_max}; random-scale "
                        "augmentation spans 0.5-2 (params.yaml caps it at 1.5, the GPU profile at 2.0)")
    for key, value in (("train.momentum", t.momentum), ("train.weight_decay", t.weight_decay),
                       ("train.poly_power", t.poly_power), ("train.warmup_epochs", t.warmup_epochs)):
        if value < 0:
            problems.append(f"params key {key} must be >= 0, got {value}")
    if t.warmup_epochs > t.epochs > 0:
        problems.append(f"train.warmup_epochs ({t.warmup_epochs}) must not exceed train.epochs ({t.epochs})")
    if t.val_every < 1:
        problems.append(f"train.val_every must be >= 1, got {t.val_every}")
    problems += filter(None, [choice_problem("train.optimizer", t.optimizer, OPTIMIZERS)])
    if not t.momentum < 1:
        role = ("AdamW's beta1" if t.optimizer == "adamw" else
                "SGD's momentum (at 1 or more past gradients never fade and the steps accumulate without limit)")
        problems.append(f"train.momentum is {role} and must be < 1, got {t.momentum}; 0.9 is usual")
    problems += filter(None, [choice_problem("train.class_weighting", t.class_weighting, WEIGHTING_SCHEMES)])
    if min(p.height, p.width) > 0 and (t.crop_height > 2 * p.height * t.scale_max
                                       or t.crop_width > 2 * p.width * t.scale_max):
        problems.append(f"train crop {t.crop_height}x{t.crop_width} is more than twice the largest scaled image "
                        f"({p.height * t.scale_max:.0f}x{p.width * t.scale_max:.0f}); lower train.crop_height/"
                        "crop_width or raise train.scale_max")
    problems += filter(None, (seed_problem(s, "base.seeds") for s in b.seeds))
    if params.evaluate.latency_runs < 1:
        problems.append(f"evaluate.latency_runs must be >= 1, got {params.evaluate.latency_runs}")
    if params.runtime.threads > MAX_THREADS:
        problems.append(f"runtime.threads must be at most {MAX_THREADS}, got {params.runtime.threads}; use the "
                        "machine's core count or less (params.yaml's 2 keeps CPU results comparable)")
    m = params.model
    problems += filter(None, [
        choice_problem("runtime.device", params.runtime.device, DEVICES),
        input_norm_problem(m.input_norm),
        choice_problem("model.decoder", m.decoder, DECODERS),
        choice_problem("model.backbone", m.backbone, BACKBONES, "params.yaml uses resnet18"),
        choice_problem("model.output_stride", m.output_stride, OUTPUT_STRIDES,
                       "the ResNet backbone's downsampling; params.yaml uses 32, the GPU profile 16"),
    ])
    problems += filter(None, [pretrained_problem(params.model.pretrained, params.model.pretrained_sha256)])
    if not params.audit.pins.strip():
        problems.append(f"audit.pins must name the pins file, got {params.audit.pins!r}; set it to e.g. "
                        "pins.yaml (pins-gpu.yaml for the GPU profile)")
    if problems:
        raise SegreproError(f"invalid {source}: " + "; ".join(problems))
