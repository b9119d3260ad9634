"""The recipe is deterministic on CPU and actually learns (on generated CamVid-shaped scenes)."""
from __future__ import annotations

import copy
import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from segrepro.checkpoint import load_checkpoint
from segrepro.data.dataset import load_split
from segrepro.data.transforms import augment
from segrepro.errors import SegreproError
from segrepro.models.build import METHODS, build_model
from segrepro.params import load_params
from segrepro.training.stage import train
from tests.conftest import tiny_params


def run(tmp_path: Path, processed: Path, name: str, **overrides) -> tuple[Path, dict]:
    params_path = tmp_path / f"{name}.yaml"
    params_path.write_text(yaml.safe_dump(tiny_params(**overrides)))
    ckpt = tmp_path / f"{name}.pt"
    last = train(load_params(params_path), "baseline", 0, processed, ckpt, tmp_path / f"live-{name}")
    return ckpt, last


def test_same_seed_gives_identical_checkpoint_and_metrics(tmp_path, synthetic_processed):
    a, last_a = run(tmp_path, synthetic_processed, "a")
    b, last_b = run(tmp_path, synthetic_processed, "b")
    assert a.read_bytes() == b.read_bytes()
    assert last_a == last_b
    live = json.loads((tmp_path / "live-a" / "metrics.json").read_text())
    assert live["val"]["miou"] == last_a["val_miou"]


def test_different_seed_gives_different_weights(tmp_path, synthetic_processed):
    a, _ = run(tmp_path, synthetic_processed, "a")
    params_path = tmp_path / "p.yaml"
    params_path.write_text(yaml.safe_dump(tiny_params()))
    c = tmp_path / "c.pt"
    train(load_params(params_path), "baseline", 1, synthetic_processed, c, tmp_path / "live-c")
    assert a.read_bytes() != c.read_bytes()


def test_failed_training_leaves_no_checkpoint(tmp_path, synthetic_processed):
    # params.yaml refuses train.lr >= 1 (params_ranges), so the diverging rate is set past the file's check.
    params_path = tmp_path / "bad.yaml"
    params_path.write_text(yaml.safe_dump(tiny_params()))
    params = load_params(params_path)
    params = dataclasses.replace(params, train=dataclasses.replace(params.train, lr=1e30))
    with pytest.raises(SegreproError, match="diverged"):
        train(params, "baseline", 0, synthetic_processed, tmp_path / "bad.pt", tmp_path / "live-bad")
    assert not (tmp_path / "bad.pt").exists()


def test_augment_is_seeded_and_respects_ignore(synthetic_processed):
    split = load_split(synthetic_processed, "train")
    outs = []
    for _ in range(2):
        g = torch.Generator().manual_seed(3)
        outs.append(augment(split.images, split.labels, (64, 80), (0.5, 0.6), True, 11, g))
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])
    x, y = outs[0]
    assert x.shape == (4, 3, 64, 80) and y.shape == (4, 64, 80)
    # Scaled to ≤ 0.6 × 48×64 the image is smaller than the crop: padding is void.
    assert (y == 11).float().mean() > 0.3


@pytest.mark.parametrize("method", sorted(METHODS))
def test_loss_falls_on_a_fixed_batch(method, synthetic_processed):
    torch.manual_seed(0)
    split = load_split(synthetic_processed, "train")
    decoder = "fpn"
    model = build_model(method=method, num_classes=11, backbone="resnet18", output_stride=8,
                        decoder=decoder, channels=32)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = augment(split.images, split.labels, (48, 64), (1.0, 1.0), False, 11, torch.Generator().manual_seed(0))
    losses = []
    for _ in range(6):
        loss = F.cross_entropy(model(x), y.long(), ignore_index=11)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


def test_adamw_takes_momentum_as_beta1_and_keeps_the_lr_scale_groups(tmp_path):
    from segrepro.training.train import make_optimizer

    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tiny_params(train={"optimizer": "adamw", "momentum": 0.8, "lr": 0.002,
                                                      "weight_decay": 0.01})))
    t = load_params(path).train
    model = build_model(method="ddsm", num_classes=11, backbone="resnet18", output_stride=8, decoder="fpn",
                        channels=32, method_options={"offset_lr_scale": 0.1})
    opt = make_optimizer(model, t)
    assert isinstance(opt, torch.optim.AdamW)
    assert [g["betas"] for g in opt.param_groups] == [(0.8, 0.999)] * len(opt.param_groups)
    assert sorted(g["lr"] for g in opt.param_groups) == pytest.approx([0.0002, 0.002])
    assert all(g["weight_decay"] == 0.01 for g in opt.param_groups)
    assert all(g["fused"] for g in opt.param_groups)


def test_fused_adamw_follows_the_reference_update_rule(tmp_path):
    """The fused kernel makes the same steps as torch's per-tensor AdamW, up to rounding."""
    from segrepro.training.train import make_optimizer

    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tiny_params(train={"optimizer": "adamw", "lr": 0.01, "weight_decay": 0.05})))
    t = load_params(path).train
    torch.manual_seed(0)
    # No bias before the BatchNorm: its gradient is rounding noise, which Adam scales up to
    # lr-sized steps that differ between any two kernels (ResNet's convolutions have none).
    fused = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.Conv2d(8, 4, 1))
    reference = copy.deepcopy(fused)
    initial = [p.detach().clone() for p in fused.parameters()]
    opt_f = make_optimizer(fused, t)
    opt_r = torch.optim.AdamW(reference.parameters(), lr=0.01, betas=(t.momentum, 0.999), weight_decay=0.05,
                              foreach=False)
    x = torch.randn(2, 3, 9, 9)
    for _ in range(5):
        for model, opt in ((fused, opt_f), (reference, opt_r)):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
    for a, b, a0 in zip(fused.parameters(), reference.parameters(), initial):
        assert (a - a0).abs().max() > 1e-3  # five lr-0.01 steps moved every tensor
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_adamw_recipe_trains_deterministically(tmp_path, synthetic_processed):
    a, last_a = run(tmp_path, synthetic_processed, "adam-a", train={"optimizer": "adamw", "lr": 0.001})
    b, last_b = run(tmp_path, synthetic_processed, "adam-b", train={"optimizer": "adamw", "lr": 0.001})
    assert a.read_bytes() == b.read_bytes() and last_a == last_b
    sgd, _ = run(tmp_path, synthetic_processed, "sgd", train={"optimizer": "sgd", "lr": 0.001})
    assert load_checkpoint(a)["train"]["optimizer"] == "adamw"
    assert a.read_bytes() != sgd.read_bytes()


def _card_with(processed: Path, tmp_path: Path, change) -> Path:
    """A copy of ``processed`` whose card.json has been edited by ``change(card)``."""
    copy = tmp_path / "processed"
    shutil.copytree(processed, copy)
    card = json.loads((copy / "card.json").read_text())
    change(card)
    (copy / "card.json").write_text(json.dumps(card))   # json writes nan and inf as NaN and Infinity
    return copy


def _set_road(value):
    return lambda card: card["class_weights"]["median_frequency"].update(Road=value)


BAD_CARDS = [
    ("nan", _set_road(float("nan")), "class weight for Road is nan"),
    ("negative", _set_road(-5.0), "class weight for Road is negative (-5.0)"),
    ("inf", _set_road(float("inf")), "class weight for Road is infinite (inf)"),
    ("float32-overflow", _set_road(1e39), "class weight for Road is too large (1e+39"),
    ("null", _set_road(None), "class weight for Road is not a number (null)"),
    ("string", _set_road("1.0"), "class weight for Road is not a number (a string)"),
    ("all-zero", lambda card: card["class_weights"].update(
        median_frequency=dict.fromkeys(card["class_weights"]["median_frequency"], 0)), "class weight for Sky is zero"),
    ("list-table", lambda card: card["class_weights"].update(median_frequency=[1.0] * 11),
     "holds no median_frequency class weights (class_weights.median_frequency is a list"),
    ("null-class-weights", lambda card: card.update(class_weights=None),
     "holds no median_frequency class weights (class_weights is null"),
    ("missing-class", lambda card: card["class_weights"]["median_frequency"].pop("Road"),
     "(missing: Road; unknown: -)"),
]


@pytest.mark.parametrize("change, expected", [pytest.param(*case[1:], id=case[0]) for case in BAD_CARDS])
def test_bad_card_weights_are_refused_naming_the_fix(tmp_path, synthetic_processed, change, expected):
    from segrepro.training.train import class_weights

    processed = _card_with(synthetic_processed, tmp_path, change)
    for scheme in ("median_frequency", "sqrt_median_frequency"):
        with pytest.raises(SegreproError) as info:
            class_weights(processed, scheme, torch.device("cpu"))
        message = str(info.value)
        assert message.startswith(f"{processed / 'card.json'} ") and expected in message, message
        assert message.endswith("; rerun `dvc repro preprocess`"), message
    assert class_weights(processed, "none", torch.device("cpu")) is None   # unweighted needs no table


@pytest.mark.parametrize("value, expected", [(float("nan"), "is nan"), (-5.0, "is negative")], ids=["nan", "negative"])
def test_training_refuses_a_bad_card_weight_before_training(tmp_path, synthetic_processed, value, expected):
    """NaN used to end as 'training diverged ... lower train.lr', -5 trained and wrote a checkpoint."""
    processed = _card_with(synthetic_processed, tmp_path, _set_road(value))
    with pytest.raises(SegreproError, match=rf"class weight for Road {expected}.*rerun `dvc repro preprocess`"):
        run(tmp_path, processed, "bad-weight", train={"class_weighting": "median_frequency"})
    assert not (tmp_path / "bad-weight.pt").exists()
