"""Shared fixtures: tiny params; a generated CamVid-shaped tree for unit tests; the CamVid mirror
beside the checkout for the data and end-to-end tests.

Unit tests take ``synthetic_raw`` / ``synthetic_processed`` (``segrepro.data.synthetic``: real PNGs,
every class, thin poles, void), so they run without the dataset. ``mirror``, ``tiny_raw`` and
``tiny_processed`` are real CamVid, for what must hold on the real files: the manifest, download,
preprocessing of the real release, facts of the real data, and the pipeline end to end.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.container_image import PREPARATION

REPO = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("SEGREPRO_CAMVID_MIRROR", REPO.parent / "shared" / "datasets" / "camvid"))


@pytest.hookimpl(trylast=True)  # after -m/-k have deselected: only what will run counts
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Container tests last, tests on a wall-clock deadline just before them, and the container engine
    and image prepared in the background meanwhile (tests/container_image.py says why)."""
    def rank(item: pytest.Item) -> int:
        return 2 if item.get_closest_marker("container") else 1 if item.get_closest_marker("deadline") else 0
    items.sort(key=rank)  # stable: collection order within each rank
    if items and rank(items[-1]) == 2 and not config.option.collectonly:
        PREPARATION.start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    PREPARATION.stop()  # a session that ended early (-x, Ctrl-C) leaves no build running


@pytest.fixture(autouse=True)
def _quiet_cpu_for_deadline_tests(request: pytest.FixtureRequest) -> None:
    """A test on a wall-clock deadline waits for the background image build: it gets the CPU to itself."""
    if request.node.get_closest_marker("deadline"):
        PREPARATION.wait_quietly()


def assert_one_error_line(done: subprocess.CompletedProcess, prefix: str, *needles: str) -> None:
    """A refused run: exit status 2 and one stderr line, ``prefix`` first, holding every needle."""
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), done.stderr
    for needle in needles:
        assert needle in lines[0]


def tiny_params(**overrides: dict) -> dict:
    """The repository's params.yaml shrunk to a seconds-long configuration."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["preprocess"].update(height=48, width=64, max_images=4)
    params["train"].update(epochs=1, batch_size=2, crop_height=48, crop_width=64)
    params["runtime"].update(inference_batch_size=4)
    params["evaluate"].update(latency_runs=1)
    for section, values in overrides.items():
        params[section].update(values)
    return params


def params_for_run(out: Path, seeds: str, methods: str = "[baseline, sdn]") -> Path:
    """The repository's params.yaml, text and comments as committed, with the lines of ``base.seeds``
    and ``base.methods`` replaced (YAML flow lists, e.g. ``"[0, 1, 2]"``), written to ``out``: the
    params of a run whose files a test made, for the commands that read a params file."""
    text = (REPO / "params.yaml").read_text()
    for key, value in (("seeds:", seeds), ("methods:", methods)):
        line = next(line for line in text.splitlines() if line.strip().startswith(key))
        text = text.replace(line, f"  {key} {value}")
    out.write_text(text)
    return out


def tiny_repo(root: Path, mirror: Path, **overrides: dict) -> dict[str, str]:
    """The committed files copied to ``root`` as a fresh git repository with tiny params (no pins,
    no dvc.lock); returns the environment to run ``dvc`` and ``segrepro`` in it."""
    root.mkdir(parents=True, exist_ok=True)
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.split("\0")
    for rel in filter(None, files):
        if (REPO / rel).is_file():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, root / rel)
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params(**overrides), sort_keys=False))
    (root / "pins.yaml").unlink(missing_ok=True)
    (root / "dvc.lock").unlink(missing_ok=True)
    # PYTHONPATH: the stages run the copy's code, the code DVC hashes as their dependency.
    env = dict(os.environ, SEGREPRO_CAMVID_MIRROR=str(mirror), DVC_NO_ANALYTICS="1", PYTHONPATH=str(root / "src"),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "tiny"]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)
    return env


@pytest.fixture(scope="session")
def mirror() -> Path:
    if not (MIRROR / "CamVid").is_dir():
        pytest.fail(f"CamVid mirror not found at {MIRROR}; set SEGREPRO_CAMVID_MIRROR")
    return MIRROR


@pytest.fixture()
def params_file(tmp_path: Path) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tiny_params()))
    return path


@pytest.fixture(scope="session")
def tiny_raw(tmp_path_factory: pytest.TempPathFactory, mirror: Path) -> Path:
    """A raw CamVid tree holding the first 4 pairs of each split (copied from the mirror)."""
    root = tmp_path_factory.mktemp("raw")
    for split in ("train", "val", "test"):
        lines = (mirror / "CamVid" / f"{split}.txt").read_text().splitlines()[:4]
        (root / "CamVid" / split).mkdir(parents=True)
        (root / "CamVid" / f"{split}annot").mkdir(parents=True)
        (root / "CamVid" / f"{split}.txt").write_text("\n".join(lines) + "\n")
        for line in lines:
            for part in line.split():
                rel = Path(*Path(part).parts[-2:])
                shutil.copyfile(mirror / "CamVid" / rel, root / "CamVid" / rel)
    return root


def _packed(tmp_path_factory: pytest.TempPathFactory, raw: Path) -> Path:
    """``raw`` preprocessed as tiny_params does it: the first 4 pairs per split at 48×64."""
    from segrepro.data.preprocess import preprocess_camvid

    out = tmp_path_factory.mktemp("processed") / "processed"
    preprocess_camvid(raw, out, 48, 64, max_images=4)
    return out


@pytest.fixture(scope="session")
def tiny_processed(tmp_path_factory: pytest.TempPathFactory, tiny_raw: Path) -> Path:
    return _packed(tmp_path_factory, tiny_raw)


@pytest.fixture(scope="session")
def synthetic_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated raw tree laid out like CamVid: 4 scenes per split at CamVid's 360×480, seed 0."""
    from segrepro.data.synthetic import write_synthetic_camvid

    return write_synthetic_camvid(tmp_path_factory.mktemp("synthetic") / "raw", images_per_split=4)


@pytest.fixture(scope="session")
def synthetic_processed(tmp_path_factory: pytest.TempPathFactory, synthetic_raw: Path) -> Path:
    return _packed(tmp_path_factory, synthetic_raw)
