"""Device choice and determinism, shared by training and evaluation.

On CPU, deterministic algorithms, a fixed thread count and one seeded
generator make the same seed give the same checkpoint bit for bit. On CUDA
we use bf16 autocast and cuDNN autotuning instead, trading bit-exactness for
speed (stated in the README).
"""
from __future__ import annotations

import random

import numpy as np
import torch

from segrepro.errors import SegreproError


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SegreproError("train.device is 'cuda' but no CUDA device is visible; use 'auto' or 'cpu'")
    return torch.device(name)


def make_deterministic(seed: int, threads: int, device: torch.device) -> torch.Generator:
    """Seed every RNG and return the generator that drives data order and augmentation."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    else:
        torch.backends.cudnn.benchmark = True
    return torch.Generator().manual_seed(seed)
