"""benchmarks/epoch_breakdown.py times the epoch the recipe trains: its layout and input normalisation.

An earlier version kept NCHW and ImageNet statistics whatever params.yaml said, so
its "one real epoch" timed another layout than ``run_training`` uses. This checks,
on the synthetic split, what reaches the model: the memory format of the batch and
of the weights, and the normalisation passed to ``augment``.
"""
from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest
import torch
import yaml

import segrepro.training.train as train_module
from segrepro.params import load_params
from tests.conftest import REPO, tiny_params

sys.path.insert(0, str(REPO / "benchmarks"))
import epoch_breakdown  # noqa: E402


@pytest.mark.parametrize("channels_last, input_norm", [(True, "per_image"), (False, "imagenet")])
def test_the_epoch_follows_the_recipes_layout_and_normalisation(monkeypatch, tmp_path, synthetic_processed,
                                                                channels_last, input_norm):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tiny_params(train={"channels_last": channels_last},
                                               model={"input_norm": input_norm})))
    params = load_params(path)
    seen = SimpleNamespace(norms=[], batch_nhwc=[], weight_nhwc=[])
    augment = train_module.augment  # the benchmark's batches come from training.train.cpu_batch

    def recording_augment(*args, **kwargs):
        seen.norms.append(args[7] if len(args) > 7 else kwargs.get("input_norm", "imagenet"))
        return augment(*args, **kwargs)

    monkeypatch.setattr(train_module, "augment", recording_augment)
    build = epoch_breakdown.build_model

    def recording_build(**kwargs):
        model = build(**kwargs)
        original = model.forward

        def forward(x):
            seen.batch_nhwc.append(x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous())
            conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
            seen.weight_nhwc.append(conv.weight.is_contiguous(memory_format=torch.channels_last)
                                    and not conv.weight.is_contiguous())
            return original(x)

        model.forward = forward
        return model

    monkeypatch.setattr(epoch_breakdown, "build_model", recording_build)
    data = epoch_breakdown.load_data(synthetic_processed, params.train.class_weighting)
    result = epoch_breakdown.epoch_breakdown(params, "baseline", data, (48, 64), threads=1)
    assert result["steps"] >= 1 and seen.norms
    assert set(seen.norms) == {input_norm}
    train_batches = seen.batch_nhwc[:result["steps"]]  # validation follows, through predict
    assert set(train_batches) == {channels_last} and set(seen.weight_nhwc[:result["steps"]]) == {channels_last}
