"""Properties of the DDSM fusion: exact regular-grid sampling, affinities, gradients, sizes."""
from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F

from segrepro.errors import SegreproError
from segrepro.models.decoder import FPNDecoder, UpsampleAdd
from segrepro.models.build import build_model
from segrepro.models.ddsm import DDSMFusion
from segrepro.models.ddsm_sampling import dynamic_sample, regular_grid, relative_sine_embedding, sine_embedding

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
    ({"position_embedding": "relative"}, "sine_relative"), ({"padding_mode": "border "}, "'zeros'"),
    ({"offset_bound": 0}, "offset_bound=0"), ({"offset_bound": -1.5}, "offset_bound=-1.5"),
    ({"offset_bound": "2"}, "offset_bound='2'"), ({"offset_bound": float("inf")}, "offset_bound=inf"),
    ({"offset_bound": True}, "offset_bound=True"), ({"offset_lr_scale": -0.1}, "offset_lr_scale=-0.1"),
    ({"offset_lr_scale": None}, "offset_lr_scale=None"), ({"identity_start": 1}, "identity_start=1"),
    ({"identity_start": "yes"}, "identity_start='yes'"),
])
def test_bad_options_raise(kwargs, bad):
    with pytest.raises(SegreproError, match=re.escape(bad)):
        DDSMFusion(16, **kwargs)


def test_mismatched_inputs_raise():
    m = DDSMFusion(8)
    with pytest.raises(SegreproError, match="DDSMFusion"):
        m(torch.randn(1, 8, 6, 6), torch.randn(1, 4, 3, 3))


# ---- Training options (paper-silent choices made switchable) ----

def _random_offsets(m: DDSMFusion, scale: float) -> None:
    """Large, varied raw offsets: weights and biases far from the zero init."""
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for conv in (m.spatial_offset, m.channel_offset):
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=g, dtype=conv.weight.dtype))
            conv.bias.copy_(scale * torch.randn(conv.bias.shape, generator=g, dtype=conv.bias.dtype))


def _displacement(pos: torch.Tensor) -> torch.Tensor:
    """Sampled positions (B, N, 2, h, w) minus p + r_n: the offsets Δ actually applied."""
    n, h, w = pos.shape[1], pos.shape[-2], pos.shape[-1]
    r = regular_grid(n, pos.dtype).view(1, n, 2, 1, 1)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=pos.dtype), torch.arange(w, dtype=pos.dtype), indexing="ij")
    return pos - r - torch.stack((xs, ys)).view(1, 1, 2, h, w)


@pytest.mark.parametrize("bound", [0.5, 2.0])
def test_bounded_offsets_stay_within_bound(bound):
    m = DDSMFusion(16, pool_size=4, offset_bound=bound).double().eval()
    _random_offsets(m, scale=50.0)
    lateral, top = _inputs(16, (9, 11), (5, 6))
    _, d = m.forward_with_details(lateral, top)
    for key in ("spatial_positions", "channel_positions"):
        delta = _displacement(d[key])
        assert delta.abs().max() <= bound
        assert delta.abs().max() > 0.99 * bound  # saturated samples sit at the bound, not inside it
    # Equation: Δ = b · tanh(raw), raw = the offset conv on x_cat (embedding off to rebuild x_cat).
    m.position_embedding = "none"
    _, d = m.forward_with_details(lateral, top)
    up = F.interpolate(top, size=(9, 11), mode="bilinear", align_corners=False)
    raw = m.spatial_offset(torch.cat((lateral, up), 1)).view(2, 9, 2, 9, 11)
    assert torch.allclose(_displacement(d["spatial_positions"]), bound * torch.tanh(raw), atol=1e-12, rtol=0)


def test_unbounded_offsets_are_the_raw_conv_output():
    m = DDSMFusion(16, pool_size=4, position_embedding="none").double().eval()
    _random_offsets(m, scale=50.0)
    lateral, top = _inputs(16, (9, 11), (5, 6))
    _, d = m.forward_with_details(lateral, top)
    up = F.interpolate(top, size=(9, 11), mode="bilinear", align_corners=False)
    raw = m.spatial_offset(torch.cat((lateral, up), 1)).view(2, 9, 2, 9, 11)
    assert torch.allclose(_displacement(d["spatial_positions"]), raw, atol=1e-9, rtol=0)
    assert _displacement(d["channel_positions"]).abs().max() > 10  # nothing caps them


def test_bounded_offsets_start_on_the_regular_grid():
    lateral, top = _inputs(16, (9, 11), (5, 6))
    torch.manual_seed(2)
    free = DDSMFusion(16, pool_size=4).double().eval()
    torch.manual_seed(2)
    bounded = DDSMFusion(16, pool_size=4, offset_bound=1.0).double().eval()
    assert torch.equal(free(lateral, top), bounded(lateral, top))  # tanh(0) = 0: same start


@pytest.mark.parametrize("kwargs, owners", [
    ({}, {"spatial_offset", "channel_offset"}),
    ({"channel": False}, {"spatial_offset"}),
    ({"spatial": False}, {"channel_offset"}),
])
def test_lr_scale_only_on_offset_predictors(kwargs, owners):
    m = DDSMFusion(16, pool_size=4, offset_lr_scale=0.1, **kwargs)
    scaled = {name: mod.lr_scale for name, mod in m.named_modules() if hasattr(mod, "lr_scale")}
    assert scaled == {name: 0.1 for name in owners}
    assert all(isinstance(v, float) for v in scaled.values())
    default = DDSMFusion(16, pool_size=4, **kwargs)
    assert {name: mod.lr_scale for name, mod in default.named_modules() if hasattr(mod, "lr_scale")} \
        == {name: 1.0 for name in owners}


def test_lr_scale_reaches_every_fusion_of_the_built_model():
    model = build_model("ddsm", num_classes=3, backbone="resnet18", output_stride=16, decoder="fpn",
                        channels=16, method_options={"pool_size": 2, "offset_lr_scale": 0.25})
    scaled = {name: mod.lr_scale for name, mod in model.named_modules() if hasattr(mod, "lr_scale")}
    want = {f"decoder.fusions.{i}.{part}_offset": 0.25 for i in range(3) for part in ("spatial", "channel")}
    assert scaled == want


def test_relative_embedding_same_at_same_relative_position():
    # A 3×5 and a 9×15 map: centre i of the small one is centre 3i + 1 of the large one.
    small = relative_sine_embedding(16, (3, 5), torch.float64, torch.device("cpu"))
    large = relative_sine_embedding(16, (9, 15), torch.float64, torch.device("cpu"))
    assert torch.allclose(large[..., 1::3, 1::3], small, atol=1e-12, rtol=0)
    absolute = sine_embedding(16, (9, 15), (9, 15), torch.float64, torch.device("cpu"))
    other = sine_embedding(16, (3, 5), (3, 5), torch.float64, torch.device("cpu"))
    assert not torch.allclose(absolute[..., 1::3, 1::3], other, atol=1e-3)  # the absolute one is not


def test_relative_embedding_hand_values():
    e = relative_sine_embedding(8, (4, 5), torch.float64, torch.device("cpu"))  # two frequencies: ½, 8
    j, i = 1, 3
    u, v = (j + 0.5) / 4, (i + 0.5) / 5
    ph = [2 * math.pi * f * u for f in (0.5, 8.0)] + [2 * math.pi * f * v for f in (0.5, 8.0)]
    want = [math.sin(ph[0]), math.sin(ph[1]), math.cos(ph[0]), math.cos(ph[1]),
            math.sin(ph[2]), math.sin(ph[3]), math.cos(ph[2]), math.cos(ph[3])]
    assert torch.allclose(e[0, :, j, i], torch.tensor(want, dtype=torch.float64), atol=1e-12)
    assert relative_sine_embedding(10, (2, 2), torch.float64, torch.device("cpu"))[0, 8:].abs().max() == 0


def test_relative_embedding_is_what_the_spatial_branch_adds():
    torch.manual_seed(4)
    rel = DDSMFusion(16, channel=False, position_embedding="sine_relative").double().eval()
    plain = DDSMFusion(16, channel=False, position_embedding="none").double().eval()
    plain.load_state_dict(rel.state_dict())
    lateral, top = _inputs(16, (9, 15), (3, 5))
    el = relative_sine_embedding(16, (9, 15), torch.float64, torch.device("cpu"))
    eh = relative_sine_embedding(16, (3, 5), torch.float64, torch.device("cpu"))
    _, d_rel = rel.forward_with_details(lateral, top)
    _, d_plain = plain.forward_with_details(lateral + el, top + eh)
    for key in ("spatial_key_map", "spatial_value_map", "spatial_affinity"):
        assert torch.allclose(d_rel[key], d_plain[key], atol=1e-12, rtol=0), key


@pytest.mark.parametrize("kwargs", [{}, {"channel": False}, {"spatial": False},
                                    {"position_embedding": "sine_relative", "offset_bound": 1.0}])
def test_identity_start_equals_upsample_add_exactly(kwargs):
    torch.manual_seed(0)
    m = DDSMFusion(16, pool_size=4, identity_start=True, **kwargs)
    lateral, top = _inputs(16, (9, 11), (5, 6), dtype=torch.float32)
    want = UpsampleAdd()(lateral, top)
    for training in (True, False):  # batch statistics and running statistics alike
        assert torch.equal(m.train(training)(lateral, top), want)
    torch.manual_seed(0)
    assert not torch.allclose(DDSMFusion(16, pool_size=4, **kwargs).train()(lateral, top), want)


def test_identity_start_leaves_the_heads_trainable():
    torch.manual_seed(0)
    m = DDSMFusion(16, pool_size=4, identity_start=True).train()
    lateral, top = _inputs(16, (9, 11), (5, 6), dtype=torch.float32)
    w = torch.randn(2, 16, 9, 11, generator=torch.Generator().manual_seed(3))
    (m(lateral, top) * w).sum().backward()
    for head in (m.spatial_out, m.channel_out):
        assert head[1].weight.grad.abs().min() > 0  # γ moves away from 0 on the first step
        assert head[0].weight.grad.abs().max() == 0  # upstream waits for γ ≠ 0
    assert m.spatial_offset.weight.grad.abs().max() == 0


def test_padding_modes_differ_only_where_samples_leave_the_grid():
    torch.manual_seed(0)
    zeros = DDSMFusion(8, channel=False, padding_mode="zeros").double().eval()
    border = DDSMFusion(8, channel=False, padding_mode="border").double().eval()
    border.load_state_dict(zeros.state_dict())
    for m in (zeros, border):
        with torch.no_grad():
            m.spatial_offset.bias[0::2] = 3.0  # every sample 3 px to the right
    lateral, top = _inputs(8, (6, 7), (3, 4))
    _, dz = zeros.forward_with_details(lateral, top)
    _, db = border.forward_with_details(lateral, top)
    x = dz["spatial_positions"][:, :, 0]  # (B, N, H, W)
    ys = dz["spatial_positions"][:, :, 1]
    outside = ((x > 6) | (ys < 0) | (ys > 5)).unsqueeze(1).expand_as(dz["spatial_keys"])
    assert outside.any() and (~outside).any()
    assert torch.allclose(dz["spatial_keys"][~outside], db["spatial_keys"][~outside], atol=1e-12, rtol=0)
    assert (dz["spatial_keys"][outside] == 0).all()
    assert torch.allclose(db["spatial_keys"], _gather(db["spatial_key_map"], 9, "border", shift=(3, 0)),
                          atol=1e-12, rtol=0)
    assert (db["spatial_keys"][outside] != 0).all()
