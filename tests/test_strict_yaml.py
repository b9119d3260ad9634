"""strict_yaml.read_yaml: every unreadable YAML file is one line naming the file, the place and the fix."""
from __future__ import annotations

from pathlib import Path

import pytest

from segrepro.errors import SegreproError
from segrepro.strict_yaml import read_yaml


def _read(tmp_path: Path, data: bytes, unique: bool = True):
    path = tmp_path / "f.yaml"
    path.write_bytes(data)
    return read_yaml(path, "some file", "they live in x/"), path


@pytest.mark.parametrize("data,place,needles", [
    (b"base:\n\tdataset: camvid\n", "line 2, column 1", ["found character '\\t'", "replace the tab with spaces"]),
    (b"base: {dataset: camvid\ntrain: 1\n", "line 2, column 6",
     ["while parsing a flow mapping started at line 1, column 7", "close the `{` or `[`"]),
    (b"title: 'abc\n", "line 2, column 1", ["while scanning a quoted scalar", "close the quote"]),
    (b"a:\n  b: 1\n c: 2\n", "line 3, column 2", ["expected <block end>", "indented with spaces by the same amount"]),
    (b"? [a, b]\n: 1\n", "line 1, column 3", ["found unhashable key", "keys must be plain names"]),
    (b"x: 1\n? {a: 1}\n: 1\n", "line 2, column 3", ["found unhashable key", "keys must be plain names"]),
    (b"a: *x\n", "line 1, column 4", ["found undefined alias 'x'", "define the anchor"]),
    (b"base:\n  dataset: caf\xe9\n", "line 2, column 15", ["byte 0xe9 is not UTF-8", "save the file as UTF-8"]),
    (b"a: 1\nb: \x00\n", "line 2, column 4", ["character #x0000 is not allowed", "delete it"]),
])
def test_syntax_errors_name_file_line_column_and_fix(tmp_path, data, place, needles):
    with pytest.raises(SegreproError) as info:
        _read(tmp_path, data)
    message = str(info.value)
    assert message.startswith(f"some file {tmp_path / 'f.yaml'}, {place}: "), message
    assert "\n" not in message and "<unicode string>" not in message
    for needle in needles:
        assert needle in message, message


def test_a_key_set_twice_is_refused_only_when_unique(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_text("a: 1\nb:\n  c: 1\n  c: 2\n")
    with pytest.raises(SegreproError, match=r"^some file .*f.yaml: params key 'c' appears twice \(line 4\), "
                                            r"first at line 3; keep one of them$"):
        read_yaml(path, "some file", "x", unique=True)
    assert read_yaml(path, "some file", "x") == {"a": 1, "b": {"c": 2}}  # YAML's own rule: the last wins


def test_a_missing_file_says_where_such_files_live(tmp_path):
    with pytest.raises(SegreproError, match=r"^some file .*nope.yaml not found; check the path \(they live in x/\)$"):
        read_yaml(tmp_path / "nope.yaml", "some file", "they live in x/")


def test_a_directory_or_a_device_is_not_called_missing(tmp_path):
    for path in (tmp_path, Path("/dev/null")):
        with pytest.raises(SegreproError, match=rf"^some file {path} is not a file \(a directory or a device\); "
                                                r"pass the file itself \(x\)$"):
            read_yaml(path, "some file", "x")


def test_nesting_too_deep_is_one_line(tmp_path):
    with pytest.raises(SegreproError, match="nests lists or mappings too deeply"):
        _read(tmp_path, b"[" * 5000 + b"]" * 5000)


def test_an_empty_file_reads_as_none_and_a_good_one_as_its_mapping(tmp_path):
    assert _read(tmp_path, b"# only a comment\n")[0] is None
    assert _read(tmp_path, "a: café\n".encode())[0] == {"a": "café"}
