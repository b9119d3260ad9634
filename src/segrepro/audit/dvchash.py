"""The md5 that DVC records in ``dvc.lock`` for an output, computed without DVC.

The audit runs as a DVC stage inside ``dvc repro``, which holds the repository
lock, so it cannot call the ``dvc`` CLI or ``Repo.status``; it recomputes the
hashes itself. The definitions follow dvc-data 3.x (``dvc_data/hashfile``),
for outputs recorded with ``hash: md5`` (DVC 3):

* **file**: ``hashlib.md5`` of the file's bytes (``hash.file_md5``; the
  ``md5-dos2unix`` variant of DVC 2 lock files is not used for ``hash: md5``).
* **directory** (``tree.py`` ``Tree.as_list``/``as_bytes``/``digest``,
  ``build.py`` ``_build_tree``): walk the directory, list every *file* (empty
  directories contribute nothing) as ``{"md5": <file md5>, "relpath":
  <posix path relative to the directory>}``, sort the list by ``relpath``
  (Python string order), serialise it with ``json.dumps(..., sort_keys=True)``
  (default separators, ASCII escapes) encoded as UTF-8, take the md5 of those
  bytes and append ``.dir``.

Choices where DVC's behaviour is richer than needed here:

* Ignored names: DVC's default ignores (``.git``, ``.hg``, ``.dvc``) are
  skipped at any depth. Patterns in the repository's top-level ``.dvcignore``
  are honoured through ``pathspec`` (DVC's own dependency, imported only when
  there are patterns); ``.dvcignore`` files below the top level are not read.
* Symbolic links are followed, as DVC's local walk does for files.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

DIR_SUFFIX = ".dir"
DEFAULT_IGNORED = frozenset({".git", ".hg", ".dvc"})
CHUNK = 1 << 20


def file_md5(path: Path) -> str:
    """md5 of the file's bytes, as DVC 3 records it for a file output."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fobj:
        while chunk := fobj.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _ignore_spec(repo_root: Path):
    dvcignore = repo_root / ".dvcignore"
    lines = dvcignore.read_text().splitlines() if dvcignore.is_file() else []
    active = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not active:
        return None
    import pathspec  # a dependency of dvc; only needed when patterns exist

    return pathspec.GitIgnoreSpec.from_lines(active)


def _is_ignored(rel_to_root: str, is_dir: bool, spec) -> bool:
    if spec is None:
        return False
    return spec.match_file(rel_to_root + ("/" if is_dir else ""))


def dir_md5(path: Path, repo_root: Path | None = None) -> str:
    """DVC's ``.dir`` hash of a directory output (see the module docstring)."""
    path = Path(path)
    root = Path(repo_root) if repo_root is not None else path.parent
    spec = _ignore_spec(root)
    entries = []
    for current, dirs, files in os.walk(path, followlinks=True):
        here = Path(current)
        dirs[:] = [d for d in dirs if d not in DEFAULT_IGNORED
                   and not _is_ignored(_rel(here / d, root), True, spec)]
        for name in files:
            full = here / name
            if name in DEFAULT_IGNORED or _is_ignored(_rel(full, root), False, spec):
                continue
            entries.append({"md5": file_md5(full), "relpath": full.relative_to(path).as_posix()})
    entries.sort(key=lambda entry: entry["relpath"])
    body = json.dumps(entries, sort_keys=True).encode("utf-8")
    return hashlib.md5(body, usedforsecurity=False).hexdigest() + DIR_SUFFIX


def _rel(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def dvc_md5(path: Path, repo_root: Path | None = None) -> str | None:
    """DVC's md5 of a file or directory output, or None when it does not exist."""
    path = Path(path)
    if path.is_dir():
        return dir_md5(path, repo_root)
    if path.is_file():
        return file_md5(path)
    return None
