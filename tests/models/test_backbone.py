from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from pathlib import Path

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


@pytest.fixture()
def served(tmp_path: Path):
    """A directory served over HTTP on 127.0.0.1 (no network): yields (directory, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def test_url_weights_are_downloaded_and_verified_in_full(served):
    root, url = served
    source = ResNet("resnet18")
    torch.save(source.state_dict(), root / "r18.pth")
    digest = hashlib.sha256((root / "r18.pth").read_bytes()).hexdigest()
    target = ResNet("resnet18")
    load_pretrained(target, f"{url}/r18.pth", digest.upper())
    for k, v in source.state_dict().items():
        assert torch.equal(v, target.state_dict()[k]), k
    # The last digit wrong: every digit is compared, not a prefix.
    wrong = digest[:-1] + ("0" if digest[-1] != "0" else "1")
    with pytest.raises(SegreproError, match="downloaded from .* does not match model.pretrained_sha256"):
        load_pretrained(ResNet("resnet18"), f"{url}/r18.pth", wrong)
    with pytest.raises(SegreproError, match="not a sha256; give all 64 hex digits"):
        load_pretrained(ResNet("resnet18"), f"{url}/r18.pth", digest[:8])
    with pytest.raises(SegreproError, match="could not download .*404"):
        load_pretrained(ResNet("resnet18"), f"{url}/missing.pth", digest)


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_zero_init_residual_starts_every_block_as_its_shortcut(name):
    """With ``zero_init_residual`` each block's last BN has γ = 0, so (in eval mode) a block returns
    relu(shortcut(x)); the same seed draws the same convolutions either way, only those γ differ."""
    torch.manual_seed(0)
    plain = ResNet(name, 32)
    torch.manual_seed(0)
    zeroed = ResNet(name, 32, zero_init_residual=True)
    last_bn = "bn2" if name == "resnet18" else "bn3"
    differing = {k for k, v in plain.state_dict().items() if not torch.equal(v, zeroed.state_dict()[k])}
    assert differing and all(k.endswith(f".{last_bn}.weight") for k in differing)
    assert len(differing) == sum(len(layer) for layer in (zeroed.layer1, zeroed.layer2, zeroed.layer3, zeroed.layer4))
    zeroed.eval()
    x = torch.randn(2, zeroed.layer2[0].conv1.in_channels, 16, 20)
    for block in zeroed.layer2:
        shortcut = x if block.downsample is None else block.downsample(x)
        with torch.no_grad():
            out = block(x)
        torch.testing.assert_close(out, torch.relu(shortcut))
        x = out
