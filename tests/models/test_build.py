from __future__ import annotations

import pytest
import torch

from segrepro.errors import SegreproError
from segrepro.models.build import METHODS, build_model


def kwargs(method: str = "baseline", decoder: str = "fpn", **options) -> dict:
    return dict(method=method, num_classes=11, backbone="resnet18", output_stride=8,
                decoder=decoder, channels=32, method_options=options)


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("decoder", ["fcn", "fpn"])
def test_logits_match_odd_input_size(method, decoder):
    if method == "ddsm" and decoder == "fcn":
        pytest.skip("DDSM fuses FPN levels only")
    model = build_model(**kwargs(method, decoder)).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 97, 131))
    assert out.shape == (1, 11, 97, 131)
    assert torch.isfinite(out).all()


def test_unknown_method_and_options_are_rejected():
    with pytest.raises(SegreproError, match="unknown method 'sdm'"):
        build_model(**kwargs("sdm"))
    with pytest.raises(SegreproError, match="baseline takes no options"):
        build_model(**kwargs("baseline", lam=1.0))
