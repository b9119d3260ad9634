"""Properties of the DDSM fusion: exact regular-grid sampling, affinities, gradients, sizes."""
from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F

from segrepro.errors import SegreproError
from segrepro.models.decoder import FPNDecoder, UpsampleAdd
from segrepro.models.ddsm import DDSMFusion, dynamic_sample, sine_embedding

PAD_MODE = {"zeros": "constant", "border": "replicate"}


def _grid_offsets(num_samples: int) -> list[tuple[int, int]]:
    """(dy, dx) of the k×k grid, row-major: written out independently of the module."""
    k = math.isqrt(num_samples)
    r = range(-(k // 2), k // 2 + 1)
    return [(dy, dx) for dy in r for dx in r]


def _gather(src: torch.Tensor, num_samples: int, padding_mode: str,
            shift: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Integer-index reference: (B, D, H, W) -> (B, D, N, H, W) from a padded copy."""
    h, w = src.shape[-2:]
    p = math.isqrt(num_samples) // 2 + max(abs(s) for s in shift)
    padded = F.pad(src, (p, p, p, p), mode=PAD_MODE[padding_mode])
    sx, sy = shift
    return torch.stack([padded[..., p + dy + sy:p + dy + sy + h, p + dx + sx:p + dx + sx + w]
                        for dy, dx in _grid_offsets(num_samples)], dim=2)


def _inputs(c: int, size: tuple[int, int], top: tuple[int, int], dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(2, c, *size, generator=g, dtype=dtype),
            torch.randn(2, c, *top, generator=g, dtype=dtype))


def _channel_gather(src: torch.Tensor, grid: tuple[int, int], num_samples: int,
                    padding_mode: str, shift=(0, 0)) -> torch.Tensor:
    """(B, C, D) laid out on the channel grid -> (B, D, N, C) by integer indexing."""
    b, c, d = src.shape
    on_grid = src.permute(0, 2, 1).reshape(b, d, *grid)  # (B, D, gh, gw)
    return _gather(on_grid, num_samples, padding_mode, shift).flatten(3)  # (B, D, N, C)


@pytest.mark.parametrize("padding_mode", ["zeros", "border"])
@pytest.mark.parametrize("num_samples", [9, 25])
def test_zero_offsets_sample_regular_spatial_grid(padding_mode, num_samples):
    torch.manual_seed(0)
    m = DDSMFusion(8, channel=False, num_spatial_samples=num_samples,
                   padding_mode=padding_mode).double().eval()
    lateral, top = _inputs(8, (7, 9), (4, 5))
    _, d = m.forward_with_details(lateral, top)
    assert torch.allclose(d["spatial_keys"], _gather(d["spatial_key_map"], num_samples, padding_mode),
                          atol=1e-12, rtol=0)
    assert torch.allclose(d["spatial_values"], _gather(d["spatial_value_map"], num_samples, padding_mode),
                          atol=1e-12, rtol=0)
    ys, xs = torch.meshgrid(torch.arange(7.0), torch.arange(9.0), indexing="ij")
    for n, (dy, dx) in enumerate(_grid_offsets(num_samples)):
        assert torch.equal(d["spatial_positions"][0, n, 0], (xs + dx).double())
        assert torch.equal(d["spatial_positions"][0, n, 1], (ys + dy).double())


def test_integer_offsets_shift_samples_along_the_right_axes():
    m = DDSMFusion(8, channel=False, padding_mode="zeros").double().eval()
    with torch.no_grad():  # offset channels are (x, y) per sample: x += 2, y -= 1
        m.spatial_offset.bias[0::2] = 2.0
        m.spatial_offset.bias[1::2] = -1.0
    lateral, top = _inputs(8, (6, 7), (3, 4))
    _, d = m.forward_with_details(lateral, top)
    expected = _gather(d["spatial_key_map"], 9, "zeros", shift=(2, -1))
    assert torch.allclose(d["spatial_keys"], expected, atol=1e-12, rtol=0)


def test_fractional_offset_interpolates_bilinearly():
    src = torch.arange(12, dtype=torch.float64).view(1, 1, 3, 4) ** 2
    offsets = torch.zeros(1, 1, 2, 3, 4, dtype=torch.float64)
    offsets[:, :, 0] = 0.25
    offsets[:, :, 1] = 0.5
    out, _ = dynamic_sample(src, offsets, "border")
    s = src[0, 0]
    # Interior pixel (0, 1): between rows 0/1 and columns 1/2.
    want = 0.5 * (0.75 * s[0, 1] + 0.25 * s[0, 2]) + 0.5 * (0.75 * s[1, 1] + 0.25 * s[1, 2])
    assert out[0, 0, 0, 0, 1].item() == pytest.approx(want.item(), abs=1e-12)


def test_spatial_branch_matches_plain_reference():
    torch.manual_seed(1)
    m = DDSMFusion(8, channel=False, position_embedding="none", padding_mode="zeros").double().eval()
    lateral, top = _inputs(8, (5, 6), (3, 3))
    up = F.interpolate(top, size=(5, 6), mode="bilinear", align_corners=False)
    keys = _gather(m.key(torch.cat((lateral, up), 1)), 9, "zeros")  # (B, C, N, H, W)
    values = _gather(m.value(up), 9, "zeros")
    q = m.query(lateral)
    logits = (q.unsqueeze(2) * keys).sum(1) / math.sqrt(8)  # (B, N, H, W)
    agg = (logits.softmax(1).unsqueeze(1) * values).sum(2)
    expected = lateral + up + m.spatial_out(agg)
    assert torch.allclose(m(lateral, top), expected, atol=1e-10, rtol=0)


@pytest.mark.parametrize("padding_mode", ["zeros", "border"])
def test_zero_offsets_sample_regular_channel_grid(padding_mode):
    torch.manual_seed(0)
    # 12 channels -> default 3×4 grid: a non-square grid whose border is hit by most channels.
    m = DDSMFusion(12, spatial=False, pool_size=3, padding_mode=padding_mode).double().eval()
    assert m.channel_grid == (3, 4)
    lateral, top = _inputs(12, (9, 10), (5, 5))
    _, d = m.forward_with_details(lateral, top)
    assert d["channel_values_src"].shape[-1] == 9  # down by 2 with ceil: 5×5 -> 3×3
    for name in ("keys", "values"):
        want = _channel_gather(d[f"channel_{name}_src"], (3, 4), 9, padding_mode)
        assert torch.allclose(d[f"channel_{name}"], want, atol=1e-12, rtol=0)
    with torch.no_grad():
        m.channel_offset.bias[0::2] = -1.0  # every sample one channel to the left on the grid
    _, d = m.forward_with_details(lateral, top)
    want = _channel_gather(d["channel_keys_src"], (3, 4), 9, padding_mode, shift=(-1, 0))
    assert torch.allclose(d["channel_keys"], want, atol=1e-12, rtol=0)


def test_affinities_are_distributions_over_samples():
    torch.manual_seed(0)
    m = DDSMFusion(16, pool_size=4).double().eval()
    with torch.no_grad():  # non-trivial, fractional offsets
        m.spatial_offset.weight.normal_(0, 0.1)
        m.channel_offset.weight.normal_(0, 0.1)
    lateral, top = _inputs(16, (9, 11), (5, 6))
    _, d = m.forward_with_details(lateral, top)
    assert d["spatial_affinity"].shape == (2, 9, 9, 11)
    assert d["channel_affinity"].shape == (2, 9, 16)
    for key in ("spatial_affinity", "channel_affinity"):
        a = d[key]
        assert (a >= 0).all()
        assert torch.allclose(a.sum(1), torch.ones_like(a.sum(1)), atol=1e-12)
    assert (d["spatial_positions"] % 1).abs().max() > 1e-3  # offsets really moved the samples


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    m = DDSMFusion(16, pool_size=4).train()
    lateral, top = _inputs(16, (9, 11), (5, 6), dtype=torch.float32)
    w = torch.randn(2, 16, 9, 11, generator=torch.Generator().manual_seed(3))
    (m(lateral, top) * w).sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name
    assert {"spatial_offset.weight", "channel_offset.weight"} <= dict(m.named_parameters()).keys()


@pytest.mark.parametrize("kwargs", [{}, {"spatial": False}, {"channel": False},
                                    {"keep_upsampled_top": False, "padding_mode": "zeros"}])
def test_odd_sizes_keep_lateral_shape(kwargs):
    m = DDSMFusion(16, **kwargs).eval()
    lateral, top = _inputs(16, (25, 33), (13, 17), dtype=torch.float32)
    out = m(lateral, top)
    assert out.shape == lateral.shape
    assert torch.isfinite(out).all()


def test_same_module_serves_two_input_sizes():
    m = DDSMFusion(16).eval()
    for size, top_size in (((25, 33), (13, 17)), ((12, 8), (6, 4))):
        lateral, top = _inputs(16, size, top_size, dtype=torch.float32)
        assert m(lateral, top).shape == lateral.shape


def test_plugs_into_fpn_decoder():
    dec = FPNDecoder([8, 16, 32], 16, num_classes=3, fusion=lambda c: DDSMFusion(c, pool_size=2)).eval()
    feats = [torch.randn(1, 8, 17, 23), torch.randn(1, 16, 9, 12), torch.randn(1, 32, 5, 6)]
    assert dec(feats).shape == (1, 3, 17, 23)


def test_silent_branches_reduce_to_upsample_add():
    m = DDSMFusion(8, channel=False).double().eval()
    with torch.no_grad():  # spatial branch output forced to zero through its BN affine
        m.spatial_out[1].weight.zero_()
        m.spatial_out[1].bias.zero_()
    lateral, top = _inputs(8, (7, 5), (4, 3))
    assert torch.allclose(m(lateral, top), UpsampleAdd()(lateral, top), atol=1e-12, rtol=0)


def test_sine_embedding_hand_values():
    e = sine_embedding(8, (4, 6), (8, 12), torch.float64, torch.device("cpu"))  # (1, 8, 4, 6)
    # Two frequencies per axis (1 and 1e-2); coarse pixel j sits at fine coordinate 2j + 0.5.
    j, i = 3, 5
    y, x = 2 * j + 0.5, 2 * i + 0.5
    want = [math.sin(y), math.sin(y / 100), math.cos(y), math.cos(y / 100),
            math.sin(x), math.sin(x / 100), math.cos(x), math.cos(x / 100)]
    assert torch.allclose(e[0, :, j, i], torch.tensor(want, dtype=torch.float64), atol=1e-12)


def test_same_seed_same_output():
    lateral, top = _inputs(8, (7, 9), (4, 5), dtype=torch.float32)
    outs = []
    for _ in range(2):
        torch.manual_seed(5)
        outs.append(DDSMFusion(8, pool_size=2).eval()(lateral, top))
    assert torch.equal(outs[0], outs[1])


@pytest.mark.parametrize("kwargs, bad", [
    ({"num_spatial_samples": 8}, "8"), ({"num_spatial_samples": 4}, "4"),
    ({"num_channel_samples": 0}, "0"), ({"pool_size": 0}, "0"), ({"down_factor": 0}, "0"),
    ({"position_embedding": "learned"}, "learned"), ({"padding_mode": "reflection"}, "reflection"),
    ({"channel_grid": (3, 3)}, "(3, 3)"), ({"spatial": False, "channel": False}, "spatial=False"),
])
def test_bad_options_raise(kwargs, bad):
    with pytest.raises(SegreproError, match=re.escape(bad)):
        DDSMFusion(16, **kwargs)


def test_mismatched_inputs_raise():
    m = DDSMFusion(8)
    with pytest.raises(SegreproError, match="DDSMFusion"):
        m(torch.randn(1, 8, 6, 6), torch.randn(1, 4, 3, 3))
