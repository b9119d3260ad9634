"""Binary morphology on boolean or bit-packed masks for the boundary metrics (methods.md §5).

One-pixel boundary maps as DAVIS's ``seg2bmap``, Euclidean disk dilation and the
windowed AND behind Boundary IoU's inner band, vectorised over any leading dimensions; split from
``metrics.boundary``, which defines the three metrics on top of them.
"""
from __future__ import annotations

import math

import torch

from segrepro.errors import SegreproError


def _desc(x: object) -> str:
    return f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__



def _check_mask(name: str, masks: torch.Tensor, radius: int) -> None:
    if not isinstance(masks, torch.Tensor) or masks.dtype not in (torch.bool, torch.uint8) \
            or masks.dim() < 2 or isinstance(radius, bool) or not isinstance(radius, int) \
            or radius < 0:
        raise SegreproError(f"{name} needs a bool or bit-packed uint8 tensor (..., H, W) and an "
                            f"int radius >= 0, got {_desc(masks)}, {radius!r}")


def _and_window(x: torch.Tensor, axis: int, lo: int, hi: int) -> torch.Tensor:
    """AND of x over offsets lo..hi (lo <= 0 <= hi) along ``axis``; outside counts as 0.

    The window [a, b] grows by AND-ing with itself shifted by s <= b - a + 1 (so the union
    stays contiguous): O(log(hi - lo)) steps.
    """
    out, a, b, n = x, 0, 0, x.shape[axis]
    while a > lo or b < hi:
        s = min(b - a + 1, hi - b) if b < hi else -min(b - a + 1, a - lo)
        k, new = min(abs(s), n), torch.empty_like(out)
        keep, drop = (0, n - k) if s > 0 else (k, 0)  # s > 0: new[i] = out[i] & out[i + s]
        torch.bitwise_and(out.narrow(axis, keep, n - k), out.narrow(axis, k - keep, n - k),
                          out=new.narrow(axis, keep, n - k))
        new.narrow(axis, drop, k).zero_()  # these windows reach outside
        out = new
        a, b = (a, b + s) if s > 0 else (a + s, b)
    return x.clone() if out is x else out


def seg2bmap(masks: torch.Tensor) -> torch.Tensor:
    """One-pixel boundary map of bool or bit-packed uint8 masks (..., H, W) (§5.1 item 2).

    (y, x) is a boundary iff it differs from its right, bottom or bottom-right neighbour,
    among those inside the image: the DAVIS rule, whose last row compares only rightwards,
    last column only downwards, and whose bottom-right pixel is never a boundary. The map sits
    half a pixel towards the origin; the image border is never a boundary.
    """
    _check_mask("seg2bmap", masks, 0)
    m, b = masks, torch.zeros_like(masks)
    core = m[..., :-1, :-1]
    b[..., :-1, :-1] = (core ^ m[..., :-1, 1:]) | (core ^ m[..., 1:, :-1]) | (core ^ m[..., 1:, 1:])
    b[..., -1, :-1] = m[..., -1, :-1] ^ m[..., -1, 1:]
    b[..., :-1, -1] = m[..., :-1, -1] ^ m[..., 1:, -1]
    return b


def disk_dilation(masks: torch.Tensor, radius: int) -> torch.Tensor:
    """Dilation of bool or bit-packed uint8 masks (..., H, W) by the disk dy² + dx² <= r².

    Row dy of the disk spans |dx| <= isqrt(r² - dy²): a running horizontal dilation, widened
    as |dy| goes from r to 0, is OR-ed in shifted by ±dy (O(r) shifted ORs, not O(r²)).
    """
    _check_mask("disk_dilation", masks, radius)
    out, h, width = torch.zeros_like(masks), masks.clone(), 0
    for dy in range(radius, -1, -1):
        while width < math.isqrt(radius * radius - dy * dy):
            width += 1
            h[..., :, width:] |= masks[..., :, :-width]
            h[..., :, :-width] |= masks[..., :, width:]
        if dy == 0:
            out |= h
        else:
            out[..., dy:, :] |= h[..., :-dy, :]
            out[..., :-dy, :] |= h[..., dy:, :]
    return out

