"""benchmarks/bench_args.py: the argument checks the benchmark scripts share (in process, no timing)."""
from __future__ import annotations

import sys

import pytest
import torch

from segrepro.errors import SegreproError
from segrepro.params import load_params
from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import bench_args  # noqa: E402


def test_check_min_names_the_flag_and_the_fix():
    bench_args.check_min("--steps", 1, 1)
    with pytest.raises(SegreproError, match=r"^--steps 0 is too small; pass --steps 1 or more$"):
        bench_args.check_min("--steps", 0, 1)


def test_check_device_takes_cpu_and_refuses_what_cannot_run():
    assert bench_args.check_device("cpu") == torch.device("cpu")
    with pytest.raises(SegreproError, match="'nosuch' is not a device .*--device cpu"):
        bench_args.check_device("nosuch")
    with pytest.raises(SegreproError, match="'meta' is not a device"):
        bench_args.check_device("meta")
    if not torch.cuda.is_available():
        with pytest.raises(SegreproError, match="--device cuda: torch sees no CUDA device.*pass --device cpu$"):
            bench_args.check_device("cuda")
    else:
        with pytest.raises(SegreproError, match="--device cuda:99: torch sees"):
            bench_args.check_device("cuda:99")


def test_check_methods_accepts_variants_and_names_the_choices():
    params = load_params(REPO / "params.yaml")
    bench_args.check_methods(["baseline", *params.model.variants], params)
    with pytest.raises(SegreproError, match="--methods: unknown method 'nosuch'; choose from baseline"):
        bench_args.check_methods(["baseline", "nosuch"], params)


def test_check_json_refuses_a_directory_and_takes_a_new_folder(tmp_path):
    with pytest.raises(SegreproError, match="it is a directory"):
        bench_args.check_json(tmp_path)
    bench_args.check_json(tmp_path / "new" / "x.json")
    assert not (tmp_path / "new").exists()  # the probe leaves nothing behind
    bench_args.check_json(None)


def test_run_cli_prints_one_line_and_returns_2(capsys):
    def refuse():
        raise SegreproError("bad --x; pass --x 1")
    assert bench_args.run_cli("demo", refuse) == 2
    assert capsys.readouterr().err == "demo: error: bad --x; pass --x 1\n"
    assert bench_args.run_cli("demo", lambda: None) == 0
