"""YAML mappings → frozen dataclasses, strictly: the generic half of ``segrepro.params``.

``build(cls, raw, path)`` turns a parsed mapping into ``cls`` by its type
hints: nested dataclasses, ``tuple[X, ...]`` from lists, ``dict`` kept as a
mapping, ``int`` accepted where ``float`` is hinted (never ``bool`` for
``int``). An unknown key (with a did-you-mean hint and the allowed keys), a
missing key without a default, or a value of the wrong type raises
:class:`SegreproError` naming the key's dotted path. ``UniqueKeyLoader``
refuses a mapping that sets one key twice (YAML's own loaders keep the
last, silently; DVC refuses it too). What the keys mean and which values
are allowed is ``segrepro.params``'s business, not this module's.

``read_yaml`` is the one reader of the YAML files a user edits (params,
profiles, the GPU sweep file): a missing file, bytes that are not UTF-8, a
syntax error, a key that is a list or mapping, or a file nested too deeply
raises one-line :class:`SegreproError` naming the file, the line and column
(YAML's error mark, counted from 1) and a fix; a key set twice names both
lines.
"""
from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError

from segrepro.errors import SegreproError


def _convert(value: Any, hint: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, path)
    if origin is tuple:
        if not isinstance(value, list):
            raise SegreproError(f"params key {path} must be a list, got {value!r}")
        (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
        return tuple(_convert(v, item, f"{path}[{i}]") for i, v in enumerate(value))
    if hint is dict:
        if not isinstance(value, dict):
            raise SegreproError(f"params key {path} must be a mapping, got {value!r}")
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, bool) or not isinstance(value, hint):
        raise SegreproError(f"params key {path} must be of type {hint.__name__}, got {value!r}")
    return value


def build(cls: type, raw: Any, path: str) -> Any:
    if not isinstance(raw, dict):
        raise SegreproError(f"params section {path or '<root>'} must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            guess = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean {path + '.' if path else ''}{guess[0]}?)" if guess else ""
            raise SegreproError(f"unknown params key {path + '.' if path else ''}{key}{hint}; "
                                f"allowed keys: {', '.join(fields)}")
    values = {}
    for name, f in fields.items():
        key_path = f"{path}.{name}" if path else name
        if name not in raw:
            if f.default_factory is not dataclasses.MISSING:
                values[name] = f.default_factory()
                continue
            raise SegreproError(f"params key {key_path} is missing; add it to params.yaml")
        values[name] = _convert(raw[name], hints[name], key_path)
    return cls(**values)


class DuplicateKeyError(ConstructorError):
    """A mapping sets ``key`` twice, first on line ``first`` (from 0); the mark is the second's."""

    def __init__(self, key: Any, first: int, node: Any, key_node: Any) -> None:
        super().__init__("while constructing a mapping", node.start_mark, f"found key {key!r} twice",
                         key_node.start_mark)
        self.key, self.first = key, first


class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with the same key twice (as DVC does)."""

    def construct_mapping(self, node, deep=False):  # noqa: ANN001 - yaml's signature
        first: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                break  # SafeLoader's own construct_mapping raises its marked "found unhashable key"
            if key in first:
                raise DuplicateKeyError(key, first[key], node, key_node)
            first[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _syntax_fix(exc: yaml.MarkedYAMLError) -> str:
    """The fix for a YAML error, by what YAML says went wrong."""
    problem, context = exc.problem or "", exc.context or ""
    if "\\t" in problem:
        return "YAML indents with spaces only: replace the tab with spaces"
    if "unhashable key" in problem:
        return "keys must be plain names such as `train:`, not lists or mappings (drop the `? ` key)"
    if "flow mapping" in context or "flow sequence" in context:
        return "close the `{` or `[` opened where it started, and quote values that hold `:`, `,`, `[` or `{`"
    if "quoted scalar" in context:
        return "close the quote opened where it started"
    if "alias" in problem:
        return "define the anchor (`&name`) before its alias, or write the value out"
    return ("fix the YAML there: one `key: value` per line, nested keys indented with spaces by the same "
            "amount, values holding `: ` or `#` quoted")


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


def _marked_message(exc: yaml.MarkedYAMLError) -> str:
    """``line L, column C: problem (context at line …)``, on one line."""
    mark = exc.problem_mark or exc.context_mark
    text = (exc.problem or exc.context or "not valid YAML").replace("\n", " ")
    if exc.problem and exc.context:
        text += f" ({exc.context}"
        if exc.context_mark is not None and exc.context_mark is not mark:
            text += f" started at {_where(exc.context_mark)}"
        text += ")"
    return f"{_where(mark)}: {text}" if mark is not None else text


def _line_column(text: str | bytes, position: int) -> str:
    """Where offset ``position`` of ``text`` (characters or bytes) lies, counted from 1 like ``_where``."""
    newline = b"\n" if isinstance(text, bytes) else "\n"
    start = text.rfind(newline, 0, position) + 1
    return f"line {text.count(newline, 0, position) + 1}, column {position - start + 1}"


def read_yaml(path: str | Path, what: str, where: str, unique: bool = False) -> Any:
    """Parse the YAML file ``path`` (``None`` when it holds no document); every problem is one line.

    ``what`` names the file's role in messages ("params file", "profile");
    ``where`` says where such files live (the fix for a wrong path).
    ``unique`` refuses a key set twice (``UniqueKeyLoader``); without it the
    last one wins, as in YAML's own loaders.
    """
    path = Path(path)
    if not path.exists():
        raise SegreproError(f"{what} {path} not found; check the path ({where})")
    if not path.is_file():
        raise SegreproError(f"{what} {path} is not a file (a directory or a device); pass the file itself ({where})")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SegreproError(f"{what} {path}, {_line_column(data, exc.start)}: byte 0x{data[exc.start]:02x} is not "
                            "UTF-8; save the file as UTF-8 (or write the character as plain ASCII)") from None
    try:
        return yaml.load(text, Loader=UniqueKeyLoader if unique else yaml.SafeLoader)  # noqa: S506 - SafeLoaders
    except yaml.reader.ReaderError as exc:
        raise SegreproError(f"{what} {path}, {_line_column(text, exc.position)}: character #x{exc.character:04x} "
                            "is not allowed in YAML; delete it") from None
    except DuplicateKeyError as exc:
        raise SegreproError(f"{what} {path}: params key {exc.key!r} appears twice (line {exc.problem_mark.line + 1}),"
                            f" first at line {exc.first + 1}; keep one of them") from None
    except yaml.MarkedYAMLError as exc:
        raise SegreproError(f"{what} {path}, {_marked_message(exc)}; {_syntax_fix(exc)}") from None
    except yaml.YAMLError as exc:  # unmarked: not raised by PyYAML's SafeLoader today
        raise SegreproError(f"{what} {path} is not valid YAML ({' '.join(str(exc).split())}); fix it") from None
    except RecursionError:
        raise SegreproError(f"{what} {path} nests lists or mappings too deeply to read; "
                            "it must nest a few levels at most") from None
