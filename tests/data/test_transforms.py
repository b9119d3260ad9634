"""Input normalisation (data.transforms, data.input_norms): what each choice computes."""
from __future__ import annotations

import pytest
import torch

from segrepro.data.input_norms import INPUT_NORMS, MIN_STD
from segrepro.data.transforms import MEAN, STD, augment, image_statistics, normalize
from segrepro.errors import SegreproError


def _frames() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    base = torch.randint(0, 100, (3, 20, 24, 3), generator=g, dtype=torch.uint8)
    base[1] = base[1] // 2 + 10  # a darker, flatter frame
    return base


def test_imagenet_is_the_fixed_imagenet_statistics() -> None:
    images = _frames()
    want = (images.permute(0, 3, 1, 2).float() / 255.0 - MEAN) / STD
    assert torch.equal(normalize(images), want)
    assert torch.equal(normalize(images, "imagenet"), want)


def test_per_image_standardises_each_channel_of_each_frame() -> None:
    x = normalize(_frames(), "per_image")  # (B, 3, H, W)
    assert torch.allclose(x.mean(dim=(2, 3)), torch.zeros(3, 3), atol=1e-5)
    assert torch.allclose(x.std(dim=(2, 3)), torch.ones(3, 3), atol=1e-5)


def test_per_image_removes_a_frame_s_brightness_and_contrast() -> None:
    images = _frames()
    # Grey levels 2·v + 40 (exact in uint8 for v < 100): another exposure of the same scene.
    brighter = (images.int() * 2 + 40).to(torch.uint8)
    assert torch.allclose(normalize(brighter, "per_image"), normalize(images, "per_image"), atol=1e-5)
    assert not torch.allclose(normalize(brighter), normalize(images), atol=1e-1)  # ImageNet's keeps it


def test_a_flat_frame_stays_finite() -> None:
    flat = torch.full((1, 8, 8, 3), 77, dtype=torch.uint8)
    mean, std = image_statistics(flat, "per_image")
    assert torch.equal(std, torch.full((1, 3, 1, 1), MIN_STD))
    assert torch.equal(normalize(flat, "per_image"), torch.zeros(1, 3, 8, 8))


def test_augment_uses_the_full_frame_statistics() -> None:
    images = _frames()
    labels = torch.zeros(images.shape[:3], dtype=torch.uint8)
    # Scale 1, no flip, a crop the size of the frame: augment returns the normalised frame itself.
    x, _ = augment(images, labels, (20, 24), (1.0, 1.0), False, 11, torch.Generator().manual_seed(0), "per_image")
    assert torch.allclose(x, normalize(images, "per_image"), atol=1e-6)
    # A smaller crop keeps the frame's statistics, not the crop's own.
    x, _ = augment(images, labels, (6, 8), (1.0, 1.0), False, 11, torch.Generator().manual_seed(0), "per_image")
    assert x.mean(dim=(2, 3)).abs().max() > 1e-2


def test_unknown_normalisation_is_refused() -> None:
    assert INPUT_NORMS == ("imagenet", "per_image")
    with pytest.raises(SegreproError, match=r"model.input_norm must be one of imagenet, per_image, got 'zscore'"):
        normalize(_frames(), "zscore")
