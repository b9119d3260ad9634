"""benchmarks/profile_step.py at a tiny size: the op categories and the table's arithmetic (no timing asserted)."""
from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO, assert_one_error_line, tiny_params

sys.path.insert(0, str(REPO / "benchmarks"))
import profile_step  # noqa: E402


def test_ops_land_in_their_category():
    cat = profile_step.category
    assert cat("aten::convolution_backward") == cat("aten::mkldnn_convolution") == "convolution (counted)"
    assert cat("aten::bmm") == "matmul (counted)"
    assert cat("aten::im2col") == cat("aten::col2im") == cat("aten::copy_") == "unfold / shifted copies"
    assert cat("aten::grid_sampler_2d_backward") == "grid_sample / gather"
    assert cat("aten::native_batch_norm_backward") == "batch norm"
    assert cat("aten::upsample_bilinear2d") == "bilinear resize"
    assert cat("aten::mul") == cat("aten::sigmoid") == profile_step.OTHER


def test_profile_of_two_methods_adds_up(tmp_path):
    params = tiny_params(train={"crop_height": 32, "crop_width": 48})
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    loaded = profile_step.load_params(path)
    rows = [profile_step.profile_method(loaded, m, warmup=0, steps=1) for m in ("baseline", "pdn")]
    for row in rows:
        assert set(row["categories"]) == {name for name, _ in profile_step.CATEGORIES} | {profile_step.OTHER}
        assert row["categories"]["convolution (counted)"] > 0
        # self times are a part of the profiled wall time (profiler overhead aside)
        assert 0 < sum(row["categories"].values()) <= row["step_ms"] * 1.05
    text = profile_step.render(rows, markdown=True)
    lines = text.splitlines()
    assert lines[0].startswith("| category | baseline | pdn | pdn − baseline |")
    conv = next(line for line in lines if line.startswith("| convolution (counted)"))
    cells = [c.strip() for c in conv.strip("|").split("|")]
    assert float(cells[3]) == round(float(rows[1]["categories"]["convolution (counted)"])
                                    - float(rows[0]["categories"]["convolution (counted)"]))


def test_bad_steps_is_one_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tiny_params()))
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "profile_step.py"), "--params", str(path),
                          "--steps", "0"], capture_output=True, text=True, cwd=REPO)
    assert_one_error_line(run, "profile_step: error: ", "--steps 0", "--steps 1 or more")
    assert run.stdout == ""


@pytest.mark.parametrize("argv, needles", [
    (["--threads", "0"], ["--threads 0", "pass --threads between 1"]),  # was replaced by runtime.threads
    (["--threads", "100000"], ["--threads 100000"]),  # was accepted (bench_train refuses it)
    (["--methods", "baseline", "nosuch"], ["unknown method 'nosuch'", "baseline"]),  # was after two lines
    (["--warmup", "-1"], ["--warmup -1", "--warmup 0 or more"]),
])
def test_bad_arguments_are_refused_before_the_machine_line(argv, needles, capsys):
    assert profile_step.main(["--params", str(REPO / "params.yaml"), *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("profile_step: error: "), err
    for needle in needles:
        assert needle in err
