"""dvc.yaml spells the artefact paths that segrepro.layout owns: they must agree."""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from segrepro import cli, layout

REPO = Path(__file__).resolve().parents[1]
KEY = layout.run_key("sdn", 7)


def _stage(name: str) -> dict:
    """One stage of dvc.yaml with its matrix item filled in (method sdn, seed 7)."""
    text = (REPO / "dvc.yaml").read_text().replace("${item.method}", "sdn").replace("${item.seed}", "7")
    return yaml.safe_load(text)["stages"][name]


def _paths(entries: list) -> set[str]:
    return {next(iter(e)) if isinstance(e, dict) else e for e in entries}


def _posix(*paths: Path) -> set[str]:
    return {Path(p).as_posix() for p in paths}


def test_run_key_and_method():
    assert KEY == "sdn-7" and layout.method_of("ddsm_spatial-12") == "ddsm_spatial"
    assert layout.run_keys(["a", "b"], [0, 1]) == ["a-0", "a-1", "b-0", "b-1"]
    assert layout.in_results(Path("/tmp/r"), layout.PER_IMAGE) == Path("/tmp/r/per_image")


def test_stage_outs_are_the_layout():
    assert _paths(_stage("download")["outs"]) == _posix(layout.RAW)
    assert _paths(_stage("preprocess")["outs"]) == _posix(layout.PROCESSED)
    assert _paths(_stage("train")["outs"]) == _posix(layout.checkpoint(KEY), layout.live_metrics(KEY))
    assert _paths(_stage("train")["plots"]) == _posix(layout.live_plots(KEY))
    assert _paths(_stage("evaluate")["outs"]) == _posix(layout.metrics_json(KEY), layout.per_image(KEY))
    assert _paths(_stage("compare")["outs"]) == _posix(layout.COMPARISON, layout.SUMMARY)
    assert _posix(layout.TABLES) <= _paths(_stage("report")["outs"])


def test_stage_deps_and_commands_use_the_layout():
    """Each stage reads its inputs from where the producing stage wrote them, and its command
    passes the same paths it declares."""
    assert _posix(layout.RAW) <= _paths(_stage("preprocess")["deps"])
    assert _posix(layout.PROCESSED, layout.checkpoint(KEY)) <= _paths(_stage("evaluate")["deps"])
    assert _posix(layout.PER_IMAGE) <= _paths(_stage("compare")["deps"])
    assert _posix(layout.COMPARISON, layout.METRICS, layout.PER_IMAGE, layout.TRAIN, layout.PROCESSED) \
        <= _paths(_stage("report")["deps"])
    assert _posix(layout.METRICS, layout.PER_IMAGE, layout.COMPARISON, layout.MODELS) \
        <= _paths(_stage("audit")["deps"])

def _cmd_paths(stage: dict) -> set[str]:
    """Path arguments of a stage's command, defaults included, as the real CLI parses them."""
    argv = shlex.split(stage["cmd"])
    assert argv[:3] == ["python", "-m", "segrepro.container"], "every stage goes through the runner"
    argv = argv[4:] if argv[3] == "--network" else argv[3:]  # the runner's own flag
    assert argv[0] == "segrepro"
    args = vars(cli._parser().parse_args(argv[1:]))
    return {Path(v).as_posix() for k, v in args.items() if isinstance(v, (str, Path)) and k not in ("stage",)}


@pytest.mark.parametrize("name", ["download", "preprocess", "train", "evaluate", "compare", "report", "audit"])
def test_commands_write_and_read_what_the_stage_declares(name):
    """Every declared output is a path the command writes (an argument or its default), and every
    data input (not audit's: it finds its inputs through dvc.lock) is one it reads or lies under one."""
    stage = _stage(name)
    paths = _cmd_paths(stage)
    for out in _paths(stage["outs"]) | _paths(stage.get("plots", [])):
        assert any(out == p or out.startswith(p + "/") for p in paths), f"{name}: output {out} is not among its command's paths {sorted(paths)}"
    if name != "audit":
        for dep in _paths(stage.get("deps", [])):
            if not dep.startswith(("src/", "notebooks/")):
                assert any(dep == p or dep.startswith(p + "/") for p in paths), f"{name}: {dep} is not read"


def test_pipeline_metrics_are_the_summary():
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    assert dvc["metrics"] == [layout.SUMMARY.as_posix()]
