"""DDSM's sampling and position-embedding primitives (ICIP 2021, arXiv 2105.11657; methods.md §2).

The regular sampling grid r_n, bilinear sampling at learned offsets
(``grid_sample``), and the sine position embeddings (absolute, or relative to
the map's extent), split from ``models.ddsm`` whose docstring explains the
choices; ``DDSMFusion`` there composes them.
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

RELATIVE_CYCLES = (0.5, 8.0)  # sine_relative: lowest and highest frequency, cycles per map extent



def regular_grid(num_samples: int, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> torch.Tensor:
    """k×k offsets r_n as (N, 2) rows of (x, y), row-major over (dy, dx)."""
    k = math.isqrt(num_samples)
    r = torch.arange(k, dtype=dtype, device=device) - k // 2
    dy, dx = torch.meshgrid(r, r, indexing="ij")  # (k, k) each
    return torch.stack((dx.flatten(), dy.flatten()), dim=1)  # (N, 2)


def dynamic_sample(src: torch.Tensor, offsets: torch.Tensor,
                   padding_mode: str = "border") -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinearly sample ``src`` (B, D, H, W) at p + r_n + offsets for every position p.

    ``offsets`` is (B, N, 2, H, W) in pixel units, (x, y) order. Returns the samples
    (B, D, N, H, W) and the absolute positions (B, N, 2, H, W).
    """
    b, d, h, w = src.shape
    n = offsets.shape[1]
    r = regular_grid(n, src.dtype, src.device)
    xs = torch.arange(w, dtype=src.dtype, device=src.device).view(1, 1, 1, w)  # (1, 1, 1, W)
    ys = torch.arange(h, dtype=src.dtype, device=src.device).view(1, 1, h, 1)  # (1, 1, H, 1)
    px = xs + r[:, 0].view(1, n, 1, 1) + offsets[:, :, 0]  # (B, N, H, W)
    py = ys + r[:, 1].view(1, n, 1, 1) + offsets[:, :, 1]  # (B, N, H, W)
    # align_corners=False convention: exact at pixel centres and still defined for size 1.
    grid = torch.stack(((2 * px + 1) / w - 1, (2 * py + 1) / h - 1), dim=-1)  # (B, N, H, W, 2)
    grid = grid.reshape(b, n * h, w, 2)  # (B, N·H, W, 2): N stacked along rows, one call
    out = F.grid_sample(src, grid, mode="bilinear", padding_mode=padding_mode,
                        align_corners=False)  # (B, D, N·H, W)
    return out.view(b, d, n, h, w), torch.stack((px, py), dim=2)  # (B, D, N, H, W), (B, N, 2, H, W)


def _sincos_planes(channels: int, phase_y: torch.Tensor, phase_x: torch.Tensor) -> torch.Tensor:
    """(h, F), (w, F) phases -> (1, C, h, w): [sin y, cos y, sin x, cos x] planes, zero-padded to C."""
    h, w = phase_y.shape[0], phase_x.shape[0]
    ey = torch.cat((phase_y.sin(), phase_y.cos()), 1)  # (h, 2F)
    ex = torch.cat((phase_x.sin(), phase_x.cos()), 1)  # (w, 2F)
    emb = torch.cat((ey.T[:, :, None].expand(-1, h, w), ex.T[:, None, :].expand(-1, h, w)))  # (4F, h, w)
    emb = F.pad(emb, (0, 0, 0, 0, 0, channels - emb.shape[0]))  # (C, h, w)
    return emb.unsqueeze(0)  # (1, C, h, w)


def sine_embedding(channels: int, size: tuple[int, int], frame: tuple[int, int],
                   dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Fixed 2-D sinusoid (1, C, h, w) at pixel centres of an h×w map covering an H×W frame."""
    (h, w), (fh, fw) = size, frame
    nf = channels // 4
    freq = 10000.0 ** (-torch.arange(nf, dtype=dtype, device=device) / max(nf, 1))  # (F,)
    # Centres in frame-pixel units, so up(e_ph) lines up with e_pl across levels.
    y = (torch.arange(h, dtype=dtype, device=device) + 0.5) * fh / h - 0.5  # (h,)
    x = (torch.arange(w, dtype=dtype, device=device) + 0.5) * fw / w - 0.5  # (w,)
    return _sincos_planes(channels, y[:, None] * freq, x[:, None] * freq)


def relative_sine_embedding(channels: int, size: tuple[int, int], dtype: torch.dtype,
                            device: torch.device) -> torch.Tensor:
    """Sinusoid (1, C, h, w) of u = (i + ½)/n per axis; frequencies span ``RELATIVE_CYCLES``."""
    h, w = size
    nf = channels // 4
    lo, hi = RELATIVE_CYCLES
    cycles = lo * (hi / lo) ** (torch.arange(nf, dtype=dtype, device=device) / max(nf - 1, 1))  # (F,)
    u_y = (torch.arange(h, dtype=dtype, device=device) + 0.5) / h  # (h,)
    u_x = (torch.arange(w, dtype=dtype, device=device) + 0.5) / w  # (w,)
    return _sincos_planes(channels, 2 * math.pi * u_y[:, None] * cycles,
                          2 * math.pi * u_x[:, None] * cycles)


@lru_cache(maxsize=64)
def _cached_embedding(kind: str, channels: int, size: tuple[int, int], frame: tuple[int, int],
                      dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The fixed embedding for one shape, computed once: it has no parameters, and the sin/cos
    tables cost more than the add at every call. Callers only read it (no in-place use)."""
    if kind == "sine":
        return sine_embedding(channels, size, frame, dtype, device)
    return relative_sine_embedding(channels, size, dtype, device)
