"""DeviceBatches: same recipe as transforms.augment, batched, on the tensors' device."""
from __future__ import annotations

import pytest
import torch

from segrepro.data.transforms import augment
from segrepro.errors import SegreproError
from segrepro.training.device_batches import DeviceBatches, Draw

IGNORE = 11
CROP = (10, 14)
SCALE = (0.5, 2.0)


def _data(n: int = 5, h: int = 12, w: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(123)
    images = torch.randint(0, 256, (n, h, w, 3), generator=g, dtype=torch.uint8)
    values = torch.tensor([0, 2, 5, IGNORE], dtype=torch.uint8)
    labels = values[torch.randint(0, len(values), (n, h, w), generator=g)]
    return images, labels


def _replay_augment_draws(generator: torch.Generator, n: int, size: tuple[int, int], flip: bool) -> Draw:
    """The parameters augment draws, in its order, from a copy of its generator."""
    scales, tops, lefts, flips = [], [], [], []
    ch, cw = CROP
    for _ in range(n):
        s = SCALE[0] + (SCALE[1] - SCALE[0]) * torch.rand((), generator=generator).item()
        h, w = max(1, round(size[0] * s)), max(1, round(size[1] * s))
        tops.append(int(torch.randint(0, max(h, ch) - ch + 1, (), generator=generator)))
        lefts.append(int(torch.randint(0, max(w, cw) - cw + 1, (), generator=generator)))
        flips.append(bool(flip and torch.rand((), generator=generator).item() < 0.5))
        scales.append(s)
    return Draw(torch.tensor(scales, dtype=torch.float64), torch.tensor(tops), torch.tensor(lefts),
                torch.tensor(flips))


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("flip", [True, False])
@pytest.mark.parametrize("input_norm", ["imagenet", "per_image"])
def test_apply_reproduces_augment_given_its_draws(seed: int, flip: bool, input_norm: str) -> None:
    images, labels = _data()
    if input_norm == "per_image":  # frames of different brightness and contrast, as CamVid's sequences
        images = (images.float() * torch.tensor([0.2, 1.0, 0.5, 0.8, 0.3])[:, None, None, None]).to(torch.uint8)
    idx = torch.tensor([3, 0, 4, 1, 1])
    ref_x, ref_y = augment(images[idx], labels[idx], CROP, SCALE, flip, IGNORE,
                           torch.Generator().manual_seed(seed), input_norm)
    draw = _replay_augment_draws(torch.Generator().manual_seed(seed), len(idx), images.shape[1:3], flip)
    x, y = DeviceBatches(images, labels, CROP, SCALE, flip, IGNORE, "cpu", 0, input_norm).apply(idx, draw)
    assert torch.equal(y, ref_y)
    assert torch.allclose(x, ref_x, atol=1e-4, rtol=0)


def test_shapes_dtypes_and_channels_last() -> None:
    images, labels = _data()
    x, y = DeviceBatches(images, labels, CROP, SCALE, True, IGNORE, "cpu", 0)(torch.tensor([0, 2, 4]))
    assert x.shape == (3, 3, *CROP) and x.dtype == torch.float32
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert y.shape == (3, *CROP) and y.dtype == torch.int64
    assert x.device.type == "cpu" and y.device.type == "cpu"


def test_padding_is_ignore_and_zero_where_the_crop_exceeds_the_scaled_image() -> None:
    images, labels = _data()
    batches = DeviceBatches(images, labels, CROP, SCALE, True, IGNORE, "cpu", 0)
    draw = Draw(torch.tensor([0.5, 0.5], dtype=torch.float64), torch.tensor([0, 0]), torch.tensor([0, 0]),
                torch.tensor([False, True]))
    x, y = batches.apply(torch.tensor([0, 1]), draw)  # scaled image 6×8 inside a 10×14 crop
    inside = torch.zeros(CROP, dtype=torch.bool)
    inside[:6, :8] = True
    for b, region in ((0, inside), (1, inside.flip(-1))):
        assert (y[b][~region] == IGNORE).all() and (x[b][:, ~region] == 0).all()
        # Inside: nearest labels of a 2× downscale are the even source pixels.
        assert torch.equal(y[b][region].view(6, 8), labels[b, ::2, ::2].long().flip(-1) if b else
                           labels[b, ::2, ::2].long())


def test_flip_mirrors_image_and_label() -> None:
    images, labels = _data()
    batches = DeviceBatches(images, labels, CROP, SCALE, True, IGNORE, "cpu", 0)
    base = batches.draw(5)
    idx = torch.arange(5)
    x0, y0 = batches.apply(idx, base._replace(flip=torch.zeros(5, dtype=torch.bool)))
    x1, y1 = batches.apply(idx, base._replace(flip=torch.ones(5, dtype=torch.bool)))
    assert torch.equal(y1, y0.flip(-1))
    assert torch.equal(x1, x0.flip(-1))


def test_same_seed_same_batches_other_seed_different() -> None:
    images, labels = _data()
    idx = torch.tensor([0, 1, 2, 3])
    first = [DeviceBatches(images, labels, CROP, SCALE, True, IGNORE, "cpu", seed)(idx) for seed in (7, 7, 8)]
    assert torch.equal(first[0][0], first[1][0]) and torch.equal(first[0][1], first[1][1])
    assert not torch.equal(first[0][0], first[2][0])


def test_draws_cover_the_configured_ranges() -> None:
    images, labels = _data()
    draw = DeviceBatches(images, labels, CROP, SCALE, True, IGNORE, "cpu", 3).draw(4000)
    assert SCALE[0] <= draw.scale.min() and draw.scale.max() <= SCALE[1]
    assert 0.45 < draw.flip.float().mean() < 0.55
    h = (12 * draw.scale).round().long()
    assert (draw.top <= (h - CROP[0]).clamp(min=0)).all() and (draw.top >= 0).all()
    no_flip = DeviceBatches(images, labels, CROP, SCALE, False, IGNORE, "cpu", 3).draw(100)
    assert not no_flip.flip.any()


def test_labels_only_from_input_set_and_ignore() -> None:
    images, labels = _data()
    batches = DeviceBatches(images, labels, CROP, SCALE, True, IGNORE, "cpu", 1)
    for _ in range(20):
        _, y = batches(torch.randint(0, 5, (4,)))
        assert set(y.unique().tolist()) <= {0, 2, 5, IGNORE}


def test_rejects_non_uint8_split() -> None:
    images, labels = _data()
    with pytest.raises(SegreproError, match="uint8"):
        DeviceBatches(images.float(), labels, CROP, SCALE, True, IGNORE, "cpu", 0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_for_the_same_draw() -> None:
    images, labels = _data()
    idx = torch.tensor([4, 2, 0])
    cpu = DeviceBatches(images, labels, CROP, SCALE, True, IGNORE, "cpu", 0)
    cuda = DeviceBatches(images, labels, CROP, SCALE, True, IGNORE, "cuda", 0)
    draw = cpu.draw(3)
    (xc, yc), (xg, yg) = cpu.apply(idx, draw), cuda.apply(idx, draw)
    assert xg.device.type == "cuda" and torch.equal(yg.cpu(), yc)
    assert torch.allclose(xg.cpu(), xc, atol=1e-4, rtol=0)
