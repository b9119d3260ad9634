"""Semantic Diffusion Network (SDN) neck.

Paper: "Semantic Diffusion Network for Semantic Segmentation", Haoru Tan,
Sitong Wu, Jimin Pi, NeurIPS 2022, arXiv 2302.02057. No official code exists;
this is the reconstruction of ``docs/methods.md`` §1.

Implemented (one learned step of semantic anisotropic diffusion):

* (D2)  U'(p) = U(p) + λ Σ_q g(‖V(q) − V(p)‖) (U(q) − U(p)), learned as SDC + fusion.
* (SDC) Y_o(p) = Σ_c Σ_k W[o, c, k] · S_c(p, p+k) · (U_c(p+k) − U_c(p)) over a k×k window.
* (SIM) S_c(p, q) = g(d), d = |V_c(q) − V_c(p)| (per channel) or the RMS of V(q) − V(p).
* Fusion: Y' = ReLU(BN(SDC(U, V))); out = Conv1×1_{C+C_out→C}(concat(U, Y')).
* Neck (Fig. 4): level i is guided by the input level i+1; the deepest level by a
  3×3 stride-2 conv of itself (Fig. 4(a) for a single level).
* Ablation operators: ``'vanilla'`` = Conv3×3(U); ``'cdc'`` = Conv3×3(U) − θ·U·ΣW
  (central difference conv, Yu et al. CVPR 2020).

Choices where the paper is silent (all constructor options; default first):

* similarity g (``similarity``): ``'charbonnier'`` 1/sqrt(1+d²/λ²), as the
  re-implementation cited in methods.md; ``'exp'`` exp(−d²/λ²); ``'rational'`` 1/(1+d²/λ²).
* λ (``lam``=1.0, fixed; ``learn_lam``=False learns log λ instead).
* d (``similarity_mode``): ``'per_channel'`` |ΔV_c|, one S per channel and offset;
  ``'vector_norm'`` ‖ΔV‖₂/sqrt(C_v), one S per offset shared over channels. The
  sqrt(C_v) makes λ mean the same per-channel scale in both modes. g is computed
  from d², so there is no sqrt singularity in the gradient at ΔV = 0.
* guidance projection: only in per-channel mode with C_v ≠ C, a bias-free 1×1
  conv V → C channels (a bias would cancel in ΔV). It runs before the resize,
  which is exact (both are linear and commute) and cheaper on the coarse map.
* guidance resize: bilinear, align_corners=False, inside SDC, to U's H×W.
* padding (``guide_padding``): U is zero-padded like the conv it replaces, so
  S ≡ 1 gives CDC with θ = 1 exactly; V is ``'replicate'``-padded so the image
  border is not read as a semantic edge (``'zeros'`` also offered).
* window (``kernel_size``=3, ``dilation``=1); C_out of SDC = C (``sdc_channels``=None).
* init (``weight_init``): ``'uniform'`` U(−0.1, 0.1), no bias, as the cited
  re-implementation; ``'kaiming'`` = nn.Conv2d's default.
* BN + ReLU after SDC (``post_sdc_bn_relu``=True).
* fusion: 1×1 conv with bias, no BN/ReLU after it (``fusion_bn_relu``=False),
  no extra identity residual (``fusion_residual``=False).
* init of the fusion (``identity_start``=False): the paper gives none, and from scratch
  the neck replaces every level by a random 1×1 mix from step 0. True (needs
  fusion_residual=True and fusion_bn_relu=False) zeroes the fusion's 1×1 conv (weight and
  bias), so each block starts as the identity, out = U exactly (zero-init residual branch,
  as zero-γ in Goyal et al. 2017, arXiv 1706.02677); on the first step only that conv gets
  gradient. With a ReLU last a zero output would get no gradient (ReLU'(0) = 0) and stay 0.
  Validation (2026-11-28, pipeline recipe, seeds 0 / 1): the identity start with the residual
  gave 0.486 / 0.470 mIoU against the default's 0.506 / 0.483, so the default stays (README).
* deepest-level guidance: 3×3 stride-2 conv C_L→C_L (no bias) + BN + ReLU; it and
  the projections exist only for ``operator='sdc'`` (the others ignore V).
* CDC θ (``theta``=0.7, the CDC paper's value); memory (``chunk_channels``=None:
  process input channels in chunks, with activation checkpointing when training).
"""
from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from segrepro.errors import SegreproError

OPERATORS = ("sdc", "cdc", "vanilla")
SIMILARITIES = ("charbonnier", "exp", "rational")
SIMILARITY_MODES = ("per_channel", "vector_norm")
GUIDE_PADDINGS = ("replicate", "zeros")
WEIGHT_INITS = ("uniform", "kaiming")


def _check_choice(name: str, value: object, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise SegreproError(f"SDN: {name}={value!r} is not supported; use one of {list(allowed)}")


def _check_positive(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise SegreproError(f"SDN: {name}={value!r} must be a finite number > 0")


def neighbour_differences(x: torch.Tensor, kernel_size: int, dilation: int,
                          padding_mode: str) -> torch.Tensor:
    """x(p+k) − x(p) for every offset k of the window: (B, C, K, H, W), K = kernel_size²."""
    b, c, h, w = x.shape
    r = dilation * (kernel_size // 2)
    if padding_mode == "replicate":
        padded = F.pad(x, (r, r, r, r), mode="replicate")  # (B, C, H+2r, W+2r)
        cols = F.unfold(padded, kernel_size, dilation=dilation)  # (B, C*K, H*W)
    else:
        cols = F.unfold(x, kernel_size, dilation=dilation, padding=r)  # (B, C*K, H*W)
    return cols.view(b, c, kernel_size * kernel_size, h, w) - x.unsqueeze(2)  # (B, C, K, H, W)


class SemanticDifferenceConv(nn.Module):
    """SDC (or the vanilla / CDC ablation operators) with a k×k kernel and no bias.

    ``forward(u, v)``: u (B, C, H, W); v (B, C_v, H_v, W_v) at any resolution,
    resized here to H×W. v may be None for ``'vanilla'`` and ``'cdc'``.
    Returns (B, out_channels, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int, guide_channels: int, *,
                 operator: str = "sdc", similarity: str = "charbonnier", lam: float = 1.0,
                 learn_lam: bool = False, similarity_mode: str = "per_channel",
                 theta: float = 0.7, kernel_size: int = 3, dilation: int = 1,
                 guide_padding: str = "replicate", weight_init: str = "uniform",
                 chunk_channels: int | None = None) -> None:
        super().__init__()
        _check_choice("operator", operator, OPERATORS)
        _check_choice("similarity", similarity, SIMILARITIES)
        _check_choice("similarity_mode", similarity_mode, SIMILARITY_MODES)
        _check_choice("guide_padding", guide_padding, GUIDE_PADDINGS)
        _check_choice("weight_init", weight_init, WEIGHT_INITS)
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("guide_channels", guide_channels), ("dilation", dilation)):
            if not (isinstance(value, int) and value >= 1):
                raise SegreproError(f"SDN: {name}={value!r} must be an integer >= 1")
        if not (isinstance(kernel_size, int) and kernel_size >= 1 and kernel_size % 2 == 1):
            raise SegreproError(f"SDN: kernel_size={kernel_size!r} must be an odd integer >= 1")
        if chunk_channels is not None and not (isinstance(chunk_channels, int) and chunk_channels >= 1):
            raise SegreproError(f"SDN: chunk_channels={chunk_channels!r} must be None or an integer >= 1")
        _check_positive("lam", lam)
        if not (isinstance(theta, (int, float)) and 0.0 <= theta <= 1.0):
            raise SegreproError(f"SDN: theta={theta!r} must be in [0, 1]")
        self.operator, self.similarity_fn, self.similarity_mode = operator, similarity, similarity_mode
        self.theta, self.kernel_size, self.dilation = float(theta), kernel_size, dilation
        self.guide_padding, self.chunk_channels = guide_padding, chunk_channels
        self.in_channels, self.out_channels, self.guide_channels = in_channels, out_channels, guide_channels
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        if weight_init == "uniform":
            nn.init.uniform_(self.weight, -0.1, 0.1)
        else:
            nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        # A fixed λ stays a Python float so float64 runs are not rounded through float32.
        self.lam = float(lam)
        self.log_lam = nn.Parameter(torch.tensor(math.log(lam))) if learn_lam else None
        needs_projection = (operator == "sdc" and similarity_mode == "per_channel"
                            and guide_channels != in_channels)
        self.project = nn.Conv2d(guide_channels, in_channels, 1, bias=False) if needs_projection else None

    def prepare_guide(self, v: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        """Project v to C channels if needed (on the coarse map), then resize to ``size``."""
        if self.project is not None:
            v = self.project(v)  # (B, C, H_v, W_v)
        if tuple(v.shape[-2:]) != tuple(size):
            v = F.interpolate(v, size=tuple(size), mode="bilinear", align_corners=False)  # (B, C', H, W)
        return v

    def _g(self, d2: torch.Tensor) -> torch.Tensor:
        inv_lam2 = self.lam ** -2 if self.log_lam is None else torch.exp(-2.0 * self.log_lam)
        z = d2 * inv_lam2  # d² / λ²
        if self.similarity_fn == "charbonnier":
            return torch.rsqrt(1.0 + z)
        if self.similarity_fn == "exp":
            return torch.exp(-z)
        return 1.0 / (1.0 + z)

    def _vector_d2(self, v: torch.Tensor) -> torch.Tensor:
        # Summed chunk by chunk so the (B, C_v, K, H, W) tensor never exists whole.
        step = self.chunk_channels or v.shape[1]
        d2 = sum(neighbour_differences(v[:, i:i + step], self.kernel_size, self.dilation,
                                       self.guide_padding).square().sum(1, keepdim=True)
                 for i in range(0, v.shape[1], step))
        return d2 / v.shape[1]  # (B, 1, K, H, W)

    def similarity(self, v: torch.Tensor) -> torch.Tensor:
        """S for a guidance map already prepared (``prepare_guide``) at U's size.

        Returns (B, C, K, H, W) in per-channel mode, (B, 1, K, H, W) in vector-norm mode.
        """
        if self.similarity_mode == "vector_norm":
            return self._g(self._vector_d2(v))
        dv = neighbour_differences(v, self.kernel_size, self.dilation, self.guide_padding)
        return self._g(dv.square())  # (B, C, K, H, W)

    def _sdc_chunk(self, u: torch.Tensor, w: torch.Tensor, v: torch.Tensor | None,
                   s: torch.Tensor | None) -> torch.Tensor:
        b, c, h, wd = u.shape
        du = neighbour_differences(u, self.kernel_size, self.dilation, "zeros")  # (B, c, K, H, W)
        if s is None:  # per-channel: S for exactly this chunk of channels
            s = self.similarity(v)  # (B, c, K, H, W)
        x = (du * s).view(b, c * du.shape[2], h * wd)  # (B, c*K, H*W), the unfold layout
        w = w.reshape(w.shape[0], -1)  # (C_out, c*K), same (channel, offset) order as x
        out = torch.einsum("oj,bjl->bol", w, x)  # (B, C_out, H*W)
        return out.view(b, -1, h, wd)  # (B, C_out, H, W)

    def forward(self, u: torch.Tensor, v: torch.Tensor | None = None) -> torch.Tensor:
        pad = self.dilation * (self.kernel_size // 2)
        if self.operator != "sdc":
            y = F.conv2d(u, self.weight, padding=pad, dilation=self.dilation)  # (B, C_out, H, W)
            if self.operator == "cdc":
                y = y - self.theta * F.conv2d(u, self.weight.sum((2, 3), keepdim=True))
            return y
        if v is None:
            raise SegreproError("SDN: operator='sdc' needs a guidance tensor v; got None")
        v = self.prepare_guide(v, u.shape[-2:])  # (B, C or C_v, H, W)
        s = self._g(self._vector_d2(v)) if self.similarity_mode == "vector_norm" else None
        step = self.chunk_channels or u.shape[1]
        if step >= u.shape[1]:
            return self._sdc_chunk(u, self.weight, v, s)
        out = 0
        for i in range(0, u.shape[1], step):
            args = (u[:, i:i + step], self.weight[:, i:i + step],
                    None if s is not None else v[:, i:i + step], s)
            # Recompute the (B, c, K, H, W) intermediates in backward instead of storing them.
            if torch.is_grad_enabled():
                out = out + checkpoint(self._sdc_chunk, *args, use_reentrant=False)
            else:
                out = out + self._sdc_chunk(*args)
        return out


class SDNBlock(nn.Module):
    """SDC + fusion for one scale: ``forward(u, v) -> (B, channels, H, W)``."""

    def __init__(self, channels: int, guide_channels: int, *, sdc_channels: int | None = None,
                 post_sdc_bn_relu: bool = True, fusion_bn_relu: bool = False,
                 fusion_residual: bool = False, identity_start: bool = False,
                 **sdc_options: Any) -> None:
        super().__init__()
        if not isinstance(identity_start, bool):
            raise SegreproError(f"SDN: identity_start={identity_start!r} must be true or false")
        if identity_start and (not fusion_residual or fusion_bn_relu):
            raise SegreproError("SDN: identity_start=True needs fusion_residual=True and "
                                "fusion_bn_relu=False (a zero fusion must add 0 to the input and "
                                "a ReLU after it would never let it leave 0)")
        allowed = ("operator", "similarity", "lam", "learn_lam", "similarity_mode", "theta",
                   "kernel_size", "dilation", "guide_padding", "weight_init", "chunk_channels")
        for key in sdc_options:
            if key not in allowed:  # the block's own keywords and SDC's are the options of params model.sdn
                block = [name for name, p in inspect.signature(SDNBlock).parameters.items()
                         if p.kind is p.KEYWORD_ONLY]
                options = [*block, *allowed]
                close = difflib.get_close_matches(key, options, 1)
                raise SegreproError(f"SDN: unknown option {key!r}{f' (did you mean {close[0]}?)' if close else ''}; "
                                    f"its options are {', '.join(options)}")
        c_out = channels if sdc_channels is None else sdc_channels
        self.sdc = SemanticDifferenceConv(channels, c_out, guide_channels, **sdc_options)
        self.post = (nn.Sequential(nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))
                     if post_sdc_bn_relu else nn.Identity())
        fuse: list[nn.Module] = [nn.Conv2d(channels + c_out, channels, 1, bias=True)]
        if fusion_bn_relu:
            fuse += [nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
        self.fuse = nn.Sequential(*fuse)
        if identity_start:  # the fusion conv outputs 0: block(u, v) = u + 0
            nn.init.zeros_(fuse[0].weight)
            nn.init.zeros_(fuse[0].bias)
        self.fusion_residual = fusion_residual

    def forward(self, u: torch.Tensor, v: torch.Tensor | None = None) -> torch.Tensor:
        y = self.post(self.sdc(u, v))  # (B, C_out, H, W)
        out = self.fuse(torch.cat([u, y], dim=1))  # (B, C, H, W)
        return u + out if self.fusion_residual else out


class SDNNeck(nn.Module):
    """One SDNBlock per level; shapes and channels in = out.

    ``forward(feats)`` takes 1..L maps, finest first. Level i is guided by input
    level i+1; the deepest level by a learned 3×3 stride-2 conv-BN-ReLU of itself.
    ``block_options`` go to every ``SDNBlock`` (and through it to SDC).
    """

    def __init__(self, in_channels: Sequence[int], **block_options: Any) -> None:
        super().__init__()
        chans = list(in_channels)
        if not chans or not all(isinstance(c, int) and c >= 1 for c in chans):
            raise SegreproError(f"SDN: in_channels={chans!r} must be a non-empty list of integers >= 1")
        self.out_channels = chans
        guides = chans[1:] + chans[-1:]
        self.blocks = nn.ModuleList(SDNBlock(c, g, **block_options) for c, g in zip(chans, guides))
        top = chans[-1]
        self.top_guide = (nn.Sequential(nn.Conv2d(top, top, 3, stride=2, padding=1, bias=False),
                                        nn.BatchNorm2d(top), nn.ReLU(inplace=True))
                          if self.blocks[-1].sdc.operator == "sdc" else None)

    def forward(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if len(feats) != len(self.blocks):
            raise SegreproError(f"SDN: got {len(feats)} feature maps, the neck was built for "
                                f"{len(self.blocks)} (in_channels={self.out_channels})")
        top = self.top_guide(feats[-1]) if self.top_guide is not None else None  # (B, C_L, ⌈H_L/2⌉, ⌈W_L/2⌉)
        guides = list(feats[1:]) + [top]
        return [block(f, g) for block, f, g in zip(self.blocks, feats, guides)]
