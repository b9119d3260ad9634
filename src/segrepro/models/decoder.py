"""The two decoder patterns the methods are inserted into.

* ``FCNHead`` — single-scale (FCN / DeepLab style): one 3×3 conv-BN-ReLU on the
  deepest feature, dropout, 1×1 classifier. SDN's Fig. 4(a) and PDN plug in
  before it.
* ``FPNDecoder`` — multi-scale (Semantic FPN / SFNet style): 1×1 laterals to a
  common width, a top-down pathway whose fusion step is pluggable (plain
  upsample-and-add by default; DDSM replaces it), a 3×3 conv per level, all
  levels upsampled to the finest one, concatenated, fused by a 3×3 conv and
  classified. SDN's Fig. 4(b) plugs in before it.

Choices: BN + ReLU after every conv but the classifier (SFNet does the same);
no pyramid pooling module on C5 (SFNet has one) to keep the shared baseline
small — every method is compared against the same decoder, so the comparison
stays controlled.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(cin: int, cout: int, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class FCNHead(nn.Module):
    """Single-scale head on the last feature of the list it receives."""

    def __init__(self, in_channels: Sequence[int], channels: int, num_classes: int,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.conv = conv_bn_relu(in_channels[-1], channels)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return self.classifier(self.dropout(self.conv(feats[-1])))  # (B, K, h, w)


class UpsampleAdd(nn.Module):
    """Plain FPN top-down fusion: ``lateral + up(top)``."""

    def forward(self, lateral: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
        top = F.interpolate(top, size=lateral.shape[-2:], mode="bilinear", align_corners=False)  # (B, C, H, W)
        return lateral + top


FusionFactory = Callable[[int], nn.Module]


class FPNDecoder(nn.Module):
    """Multi-scale decoder over ``[C2, C3, C4, C5]`` (any number of levels ≥ 2).

    ``fusion`` builds the top-down fusion module for a given width; it is
    called once per top-down step and the module is called as
    ``fuse(lateral, top) -> Tensor`` at the lateral's resolution.
    """

    def __init__(self, in_channels: Sequence[int], channels: int, num_classes: int,
                 fusion: FusionFactory | None = None, dropout: float = 0.1) -> None:
        super().__init__()
        fusion = fusion or (lambda _channels: UpsampleAdd())
        self.laterals = nn.ModuleList(conv_bn_relu(c, channels, 1) for c in in_channels)
        self.fusions = nn.ModuleList(fusion(channels) for _ in in_channels[:-1])
        self.outputs = nn.ModuleList(conv_bn_relu(channels, channels) for _ in in_channels)
        self.fuse_levels = conv_bn_relu(channels * len(in_channels), channels)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        laterals = [lat(f) for lat, f in zip(self.laterals, feats)]
        merged = [laterals[-1]]
        for i in range(len(laterals) - 2, -1, -1):
            merged.insert(0, self.fusions[i](laterals[i], merged[0]))
        outs = [conv(m) for conv, m in zip(self.outputs, merged)]
        size = outs[0].shape[-2:]
        outs = [outs[0]] + [F.interpolate(o, size=size, mode="bilinear", align_corners=False)
                            for o in outs[1:]]  # each (B, C, H/4, W/4)
        x = self.fuse_levels(torch.cat(outs, dim=1))  # (B, C, H/4, W/4)
        return self.classifier(self.dropout(x))
