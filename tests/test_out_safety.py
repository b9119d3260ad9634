"""A stage replaces only what it made: an output with its marker, or an empty/missing path."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from segrepro import cli
from segrepro.atomic import MARKER, atomic_dir
from segrepro.errors import SegreproError
from tests.conftest import tiny_params


@pytest.fixture()
def params_path(tmp_path: Path) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tiny_params()))
    return path


def test_preprocess_refuses_a_directory_it_did_not_make(tmp_path, synthetic_raw, params_path, capsys):
    out = tmp_path / "data"
    (out / "raw").mkdir(parents=True)
    precious = out / "notes.txt"
    precious.write_text("mine")
    code = cli.main(["preprocess", "--params", str(params_path), "--raw", str(synthetic_raw), "--out", str(out)])
    err = capsys.readouterr().err.splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith(f"segrepro preprocess: error: refusing to replace {out} ")
    assert "no '.segrepro-output' marker of segrepro preprocess" in err[0]
    assert precious.read_text() == "mine" and (out / "raw").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "params.yaml"]   # no scratch left


def test_preprocess_reruns_over_its_own_output_and_into_an_empty_one(tmp_path, synthetic_raw, params_path):
    out = tmp_path / "processed"
    out.mkdir()   # empty: allowed
    args = ["preprocess", "--params", str(params_path), "--raw", str(synthetic_raw), "--out", str(out)]
    assert cli.main(args) == 0
    assert (out / MARKER).read_text() == "segrepro preprocess\n"
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert cli.main(args) == 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first


def test_download_refuses_the_parent_directory(tmp_path, params_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    code = cli.main(["download", "--params", str(params_path), "--out", ".."])
    assert code == 2
    assert "refusing to replace .." in capsys.readouterr().err
    assert work.is_dir() and (tmp_path / "params.yaml").is_file()


def test_another_stages_output_and_a_file_are_refused(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out, "download") as scratch:
        (scratch / "a").write_text("a")
    with pytest.raises(SegreproError, match="no '.segrepro-output' marker of segrepro preprocess"):
        with atomic_dir(out, "preprocess"):
            pass
    assert (out / "a").read_text() == "a"
    single = tmp_path / "file"
    single.write_text("x")
    with pytest.raises(SegreproError, match="a file or link"):
        with atomic_dir(single, "download"):
            pass
    assert single.read_text() == "x"


def test_something_foreign_appearing_during_the_stage_is_kept(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(SegreproError, match="refusing to replace"):
        with atomic_dir(out, "download") as scratch:
            (scratch / "a").write_text("a")
            out.mkdir()
            (out / "theirs").write_text("t")
    assert (out / "theirs").read_text() == "t"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_empty_directories_left_by_dvc_count_as_empty(tmp_path):
    out = tmp_path / "out"
    (out / "plots" / "metrics").mkdir(parents=True)  # what DVC leaves after removing declared parts
    with atomic_dir(out, "preprocess") as scratch:
        (scratch / "a").write_text("a")
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "a"]


def test_a_pulled_dvclive_folder_is_trains_own_and_gets_no_marker(tmp_path):
    """DVC declares only metrics.json and plots/metrics of the DVCLive folder, so a `dvc pull` brings
    no marker: train recognises its folder by its contents, and writes none (an undeclared file
    would be missing from every pulled copy and change the hash of the stages reading the folder)."""
    from segrepro.training.stage import is_live_output

    live = tmp_path / "baseline-0"
    (live / "plots" / "metrics" / "train").mkdir(parents=True)
    (live / "metrics.json").write_text("{}")
    (live / "plots" / "metrics" / "train" / "loss.tsv").write_text("step\tloss\n0\t1.0\n")
    with atomic_dir(live, "train", owned=is_live_output) as scratch:
        (scratch / "metrics.json").write_text('{"new": 1}')
    assert sorted(p.name for p in live.iterdir()) == ["metrics.json"]
    (live / "notes.txt").write_text("mine")
    with pytest.raises(SegreproError, match="refusing to replace") as caught:
        with atomic_dir(live, "train", owned=is_live_output):
            pass
    assert (live / "notes.txt").read_text() == "mine"
    # The folder is train's --live, not an --out: the fix names no flag the stage lacks.
    assert "--out" not in str(caught.value) and "pass a new or empty directory for it" in str(caught.value)
