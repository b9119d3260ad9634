"""`segrepro --help` and every stage's `--help` print their text and exit 0 (the README promises both)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from segrepro import cli
from tests.conftest import REPO

STAGES = list(yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"])


def help_of(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as ended:
        cli.main([*argv, "--help"])
    assert ended.value.code == 0
    return capsys.readouterr().out


def test_the_top_level_help_lists_every_stage_with_its_line(capsys) -> None:
    text = " ".join(help_of(capsys).split())  # argparse wraps the lines
    for stage in STAGES:
        assert f" {stage} " in text, stage
    # A help line holding "%" once broke the listing (argparse %-formats it): it shows as written.
    assert "95% intervals" in text


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_has_its_own_help(capsys, stage) -> None:
    text = help_of(capsys, stage)
    assert text.startswith(f"usage: segrepro {stage} ") and "--params" in text


def test_the_installed_command_prints_the_help() -> None:
    command = Path(sys.executable).parent / "segrepro"  # the console script pyproject.toml installs
    done = subprocess.run([str(command), "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == "" and "compare" in done.stdout


@pytest.mark.parametrize("stage, made, said", [
    # Each default path, found by the error its stage gives when something already sits there.
    ("evaluate", None, "checkpoint models/baseline-0.pt is missing"),
    ("evaluate", "results/metrics/baseline-0.json/", "cannot write results/metrics/baseline-0.json: it is a directory"),
    ("evaluate", "results/per_image/baseline-0.npz/", "cannot write results/per_image/baseline-0.npz: it is a directory"),
    ("train", "models/baseline-0.pt/", "cannot write models/baseline-0.pt: it is a directory"),
    ("train", "results/train/baseline-0/notes.txt", "refusing to replace results/train/baseline-0 "),
])
def test_run_paths_default_to_the_pipelines_own(tmp_path, params_file, monkeypatch, capsys, stage, made, said) -> None:
    monkeypatch.chdir(tmp_path)  # params_file is tmp_path/params.yaml: the stages' default
    if made:
        target = tmp_path / made
        (target if made.endswith("/") else target.parent).mkdir(parents=True)
        if not made.endswith("/"):
            target.write_text("mine")
    assert cli.main([stage, "--method", "baseline", "--seed", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and said in err[0], err
