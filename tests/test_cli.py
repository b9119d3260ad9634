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
