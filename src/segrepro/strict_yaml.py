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
"""
from __future__ import annotations

import dataclasses
import difflib
import typing
from typing import Any

import yaml

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


class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with the same key twice (as DVC does)."""

    def construct_mapping(self, node, deep=False):  # noqa: ANN001 - yaml's signature
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise SegreproError(f"params key {key!r} appears twice (line {key_node.start_mark.line + 1}); "
                                    "keep one")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)
