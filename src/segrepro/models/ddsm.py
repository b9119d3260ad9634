"""DDSM top-down fusion for the FPN decoder.

Paper: "Dynamic Dual Sampling Module for Fine-Grained Semantic Segmentation",
Chen Shi, Xiangtai Li, Yanran Wu, Yunhai Tong, Yi Xu, ICIP 2021, arXiv 2105.11657.
No official model code exists; this follows the module figure (methods.md §2.2).

Implemented (x_l = lateral, B×C×H×W; x_h = merged map from the level above, B×C×h×w):

Spatial branch, with x̃_l = x_l + e_pl, x̃_h = up(x_h + e_ph):
    x_cat = [x̃_l, x̃_h],  q = θ(x̃_l),  K = φ(x_cat),  V = g(x̃_h)          (1×1 convs)
    p_n(p) = p + r_n + Δ_n(p),  n = 1..N                     (Δ = offset conv on x_cat)
    K_n(p) = Bilinear(K, p_n(p)),  V_n(p) = Bilinear(V, p_n(p))   (same positions)
    a_n(p) = softmax_n(⟨q(p), K_n(p)⟩ / √C)
    x_S = Conv1×1(Σ_n a_n(p) V_n(p))
Channel branch (channels laid out on a g_h×g_w grid, g_h·g_w = C):
    q_i = vec(θ_c(Pool_a(x_l)))_i,  k_j = vec(φ_c([Pool_a(x_l), Pool_a(x_h)]))_j   ∈ R^{a²}
    j_n(i) = grid(i) + r_n + Δ_n(i)        (Δ = offset conv on the pooled maps, on the grid)
    b_{i,n} = softmax_n(q_i · k_{j_n(i)} / a)
    x_C(i) = Σ_n b_{i,n} Down(x_h)_{j_n(i)},   x_C = Conv1×1(Up(x_C))
    (k_{j_n(i)}, Down(x_h)_{j_n(i)}: bilinear over the channel grid, same positions)
Output:  x_out = x_l + up(x_h) + x_S + x_C   (up(x_h) dropped if keep_upsampled_top=False).

Choices where the paper is silent ([I]/[U] items of methods.md §2.2–§2.6):
* Offset predictor: a 3×3 conv on x_cat (spatial) / on the concatenated pooled maps viewed
  on the channel grid (channel), emitting 2N offsets (x, y) per position, zero-initialised
  so sampling starts on the regular grid (SFNet flow-head style).
* N: 9 for both branches; any odd perfect square k² is accepted. r_n is the k×k grid with
  dilation 1 centred on the position, ordered row-major over (dy, dx): odd k keeps the
  centre on the pixel/channel itself, so zero offsets take exactly the integer neighbours.
* Keys and values share the sampled positions (figure shows one DS pattern).
* Sampling: ``grid_sample`` bilinear, align_corners=False with pixel centre i at
  (2i+1)/size−1 (exact at integers and defined for size 1). Out-of-range samples use
  ``padding_mode``: default 'border' (replicate the edge) because a zero sample would
  still take softmax mass with logit 0 and dilute context at borders; 'zeros' is available.
* Affinity scaling 1/√(key dim) (1/√C spatial, 1/a channel), switchable (``scaled_affinity``).
* Position embedding: fixed 2-D sinusoid, computed for any size, once per shape (cached; no size-tied
  parameters), in units of lateral pixels, so e_ph at pixel centre j sits at the matching
  lateral coordinate; C//4 frequencies per axis × (sin, cos), zero-padded to C. 'none' too.
  Only the spatial branch gets it (figure (b) has none).
* Merge: x_l + up(x_h) + x_S + x_C by default: it keeps the baseline ``lateral + up(top)``
  identity path, so DDSM is the baseline plus two residual branches and the ablation rows
  (+spatial, +channel) differ from the baseline only by the added term.
* Pool size a = 8 (a² = 64-dim channel descriptors). ``down`` is an average pool by
  ``down_factor`` = 2 (ceil, so odd sizes keep every pixel) rather than a fixed size, so the
  channel branch keeps the aspect ratio and scales with the input.
* Channel grid when √C is not an integer: g_h = largest divisor of C ≤ √C, g_w = C/g_h
  (128 → 8×16, 256 → 16×16); ``channel_grid`` overrides it.
* Normalisation: θ, φ, g and the channel q/k convs are plain 1×1 convs with bias (a ReLU
  would make all logits ≥ 0); each branch ends with 1×1 conv + BN without ReLU, so the
  residual can be negative; the decoder's conv-BN-ReLU follows the fusion anyway.

Training options, each answering a silence of the paper (``model.ddsm`` in params.yaml).
The first reconstruction is ``offset_bound=None, offset_lr_scale=1.0,
position_embedding='sine', identity_start=False, padding_mode='border'`` (the constructor's
defaults). The pipeline's default (``params.yaml``) sets ``identity_start=True`` and keeps the
four others, all chosen on the validation split (README "DDSM examined"). Current recipe
(AdamW, stride 32, 12 epochs, class-balanced), seeds 0 / 1, val mIoU after the last epoch,
AMD EPYC Zen 3, one option changed at a time: default 49.85 / 47.92 (mean 48.89);
identity_start=False 25.30 / 34.94 (30.12); offset_bound=1 46.69 / 48.15 (47.42);
offset_lr_scale=0.1 48.08 / 48.23 (48.16); position_embedding='sine_relative' 48.35 / 47.53
(47.94); padding_mode='zeros' 48.23 / 47.12 (47.68); baseline 49.72 / 45.85 (47.78). The
identity start is worth 19 points; no other option beats the default in the mean. (The first
recipe, SGD at stride 16, seed 0, gave the identity start 0.424 against 0.270.)
* ``offset_bound`` (paper: no range for Δ). None: Δ = raw conv output, unbounded. A number
  b > 0: Δ = b·tanh(raw), in grid units (lateral pixels / channel-grid cells), so each sample
  stays within b of its regular-grid point r_n; zero-init still starts on the grid, with
  slope b at 0. Outside the map ``grid_sample`` gives a position no gradient (border: along
  the axis that left; zeros: beyond one cell), so unbounded offsets can drift out for good.
* ``offset_lr_scale`` (paper: no per-part learning rate; SFNet's flow head uses the base
  lr). Convention shared with the trainer: every submodule with a float attribute
  ``lr_scale`` gets its own optimizer param group at lr × lr_scale. DDSM sets it on the two
  offset convs (``spatial_offset``, ``channel_offset``) and nowhere else; 1.0 = base lr,
  0 freezes the regular grid (weight decay in SGD is scaled by the lr too).
* ``position_embedding`` (paper: an icon, type unknown). 'sine': absolute, in lateral
  pixels (above), so a larger test frame shows phases never seen on training crops.
  'sine_relative': the same sin/cos layout over u = (i + ½)/n ∈ (0, 1), the pixel centre
  normalised to the map's extent per axis (e_ph's centres land on the same u as x_l's), with
  C//4 frequencies per axis spaced geometrically from ½ to 8 cycles per extent
  (``RELATIVE_CYCLES``): the lowest codes position monotonically, the highest has a period
  of 3.5 lateral pixels on a 28-row map; identical values at any input size. 'none'.
* ``identity_start`` (paper: no init). True: the last BN γ of each branch head is zero
  (zero-γ residual init, Goyal et al. 2017, arXiv 1706.02677), so at step 0 both branches
  output exactly 0 and the fusion equals ``UpsampleAdd`` (x_l alone if
  keep_upsampled_top=False); only the heads' γ, β get gradient on that first step.
* ``padding_mode`` (paper: silent): 'border' (default, above) or 'zeros'.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from segrepro.errors import SegreproError
from segrepro.models.ddsm_sampling import _cached_embedding, dynamic_sample

POSITION_EMBEDDINGS = ("sine", "sine_relative", "none")
PADDING_MODES = ("border", "zeros")

def _check_samples(name: str, value: int) -> None:
    k = math.isqrt(value) if value > 0 else 0
    if value < 1 or k * k != value or k % 2 == 0:
        raise SegreproError(f"{name}={value!r} is not allowed; use an odd perfect square "
                            f"(1, 9, 25, 49, ...) so the k×k grid is centred on the position")


def _check_number(name: str, value: object, low: float, strict: bool, hint: str) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and (value > low if strict else value >= low)
    if not ok:
        raise SegreproError(f"{name}={value!r} is not allowed; use a number {'>' if strict else '>='} "
                            f"{low:g}{hint}")


def _default_grid(channels: int) -> tuple[int, int]:
    gh = max(d for d in range(1, math.isqrt(channels) + 1) if channels % d == 0)
    return gh, channels // gh


def _head(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels))


class DDSMFusion(nn.Module):
    """``fuse(lateral, top)`` for ``FPNDecoder``: lateral (B,C,H,W), top (B,C,h,w) → (B,C,H,W)."""

    def __init__(self, channels: int, *, spatial: bool = True, channel: bool = True,
                 num_spatial_samples: int = 9, num_channel_samples: int = 9,
                 pool_size: int = 8, down_factor: int = 2,
                 channel_grid: tuple[int, int] | None = None,
                 position_embedding: str = "sine", padding_mode: str = "border",
                 keep_upsampled_top: bool = True, scaled_affinity: bool = True,
                 offset_bound: float | None = None, offset_lr_scale: float = 1.0,
                 identity_start: bool = False) -> None:
        super().__init__()
        for name, value in (("channels", channels), ("pool_size", pool_size),
                            ("down_factor", down_factor)):
            if not isinstance(value, int) or value < 1:
                raise SegreproError(f"{name}={value!r} is not allowed; use an integer >= 1")
        _check_samples("num_spatial_samples", num_spatial_samples)
        _check_samples("num_channel_samples", num_channel_samples)
        if position_embedding not in POSITION_EMBEDDINGS:
            raise SegreproError(f"position_embedding={position_embedding!r} is not allowed; "
                                f"choose one of {POSITION_EMBEDDINGS}")
        if padding_mode not in PADDING_MODES:
            raise SegreproError(f"padding_mode={padding_mode!r} is not allowed; "
                                f"choose one of {PADDING_MODES}")
        if offset_bound is not None:
            _check_number("offset_bound", offset_bound, 0, True, " (grid units), or null for unbounded")
        _check_number("offset_lr_scale", offset_lr_scale, 0, False, " (1.0 = the base learning rate)")
        if not isinstance(identity_start, bool):
            raise SegreproError(f"identity_start={identity_start!r} is not allowed; use true or false")
        if not (spatial or channel):
            raise SegreproError("spatial=False and channel=False leaves no DDSM branch; enable "
                                "at least one, or use decoder.UpsampleAdd for the baseline")
        grid = _default_grid(channels) if channel_grid is None else tuple(channel_grid)
        if len(grid) != 2 or min(grid) < 1 or grid[0] * grid[1] != channels:
            raise SegreproError(f"channel_grid={channel_grid!r} is not allowed; its two sides "
                                f"must multiply to channels={channels} (default {_default_grid(channels)})")
        self.channels, self.channel_grid = channels, grid
        self.use_spatial, self.use_channel = spatial, channel
        self.pool_size, self.down_factor = pool_size, down_factor
        self.position_embedding, self.padding_mode = position_embedding, padding_mode
        self.keep_upsampled_top, self.scaled_affinity = keep_upsampled_top, scaled_affinity
        self.offset_bound = None if offset_bound is None else float(offset_bound)
        c, a2 = channels, pool_size * pool_size
        if spatial:
            self.query = nn.Conv2d(c, c, 1)
            self.key = nn.Conv2d(2 * c, c, 1)
            self.value = nn.Conv2d(c, c, 1)
            self.spatial_offset = nn.Conv2d(2 * c, 2 * num_spatial_samples, 3, padding=1)
            self.spatial_out = _head(c)
        if channel:
            self.channel_query = nn.Conv2d(c, c, 1)
            self.channel_key = nn.Conv2d(2 * c, c, 1)
            self.channel_offset = nn.Conv2d(2 * a2, 2 * num_channel_samples, 3, padding=1)
            self.channel_out = _head(c)
        for conv in (getattr(self, "spatial_offset", None), getattr(self, "channel_offset", None)):
            if conv is not None:  # start on the regular grid; gradients still reach the weights
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)
                conv.lr_scale = float(offset_lr_scale)  # trainer: own param group at lr × lr_scale
        for head in (getattr(self, "spatial_out", None), getattr(self, "channel_out", None)):
            if head is not None and identity_start:
                nn.init.zeros_(head[1].weight)  # BN γ = 0 (β is 0 already): the branch outputs 0

    def _offsets(self, conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        """Offsets Δ (B, N, 2, h, w) in grid units: raw conv output, or bound · tanh(raw)."""
        b, _, h, w = x.shape
        raw = conv(x).view(b, conv.out_channels // 2, 2, h, w)
        return raw if self.offset_bound is None else self.offset_bound * torch.tanh(raw)

    def forward(self, lateral: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
        return self.forward_with_details(lateral, top)[0]

    def forward_with_details(self, lateral: torch.Tensor, top: torch.Tensor
                             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Forward pass plus intermediate maps, sampled positions and affinities (for tests)."""
        if lateral.dim() != 4 or top.dim() != 4 or lateral.shape[:2] != top.shape[:2] \
                or lateral.shape[1] != self.channels:
            raise SegreproError(f"DDSMFusion({self.channels}) needs lateral (B, {self.channels}, H, W) and "
                                f"top (B, {self.channels}, h, w); got {tuple(lateral.shape)}, {tuple(top.shape)}")
        size = lateral.shape[-2:]
        details: dict[str, torch.Tensor] = {}
        out = lateral
        if self.keep_upsampled_top:
            out = out + F.interpolate(top, size=size, mode="bilinear", align_corners=False)  # (B, C, H, W)
        if self.use_spatial:
            out = out + self._spatial(lateral, top, details)
        if self.use_channel:
            out = out + self._channel(lateral, top, details)
        return out, details

    def _spatial(self, xl: torch.Tensor, xh: torch.Tensor, details: dict) -> torch.Tensor:
        b, c, h, w = xl.shape
        if self.position_embedding != "none":
            xl = xl + _cached_embedding(self.position_embedding, c, (h, w), (h, w), xl.dtype, xl.device)
            xh = xh + _cached_embedding(self.position_embedding, c, tuple(xh.shape[-2:]), (h, w),
                                        xh.dtype, xh.device)
        xh = F.interpolate(xh, size=(h, w), mode="bilinear", align_corners=False)  # (B, C, H, W)
        x_cat = torch.cat((xl, xh), dim=1)  # (B, 2C, H, W)
        q, k_map, v_map = self.query(xl), self.key(x_cat), self.value(xh)
        offsets = self._offsets(self.spatial_offset, x_cat)  # (B, N, 2, H, W)
        # Keys and values share positions, so one grid_sample serves both.
        samples, pos = dynamic_sample(torch.cat((k_map, v_map), 1), offsets, self.padding_mode)
        keys, values = samples.split(c, dim=1)  # (B, C, N, H, W) each
        logits = torch.einsum("bchw,bcnhw->bnhw", q, keys)  # (B, N, H, W)
        if self.scaled_affinity:
            logits = logits / math.sqrt(c)
        attn = logits.softmax(dim=1)
        agg = torch.einsum("bnhw,bcnhw->bchw", attn, values)  # (B, C, H, W)
        details.update(spatial_key_map=k_map, spatial_value_map=v_map, spatial_keys=keys,
                       spatial_values=values, spatial_positions=pos, spatial_affinity=attn)
        return self.spatial_out(agg)

    def _channel(self, xl: torch.Tensor, xh: torch.Tensor, details: dict) -> torch.Tensor:
        b, c, h, w = xl.shape
        a, (gh, gw) = self.pool_size, self.channel_grid
        pl = F.adaptive_avg_pool2d(xl, a)  # (B, C, a, a)
        ph = F.adaptive_avg_pool2d(xh, a)  # (B, C, a, a)
        # Pool before the 1×1 conv: they commute, and the conv then runs on a×a only.
        q = self.channel_query(pl).flatten(2)  # (B, C, a²)
        k = self.channel_key(torch.cat((pl, ph), 1)).flatten(2)  # (B, C, a²)
        hd, wd = -(-xh.shape[-2] // self.down_factor), -(-xh.shape[-1] // self.down_factor)
        v = F.adaptive_avg_pool2d(xh, (hd, wd)).flatten(2)  # (B, C, hd·wd)

        def on_grid(t: torch.Tensor) -> torch.Tensor:  # (B, C, D) -> (B, D, gh, gw)
            return t.transpose(1, 2).reshape(b, -1, gh, gw)  # channel i at (i // gw, i % gw)

        off_in = torch.cat((on_grid(pl.flatten(2)), on_grid(ph.flatten(2))), 1)  # (B, 2a², gh, gw)
        offsets = self._offsets(self.channel_offset, off_in)  # (B, N, 2, gh, gw)
        samples, pos = dynamic_sample(torch.cat((on_grid(k), on_grid(v)), 1), offsets,
                                      self.padding_mode)  # (B, a² + hd·wd, N, gh, gw)
        samples = samples.flatten(3)  # (B, a² + hd·wd, N, C)
        keys, values = samples.split((a * a, hd * wd), dim=1)  # (B, a², N, C), (B, hd·wd, N, C)
        logits = torch.einsum("bdc,bdnc->bnc", q.transpose(1, 2), keys)  # (B, N, C)
        if self.scaled_affinity:
            logits = logits / a
        attn = logits.softmax(dim=1)
        agg = torch.einsum("bnc,bdnc->bcd", attn, values).reshape(b, c, hd, wd)  # (B, C, hd, wd)
        agg = F.interpolate(agg, size=(h, w), mode="bilinear", align_corners=False)  # (B, C, H, W)
        details.update(channel_keys_src=k, channel_values_src=v, channel_keys=keys,
                       channel_values=values, channel_positions=pos, channel_affinity=attn)
        return self.channel_out(agg)
