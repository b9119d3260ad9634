"""Atomic outputs: a stage's result appears whole or not at all.

Each helper writes beside the destination under a ``.partial`` name and
renames into place only after the body finished without an exception, so a
crash, a bad input or Ctrl-C never leaves a valid-looking half output.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _partial(path: Path) -> Path:
    # Keep the suffix last: tools such as papermill check it.
    return path.with_name(f".{path.stem}.partial{path.suffix}")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty scratch directory that replaces ``path`` on success."""
    path = Path(path)
    scratch = _partial(path)
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        yield scratch
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    shutil.rmtree(path, ignore_errors=True)
    scratch.rename(path)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a scratch file path that replaces ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = _partial(path)
    scratch.unlink(missing_ok=True)
    try:
        yield scratch
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise
    os.replace(scratch, path)


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write JSON atomically, sorted and indented so diffs are readable."""
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
