"""The one method list (models/methods.py): builders, params and the torch-free import."""
from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

import segrepro.params as params_module
from segrepro.errors import SegreproError
from segrepro.models import build
from segrepro.models.methods import BASELINE, METHOD_NAMES
from segrepro.params import load_params
from tests.conftest import REPO, tiny_params


def test_baseline_comes_first_and_every_listed_method_has_a_builder_and_a_params_block():
    assert METHOD_NAMES[0] == BASELINE == "baseline" and len(set(METHOD_NAMES)) == len(METHOD_NAMES)
    assert list(build.METHODS) == list(METHOD_NAMES)
    assert all(build.METHODS[name] is getattr(build, f"_{name}") for name in METHOD_NAMES)
    # The repository's params.yaml writes a block for each method, and nothing else is taken for one.
    raw = yaml.safe_load((REPO / "params.yaml").read_text())["model"]
    assert set(METHOD_NAMES) <= set(raw)
    assert list(load_params(REPO / "params.yaml").model.options) == list(METHOD_NAMES)


def test_a_listed_method_without_a_builder_names_the_function_to_write():
    with pytest.raises(SegreproError, match=r"lists segnet but models/build.py has no builder _segnet; write it"):
        build.builders(METHOD_NAMES + ("segnet",), vars(build))


def test_a_new_method_is_one_builder_and_one_list_entry(tmp_path, monkeypatch):
    """What adding a method takes: ``_<name>`` in build.py and the name in METHOD_NAMES; params follow."""
    names = METHOD_NAMES + ("segnet",)

    def _segnet(in_channels, decoder, options):
        return build.Insertion(build.IdentityNeck(in_channels))

    methods = build.builders(names, {**vars(build), "_segnet": _segnet})
    assert list(methods) == list(names) and methods["segnet"] is _segnet
    monkeypatch.setattr(params_module, "METHOD_NAMES", names)
    raw = tiny_params(base={"methods": ["baseline", "segnet"]})
    raw["model"]["segnet"] = {"depth": 3}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    params = load_params(path)
    assert params.model.resolve("segnet") == ("segnet", {"depth": 3})
    assert params.model.options["sdn"] == raw["model"]["sdn"]


def test_params_and_the_method_list_import_without_torch():
    code = ("import sys, segrepro.params, segrepro.models.methods; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr or "importing segrepro.params imported torch"
