"""Progressively Diffused Networks for Semantic Image Segmentation.

Ruimao Zhang, Wei Yang, Zhanglin Peng, Xiaogang Wang, Liang Lin.
arXiv:1702.05839 (2017). No official code exists; this is a documented
reconstruction from the abstract (methods.md §3). Numbers are NOT RETRIEVED.

What is implemented: a stack of diffusion layers on the backbone's last
feature. Each layer is a convolutional LSTM step whose recurrence runs over
the *layer* axis: position ``p`` reads the previous layer's hidden state at
itself and at its 8 neighbours ``p + r·d`` for every dilation ``r`` (the 8
off-centre taps of a 3×3 atrous conv, ``d ∈ {-1,0,1}² \\ {0}``), so each
layer widens the receptive field by ``max(dilations)``.

``gate_mode="shared"`` (one gate set, methods.md PDN-LSTM)::

    [i, o, M̃, f]^ℓ = [σ, σ, tanh, σ]( W_x * X^ℓ + W_c H^{ℓ-1}
                                        + Σ_r W_h^{(r)} *_r H^{ℓ-1} + b )
    M^ℓ = f ⊙ M^{ℓ-1} + i ⊙ M̃ ;   H^ℓ = o ⊙ tanh(M^ℓ)

``gate_mode="per_direction"`` (MD-LSTM: one forget gate per direction)::

    same i, o, M̃; forget gates f_0 (self) and f_d for the 8 compass directions d
    M_d^{ℓ-1}(p) = (1/|R|) Σ_r M^{ℓ-1}(p + r·d)        (zero outside the image)
    M^ℓ = f_0 ⊙ M^{ℓ-1} + (1/8) Σ_d f_d ⊙ M_d^{ℓ-1} + i ⊙ M̃ ;   H^ℓ = o ⊙ tanh(M^ℓ)

``W_c`` is the centre (self) tap, ``*_r`` a 3×3 atrous conv with dilation
``r`` and zero centre, ``W_x`` a 1×1 conv.

Choices where the paper is silent ([I]/[U] items of methods.md §3.2–§3.6):

* Neighbour set [U]: self + the 8 off-centre taps at each dilation, i.e.
  ``1 + 8·|R|`` taps (25 for R = (1, 2, 4)). One self tap, not one per
  dilation: the centre of every atrous 3×3 reads the same pixel, so separate
  centre weights would be redundant parameters.
* Dilations [U]: ``dilations=(1, 2, 4)``, the same at every layer (no
  progressive per-layer schedule; §3.6 item 2 is left as future ablation).
* Directions in ``per_direction`` mode [U]: self + 8 compass directions, each
  direction's neighbour memory averaged over the dilations. Per-tap gates
  (25 forget gates) would cost 28·Hd gate channels instead of 12·Hd. The
  neighbour sum is divided by 8, as Graph LSTM (Liang et al., ECCV 2016)
  averages neighbour memories, so the memory cannot grow ~9× per layer.
* Number of layers [U]: ``num_layers=2``. Receptive field radius is
  ``num_layers · max(dilations)`` = 8 feature pixels (±64 image px at OS 8),
  a sizeable part of a CamVid/VOC crop, at a cost that stays CPU-friendly.
* Hidden width [U]: ``hidden_channels=128`` (CPU budget; 256 is the natural
  GPU choice for ResNet-101).
* Weight sharing across layers [U]: ``share_weights=False`` (each layer its
  own cell); ``True`` runs one cell ``num_layers`` times.
* Input to every layer [I]: the *same* projected backbone feature
  ``X = ReLU(BN(conv1x1(C5)))`` of width ``hidden_channels``, as LG-LSTM feeds
  the same feature to every layer; the previous layer reaches layer ℓ only
  through ``(H, M)``. Projecting once keeps the per-layer ``W_x`` small.
* Initial state [I]: ``M⁰ = conv1x1(X)``, ``H⁰ = tanh(M⁰)``. Zeros would make
  layer 1 purely pointwise (no diffusion) and give its forget gates zero
  gradient.
* Forget-gate bias [I]: ``forget_bias=1.0`` (Jozefowicz et al., 2015), other
  biases zero; weights use PyTorch's default conv init.
* Output [I]: ``H^L`` only, ``out_channels = hidden_channels``; no
  concatenation with the input (the input already enters every layer).
  From scratch this hands the decoder only saturated LSTM outputs from step 0.
  ``residual_scale_init`` (default None = ``H^L`` only) switches to a residual
  output ``X + α ⊙ H^L`` with a learned per-channel α (1, Hd, 1, 1) initialised
  to that number; 0.0 starts the neck exactly as the projection ``X`` (ReZero,
  Bachlechner et al. 2020, arXiv 2003.04887), and on the first step only α (and
  the projection) get gradient. The decoder's lateral then sees X, not C5, so
  even α = 0 is not the baseline. Validation (2026-11-28, pipeline recipe,
  seeds 0 / 1): α₀ = 0.0 gave 0.474 / 0.484 mIoU against H^L's 0.462 /
  0.469 — a gain in both seeds smaller than the baseline's seed spread (2.7
  points), so H^L stays the default; under the current recipe (2026-12-06,
  per-image normalisation, AMD EPYC Zen 3) it gave 0.501 / 0.467 against
  0.485 / 0.471, no longer a gain in both seeds (README, "DDSM examined").
* Auxiliary losses [U]: none; the neck returns only the last layer.
* No normalisation inside the LSTM (plain LSTM as in LG-LSTM).

Cost (multiply-adds per pixel, x projected to Hd): one 1×1 conv over the
``(1 + 1 + 8|R|)·Hd`` stacked inputs. Shared: ``4Hd · 26Hd = 104 Hd²`` per
layer (≈11.6× a 3×3 Hd→Hd conv); per_direction: ``12Hd · 26Hd = 312 Hd²``
(≈34.7×). The stacked taps (26·Hd channels) are kept for backward.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segrepro.errors import SegreproError
from segrepro.models.decoder import conv_bn_relu

GATE_MODES = ("shared", "per_direction")
# Row-major 3×3 minus the centre; (dy, dx) means "read the pixel at p + r·(dy, dx)".
DIRECTIONS: tuple[tuple[int, int], ...] = (
    (-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SegreproError(f"{name} must be a positive integer, got {value!r}")


def _check_dilations(dilations: Sequence[int]) -> tuple[int, ...]:
    values = tuple(dilations) if isinstance(dilations, (list, tuple)) else None
    if not values or any(isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in values):
        raise SegreproError(f"dilations must be a non-empty list of positive integers, got {dilations!r}")
    if len(set(values)) != len(values):
        raise SegreproError(f"dilations must be distinct (a repeated dilation repeats taps), got {dilations!r}")
    return values


class ConvLSTMDiffusionCell(nn.Module):
    """One diffusion step ``(h_prev, m_prev, x) -> (h, m)`` at constant resolution.

    All gate pre-activations come from a single 1×1 conv over the channel
    stack ``[x, H(p + o) for o in offsets]``; its weight columns are ordered
    like that stack (``x`` first, then one ``hidden_channels`` block per entry
    of ``self.offsets``: self, then the 8 ``DIRECTIONS`` for each dilation).
    Output rows are blocks of ``hidden_channels``: ``i, o, M̃, f`` for
    ``shared``; ``i, o, M̃, f_self, f_d`` for the 8 directions for
    ``per_direction``.
    """

    def __init__(self, in_channels: int, hidden_channels: int, dilations: Sequence[int] = (1, 2, 4),
                 gate_mode: str = "shared", forget_bias: float = 1.0) -> None:
        super().__init__()
        _check_positive("in_channels", in_channels)
        _check_positive("hidden_channels", hidden_channels)
        self.dilations = _check_dilations(dilations)
        if gate_mode not in GATE_MODES:
            raise SegreproError(f"gate_mode must be one of {', '.join(GATE_MODES)}, got {gate_mode!r}")
        self.in_channels, self.hidden_channels, self.gate_mode = in_channels, hidden_channels, gate_mode
        self.offsets: tuple[tuple[int, int], ...] = ((0, 0),) + tuple(
            (r * dy, r * dx) for r in self.dilations for dy, dx in DIRECTIONS)
        self.num_forget = 1 if gate_mode == "shared" else 1 + len(DIRECTIONS)
        self.gates = nn.Conv2d(in_channels + len(self.offsets) * hidden_channels,
                               (3 + self.num_forget) * hidden_channels, 1)
        with torch.no_grad():
            self.gates.bias.zero_()
            self.gates.bias[3 * hidden_channels:] = forget_bias

    def _taps(self, t: torch.Tensor) -> torch.Tensor:
        """Stack ``t(p + o)`` for every offset, zero outside the image."""
        _, _, height, width = t.shape
        pad = max(self.dilations)
        padded = F.pad(t, (pad, pad, pad, pad))  # (B, C, H+2P, W+2P)
        return torch.cat([padded[:, :, pad + dy:pad + dy + height, pad + dx:pad + dx + width]
                          for dy, dx in self.offsets], dim=1)  # (B, T*C, H, W)

    def forward(self, h_prev: torch.Tensor, m_prev: torch.Tensor,
                x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hd = self.hidden_channels
        pre = self.gates(torch.cat([x, self._taps(h_prev)], dim=1))  # (B, (3+F)*Hd, H, W)
        i, o, cand, f = pre.split([hd, hd, hd, self.num_forget * hd], dim=1)  # 3×(B, Hd, H, W), (B, F*Hd, H, W)
        i, o, f, cand = torch.sigmoid(i), torch.sigmoid(o), torch.sigmoid(f), torch.tanh(cand)
        if self.gate_mode == "shared":
            m = f * m_prev + i * cand
        else:
            b, _, height, width = m_prev.shape
            taps = self._taps(m_prev)[:, hd:]  # (B, 8*|R|*Hd, H, W), self tap dropped
            # Offsets are grouped by dilation then direction, so this view separates them.
            taps = taps.view(b, len(self.dilations), len(DIRECTIONS), hd, height, width)  # (B, |R|, 8, Hd, H, W)
            m_dir = taps.mean(dim=1)  # (B, 8, Hd, H, W)
            f = f.view(b, self.num_forget, hd, height, width)  # (B, 9, Hd, H, W)
            m = f[:, 0] * m_prev + (f[:, 1:] * m_dir).sum(dim=1) / len(DIRECTIONS) + i * cand
        return o * torch.tanh(m), m


class PDNNeck(nn.Module):
    """Stack of diffusion layers: ``(B, in_channels, H, W) -> (B, out_channels, H, W)``."""

    def __init__(self, in_channels: int, hidden_channels: int = 128, num_layers: int = 2,
                 dilations: Sequence[int] = (1, 2, 4), gate_mode: str = "shared",
                 share_weights: bool = False, forget_bias: float = 1.0,
                 residual_scale_init: float | None = None) -> None:
        super().__init__()
        if residual_scale_init is not None and (
                isinstance(residual_scale_init, bool) or not isinstance(residual_scale_init, (int, float))
                or not math.isfinite(residual_scale_init)):
            raise SegreproError(f"residual_scale_init must be a finite number (0.0 = start as the "
                                f"projected input) or null for the H^L output, got {residual_scale_init!r}")
        _check_positive("in_channels", in_channels)
        _check_positive("hidden_channels", hidden_channels)
        _check_positive("num_layers", num_layers)
        if not isinstance(share_weights, bool):
            raise SegreproError(f"share_weights must be true or false, got {share_weights!r}")
        self.num_layers = num_layers
        self.project = conv_bn_relu(in_channels, hidden_channels, 1)
        self.init_state = nn.Conv2d(hidden_channels, hidden_channels, 1)
        self.cells = nn.ModuleList(
            ConvLSTMDiffusionCell(hidden_channels, hidden_channels, dilations, gate_mode, forget_bias)
            for _ in range(1 if share_weights else num_layers))
        self.out_channels: int = hidden_channels
        self.residual_scale = (None if residual_scale_init is None else
                               nn.Parameter(torch.full((1, hidden_channels, 1, 1), float(residual_scale_init))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.project(x)  # (B, Hd, H, W)
        m = self.init_state(x)  # (B, Hd, H, W)
        h = torch.tanh(m)
        for layer in range(self.num_layers):
            h, m = self.cells[layer % len(self.cells)](h, m, x)
        if self.residual_scale is None:
            return h  # (B, Hd, H, W)
        return x + self.residual_scale * h  # (B, Hd, H, W)
