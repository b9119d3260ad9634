"""Atomic outputs: a stage's result appears whole or not at all.

Each helper writes beside the destination under a ``.partial`` name and
renames into place only after the body finished without an exception, so a
crash, a bad input or Ctrl-C never leaves a valid-looking half output.
``atomic_files`` does this for a group of files that belong together
(evaluate's metrics JSON and per-image statistics): all of them appear or
none does. The renames are made one after the other; if a later one fails,
the group's destinations that are files are removed, the new ones already in
place and the stale older partners alike. The choice: a missing output,
which DVC and the next stage report, rather than a new file beside an old
one that looks like its pair. If the first rename fails, nothing was
replaced and the older group stays as it was.

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

An output path the file system refuses (a directory where a file goes, a
file where a directory goes, no permission, a read-only file system, a full
disk) is a ``SegreproError`` naming the path, and the scratch is removed.
``check_output`` finds the first of these, and more, at a stage's start,
before its slow work: besides the target type it creates and removes the
scratch name (and any missing parent directories), the one reliable test of
writability (``os.access`` says yes to root on ``/sys``). It also refuses a
file output that git tracks: a stage's outputs are DVC's, never git's (DVC
lists them in ``.gitignore``), so a tracked file there is an input such as
``params.yaml`` given by mistake. Only the stages' own output paths are
checked so; ``atomic_file`` itself replaces whatever file is there, since
some tools rewrite tracked files on purpose (``pins.yaml``).
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from segrepro.errors import SegreproError

MARKER = ".segrepro-output"
_NO_PERMISSION = (errno.EACCES, errno.EPERM, errno.EROFS)


def _partial(path: Path) -> Path:
    # Keep the suffix last: tools such as papermill check it.
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def _scratch_dir(path: Path) -> Path:
    return _partial(path.resolve())


def write_error(path: str | os.PathLike, exc: OSError, directory: bool = False) -> SegreproError:
    """A one-line ``SegreproError`` for ``exc``, raised while writing the output ``path``: what is in the
    way, found by looking at the path itself rather than trusting the errno."""
    path = Path(path)
    if not directory and path.is_dir() and not path.is_symlink():
        return SegreproError(f"cannot write {path}: it is a directory; pass a file path (or remove the "
                             "directory if it is an old output)")
    existing = next((p for p in path.parents if p.exists() or p.is_symlink()), Path("."))
    if not existing.is_dir():
        return SegreproError(f"cannot write {path}: {existing} is a file, not a directory; pass a path "
                             "inside a directory")
    reason = exc.strerror or type(exc).__name__
    if exc.errno in _NO_PERMISSION:
        return SegreproError(f"cannot write {path}: {reason} in {existing}; pass a path in a writable "
                             "directory")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return SegreproError(f"cannot write {path}: {reason}; free space on that file system or pass a "
                             "path on another one")
    return SegreproError(f"cannot write {path} ({reason}); pass a path in a writable directory")


@contextlib.contextmanager
def _as_write_error(path: Path, directory: bool = False) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise write_error(path, exc, directory) from exc


def _tracked_by_git(path: Path) -> bool:
    """Whether the git repository holding ``path`` tracks it (False where there is no git or no repo)."""
    try:
        done = subprocess.run(["git", "ls-files", "--error-unmatch", "--", path.name], cwd=path.parent,
                              capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _probe(path: Path, scratch: Path, directory: bool) -> None:
    """Create and remove ``scratch`` (and whatever parent directories are missing): the write the stage
    will make, without leaving a trace."""
    created: list[Path] = []
    try:
        with _as_write_error(path, directory):
            for parent in reversed(scratch.parents):
                if not parent.exists() and not parent.is_symlink():
                    try:
                        parent.mkdir()
                    except FileExistsError:
                        if parent.is_dir():
                            continue   # made by someone else meanwhile
                        raise
                    created.append(parent)
            if directory:
                shutil.rmtree(scratch, ignore_errors=True)
                scratch.mkdir()
                scratch.rmdir()
            else:
                scratch.unlink(missing_ok=True)
                scratch.touch()
                scratch.unlink()
    finally:
        for parent in reversed(created):
            with contextlib.suppress(OSError):
                parent.rmdir()


def check_output(path: str | os.PathLike, stage: str | None = None,
                 owned: Callable[[Path], bool] | None = None,
                 others: Mapping[str, str | os.PathLike] | None = None) -> None:
    """Raise unless the stage will be able to write its output ``path``; call it before the slow work.

    Without ``stage``, ``path`` is a file output: it must not be a directory or a file git tracks.
    With it, a directory output of ``stage`` (``check_replaceable``, with ``owned``). ``others`` names
    the stage's other paths (label → path, e.g. ``{"--checkpoint": ...}``) that ``path`` must not be.
    Then the scratch name is created and removed (see the module docstring).
    """
    path = Path(path)
    for label, other in (others or {}).items():
        if os.path.realpath(path) == os.path.realpath(other):
            raise SegreproError(f"output {path} is also the stage's {label}; give each its own path")
    if stage is not None:
        check_replaceable(path, stage, owned)
        _probe(path, _scratch_dir(path), directory=True)
        return
    if path.is_dir() and not path.is_symlink():
        raise write_error(path, IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR)))
    if path.is_file() and _tracked_by_git(path):
        raise SegreproError(f"refusing to replace {path}: git tracks it, so it is a file of the project, "
                            "not a stage output; pass another path")
    _probe(path, _partial(path), directory=False)


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
                        f"(no '{MARKER}' marker of segrepro {stage}); pass a new or empty directory "
                        "for it, or remove it yourself if it really is an old output")


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
    scratch = _scratch_dir(path)
    shutil.rmtree(scratch, ignore_errors=True)
    with _as_write_error(path, directory=True):
        scratch.mkdir(parents=True)
    try:
        yield scratch
        if owned is None:
            (scratch / MARKER).write_text(f"segrepro {stage}\n")
        check_replaceable(path, stage, owned)   # nothing foreign appeared there meanwhile
        with _as_write_error(path, directory=True):
            shutil.rmtree(path, ignore_errors=True)
            scratch.rename(path)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def _replace_all(paths: tuple[Path, ...], scratches: tuple[Path, ...]) -> None:
    for done, (path, scratch) in enumerate(zip(paths, scratches)):
        try:
            os.replace(scratch, path)
        except OSError as exc:
            if done:  # an earlier one is new: leave no pair that mixes new and old
                for other in paths:
                    if other.is_symlink() or other.is_file():
                        with contextlib.suppress(OSError):
                            other.unlink()
            raise write_error(path, exc) from exc


@contextlib.contextmanager
def atomic_files(*paths: str | os.PathLike) -> Iterator[tuple[Path, ...]]:
    """Yield scratch file paths, one per path, that replace ``paths`` together on success (see the
    module docstring for a failure between the renames)."""
    paths = tuple(Path(p) for p in paths)
    if len({os.path.realpath(p) for p in paths}) < len(paths):
        raise SegreproError(f"the outputs {', '.join(map(str, paths))} name one file twice; give each its "
                            "own path")
    scratches = tuple(_partial(p) for p in paths)
    try:
        for path, scratch in zip(paths, scratches):
            with _as_write_error(path):
                path.parent.mkdir(parents=True, exist_ok=True)
                scratch.unlink(missing_ok=True)
                scratch.touch()   # fails here, not in the body, where the file system refuses it
                scratch.unlink()
        try:
            yield scratches
        except OSError as exc:
            hit = next((p for p, s in zip(paths, scratches)
                        if exc.filename is not None and Path(os.fsdecode(exc.filename)) == s), None)
            if hit is None and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                hit = paths[0]   # a write to a scratch file (no name on the error): the disk, not the body
            if hit is None:
                raise
            raise write_error(hit, exc) from exc
        _replace_all(paths, scratches)
    except BaseException:
        for scratch in scratches:
            with contextlib.suppress(OSError):
                scratch.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a scratch file path that replaces ``path`` on success."""
    with atomic_files(path) as (scratch,):
        yield scratch


def json_text(data: Any) -> str:
    """JSON sorted and indented so diffs are readable (what ``write_json`` writes)."""
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write JSON atomically (``json_text``)."""
    with atomic_file(path) as tmp:
        tmp.write_text(json_text(data))
