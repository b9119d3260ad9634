"""The input normalisations a model can be trained with: the one list, torch-free.

``params.py`` validates ``model.input_norm`` against ``INPUT_NORMS`` without
importing torch; ``data.transforms.image_statistics`` computes them:

* ``imagenet``: subtract ImageNet's mean colour and divide by its standard
  deviation, per channel — what ImageNet-initialised backbones expect, and
  the only normalisation before the option existed;
* ``per_image``: subtract each image's own mean colour and divide by its own
  standard deviation, per channel, both over the whole frame (the unbiased
  estimate, at least ``MIN_STD`` so a flat image stays finite). Training
  takes the statistics on the full frame before scaling and cropping, so a
  crop is normalised with the statistics inference sees for its frame. It
  removes a frame's global brightness, contrast and colour cast: CamVid's
  training split mixes daylight sequences (mean grey level 108–137 at
  180×240) with the dusk sequence 0001TP (60), which the test split shares
  (README, "How the shared recipe was chosen").

The choice is recorded in the checkpoint's build arguments (the model's
``input_norm``), so evaluation normalises as training did.
"""
from __future__ import annotations

INPUT_NORMS: tuple[str, ...] = ("imagenet", "per_image")
MIN_STD = 1e-3  # floor of a per-image standard deviation, in [0, 1] grey levels


def input_norm_problem(input_norm: object) -> str | None:
    """What is wrong with a ``model.input_norm`` value, or None when it is one of ``INPUT_NORMS``."""
    if input_norm in INPUT_NORMS:
        return None
    return f"model.input_norm must be one of {', '.join(INPUT_NORMS)}, got {input_norm!r}"
