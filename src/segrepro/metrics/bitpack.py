"""Bit-packing of per-class masks and counting over the packed words (for ``metrics.boundary``).

Classes (or images) are packed into the bits of integer words so that one
dilation or comparison handles all of them at once; split from
``metrics.boundary``.
"""
from __future__ import annotations

import torch


def _pack_classes(labels: torch.Tensor, valid: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Bit-packed masks [labels == c] & valid: (N, H, W) -> (N, ceil(C/8), H, W) uint8."""
    classes = torch.arange(num_classes + 1, device=labels.device)  # index C: ignore pixels
    words = torch.arange((num_classes + 7) // 8, device=labels.device).view(-1, 1)  # (K, 1)
    lut = torch.where((classes // 8 == words) & (classes < num_classes),
                      torch.bitwise_left_shift(1, classes % 8), 0).to(torch.uint8)  # (K, C+1)
    index = torch.where(valid, labels.long(), num_classes)  # (N, H, W)
    return lut[:, index].transpose(0, 1).contiguous()  # (K, N, H, W) -> (N, K, H, W)


def _bit_counts(packed: torch.Tensor, at: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Per-image, per-class set-bit counts (N, C) int64 of packed (N, K, H, W) at flat
    positions ``at``: one bincount of (image, word, byte value), then a 256×8 bit table."""
    n, k = packed.shape[:2]
    group = at // packed[0, 0].numel()  # image * K + word
    hist = torch.bincount(group * 256 + packed.reshape(-1)[at].long(), minlength=n * k * 256)
    table = (torch.arange(256, device=at.device).view(-1, 1)
             >> torch.arange(8, device=at.device)) & 1  # (256, 8)
    counts = (hist.view(n, k, 256, 1) * table).sum(dim=2)  # (N, K, 8)
    return counts.reshape(n, k * 8)[:, :num_classes]  # (N, C)


def _pack_images(x: torch.Tensor) -> torch.Tensor:
    """Bool (N, H, W) -> uint8 (ceil(N/8), H, W), image 8g + b in bit b of word g."""
    pad = (-x.shape[0]) % 8
    x8 = torch.cat([x, x.new_zeros((pad,) + x.shape[1:])]) if pad else x  # (8G, H, W)
    x8 = x8.view(torch.uint8).view(-1, 8, *x.shape[1:])  # (G, 8, H, W)
    out = x8[:, 0].clone()
    for b in range(1, 8):
        out |= x8[:, b] << b
    return out  # (G, H, W)


def _unpack_images(words: torch.Tensor, n: int) -> torch.Tensor:
    """Inverse of :func:`_pack_images`: uint8 (G, H, W) -> uint8 0/1 (n, H, W)."""
    bits = torch.arange(8, dtype=torch.uint8, device=words.device).view(1, 8, 1, 1)
    return ((words.unsqueeze(1) >> bits) & 1).view(-1, *words.shape[1:])[:n]  # (n, H, W)


def _histogram(gt: torch.Tensor, pred: torch.Tensor, extra: torch.Tensor, bins: int,
               num_classes: int) -> torch.Tensor:
    """Per-image counts of (extra, gt, pred), (N, H, W) -> (N, bins, C, C) int64. gt is
    clamped into [0, C): ignore pixels go to an ``extra`` bin the caller drops. Keys use the
    narrowest integer type that holds them (memory traffic dominates the cost)."""
    n, c = gt.shape[0], num_classes
    per_image = bins * c * c
    small = torch.int16 if per_image < 2 ** 15 else torch.int32 if per_image < 2 ** 31 \
        else torch.int64
    key = extra.to(small) * c
    key += gt.clamp(0, c - 1).to(small)
    key *= c
    key += pred.to(small)
    big = torch.int32 if n * per_image < 2 ** 31 else torch.int64
    key = key.to(big)
    key += (torch.arange(n, dtype=big, device=gt.device) * per_image).view(n, 1, 1)
    return torch.bincount(key.reshape(-1), minlength=n * per_image).view(n, bins, c, c)
