"""Model assembly: backbone → neck → decoder, and the METHODS dict of the method builders.

Each method contributes either a *neck* (a module mapping the list of
backbone features to a list of the same length — SDN, PDN) or a *fusion*
for the FPN top-down pathway (DDSM); the baseline contributes neither. The
backbone, decoder, recipe and data are shared, so the only difference
between two runs is the method's module.

``METHODS`` maps every name of ``models.methods.METHOD_NAMES`` (the one
method list, torch-free so that ``params.py`` can validate against it) to
its builder, the function ``_<name>`` below, in that order. A method is
therefore added by writing ``_<name>`` and listing the name there; see
``models/methods.py``.
"""
from __future__ import annotations

import dataclasses
import difflib
import inspect
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from segrepro.data.input_norms import input_norm_problem
from segrepro.errors import SegreproError
from segrepro.models.backbone import ResNet, load_pretrained
from segrepro.models.ddsm import DDSMFusion
from segrepro.models.decoder import FCNHead, FPNDecoder, FusionFactory
from segrepro.models.methods import METHOD_NAMES
from segrepro.models.pdn import PDNNeck
from segrepro.models.sdn import SDNNeck


class IdentityNeck(nn.Module):
    def __init__(self, in_channels: list[int]) -> None:
        super().__init__()
        self.out_channels = list(in_channels)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        return feats


@dataclasses.dataclass(frozen=True)
class Insertion:
    """What a method adds to the shared baseline."""

    neck: nn.Module
    fusion: FusionFactory | None = None


MethodBuilder = Callable[[list[int], str, dict[str, Any]], Insertion]


class LastLevelNeck(nn.Module):
    """Applies a single-feature module (PDN) to the deepest level only."""

    def __init__(self, in_channels: list[int], module: nn.Module) -> None:
        super().__init__()
        self.module = module
        self.out_channels = list(in_channels[:-1]) + [module.out_channels]

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        return feats[:-1] + [self.module(feats[-1])]


def _construct(method: str, cls: type, *args: Any, **options: Any) -> Any:
    """Call a method's constructor with its params block; every refusal names the block (the build
    arguments carry the method, not the variant, so a variant's own block is named through its
    parent) and an option the constructor has no parameter for gets the closest one it has."""
    where = f"params model.{method} (or an ablation variant of {method})"
    parameters = inspect.signature(cls).parameters.values()
    accepted = [p.name for p in parameters
                if p.kind is p.KEYWORD_ONLY or (p.kind is p.POSITIONAL_OR_KEYWORD and p.default is not p.empty)]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters)
    unknown = [] if takes_any else sorted(set(options) - set(accepted))
    if unknown:
        hints = [f"{name} (did you mean {close[0]}?)" if (close := difflib.get_close_matches(name, accepted, 1))
                 else name for name in unknown]
        raise SegreproError(f"{where}: unknown option {', '.join(hints)}; its options are {', '.join(accepted)}")
    try:
        return cls(*args, **options)
    except SegreproError as exc:
        raise SegreproError(f"{where}: {exc}") from exc


def _baseline(in_channels: list[int], decoder: str, options: dict[str, Any]) -> Insertion:
    if options:
        raise SegreproError(f"the baseline takes no options, got {sorted(options)}")
    return Insertion(IdentityNeck(in_channels))


def _sdn(in_channels: list[int], decoder: str, options: dict[str, Any]) -> Insertion:
    # A neck on every level the decoder sees (Fig. 4): one level for FCN, four for FPN.
    return Insertion(_construct("sdn", SDNNeck, in_channels, **options))


def _ddsm(in_channels: list[int], decoder: str, options: dict[str, Any]) -> Insertion:
    if decoder != "fpn":
        raise SegreproError("DDSM replaces the FPN top-down fusions; set model.decoder: fpn")
    _construct("ddsm", DDSMFusion, in_channels[0], **options)  # validate the options once, early
    return Insertion(IdentityNeck(in_channels), fusion=lambda channels: DDSMFusion(channels, **options))


def _pdn(in_channels: list[int], decoder: str, options: dict[str, Any]) -> Insertion:
    # Diffusion layers on top of the deepest (dilated) feature, before the decoder.
    return Insertion(LastLevelNeck(in_channels, _construct("pdn", PDNNeck, in_channels[-1], **options)))


def builders(names: tuple[str, ...], namespace: dict[str, Any]) -> dict[str, MethodBuilder]:
    """Each listed method's builder ``_<name>`` from ``namespace``, in list order."""
    missing = [name for name in names if not callable(namespace.get(f"_{name}"))]
    if missing:
        raise SegreproError(f"models/methods.py lists {', '.join(missing)} but models/build.py has no builder "
                            f"{', '.join(f'_{name}' for name in missing)}; write it (see _sdn) or drop the name")
    return {name: namespace[f"_{name}"] for name in names}


METHODS: dict[str, MethodBuilder] = builders(METHOD_NAMES, globals())


class SegmentationModel(nn.Module):
    """Encoder (+ neck) + decoder; logits are upsampled to the input size.

    ``input_norm`` (``data.input_norms.INPUT_NORMS``) is how its inputs must be
    normalised; the model does not apply it (training normalises full frames
    before cropping), ``inference.predict`` reads it.
    """

    def __init__(self, backbone: ResNet, insertion: Insertion, decoder: nn.Module, levels: int,
                 input_norm: str = "imagenet") -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = insertion.neck
        self.decoder = decoder
        self.levels = levels
        self.input_norm = input_norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.backbone(x)[-self.levels:]
        logits = self.decoder(self.neck(feats))
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)  # (B, K, H, W)


def build_model(method: str, num_classes: int, backbone: str, output_stride: int, decoder: str,
                channels: int, pretrained: str = "", pretrained_sha256: str = "",
                method_options: dict[str, Any] | None = None, input_norm: str = "imagenet",
                zero_init_residual: bool = False) -> SegmentationModel:
    """Build the shared baseline with ``method`` plugged in at its insertion point."""
    if method not in METHODS:
        raise SegreproError(f"unknown method {method!r}; available: {', '.join(METHODS)}")
    problem = input_norm_problem(input_norm)
    if problem:
        raise SegreproError(problem)
    encoder = ResNet(backbone, output_stride, zero_init_residual)
    if pretrained:
        load_pretrained(encoder, pretrained, pretrained_sha256 or None)
    # Single-scale decoders see only the deepest feature (SDN Fig. 4a; PDN).
    levels = 1 if decoder == "fcn" else 4
    in_channels = list(encoder.feature_info.channels[-levels:])
    insertion = METHODS[method](in_channels, decoder, dict(method_options or {}))
    out_channels = insertion.neck.out_channels
    if decoder == "fcn":
        head: nn.Module = FCNHead(out_channels, channels, num_classes)
    elif decoder == "fpn":
        head = FPNDecoder(out_channels, channels, num_classes, fusion=insertion.fusion)
    else:
        raise SegreproError(f"unknown decoder {decoder!r}; use 'fcn' or 'fpn'")
    return SegmentationModel(encoder, insertion, head, levels, input_norm)


def model_kwargs(model_params: Any, method: str, num_classes: int) -> dict[str, Any]:
    """Map the ``model`` params section to ``build_model`` keyword arguments.

    ``method`` may be an ablation variant (``model.<name>: {of: parent, ...}``):
    it builds its parent with the variant's complete option block (``params.Model.resolve``).
    ``input_norm`` is listed only when it is not ``imagenet``, the one normalisation before the
    option existed: the arguments are pickled into the checkpoint, so ImageNet-normalised runs keep
    the bytes, and the pinned md5s, of the checkpoints made before it; ``zero_init_residual`` is
    listed only when true, for the same reason.
    """
    built, options = model_params.resolve(method)
    kwargs = {"method": built, "num_classes": num_classes, "backbone": model_params.backbone,
              "output_stride": model_params.output_stride, "decoder": model_params.decoder,
              "channels": model_params.channels, "pretrained": model_params.pretrained,
              "pretrained_sha256": model_params.pretrained_sha256, "method_options": options}
    if model_params.input_norm != "imagenet":
        kwargs["input_norm"] = model_params.input_norm
    if model_params.zero_init_residual:
        kwargs["zero_init_residual"] = True
    return kwargs
