"""Atomic outputs: a stage's result appears whole or not at all.

Each helper writes beside the destination under a ``.partial`` name and
renames into place only after the body finished without an exception, so a
crash, a bad input or Ctrl-C never leaves a valid-looking half output.

A directory output is replaced only if the stage made it: ``atomic_dir``
writes a marker file, ``.segrepro-output`` naming the stage, into the
scratch directory last, and refuses to replace an existing path unless it
is an empty directory or holds that stage's marker. So ``--out data`` or
``--out ..`` fails with an error instead of deleting what is there. Under
``dvc repro`` the path is normally missing (DVC removes a stage's outputs
before running it). The marker is part of the output (constant bytes, so
reruns stay byte-identical). A directory that DVC tracks only in part (train's
DVCLive folder: DVC declares its ``metrics.json`` and ``plots/metrics``, not
the folder) gets no marker, since an undeclared file would be missing from a
``dvc pull``ed copy and change the hash of every stage reading the folder;
its stage passes ``owned``, a predicate recognising its own earlier output
by its contents. A tree of empty directories counts as empty (what DVC
leaves after removing the declared parts).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from segrepro.errors import SegreproError

MARKER = ".segrepro-output"


def _partial(path: Path) -> Path:
    # Keep the suffix last: tools such as papermill check it.
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def check_replaceable(path: str | os.PathLike, stage: str,
                      owned: Callable[[Path], bool] | None = None) -> None:
    """Raise unless ``path`` is missing, empty (empty directories at most), or an earlier output of
    ``stage``: it holds the stage's marker, or ``owned(path)`` recognises it."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return
    if path.is_dir() and not path.is_symlink():
        entries = list(path.iterdir())
        if all(p.is_dir() and not p.is_symlink() for p in path.rglob("*")):
            return
        marker = path / MARKER
        if marker.is_file() and marker.read_text().strip() == f"segrepro {stage}":
            return
        if owned is not None and owned(path):
            return
        what = f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'} segrepro {stage} did not write"
    else:
        what = "a file or link, not a directory segrepro made"
    raise SegreproError(f"refusing to replace {path} ({Path(path).resolve()}): it holds {what} "
                        f"(no '{MARKER}' marker of segrepro {stage}); point --out at a new or empty "
                        "directory, or remove it yourself if it really is an old output")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, stage: str,
               owned: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Yield an empty scratch directory that replaces ``path`` on success.

    ``path`` must be replaceable by ``stage`` (``check_replaceable``). Without
    ``owned`` the marker naming ``stage`` is written into the scratch
    directory after the body, just before the rename; with it, no marker is
    written and ``owned`` is how an earlier output is recognised.
    """
    path = Path(path)
    check_replaceable(path, stage, owned)
    scratch = _partial(path.resolve())
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        yield scratch
        if owned is None:
            (scratch / MARKER).write_text(f"segrepro {stage}\n")
        check_replaceable(path, stage, owned)   # nothing foreign appeared there meanwhile
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
