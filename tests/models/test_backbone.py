from __future__ import annotations

import hashlib

import pytest
import torch

from segrepro.errors import SegreproError
from segrepro.models.backbone import ResNet, load_pretrained


def torchvision_keys(depths, bottleneck: bool) -> set[str]:
    """The state-dict keys torchvision's ResNet has (minus fc), written out from its layout."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = {"conv1.weight"} | {f"bn1.{s}" for s in bn}
    convs = 3 if bottleneck else 2
    for stage, depth in enumerate(depths, 1):
        for block in range(depth):
            p = f"layer{stage}.{block}"
            for c in range(1, convs + 1):
                keys |= {f"{p}.conv{c}.weight"} | {f"{p}.bn{c}.{s}" for s in bn}
            if block == 0 and (stage > 1 or bottleneck):
                keys |= {f"{p}.downsample.0.weight"} | {f"{p}.downsample.1.{s}" for s in bn}
    return keys


@pytest.mark.parametrize("name,depths,bottleneck", [("resnet18", (2, 2, 2, 2), False),
                                                    ("resnet50", (3, 4, 6, 3), True)])
def test_parameter_names_match_torchvision(name, depths, bottleneck):
    assert set(ResNet(name).state_dict()) == torchvision_keys(depths, bottleneck)


@pytest.mark.parametrize("os_,expected", [(8, (4, 8, 8, 8)), (16, (4, 8, 16, 16)), (32, (4, 8, 16, 32))])
def test_output_stride_and_feature_info(os_, expected):
    model = ResNet("resnet18", os_).eval()
    feats = model(torch.zeros(1, 3, 97, 131))
    assert model.feature_info.strides == expected
    for f, c, s in zip(feats, model.feature_info.channels, expected):
        assert f.shape[1] == c
        assert f.shape[-2:] == (-(-97 // s), -(-131 // s)) or f.shape[-2] in (97 // s, 97 // s + 1)


def test_pretrained_file_roundtrip_and_checks(tmp_path):
    source = ResNet("resnet18")
    state = dict(source.state_dict(), **{"fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)})
    path = tmp_path / "r18.pth"
    torch.save(state, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    target = ResNet("resnet18")
    load_pretrained(target, str(path), digest)
    for k, v in source.state_dict().items():
        assert torch.equal(v, target.state_dict()[k]), k
    with pytest.raises(SegreproError, match="does not match model.pretrained_sha256"):
        load_pretrained(target, str(path), "0" * 64)
    with pytest.raises(SegreproError, match="does not fit backbone"):
        load_pretrained(ResNet("resnet50"), str(path), None)
    with pytest.raises(SegreproError, match="does not exist"):
        load_pretrained(target, str(tmp_path / "nope.pth"), None)
    (tmp_path / "bad.pth").write_bytes(b"garbage")
    with pytest.raises(SegreproError, match="not a readable PyTorch state dict"):
        load_pretrained(target, str(tmp_path / "bad.pth"), None)


def test_url_weights_require_a_checksum():
    with pytest.raises(SegreproError, match="pretrained_sha256"):
        load_pretrained(ResNet("resnet18"), "https://example.invalid/w.pth", None)
