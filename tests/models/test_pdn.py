"""Tests for the PDN diffusion cell and neck (segrepro.models.pdn)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from segrepro.errors import SegreproError
from segrepro.models.pdn import DIRECTIONS, ConvLSTMDiffusionCell, PDNNeck

GATE_MODES = ("shared", "per_direction")


def _shift(t: torch.Tensor, dy: int, dx: int, r: int) -> torch.Tensor:
    """``t(p + r·(dy, dx))`` via a one-hot depthwise atrous conv, independent of the module's slicing."""
    c = t.shape[1]
    k = torch.zeros(c, 1, 3, 3, dtype=t.dtype)
    k[:, 0, 1 + dy, 1 + dx] = 1.0
    return F.conv2d(t, k, padding=r, dilation=r, groups=c)


def _reference_step(cell: ConvLSTMDiffusionCell, h_prev, m_prev, x):
    """The written gate equations, one F.conv2d per term, with the cell's own weights."""
    cin, hd = cell.in_channels, cell.hidden_channels
    w, b = cell.gates.weight, cell.gates.bias  # (G, cin + T*hd, 1, 1)

    def block(tap: int) -> torch.Tensor:  # weight columns for hidden tap number `tap`
        return w[:, cin + tap * hd:cin + (tap + 1) * hd]  # (G, hd, 1, 1)

    pre = F.conv2d(x, w[:, :cin], b)  # W_x * X + b
    pre = pre + F.conv2d(h_prev, block(0))  # self tap W_c H
    for ri, r in enumerate(cell.dilations):  # Σ_r W_h^(r) *_r H, 3×3 atrous, zero centre
        k = torch.zeros(w.shape[0], hd, 3, 3, dtype=w.dtype)
        for di, (dy, dx) in enumerate(DIRECTIONS):
            k[:, :, 1 + dy, 1 + dx] = block(1 + ri * len(DIRECTIONS) + di)[:, :, 0, 0]
        pre = pre + F.conv2d(h_prev, k, padding=r, dilation=r)
    i = torch.sigmoid(pre[:, :hd])
    o = torch.sigmoid(pre[:, hd:2 * hd])
    cand = torch.tanh(pre[:, 2 * hd:3 * hd])
    if cell.gate_mode == "shared":
        f = torch.sigmoid(pre[:, 3 * hd:])
        m = f * m_prev + i * cand
    else:
        m = torch.sigmoid(pre[:, 3 * hd:4 * hd]) * m_prev + i * cand
        for di, (dy, dx) in enumerate(DIRECTIONS):
            f_d = torch.sigmoid(pre[:, (4 + di) * hd:(5 + di) * hd])
            m_d = sum(_shift(m_prev, dy, dx, r) for r in cell.dilations) / len(cell.dilations)
            m = m + f_d * m_d / 8
    return o * torch.tanh(m), m


@pytest.mark.parametrize("gate_mode", GATE_MODES)
def test_cell_step_matches_hand_written_equations(gate_mode):
    torch.manual_seed(0)
    cell = ConvLSTMDiffusionCell(3, 4, dilations=(1, 2, 4), gate_mode=gate_mode).double()
    with torch.no_grad():  # larger weights so every term matters at float64 precision
        cell.gates.weight.mul_(5.0)
        cell.gates.bias.normal_()
    assert cell.offsets == ((0, 0),) + tuple((r * dy, r * dx) for r in (1, 2, 4) for dy, dx in DIRECTIONS)
    h, m, x = (torch.randn(2, c, 9, 11, dtype=torch.float64) for c in (4, 4, 3))
    got_h, got_m = cell(h, m, x)
    ref_h, ref_m = _reference_step(cell, h, m, x)
    torch.testing.assert_close(got_m, ref_m, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got_h, ref_h, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("gate_mode", GATE_MODES)
def test_forget_bias_initialised_and_other_biases_zero(gate_mode):
    cell = ConvLSTMDiffusionCell(3, 4, gate_mode=gate_mode, forget_bias=1.5)
    nf = 1 if gate_mode == "shared" else 9
    assert torch.all(cell.gates.bias[:12] == 0)
    assert torch.all(cell.gates.bias[12:] == 1.5) and cell.gates.bias.numel() == (3 + nf) * 4


def _changed_pixels(num_layers: int, gate_mode: str, size: int = 25) -> set[tuple[int, int]]:
    torch.manual_seed(1)
    neck = PDNNeck(2, hidden_channels=3, num_layers=num_layers, dilations=(1, 2, 4),
                   gate_mode=gate_mode).double().eval()  # eval: batch-stat BN would couple all pixels
    x = torch.randn(1, 2, size, size, dtype=torch.float64)
    x2 = x.clone()
    c = size // 2
    x2[0, :, c, c] += 1.0
    with torch.no_grad():
        diff = (neck(x2) - neck(x)).abs().amax(dim=1)[0]  # (size, size)
    return {(int(y) - c, int(xx) - c) for y, xx in (diff > 1e-12).nonzero()}


@pytest.mark.parametrize("gate_mode", GATE_MODES)
def test_receptive_field_grows_with_layers(gate_mode):
    # Output at q reads the input at q + offset, so a change at c shows up at c - offset.
    taps = {(0, 0)} | {(r * dy, r * dx) for r in (1, 2, 4) for dy, dx in DIRECTIONS}
    one = _changed_pixels(1, gate_mode)
    two = _changed_pixels(2, gate_mode)
    assert one == {(-a, -b) for a, b in taps}
    assert two == {(-a1 - a2, -b1 - b2) for a1, b1 in taps for a2, b2 in taps}
    assert one < two
    assert max(max(abs(a), abs(b)) for a, b in one) == 4
    assert max(max(abs(a), abs(b)) for a, b in two) == 8  # = sum of the layers' max dilations


@pytest.mark.parametrize("gate_mode", GATE_MODES)
@pytest.mark.parametrize("share_weights", [False, True])
def test_gradients_reach_every_parameter(gate_mode, share_weights):
    torch.manual_seed(2)
    neck = PDNNeck(5, hidden_channels=4, num_layers=3, gate_mode=gate_mode, share_weights=share_weights)
    neck(torch.randn(2, 5, 11, 13)).square().sum().backward()
    for name, p in neck.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name
    # Every gate row block must be trained, including layer 1's forget gates (M⁰ ≠ 0).
    for cell in neck.cells:
        rows = cell.gates.weight.grad.abs().sum(dim=(1, 2, 3)).view(-1, 4)  # (3+F, Hd)
        assert torch.all(rows.sum(dim=1) > 0)


def test_residual_output_is_projection_plus_scaled_hidden_state():
    torch.manual_seed(4)
    neck = PDNNeck(5, hidden_channels=4, num_layers=2, residual_scale_init=0.5).eval()
    plain = PDNNeck(5, hidden_channels=4, num_layers=2).eval()
    state = neck.state_dict()
    alpha = state.pop("residual_scale")
    assert alpha.shape == (1, 4, 1, 1) and torch.equal(alpha, torch.full_like(alpha, 0.5))
    plain.load_state_dict(state)
    x = torch.randn(2, 5, 7, 9)
    torch.testing.assert_close(neck(x), neck.project(x) + 0.5 * plain(x), rtol=0, atol=1e-6)


def test_zero_residual_scale_starts_as_the_projection_exactly():
    torch.manual_seed(5)
    neck = PDNNeck(5, hidden_channels=4, num_layers=2, residual_scale_init=0.0).train()
    x = torch.randn(2, 5, 7, 9)
    out = neck(x)
    assert torch.equal(out, neck.project(x))
    (out * torch.randn_like(out)).sum().backward()
    assert neck.residual_scale.grad.abs().min() > 0  # α leaves 0 on the first step
    assert all(p.grad.abs().max() == 0 for p in neck.cells.parameters())  # cells wait for α ≠ 0


def test_weight_sharing_option():
    shared = PDNNeck(5, hidden_channels=4, num_layers=3, share_weights=True)
    separate = PDNNeck(5, hidden_channels=4, num_layers=3, share_weights=False)
    assert len(shared.cells) == 1 and len(separate.cells) == 3
    n_cell = sum(p.numel() for p in shared.cells[0].parameters())
    assert sum(p.numel() for p in separate.parameters()) - sum(p.numel() for p in shared.parameters()) == 2 * n_cell


@pytest.mark.parametrize("gate_mode", GATE_MODES)
@pytest.mark.parametrize("size", [(13, 17), (25, 33), (3, 5)])
def test_odd_sizes_preserve_shape(gate_mode, size):
    neck = PDNNeck(6, hidden_channels=4, num_layers=2, gate_mode=gate_mode)
    out = neck(torch.randn(2, 6, *size))
    assert out.shape == (2, neck.out_channels, *size) and neck.out_channels == 4
    assert torch.isfinite(out).all()


def test_same_seed_same_result():
    outs = []
    for _ in range(2):
        torch.manual_seed(3)
        neck = PDNNeck(4, hidden_channels=4, gate_mode="per_direction")
        outs.append(neck(torch.randn(1, 4, 7, 9)))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(gate_mode="diagonal"), "shared, per_direction.*diagonal"),
    (dict(dilations=()), "dilations"),
    (dict(dilations=(1, 0)), r"dilations.*\(1, 0\)"),
    (dict(dilations=(1, 2, 2)), "distinct"),
    (dict(dilations=(1, 2.5)), "2.5"),
    (dict(num_layers=0), "num_layers.*0"),
    (dict(hidden_channels=-3), "hidden_channels.*-3"),
    (dict(in_channels=0), "in_channels.*0"),
    (dict(share_weights="yes"), "share_weights.*yes"),
    (dict(residual_scale_init="0"), "residual_scale_init.*'0'"),
    (dict(residual_scale_init=float("nan")), "residual_scale_init.*nan"),
    (dict(residual_scale_init=True), "residual_scale_init.*True"),
])
def test_bad_options_raise(kwargs, match):
    args = dict(in_channels=4) | kwargs
    with pytest.raises(SegreproError, match=match):
        PDNNeck(**args)


def test_bad_cell_options_raise():
    with pytest.raises(SegreproError, match="per_direction"):
        ConvLSTMDiffusionCell(3, 4, (1, 2), gate_mode="per-direction")
    with pytest.raises(SegreproError, match="hidden_channels"):
        ConvLSTMDiffusionCell(3, 0, (1, 2))
