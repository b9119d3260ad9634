"""Tests for the SDN neck: SDC against a loop over its equation, the ablation
operators against hand-written convs, guidance properties, gradients, odd sizes."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from segrepro.errors import SegreproError
from segrepro.models.sdn import SDNBlock, SDNNeck, SemanticDifferenceConv

TOL = dict(rtol=1e-10, atol=1e-10)


def g_ref(d: torch.Tensor, kind: str, lam: float) -> torch.Tensor:
    """The similarity functions written in terms of d (the module uses d²)."""
    if kind == "charbonnier":
        return 1.0 / torch.sqrt(1.0 + (d / lam) ** 2)
    if kind == "exp":
        return torch.exp(-((d / lam) ** 2))
    return 1.0 / (1.0 + (d / lam) ** 2)


def sdc_reference(u, v, weight, kind, lam, mode, guide_padding, dilation=1):
    """Y_o(p) = Σ_c Σ_k W[o,c,k] S_c(p,p+k) (U_c(p+k) − U_c(p)), one offset at a time."""
    b, c, h, w = u.shape
    c_out, _, k, _ = weight.shape
    r = dilation * (k // 2)
    up = F.pad(u, (r, r, r, r))
    vp = F.pad(v, (r, r, r, r), mode="replicate" if guide_padding == "replicate" else "constant")
    y = torch.zeros(b, c_out, h, w, dtype=u.dtype)
    for i in range(k):
        for j in range(k):
            ys, xs = slice(i * dilation, i * dilation + h), slice(j * dilation, j * dilation + w)
            dv = vp[:, :, ys, xs] - v
            if mode == "vector_norm":
                s_all = g_ref(dv.pow(2).sum(1).sqrt() / math.sqrt(v.shape[1]), kind, lam)
            for ch in range(c):
                s = g_ref(dv[:, ch].abs(), kind, lam) if mode == "per_channel" else s_all
                du = up[:, ch, ys, xs] - u[:, ch]
                for o in range(c_out):
                    y[:, o] += weight[o, ch, i, j] * s * du
    return y


def make_sdc(**kw) -> SemanticDifferenceConv:
    kw.setdefault("in_channels", 3)
    kw.setdefault("out_channels", 2)
    kw.setdefault("guide_channels", kw["in_channels"])
    return SemanticDifferenceConv(**kw).double()


@pytest.mark.parametrize("kind", ["charbonnier", "exp", "rational"])
@pytest.mark.parametrize("mode", ["per_channel", "vector_norm"])
@pytest.mark.parametrize("guide_padding", ["replicate", "zeros"])
def test_sdc_matches_reference_loop(kind, mode, guide_padding):
    torch.manual_seed(0)
    sdc = make_sdc(similarity=kind, similarity_mode=mode, lam=0.8, guide_padding=guide_padding)
    u, v = torch.randn(2, 3, 5, 6, dtype=torch.float64), torch.randn(2, 3, 5, 6, dtype=torch.float64)
    expected = sdc_reference(u, v, sdc.weight.detach(), kind, 0.8, mode, guide_padding)
    torch.testing.assert_close(sdc(u, v), expected, **TOL)


@pytest.mark.parametrize("mode", ["per_channel", "vector_norm"])
def test_sdc_reference_other_guide_channels_and_window(mode):
    torch.manual_seed(1)
    sdc = make_sdc(guide_channels=5, similarity_mode=mode, kernel_size=5, dilation=2, lam=1.3)
    u, v = torch.randn(1, 3, 7, 6, dtype=torch.float64), torch.randn(1, 5, 7, 6, dtype=torch.float64)
    # Per-channel mode projects V to C channels with the 1×1 conv; vector-norm uses V as is.
    v_used = sdc.project(v) if mode == "per_channel" else v
    assert (sdc.project is not None) == (mode == "per_channel")
    expected = sdc_reference(u, v_used, sdc.weight.detach(), "charbonnier", 1.3, mode, "replicate", 2)
    torch.testing.assert_close(sdc(u, v), expected, **TOL)


def test_projection_before_resize_equals_projection_after():
    torch.manual_seed(2)
    sdc = make_sdc(guide_channels=4)
    u, v = torch.randn(2, 3, 9, 11, dtype=torch.float64), torch.randn(2, 4, 5, 6, dtype=torch.float64)
    v_up = F.interpolate(v, size=(9, 11), mode="bilinear", align_corners=False)
    expected = sdc_reference(u, sdc.project(v_up), sdc.weight.detach(), "charbonnier", 1.0,
                             "per_channel", "replicate")
    torch.testing.assert_close(sdc(u, v), expected, **TOL)


@pytest.mark.parametrize("mode", ["per_channel", "vector_norm"])
def test_constant_guidance_gives_unit_similarity(mode):
    torch.manual_seed(3)
    sdc = make_sdc(similarity_mode=mode, similarity="exp", lam=0.1)
    v = torch.full((2, 3, 6, 7), 3.7, dtype=torch.float64)
    s = sdc.similarity(sdc.prepare_guide(v, (6, 7)))
    assert s.shape == ((2, 3, 9, 6, 7) if mode == "per_channel" else (2, 1, 9, 6, 7))
    assert torch.equal(s, torch.ones_like(s))
    # ...while a guidance edge lowers S exactly across it.
    v[..., 4:] = -1.0
    s = sdc.similarity(v)
    assert s[..., 3].min() < 1e-6 and torch.equal(s[..., 0], torch.ones_like(s[..., 0]))


def test_zero_guide_padding_sees_the_border_as_an_edge():
    sdc = make_sdc(guide_padding="zeros")
    s = sdc.similarity(torch.full((1, 3, 4, 4), 2.0, dtype=torch.float64))
    assert s[..., 0, 0].min() < 1.0 and torch.equal(s[..., 1:3, 1:3], torch.ones_like(s[..., 1:3, 1:3]))


@pytest.mark.parametrize("how", ["huge_lambda", "constant_guidance"])
def test_unit_similarity_reduces_sdc_to_cdc_theta_one(how):
    torch.manual_seed(4)
    lam = 1e9 if how == "huge_lambda" else 1.0
    sdc = make_sdc(lam=lam, similarity_mode="vector_norm")
    cdc = make_sdc(operator="cdc", theta=1.0)
    cdc.weight.data.copy_(sdc.weight.data)
    u = torch.randn(2, 3, 6, 5, dtype=torch.float64)
    v = torch.randn(2, 3, 6, 5, dtype=torch.float64) if how == "huge_lambda" else torch.ones(2, 3, 6, 5, dtype=torch.float64)
    torch.testing.assert_close(sdc(u, v), cdc(u), **TOL)
    # And a real guidance with small λ must not equal CDC, or the check above is vacuous.
    sharp = make_sdc(lam=0.05)
    sharp.weight.data.copy_(sdc.weight.data)
    assert not torch.allclose(sharp(u, torch.randn_like(u)), cdc(u), atol=1e-3)


def test_cdc_and_vanilla_match_hand_written_convs():
    torch.manual_seed(5)
    cdc, van = make_sdc(operator="cdc", theta=0.7), make_sdc(operator="vanilla")
    u = torch.randn(2, 3, 7, 5, dtype=torch.float64)
    w = cdc.weight.detach()
    plain = F.conv2d(u, w, padding=1)
    centre = torch.einsum("oc,bchw->bohw", w.sum((2, 3)), u)  # U(p)·ΣW
    torch.testing.assert_close(cdc(u), plain - 0.7 * centre, **TOL)
    torch.testing.assert_close(van(u, torch.randn(2, 9, 1, 1)), F.conv2d(u, van.weight.detach(), padding=1), **TOL)
    assert cdc.project is None and van.project is None


@pytest.mark.parametrize("mode", ["per_channel", "vector_norm"])
def test_channel_chunks_match_whole_tensor_outputs_and_gradients(mode):
    torch.manual_seed(6)
    whole = make_sdc(in_channels=5, guide_channels=4, similarity_mode=mode)
    chunked = make_sdc(in_channels=5, guide_channels=4, similarity_mode=mode, chunk_channels=2)
    chunked.load_state_dict(whole.state_dict())
    u = torch.randn(2, 5, 6, 7, dtype=torch.float64)
    v = torch.randn(2, 4, 3, 4, dtype=torch.float64)
    outs, grads = [], []
    for m in (whole, chunked):
        ui, vi = u.clone().requires_grad_(), v.clone().requires_grad_()
        y = m(ui, vi)
        (y * torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)).sum().backward()
        outs.append(y.detach())
        grads.append([ui.grad, vi.grad] + [p.grad for p in m.parameters()])
    torch.testing.assert_close(outs[0], outs[1], **TOL)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, **TOL)


def test_vector_norm_gradient_is_finite_for_flat_guidance():
    sdc = make_sdc(similarity_mode="vector_norm", learn_lam=True)
    v = torch.ones(1, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    sdc(torch.randn(1, 3, 4, 4, dtype=torch.float64), v).sum().backward()
    assert torch.isfinite(v.grad).all() and torch.isfinite(sdc.log_lam.grad)


@pytest.mark.parametrize(("residual", "fusion_bn_relu"), [(False, False), (True, False), (False, True)])
def test_block_is_sdc_bn_relu_then_1x1_fusion(residual, fusion_bn_relu):
    torch.manual_seed(11)
    block = SDNBlock(3, 5, fusion_residual=residual, fusion_bn_relu=fusion_bn_relu).double()
    u, v = torch.randn(2, 3, 6, 5, dtype=torch.float64), torch.randn(2, 5, 3, 3, dtype=torch.float64)
    bn = block.post[0]
    y = F.relu(F.batch_norm(block.sdc(u, v), None, None, bn.weight, bn.bias, training=True, eps=bn.eps))
    expected = F.conv2d(torch.cat([u, y], 1), block.fuse[0].weight, block.fuse[0].bias)
    if fusion_bn_relu:
        expected = F.relu(F.batch_norm(expected, None, None, training=True, eps=bn.eps))
    if residual:
        expected = expected + u
    torch.testing.assert_close(block(u, v), expected, **TOL)


@pytest.mark.parametrize("operator", ["sdc", "vanilla"])
def test_identity_start_neck_returns_its_input_exactly(operator):
    torch.manual_seed(13)
    neck = SDNNeck([3, 4], operator=operator, fusion_residual=True, identity_start=True).train()
    feats = [torch.randn(2, 3, 9, 7), torch.randn(2, 4, 5, 4)]
    outs = neck(feats)
    assert all(torch.equal(o, f) for o, f in zip(outs, feats))
    sum((o * torch.randn_like(o)).sum() for o in outs).backward()
    for block in neck.blocks:
        assert block.fuse[0].weight.grad.abs().sum() > 0  # it can leave the identity on step 1
        assert block.sdc.weight.grad.abs().max() == 0  # upstream waits until it has
    torch.manual_seed(13)
    plain = SDNNeck([3, 4], operator=operator, fusion_residual=True)
    assert not torch.allclose(plain(feats)[0], feats[0])  # default init: not an identity


def test_identity_start_needs_the_residual():
    with pytest.raises(SegreproError, match="identity_start=True needs fusion_residual=True"):
        SDNBlock(3, 3, identity_start=True)
    with pytest.raises(SegreproError, match="fusion_bn_relu=False"):
        SDNBlock(3, 3, fusion_residual=True, fusion_bn_relu=True, identity_start=True)
    with pytest.raises(SegreproError, match="identity_start='yes'"):
        SDNBlock(3, 3, fusion_residual=True, identity_start="yes")


def test_single_level_neck_is_guided_by_stride_two_conv_bn_relu_of_itself():
    torch.manual_seed(12)
    neck = SDNNeck([4]).double()
    f = torch.randn(2, 4, 9, 7, dtype=torch.float64)
    guide = F.relu(F.batch_norm(F.conv2d(f, neck.top_guide[0].weight, stride=2, padding=1),
                                None, None, training=True))
    assert guide.shape == (2, 4, 5, 4)
    torch.testing.assert_close(neck([f])[0], neck.blocks[0](f, guide), **TOL)


NECK_OPTIONS = [
    {},
    {"similarity_mode": "vector_norm", "learn_lam": True, "fusion_bn_relu": True,
     "fusion_residual": True, "similarity": "exp", "weight_init": "kaiming"},
]


@pytest.mark.parametrize("options", NECK_OPTIONS)
@pytest.mark.parametrize("channels", [(4, 6, 8, 10), (6,)])
def test_gradients_reach_every_neck_parameter(options, channels):
    torch.manual_seed(7)
    neck = SDNNeck(channels, **options)
    sizes = [(13, 17), (7, 9), (4, 5), (2, 3)]
    feats = [torch.randn(2, c, *s) for c, s in zip(channels, sizes)]
    outs = neck(feats)
    sum((o * torch.randn_like(o)).sum() for o in outs).backward()
    names = [n for n, _ in neck.named_parameters()]
    assert any("top_guide" in n for n in names)
    assert len(channels) == 1 or any("project" in n for n in names) != ("similarity_mode" in options)
    for name, p in neck.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("operator", ["sdc", "cdc", "vanilla"])
def test_odd_sizes_keep_shapes_and_channels(operator):
    torch.manual_seed(8)
    channels = [4, 6, 8, 10]
    neck = SDNNeck(channels, operator=operator)
    assert neck.out_channels == channels
    sizes = [(25, 33), (13, 17), (7, 9), (4, 5)]  # strides 4..32 of a 97×131 image
    feats = [torch.randn(1, c, *s) for c, s in zip(channels, sizes)]
    outs = neck(feats)
    assert [o.shape for o in outs] == [f.shape for f in feats]
    assert (neck.top_guide is None) == (operator != "sdc")
    single = SDNNeck([5], operator=operator)
    assert single([torch.randn(2, 5, 25, 33)])[0].shape == (2, 5, 25, 33)


def test_level_i_is_guided_by_level_i_plus_one_only():
    torch.manual_seed(9)
    neck = SDNNeck([3, 4, 5]).eval()  # eval: BN statistics do not couple the levels
    feats = [torch.randn(1, 3, 12, 12), torch.randn(1, 4, 6, 6), torch.randn(1, 5, 3, 3)]
    before = neck(feats)
    after = neck([feats[0], feats[1], feats[2] + torch.randn_like(feats[2])])
    assert torch.equal(before[0], after[0])
    assert not torch.allclose(before[1], after[1]) and not torch.allclose(before[2], after[2])


def test_same_seed_same_result():
    outs = []
    for _ in range(2):
        torch.manual_seed(10)
        neck = SDNNeck([3, 4])
        outs.append(neck([torch.randn(2, 3, 9, 7), torch.randn(2, 4, 5, 4)]))
    assert all(torch.equal(a, b) for a, b in zip(*outs))


@pytest.mark.parametrize(("kwargs", "bad", "allowed"), [
    ({"operator": "sdcx"}, "sdcx", "cdc"),
    ({"similarity": "gauss"}, "gauss", "charbonnier"),
    ({"similarity_mode": "norm"}, "norm", "vector_norm"),
    ({"guide_padding": "reflect"}, "reflect", "replicate"),
    ({"weight_init": "xavier"}, "xavier", "kaiming"),
    ({"lam": 0.0}, "lam=0.0", "> 0"),
    ({"lam": -2.0}, "lam=-2.0", "> 0"),
    ({"theta": 1.5}, "theta=1.5", "[0, 1]"),
    ({"kernel_size": 4}, "kernel_size=4", "odd"),
    ({"chunk_channels": 0}, "chunk_channels=0", ">= 1"),
])
def test_bad_sdc_options_raise(kwargs, bad, allowed):
    with pytest.raises(SegreproError) as err:
        SemanticDifferenceConv(3, 3, 3, **kwargs)
    assert bad in str(err.value) and allowed in str(err.value)


def test_bad_block_and_neck_inputs_raise():
    with pytest.raises(SegreproError, match="lamda.*similarity"):
        SDNBlock(3, 3, lamda=1.0)
    with pytest.raises(SegreproError, match="in_channels"):
        SDNNeck([])
    with pytest.raises(SegreproError, match="similarity_mode='l1'"):
        SDNNeck([3, 4], similarity_mode="l1")
    with pytest.raises(SegreproError, match="got 1 feature maps.*2"):
        SDNNeck([3, 4])([torch.randn(1, 3, 4, 4)])
    with pytest.raises(SegreproError, match="needs a guidance"):
        SemanticDifferenceConv(3, 3, 3)(torch.randn(1, 3, 4, 4))
