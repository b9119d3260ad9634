"""benchmarks/gpu_results.py, pin_gpu_results.py and gpu_check.py on bad input: one error line, exit
status 2, before any work, and nothing written. A dry run of gpu_profile.sh (or any run not on CUDA)
is never pinned unless asked for (--pin-dry-run: the grid dry run in tests/test_gpu_sweep.py pins so)."""
from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import REPO, assert_one_error_line, tiny_params

sys.path.insert(0, str(REPO / "benchmarks"))
import gpu_check  # noqa: E402
import gpu_results  # noqa: E402
import pin_gpu_results  # noqa: E402


def run_main(main, capsys, *argv: str) -> subprocess.CompletedProcess:
    """``main(argv)`` in this process, as a finished command (exit status, stdout, stderr)."""
    status = main(list(argv))
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(argv, status, captured.out, captured.err)


def window(tmp_path: Path, device: str, dry: bool, extra: dict[str, str] | None = None) -> Path:
    """What a GPU window brings back ($OUT), with as much of a grid run as the refusal reads: the merged
    params (``runtime.device``) and, for a dry run, dry.yaml; ``extra`` adds members (name → text)."""
    members = {"params.yaml": yaml.safe_dump(tiny_params(runtime={"device": device})), "summary.txt": "a run\n"}
    if dry:
        members["dry.yaml"] = "runtime.device: cpu\n"
    members.update(extra or {})
    out = tmp_path / f"out-{device}-{dry}{'-more' if extra else ''}"
    out.mkdir()
    with tarfile.open(out / "gpu-results.tar.gz", "w:gz") as tar:
        for name, text in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    return out


@pytest.fixture()
def pins(tmp_path: Path) -> Path:
    """A copy of the committed pins.yaml: what a refused pin must leave byte for byte."""
    path = tmp_path / "pins.yaml"
    path.write_bytes((REPO / "pins.yaml").read_bytes())
    return path


@pytest.mark.parametrize("device, dry, needle", [
    ("cpu", True, "it is a dry run of gpu_profile.sh (--cpu-tiny: it packed dry.yaml)"),
    ("cuda", True, "it is a dry run of gpu_profile.sh"),  # a dry run with GPU_PROFILE_SET='runtime.device: cuda'
    ("cpu", False, "it ran on runtime.device cpu, not cuda"),  # the full profile on CPU
])
def test_a_run_not_on_the_gpu_is_not_pinned(tmp_path, capsys, pins, device, dry, needle) -> None:
    out, run = window(tmp_path, device, dry), tmp_path / "run"
    done = run_main(gpu_results.main, capsys, str(out), "--run", str(run), "--pin", str(pins))
    assert_one_error_line(done, "gpu_results: error: not pinning the run in", needle, "--pin-dry-run")
    assert pins.read_bytes() == (REPO / "pins.yaml").read_bytes()
    # Refused before anything was written: no run folder (nor its scratch) to get in the way of the next try.
    assert not run.exists() and sorted(p.name for p in tmp_path.iterdir()) == [out.name, "pins.yaml"]
    # Asked for, it gets past the refusal (to the missing comparison of this stub, which stops it).
    done = run_main(gpu_results.main, capsys, str(out), "--run", str(run), "--pin", str(pins), "--pin-dry-run")
    assert_one_error_line(done, "gpu_results: error: ", "comparison.json is missing")
    assert pins.read_bytes() == (REPO / "pins.yaml").read_bytes()


def test_a_gpu_run_is_not_refused(tmp_path, capsys, pins) -> None:
    out = window(tmp_path, "cuda", dry=False)
    done = run_main(gpu_results.main, capsys, str(out), "--run", str(tmp_path / "run"), "--pin", str(pins))
    assert_one_error_line(done, "gpu_results: error: ", "comparison.json is missing")


@pytest.mark.parametrize("made_before", [False, True])
def test_a_failure_after_unpacking_leaves_no_run_folder(tmp_path, capsys, made_before) -> None:
    # The cheapest late failure: the archive unpacks (and passes the pin check), then holds no comparison.
    out, run = window(tmp_path, "cuda", dry=False), tmp_path / "run"
    if made_before:
        run.mkdir()  # an empty folder the user made: kept, and left empty
    argv = (str(out), "--run", str(run))
    for _ in range(2):  # the same command again meets the same cause, not "exists and is not empty"
        done = run_main(gpu_results.main, capsys, *argv)
        assert_one_error_line(done, "gpu_results: error: ", f"results/comparison.json is missing from {out}",
                              "no complete seed finished")
        assert "a run" in done.stdout  # its summary was shown before the error
        assert run.is_dir() == made_before and (not made_before or not any(run.iterdir()))
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name] + ["run"] * made_before)


def test_an_unpacked_run_folder_gets_the_umasks_mode(tmp_path) -> None:
    # The archive is extracted into a mkdtemp folder (0700) and renamed: the run folder must not keep 0700.
    out, run = window(tmp_path, "cuda", dry=False), tmp_path / "run"
    previous = os.umask(0o022)
    try:
        gpu_results.unpack(out, run)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(run.stat().st_mode) == 0o755 and (run / "summary.txt").read_text() == "a run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, "run"])  # no scratch folder left


def test_a_failing_stage_after_unpacking_removes_what_it_unpacked(tmp_path, capsys) -> None:
    # A real stage fails late: segrepro preprocess on an empty --raw, after the unpacking.
    out = window(tmp_path, "cuda", dry=False, extra={"results/comparison.json": "{}\n"})
    raw, run = tmp_path / "raw", tmp_path / "run"
    raw.mkdir()
    done = run_main(gpu_results.main, capsys, str(out), "--run", str(run), "--raw", str(raw))
    assert_one_error_line(done, "gpu_results: error: segrepro preprocess failed: ", "split list", "is missing")
    assert not run.exists() and sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, "raw"])
    assert raw.is_dir() and not any(raw.iterdir())  # the user's --raw is not the run's: untouched


@pytest.mark.parametrize("flag, value, needles", [
    ("--mirror", "nonexist", ["mirror", "has no CamVid/ folder"]),
    ("--raw", "nonexist", ["--raw", "is not a folder"]),
    ("--pin", ".", ["it is a directory"]),
    ("--pin", "README.md", ["pins file", "README.md, line", "fix the YAML"]),
    ("--pin", "params.yaml", ["pins file", "has no 'classes' mapping"]),
    ("--pin", "blocker/pins.yaml", ["blocker is a file, not a directory"]),
    ("--run", "blocker/run", ["cannot write", "blocker is a file, not a directory"]),
])
def test_gpu_results_checks_its_arguments_before_unpacking(tmp_path, capsys, flag, value, needles) -> None:
    (tmp_path / "blocker").write_text("a file\n")
    for name in ("README.md", "params.yaml"):  # not YAML; YAML but no pins
        (tmp_path / name).write_bytes((REPO / name).read_bytes())
    out = window(tmp_path, "cuda", dry=False)
    args = {"--run": str(tmp_path / "run"), flag: str(tmp_path / value)}
    done = run_main(gpu_results.main, capsys, str(out), *[x for item in args.items() for x in item])
    assert_one_error_line(done, "gpu_results: error: ", *needles)
    assert not (tmp_path / "run").exists()


def test_pin_gpu_results_names_each_bad_input(tmp_path, capsys, pins) -> None:
    params = tmp_path / "run" / "params.yaml"
    params.parent.mkdir()
    one_run = {"seeds": [0], "methods": ["baseline"]}
    params.write_text(yaml.safe_dump(tiny_params(runtime={"device": "cuda"}, base=one_run)))
    (tmp_path / "run" / "results" / "metrics").mkdir(parents=True)
    (tmp_path / "run" / "results" / "metrics" / "baseline-0.json").write_text("{}\n")
    md5 = tmp_path / "run" / "checkpoints.md5"
    md5.write_text("0123456789abcdef0123456789abcdef  models/baseline-0.pt\n")
    (tmp_path / "processed").mkdir()
    good = {"--results": str(tmp_path / "run" / "results"), "--checkpoints": str(md5), "--params": str(params),
            "--processed": str(tmp_path / "processed"), "--pins": str(pins)}

    def pin(**bad: str) -> subprocess.CompletedProcess:
        args = {**good, **{f"--{k}": v for k, v in bad.items()}}
        return run_main(pin_gpu_results.main, capsys, *[x for item in args.items() for x in item])

    for bad, needles in [
        ({"checkpoints": "/nonexist.md5"}, ["checkpoint list /nonexist.md5 (--checkpoints) is not a file",
                                            "gpu_profile.sh writes it"]),
        ({"checkpoints": str(tmp_path)}, ["(--checkpoints) is not a file"]),
        ({"checkpoints": str(params)}, ["line 1: expected 'MD5  models/<run>.pt'"]),
        ({"results": "/nonexist"}, ["1 of the 1 runs", "/nonexist/metrics/<run>.json", "(baseline-0)"]),
        ({"processed": "/nonexist"}, ["processed data /nonexist (--processed) is not a folder"]),
        ({"pins": str(tmp_path)}, ["it is a directory"]),
        ({"pins": str(md5 / "pins.yaml")}, ["is a file, not a directory"]),
    ]:
        assert_one_error_line(pin(**bad), "pin_gpu_results: error: ", *needles)
    assert pins.read_bytes() == (REPO / "pins.yaml").read_bytes()
    # The same run on CPU, or a dry run, is refused by pin_gpu_results itself too.
    params.write_text(yaml.safe_dump(tiny_params(base=one_run)))
    assert_one_error_line(pin(), "pin_gpu_results: error: ", "not pinning the run of", "runtime.device auto",
                          "--pin-dry-run")
    assert pins.read_bytes() == (REPO / "pins.yaml").read_bytes()


def test_gpu_check_names_a_bad_input(tmp_path, capsys) -> None:
    (tmp_path / "blocker").write_text("a file\n")
    for args, needles in [
        (["--processed", "/nonexist"], ["--processed /nonexist is not a folder", "segrepro preprocess"]),
        (["--params", "/nonexist.yaml"], ["params file /nonexist.yaml not found"]),
        (["--out", str(tmp_path / "blocker")], ["is a file; pass a folder"]),
    ]:
        argv = {"--params": str(REPO / "params.yaml"), "--processed": str(tmp_path), "--out": str(tmp_path / "out"),
                **dict(zip(args[::2], args[1::2]))}
        done = run_main(gpu_check.main, capsys, *[x for item in argv.items() for x in item])
        assert_one_error_line(done, "gpu_check: error: ", *needles)
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for a machine without CUDA")
def test_gpu_check_without_cuda_says_so(tmp_path, capsys) -> None:
    done = run_main(gpu_check.main, capsys, "--processed", str(tmp_path), "--out", str(tmp_path / "out"))
    assert_one_error_line(done, "gpu_check: error: ", "no CUDA device is usable here", "gpu_profile.sh --cpu-tiny")
    assert not (tmp_path / "out").exists()
