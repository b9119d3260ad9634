from __future__ import annotations

import pytest
import torch
import yaml

from segrepro.data.transforms import normalize
from segrepro.errors import SegreproError
from segrepro.inference import predict
from segrepro.models.build import METHODS, build_model, model_kwargs
from segrepro.params import load_params
from tests.conftest import tiny_params


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


@pytest.mark.parametrize("method, options, said", [
    ("pdn", {"dilation": [1]}, "params model.pdn (or an ablation variant of pdn): unknown option dilation "
                               "(did you mean dilations?); its options are hidden_channels, num_layers, dilations,"),
    ("ddsm", {"num_points": 9}, "params model.ddsm (or an ablation variant of ddsm): unknown option num_points; "
                                "its options are spatial, channel,"),
    ("sdn", {"simlarity": "exp"}, "params model.sdn (or an ablation variant of sdn): SDN: unknown option "
                                  "'simlarity' (did you mean similarity?); its options are sdc_channels,"),
    ("sdn", {"identity_strt": True}, "(did you mean identity_start?)"),   # the block's keywords count too
    ("pdn", {"num_layers": 0}, "params model.pdn (or an ablation variant of pdn): num_layers must be a positive"),
])
def test_a_bad_method_option_names_its_params_block_and_the_closest_option(method, options, said):
    with pytest.raises(SegreproError) as caught:
        build_model(**kwargs(method, **options))
    assert said in str(caught.value)


def test_input_norm_is_a_build_argument_that_prediction_follows(tmp_path):
    """The model carries its input normalisation; ImageNet's is left out of the build arguments so the
    checkpoints made before the option existed keep their bytes (and pinned md5s)."""
    path = tmp_path / "params.yaml"
    for norm in ("imagenet", "per_image"):
        path.write_text(yaml.safe_dump(tiny_params(model={"input_norm": norm})))
        kwargs = model_kwargs(load_params(path).model, "baseline", 11)
        assert ("input_norm" in kwargs) == (norm != "imagenet")
        torch.manual_seed(0)
        model = build_model(**kwargs).eval()
        assert model.input_norm == norm
        images = torch.randint(0, 120, (2, 32, 48, 3), dtype=torch.uint8)
        with torch.no_grad():
            want = model(normalize(images, norm)).argmax(1).to(torch.uint8)
            other = model(normalize(images, "per_image" if norm == "imagenet" else "imagenet")).argmax(1)
        assert not torch.equal(other.to(torch.uint8), want)  # the normalisation matters to this model
        assert torch.equal(predict(model, images, 2, torch.device("cpu")), want)
    with pytest.raises(SegreproError, match="model.input_norm must be one of"):
        build_model("baseline", 11, "resnet18", 32, "fpn", 16, input_norm="zscore")


def test_zero_init_residual_is_a_build_argument_only_when_on(tmp_path):
    """Off, the build arguments (pickled into the checkpoint) are those of before the option existed."""
    path = tmp_path / "params.yaml"
    for on in (False, True):
        path.write_text(yaml.safe_dump(tiny_params(model={"zero_init_residual": on})))
        kwargs = model_kwargs(load_params(path).model, "baseline", 11)
        assert kwargs.get("zero_init_residual", False) is on and ("zero_init_residual" in kwargs) == on
        model = build_model(**kwargs)
        assert (model.backbone.layer1[0].bn2.weight == 0).all().item() is on
