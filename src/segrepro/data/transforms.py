"""Training augmentation and input normalisation, in torch, driven by one Generator.

Input normalisation: ``image_statistics`` for each of ``data.input_norms.INPUT_NORMS``
(the model's ``input_norm``; that module defines them).

Random scale (uniform in [scale_min, scale_max]), random crop padded with
the ignore label where the scaled image is smaller than the crop, and a
horizontal flip with probability 0.5 — the usual mmseg/DeepLab recipe
without photometric distortion. All randomness comes from the generator
passed in, so the same seed gives the same batches bit for bit.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from segrepro.data.input_norms import MIN_STD, input_norm_problem
from segrepro.errors import SegreproError

# ImageNet statistics: the backbone may be initialised from ImageNet weights.
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def image_statistics(images: torch.Tensor, input_norm: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, H, W, 3) uint8 → per-image mean and std, each (B, 3, 1, 1) float in [0, 1] units.

    ``imagenet`` gives ImageNet's statistics for every image, ``per_image``
    each frame's own (``data.input_norms``).
    """
    if input_norm == "imagenet":
        shape = (len(images), 3, 1, 1)
        return MEAN.expand(shape), STD.expand(shape)
    if input_norm == "per_image":
        x = images.float() / 255.0  # (B, H, W, 3)
        mean = x.mean(dim=(1, 2))  # (B, 3)
        std = x.std(dim=(1, 2)).clamp_min(MIN_STD)
        return mean[:, :, None, None], std[:, :, None, None]
    raise SegreproError(input_norm_problem(input_norm))


def normalize(images: torch.Tensor, input_norm: str = "imagenet") -> torch.Tensor:
    """(B, H, W, 3) uint8 → (B, 3, H, W) float, normalised as ``input_norm`` says."""
    mean, std = image_statistics(images, input_norm)
    x = images.permute(0, 3, 1, 2).float() / 255.0  # (B, 3, H, W)
    return (x - mean) / std


def augment(images: torch.Tensor, labels: torch.Tensor, crop: tuple[int, int],
            scale: tuple[float, float], flip: bool, ignore_index: int,
            generator: torch.Generator, input_norm: str = "imagenet") -> tuple[torch.Tensor, torch.Tensor]:
    """(B, H, W, 3) uint8, (B, H, W) uint8 → (B, 3, h, w) float, (B, h, w) int64."""
    x = normalize(images, input_norm)
    out_x, out_y = [], []
    ch, cw = crop
    for img, lab in zip(x, labels):
        s = scale[0] + (scale[1] - scale[0]) * torch.rand((), generator=generator).item()
        h, w = max(1, round(img.shape[1] * s)), max(1, round(img.shape[2] * s))
        img = F.interpolate(img[None], size=(h, w), mode="bilinear", align_corners=False)[0]  # (3, h, w)
        lab = F.interpolate(lab[None, None].float(), size=(h, w), mode="nearest")[0, 0].long()  # (h, w)
        ph, pw = max(ch - h, 0), max(cw - w, 0)
        if ph or pw:
            img = F.pad(img, (0, pw, 0, ph), value=0.0)  # (3, max(h,ch), max(w,cw))
            lab = F.pad(lab, (0, pw, 0, ph), value=ignore_index)
        top = int(torch.randint(0, img.shape[1] - ch + 1, (), generator=generator))
        left = int(torch.randint(0, img.shape[2] - cw + 1, (), generator=generator))
        img, lab = img[:, top:top + ch, left:left + cw], lab[top:top + ch, left:left + cw]
        if flip and torch.rand((), generator=generator).item() < 0.5:
            img, lab = img.flip(-1), lab.flip(-1)
        out_x.append(img)
        out_y.append(lab)
    return torch.stack(out_x), torch.stack(out_y)
