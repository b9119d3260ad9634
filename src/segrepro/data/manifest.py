"""Committed sha256 manifests: the single source of truth for raw data bytes.

A manifest is ``sha256sum`` output (``<hex>  <relative path>``), sorted, one
line per file. Every downloaded or mirrored file is checked against it; a
mismatch is an error, never a warning.
"""
from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path
from string import hexdigits

from segrepro.errors import SegreproError


def packaged_manifest(name: str) -> Path:
    """Path of a manifest shipped inside the package (``data/manifests/<name>.sha256``)."""
    return Path(str(resources.files("segrepro.data") / "manifests" / f"{name}.sha256"))


FORMAT = "expected sha256sum output, lines of `<64 hex digits>  <relative path>`"
FIX = "point --manifest at a sha256sum file, or leave it out to use the packaged CamVid manifest"


def load_manifest(path: Path) -> dict[str, str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:   # missing, a directory, unreadable, binary
        raise SegreproError(f"manifest {path} cannot be read ({exc}); {FIX}") from exc
    entries: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        digest, _, rel = line.partition("  ")
        if (len(digest) != 64 or set(digest) - set(hexdigits) or not rel or rel.startswith("/")
                or ".." in Path(rel).parts):
            raise SegreproError(f"manifest {path}:{n} is malformed: {line!r}; {FORMAT}; {FIX}")
        entries[rel] = digest.lower()
    if not entries:
        raise SegreproError(f"manifest {path} is empty; {FORMAT}; {FIX}")
    return entries


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_tree(root: Path, manifest: dict[str, str]) -> None:
    """Check every manifest entry under ``root``; raise naming the bad files."""
    missing, wrong = [], []
    for rel, digest in manifest.items():
        path = root / rel
        if not path.is_file():
            missing.append(rel)
        elif sha256_file(path) != digest:
            wrong.append(rel)
    if missing or wrong:
        parts = []
        if wrong:
            parts.append(f"{len(wrong)} file(s) with a wrong sha256: {', '.join(wrong[:5])}")
        if missing:
            parts.append(f"{len(missing)} file(s) missing: {', '.join(missing[:5])}")
        raise SegreproError(f"data under {root} does not match the manifest: " + "; ".join(parts)
                            + ". Re-download (or fix the mirror) and run `segrepro download` again")
