"""Training batches drawn and augmented on the training device, whole batch at once.

The same recipe as :func:`segrepro.data.transforms.augment` (random scale
uniform in ``[scale_min, scale_max]``, random crop padded with the ignore
label where the scaled image is smaller than the crop, horizontal flip with
probability 0.5, the model's input normalisation), computed without a per-image
Python loop: the packed uint8 split is copied to the device once, and for a
batch of indices every output pixel is mapped straight back to the source
pixels it reads —

* image: bilinear, ``align_corners=False``, exactly the source coordinate
  ``F.interpolate`` uses, ``src = (H / h) · (dst + 0.5) − 0.5`` clamped at 0
  (and the upper neighbour clamped at ``H − 1``), gathered from the four
  uint8 neighbours;
* label: ``F.interpolate``'s ``nearest`` rule, ``src = min(⌊dst · H / h⌋, H − 1)``
  with ``H / h`` in float32, as PyTorch computes it;

where ``dst`` is the row (column) in the scaled image, ``top + i`` for crop
row ``i``. Rows or columns past the scaled image's size are the padding:
0 in normalised space (the mean colour) and the ignore label, as ``augment``
pads. The flip reverses which scaled column each crop column reads.

Where it differs from ``augment`` (documented choices):

* Randomness: its own ``torch.Generator`` on the device, drawn batch-wise
  (all scales, then tops, lefts and flips), so a seed gives a different
  (equally distributed) sequence of crops than ``augment``'s CPU generator;
  crop offsets are ``⌊u · n⌋`` for uniform ``u`` instead of ``randint(0, n)``.
* Arithmetic: interpolation runs on uint8 values before normalising (a
  per-channel affine map, so the result is the same up to float rounding,
  ~1e-5); the interpolation weights are combined in a different order than
  PyTorch's kernel. Labels are identical.
* On CUDA the result is deterministic for a seed (gathers only, no atomics).

Given the same drawn parameters (:class:`Draw`), :meth:`DeviceBatches.apply`
reproduces ``augment``'s output; the tests check this pixel for pixel.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from segrepro.data.transforms import image_statistics
from segrepro.errors import SegreproError


class Draw(NamedTuple):
    """Random parameters of one batch, one entry per image."""

    scale: torch.Tensor  # (B,) float64, in [scale_min, scale_max]
    top: torch.Tensor    # (B,) int64, first crop row in the (padded) scaled image
    left: torch.Tensor   # (B,) int64, first crop column
    flip: torch.Tensor   # (B,) bool


def _source_rows(size: int, scaled: torch.Tensor, start: torch.Tensor, length: int):
    """Per image and crop position along one axis: bilinear neighbours, weight, nearest source, validity.

    ``size`` source pixels, ``scaled`` (B,) int64 scaled sizes, ``start`` (B,)
    crop offsets. Returns (B, length) tensors ``lo, hi`` (int64), ``frac``
    (float32), ``nearest`` (int64) and ``valid`` (bool).
    """
    dst = start[:, None] + torch.arange(length, device=start.device)  # (B, L) position in the scaled image
    valid = dst < scaled[:, None]
    ratio = (torch.tensor(float(size), device=start.device) / scaled.float())[:, None]  # float32, as torch
    src = (ratio * (dst.float() + 0.5) - 0.5).clamp(min=0.0)
    lo = src.floor().long().clamp(max=size - 1)
    hi = (lo + 1).clamp(max=size - 1)
    frac = src - lo.float()
    nearest = (dst.float() * ratio).floor().long().clamp(max=size - 1)
    return lo, hi, frac, nearest, valid


class DeviceBatches:
    """Augmented training batches from a split held on ``device``.

    ``images`` (N, H, W, 3) uint8 and ``labels`` (N, H, W) uint8 are copied to
    ``device`` once. ``batches(idx)`` with ``idx`` (B,) int64 returns ``x``
    (B, 3, h, w) float32 normalised as ``input_norm`` says (``data.transforms``;
    ``per_image`` statistics are those of each full frame, computed once here)
    in channels-last memory and
    ``y`` (B, h, w) int64, ``(h, w) = crop``, both on ``device``.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, crop: tuple[int, int],
                 scale: tuple[float, float], flip: bool, ignore_index: int,
                 device: torch.device | str, seed: int, input_norm: str = "imagenet") -> None:
        if images.dtype != torch.uint8 or labels.dtype != torch.uint8 or images.ndim != 4 \
                or images.shape[-1] != 3 or labels.shape != images.shape[:3]:
            raise SegreproError(f"training split must be (N, H, W, 3) and (N, H, W) uint8 (rerun preprocess), got {tuple(images.shape)} "
                             f"{images.dtype} and {tuple(labels.shape)} {labels.dtype}")
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        self.crop = (int(crop[0]), int(crop[1]))
        self.scale = (float(scale[0]), float(scale[1]))
        self.flip = bool(flip)
        self.ignore_index = int(ignore_index)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        # Per image (N, 1, 1, 3), in 0..255 units: the pixels are normalised after interpolation.
        stats = [image_statistics(self.images[start:start + 64], input_norm)
                 for start in range(0, len(self.images), 64)]
        self.mean = torch.cat([m for m, _ in stats]).to(self.device).view(-1, 1, 1, 3) * 255.0
        self.std = torch.cat([s for _, s in stats]).to(self.device).view(-1, 1, 1, 3) * 255.0

    def draw(self, batch: int) -> Draw:
        """Scale, crop offsets and flip of ``batch`` images from this object's generator."""
        g, dev = self.generator, self.device
        lo, hi = self.scale
        scale = lo + (hi - lo) * torch.rand(batch, generator=g, device=dev, dtype=torch.float64)
        height, width = self.images.shape[1:3]
        ch, cw = self.crop
        h = (height * scale).round().long().clamp(min=1)
        w = (width * scale).round().long().clamp(min=1)
        top = (torch.rand(batch, generator=g, device=dev, dtype=torch.float64)
               * ((h - ch).clamp(min=0) + 1)).floor().long()
        left = (torch.rand(batch, generator=g, device=dev, dtype=torch.float64)
                * ((w - cw).clamp(min=0) + 1)).floor().long()
        flip = torch.rand(batch, generator=g, device=dev) < 0.5
        if not self.flip:
            flip = torch.zeros_like(flip)
        return Draw(scale, top, left, flip)

    def apply(self, idx: torch.Tensor, draw: Draw) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment images ``idx`` with the given parameters (deterministic)."""
        idx = idx.to(self.device)
        height, width = self.images.shape[1:3]
        ch, cw = self.crop
        scale = draw.scale.to(self.device, torch.float64)
        # Python's round(size * s), as augment computes it (half to even, like torch.round).
        h = (height * scale).round().long().clamp(min=1)
        w = (width * scale).round().long().clamp(min=1)
        top, left = draw.top.to(self.device), draw.left.to(self.device)
        rows = _source_rows(height, h, top, ch)
        cols = _source_rows(width, w, left, cw)
        # Flipped images read the crop's columns right to left.
        flip = draw.flip.to(self.device)[:, None]
        cols = tuple(torch.where(flip, c.flip(-1), c) for c in cols)
        (r0, r1, fy, rn, rv), (c0, c1, fx, cn, cv) = rows, cols
        b = idx[:, None, None]
        img = self.images

        def gather(r: torch.Tensor, c: torch.Tensor) -> torch.Tensor:  # → (B, h, w, 3) float32
            return img[b, r[:, :, None], c[:, None, :]].float()

        fy, fx = fy[:, :, None, None], fx[:, None, :, None]
        top_row = gather(r0, c0) * (1 - fx) + gather(r0, c1) * fx
        bottom_row = gather(r1, c0) * (1 - fx) + gather(r1, c1) * fx
        x = top_row * (1 - fy) + bottom_row * fy  # (B, h, w, 3), 0..255
        valid = rv[:, :, None] & cv[:, None, :]  # (B, h, w)
        x = torch.where(valid[..., None], (x - self.mean[idx]) / self.std[idx], 0.0)
        y = self.labels[b, rn[:, :, None], cn[:, None, :]].long()
        y = torch.where(valid, y, self.ignore_index)
        # (B, h, w, 3) contiguous is exactly (B, 3, h, w) in channels-last memory.
        return x.permute(0, 3, 1, 2), y

    def __call__(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.apply(idx, self.draw(len(idx)))
