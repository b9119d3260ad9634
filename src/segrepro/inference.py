"""Batched inference over a packed split, shared by training's validation and the evaluate stage.

It belongs to neither stage: training imports it without importing
``segrepro.evaluation``, so the train stage's code (and its ``dvc.yaml``
deps) does not include the evaluation package.
"""
from __future__ import annotations

import torch
from torch import nn

from segrepro.data.transforms import normalize


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    """(N, H, W, 3) uint8 → (N, H, W) uint8 argmax labels, computed on ``device``.

    The images are normalised as the model was trained (its ``input_norm``; ``imagenet`` for a
    module that does not say).
    """
    model.eval()
    input_norm = getattr(model, "input_norm", "imagenet")
    out = []
    for start in range(0, len(images), batch_size):
        x = normalize(images[start:start + batch_size], input_norm).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(x)
        out.append(logits.argmax(1).to(torch.uint8).cpu())
    return torch.cat(out)
