"""ResNet backbone in plain PyTorch, dilated to a configurable output stride.

Parameter names follow torchvision's ``resnet18/34/50/101`` exactly
(``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer1.0.downsample.0`` …), so an
ImageNet state dict saved from torchvision loads with ``strict=True`` once its
``fc.*`` entries are dropped (``load_pretrained`` does that).

Dilation follows DeepLab: for output stride 16 the stride of ``layer4`` is
replaced by dilation 2; for output stride 8 ``layer3`` gets dilation 2 and
``layer4`` dilation 4. As in torchvision's ``replace_stride_with_dilation``,
the first block of a dilated stage keeps the previous dilation in its first
3×3 conv.

``zero_init_residual`` (off by default, torchvision's option of the same
name; Goyal et al. 2017, "Accurate, Large Minibatch SGD", §5.1) starts the
last BatchNorm of every residual block at γ = 0, so each block begins as the
identity and the network as a shallow one; it matters only when training
from scratch (pretrained weights overwrite it). Measured on validation with
the default recipe (README "How the shared recipe was chosen"; seeds 0 / 1,
AMD EPYC Zen 3): 43.50 / 42.43 mIoU against the default's 49.72 / 45.85, so
it stays off.
"""
from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from segrepro.errors import SegreproError
from segrepro.params_ranges import BACKBONES, OUTPUT_STRIDES, pretrained_problem

# Block kind and blocks per stage of each of BACKBONES (named once there, so params checks them torch-free).
_DEPTHS = dict(zip(BACKBONES, (
    ("basic", (2, 2, 2, 2)),        # resnet18
    ("basic", (3, 4, 6, 3)),        # resnet34
    ("bottleneck", (3, 4, 6, 3)),   # resnet50
    ("bottleneck", (3, 4, 23, 3)),  # resnet101
), strict=True))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 first_dilation: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, padding=first_dilation,
                               dilation=first_dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 first_dilation: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        # torchvision (ResNet v1.5) puts the stride on the 3×3 conv.
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=first_dilation,
                               dilation=first_dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        del dilation  # the remaining convs are 1×1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


@dataclass(frozen=True)
class FeatureInfo:
    """Channels and strides of the four stages C2..C5 (after ``layer1..layer4``)."""

    channels: tuple[int, int, int, int]
    strides: tuple[int, int, int, int]


class ResNet(nn.Module):
    """ResNet returning the four stage outputs ``[C2, C3, C4, C5]``.

    ``feature_info`` states their channels and strides so that necks and
    decoders size themselves from it.
    """

    def __init__(self, name: str = "resnet18", output_stride: int = 8, zero_init_residual: bool = False) -> None:
        super().__init__()
        if name not in _DEPTHS:
            raise SegreproError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
        if output_stride not in OUTPUT_STRIDES:
            raise SegreproError(f"output_stride must be one of {', '.join(map(str, OUTPUT_STRIDES))}, "
                                f"got {output_stride}")
        kind, depths = _DEPTHS[name]
        block = BasicBlock if kind == "basic" else Bottleneck
        self.inplanes, self.dilation = 64, 1
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        dilate3 = output_stride == 8
        dilate4 = output_stride in (8, 16)
        self.layer1 = self._make_layer(block, 64, depths[0])
        self.layer2 = self._make_layer(block, 128, depths[1], stride=2)
        self.layer3 = self._make_layer(block, 256, depths[2], stride=2, dilate=dilate3)
        self.layer4 = self._make_layer(block, 512, depths[3], stride=2, dilate=dilate4)
        e = block.expansion
        strides = (4, 8, 8 if dilate3 else 16, output_stride)
        self.feature_info = FeatureInfo((64 * e, 128 * e, 256 * e, 512 * e), strides)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def _make_layer(self, block: type, planes: int, blocks: int, stride: int = 1,
                    dilate: bool = False) -> nn.Sequential:
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, self.dilation, previous_dilation, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, 1, self.dilation, self.dilation) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, 64, H/4, W/4)
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return [c2, c3, c4, c5]


def load_pretrained(model: ResNet, source: str, sha256: str | None) -> None:
    """Load torchvision-format ImageNet weights from a local file or an URL.

    ``sha256`` is required for URLs and checked for files when given; a
    mismatch is an error. An URL is fetched with ``torch.hub.download_url_to_file``
    into a temporary directory (no cache: the file is read once, into the
    model), passing the whole sha256 as its ``hash_prefix``, so the full digest
    is compared before the file is moved into place; no progress bar, since
    stderr carries only errors. ``fc.*`` entries are dropped; every other key
    must match (``strict``), so a wrong architecture fails loudly.
    """
    problem = pretrained_problem(source, sha256)  # a whole sha256, one for an URL (params checked it too)
    if problem:
        raise SegreproError(problem)
    if source.startswith(("http://", "https://")):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "weights.pth"
            try:
                torch.hub.download_url_to_file(source, str(path), hash_prefix=sha256.lower(), progress=False)
            except RuntimeError as exc:  # torch.hub's "invalid hash value"
                raise SegreproError(f"sha256 of the weights downloaded from {source} does not match "
                                    "model.pretrained_sha256; correct the checksum or the URL") from exc
            except OSError as exc:
                raise SegreproError(f"could not download pretrained weights from {source}: {exc}; "
                                    "check the URL and the network, or download the file and set "
                                    "model.pretrained to its path") from exc
            _load_checked(model, path, None)  # already verified in full
    else:
        path = Path(source)
        if not path.is_file():
            raise SegreproError(f"pretrained weights file {path} does not exist; fix model.pretrained")
        _load_checked(model, path, sha256)


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _load_checked(model: ResNet, path: Path, sha256: str | None) -> None:
    if sha256 and _sha256(path) != sha256.lower():
        raise SegreproError(f"sha256 of {path} does not match model.pretrained_sha256; "
                            "re-download the file or correct the checksum")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt files
        raise SegreproError(f"{path} is not a readable PyTorch state dict: {exc}") from exc
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise SegreproError(f"{path} does not fit backbone: {str(exc).splitlines()[1:3]}") from exc
    if missing or unexpected:
        raise SegreproError(f"{path} does not fit backbone: missing {missing[:5]}, unexpected {unexpected[:5]}")
