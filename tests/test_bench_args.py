"""benchmarks/bench_args.py: the argument checks the benchmark scripts share (in process, no timing)."""
from __future__ import annotations

import argparse
import subprocess
import sys

import pytest
import torch

from segrepro.errors import SegreproError
from segrepro.params import load_params
from tests.conftest import REPO, assert_one_error_line

sys.path.insert(0, str(REPO / "benchmarks"))
import bench_args  # noqa: E402
import bench_boundary  # noqa: E402
import bench_gpu  # noqa: E402
import bench_interval  # noqa: E402
import bench_modules  # noqa: E402


def test_check_min_names_the_flag_and_the_fix():
    bench_args.check_min("--steps", 1, 1)
    with pytest.raises(SegreproError, match=r"^--steps 0 is too small; pass --steps 1 or more$"):
        bench_args.check_min("--steps", 0, 1)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_check_finite_refuses_nan_and_inf_and_check_min_a_float_one(value):
    for check in (lambda: bench_args.check_finite("--x", value), lambda: bench_args.check_min("--x", value, 0)):
        with pytest.raises(SegreproError, match=rf"^--x {value} is not a finite number; pass --x a number "
                                                r"\(not nan or inf\)$"):
            check()
    for good in (0.0, -1.5, 1e300):
        bench_args.check_finite("--x", good)
    bench_args.check_min("--x", 1e300, 0)


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
    parser = argparse.ArgumentParser()
    parser.add_argument("--x", type=int)

    def body(args):
        if args.x < 1:
            raise SegreproError(f"bad --x {args.x}; pass --x 1")
    assert bench_args.run_cli("demo", parser, body, ["--x", "0"]) == 2
    assert capsys.readouterr().err == "demo: error: bad --x 0; pass --x 1\n"
    assert bench_args.run_cli("demo", parser, body, ["--x", "1"]) == 0


def refused(main, argv: list[str], capsys, name: str, *needles: str) -> None:
    """``main(argv)`` refused the run: status 2, one ``name: error:`` line with every needle, no stdout."""
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith(f"{name}: error: "), err
    for needle in needles:
        assert needle in err, err


def script_refuses(script: str, *argv: str) -> str:
    """Run ``benchmarks/SCRIPT`` as a user does; assert one error line and status 2; the line."""
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *argv], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert_one_error_line(done, f"{script.removesuffix('.py')}: error: ")
    assert done.stdout == "" and "Traceback" not in done.stderr
    return done.stderr


# ----------------------------------------------------------------------------- bench_modules

@pytest.mark.parametrize("argv, needles", [
    (["--device", "nosuch"], ["'nosuch'", "--device cpu"]),
    (["--repeats", "0"], ["--repeats 0", "--repeats 1 or more"]),
    (["--threads", "0"], ["--threads 0", "pass --threads between 1"]),
    (["--threads", "100000"], ["--threads 100000"]),
    (["--params", "/nonexist.yaml"], ["/nonexist.yaml not found"]),
])
def test_bench_modules_refuses_bad_arguments_before_measuring(argv, needles, capsys):
    params = ["--params", str(REPO / "params.yaml")]
    refused(bench_modules.main, [*params, *argv], capsys, "bench_modules", *needles)


def test_bench_modules_refuses_an_unwritable_json_before_measuring(tmp_path, capsys):
    # Before, a directory (or a missing folder) failed only after every method was measured.
    refused(bench_modules.main, ["--params", str(REPO / "params.yaml"), "--json", str(tmp_path)], capsys,
            "bench_modules", "it is a directory")


def test_bench_modules_without_cuda_is_one_line():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert "--device cpu" in script_refuses("bench_modules.py", "--device", "cuda")


# ----------------------------------------------------------------------------- bench_boundary

@pytest.mark.parametrize("argv, needles", [
    (["--device", "nosuch"], ["'nosuch'", "--device cpu"]),
    (["--threads", "0"], ["--threads 0", "pass --threads between 1"]),
    (["--batch", "0"], ["--batch 0", "--batch 1 or more"]),
    (["--ref-limit", "0"], ["--ref-limit 0", "--ref-limit 1 or more"]),  # was a ZeroDivisionError
    (["--ref-limit", "-1"], ["--ref-limit -1"]),  # was run as "reference on -1 image(s)": the whole split
])
def test_bench_boundary_refuses_bad_arguments_before_loading(argv, needles, capsys):
    refused(bench_boundary.main, ["--synthetic", *argv], capsys, "bench_boundary", *needles)


def test_bench_boundary_without_the_mirror_names_synthetic(tmp_path, capsys):
    refused(bench_boundary.main, ["--mirror", str(tmp_path)], capsys, "bench_boundary",
            "found 0", "--mirror the folder that holds CamVid/", "--synthetic")


def test_bench_boundary_without_cuda_is_one_line():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert "--device cpu" in script_refuses("bench_boundary.py", "--synthetic", "--device", "cuda")


# ----------------------------------------------------------------------------- bench_interval

QUICK = ["--reps", "2", "--seeds", "2", "--seed-sd", "0.01"]


@pytest.mark.parametrize("argv, needles", [
    (["--reps", "0"], ["--reps 0", "--reps 1 or more"]),  # was a ZeroDivisionError
    (["--seeds", "2", "0"], ["--seeds 0"]),
    (["--images", "0"], ["--images 0", "--images 2 or more"]),
    (["--images", "1"], ["--images 1"]),
    (["--frame-corr", "0.5", "--frame-batch", "0"], ["--frame-batch 0"]),
    (["--seed-sd", "-1"], ["--seed-sd -1", "0 or more"]),  # was numpy's ValueError
    (["--frame-corr", "1.5"], ["--frame-corr 1.5", "[-1, 1]"]),  # was a TypeError about complex
    (["--frame-corr", "0.5", "--seed-frames", "2"], ["--seed-frames 2", "[0, 1]"]),
    (["--seed-frames", "0.5"], ["--seed-frames applies to the frames of --frame-corr only"]),  # was ignored
    (["--frame-batch", "8"], ["--frame-batch applies"]),  # was ignored
    (["--frame-corr", "0.5", "--images", "50"], ["drop --images or --frame-corr"]),  # was ignored
    (["--family", "0"], ["--family 0"]),  # printed "0 claims ... 0.0%"
    # argparse's type=float takes nan and inf: each ran, then blamed the reducer (or said "out of range")
    (["--seed-sd", "0.01", "nan"], ["--seed-sd nan is not a finite number", "pass --seed-sd a number"]),
    (["--seed-sd", "inf"], ["--seed-sd inf is not a finite number"]),
    (["--effect", "nan"], ["--effect nan is not a finite number", "pass --effect a number"]),
    (["--effect=-inf"], ["--effect -inf is not a finite number"]),
    (["--frame-corr", "0.5", "NaN"], ["--frame-corr nan is not a finite number"]),
    (["--frame-corr", "0.5", "--seed-frames", "inf"], ["--seed-frames inf is not a finite number"]),
])
def test_bench_interval_refuses_bad_arguments_before_simulating(argv, needles, capsys):
    refused(bench_interval.main, [*QUICK, *argv], capsys, "bench_interval", *needles)


def test_bench_interval_family_honours_images(capsys, monkeypatch):
    shapes = []
    real = bench_interval.paired_interval
    monkeypatch.setattr(bench_interval, "paired_interval",
                        lambda m, b, *a, **k: shapes.append(m.shape) or real(m, b, *a, **k))
    assert bench_interval.main([*QUICK, "--family", "2", "--images", "20"]) == 0
    assert "20 images" in capsys.readouterr().out
    assert set(shapes) == {(2, 20, 4)}  # before, the families were drawn at 233 images whatever --images said


def test_bench_interval_bad_reps_is_one_line():
    assert "--reps 0" in script_refuses("bench_interval.py", "--reps", "0")


# ----------------------------------------------------------------------------- bench_gpu (its other refusals:
# tests/test_bench_gpu.py)

@pytest.mark.parametrize("argv, needles", [
    (["--deadline", "nan"], ["--deadline nan is not a finite number"]),  # was: no row ever skipped
    (["--deadline", "inf"], ["--deadline inf is not a finite number"]),
    (["--compile-budget", "nan"], ["--compile-budget nan is not a finite number"]),  # was: never skipped
])
def test_bench_gpu_refuses_a_float_that_is_not_finite_before_measuring(tmp_path, argv, needles, capsys):
    out = tmp_path / "bench.json"
    small = ["--methods", "baseline", "--steps", "1", "--warmup", "0", "--peak-size", "64", "--compile", "off"]
    # (small: should the refusal break, the run that follows is over in seconds, not a CPU-scale bench)
    refused(bench_gpu.main, ["--params", str(REPO / "params.yaml"), "--device", "cpu", "--json", str(out), *small,
                             *argv], capsys, "bench_gpu", *needles)
    assert not out.exists()
