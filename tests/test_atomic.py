"""Atomic outputs: a path the file system refuses is one SegreproError naming it, with no scratch left;
``check_output`` finds it before the work; ``atomic_files`` writes a group whole or not at all."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from segrepro import atomic
from segrepro.atomic import atomic_dir, atomic_file, atomic_files, check_output, write_json
from segrepro.errors import SegreproError


def _names(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.fixture()
def unwritable(tmp_path: Path) -> Path:
    """A directory in which nothing can be created: a read-only one, or ``/sys`` for root."""
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        yield locked
        locked.chmod(0o755)
        return
    try:
        Path("/sys/.segrepro-probe").touch()
    except OSError:
        yield Path("/sys")
    else:  # pragma: no cover - a system where root may create files in /sys
        Path("/sys/.segrepro-probe").unlink()
        pytest.skip("no directory root cannot write in")


def test_a_directory_where_the_file_goes_is_one_error_and_no_scratch(tmp_path):
    (tmp_path / "m.json").mkdir()
    with pytest.raises(SegreproError, match=r"cannot write .*m\.json: it is a directory; pass a file path"):
        write_json(tmp_path / "m.json", {"a": 1})
    assert _names(tmp_path) == ["m.json"]   # the scratch .m.partial.json is gone


def test_a_file_where_a_directory_goes_is_named(tmp_path):
    (tmp_path / "ofile").write_text("x")
    for path in (tmp_path / "ofile" / "m.json", tmp_path / "ofile" / "deeper" / "m.json"):
        with pytest.raises(SegreproError, match=f"cannot write {path}: {tmp_path / 'ofile'} is a file, not a "
                                                "directory; pass a path inside a directory"):
            with atomic_file(path):
                pass
        with pytest.raises(SegreproError, match="is a file, not a directory"):
            check_output(path)
    with pytest.raises(SegreproError, match="is a file, not a directory"):
        with atomic_dir(tmp_path / "ofile" / "camvid", "download"):
            pass
    assert _names(tmp_path) == ["ofile"]


def test_no_permission_is_named(unwritable, tmp_path):
    target = unwritable / "m.npz"
    with pytest.raises(SegreproError, match=f"cannot write {target}: .* in {unwritable}; pass a path in a "
                                            "writable directory"):
        check_output(target)
    with pytest.raises(SegreproError, match=f"cannot write {target}: "):
        with atomic_file(target) as tmp:
            tmp.write_bytes(b"x")
    with pytest.raises(SegreproError, match=f"cannot write {unwritable / 'camvid'}: "):
        check_output(unwritable / "camvid", "download")


def test_check_output_leaves_no_trace_and_passes_a_good_path(tmp_path):
    check_output(tmp_path / "new" / "deep" / "m.json")
    check_output(tmp_path / "new" / "live", "train")
    assert _names(tmp_path) == []   # the parents it made to probe are removed again
    (tmp_path / "old.json").write_text("{}")
    check_output(tmp_path / "old.json")   # an earlier output, not tracked by git: replaceable
    assert (tmp_path / "old.json").read_text() == "{}"


def test_check_output_refuses_a_directory_a_clash_and_a_git_tracked_file(tmp_path):
    (tmp_path / "m.json").mkdir()
    with pytest.raises(SegreproError, match="m.json: it is a directory"):
        check_output(tmp_path / "m.json")
    with pytest.raises(SegreproError, match="output .*a.pt is also the stage's --checkpoint; give each its own path"):
        check_output(tmp_path / "x" / ".." / "a.pt", others={"--checkpoint": tmp_path / "a.pt"})
    (tmp_path / "params.yaml").write_text("train: {}\n")
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")
    for args in (["init", "-q"], ["add", "params.yaml"], ["commit", "-qm", "p"]):
        subprocess.run(["git", *args], cwd=tmp_path, env=env, check=True, capture_output=True)
    with pytest.raises(SegreproError, match="refusing to replace .*params.yaml: git tracks it"):
        check_output(tmp_path / "params.yaml")
    (tmp_path / "untracked.json").write_text("{}")
    check_output(tmp_path / "untracked.json")


def _old_pair(tmp_path: Path) -> tuple[Path, Path]:
    npz, js = tmp_path / "m.npz", tmp_path / "m.json"
    npz.write_text("old npz")
    js.write_text("old json")
    return npz, js


def test_a_group_appears_together_and_a_failed_body_keeps_the_old_one(tmp_path):
    npz, js = _old_pair(tmp_path)
    with pytest.raises(RuntimeError):
        with atomic_files(npz, js) as (a, b):
            a.write_text("new npz")
            raise RuntimeError("boom")
    assert (npz.read_text(), js.read_text()) == ("old npz", "old json")
    with atomic_files(npz, js) as (a, b):
        a.write_text("new npz")
        b.write_text("new json")
    assert (npz.read_text(), js.read_text()) == ("new npz", "new json")
    assert _names(tmp_path) == ["m.json", "m.npz"]
    with pytest.raises(SegreproError, match="name one file twice"):
        with atomic_files(npz, tmp_path / "." / "m.npz"):
            pass


def test_a_failed_second_rename_leaves_neither_file(tmp_path, monkeypatch):
    """The new .npz is in place when the .json's rename fails: it and the stale .json are removed,
    so no new statistics sit beside old metrics."""
    npz, js = _old_pair(tmp_path)
    real = os.replace

    def replace(src, dst):
        if Path(dst) == js:
            raise PermissionError(13, "Permission denied", str(src), None, str(dst))
        real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)
    with pytest.raises(SegreproError, match=f"cannot write {js}: Permission denied"):
        with atomic_files(npz, js) as (a, b):
            a.write_text("new npz")
            b.write_text("new json")
    assert _names(tmp_path) == []


def test_a_failed_first_rename_keeps_the_old_pair(tmp_path, monkeypatch):
    npz, js = _old_pair(tmp_path)

    def replace(src, dst):
        raise OSError(5, "Input/output error", str(src), None, str(dst))

    monkeypatch.setattr(atomic.os, "replace", replace)
    with pytest.raises(SegreproError, match=f"cannot write {npz} \\(Input/output error\\)"):
        with atomic_files(npz, js) as (a, b):
            a.write_text("new npz")
            b.write_text("new json")
    assert (npz.read_text(), js.read_text()) == ("old npz", "old json")
    assert _names(tmp_path) == ["m.json", "m.npz"]
