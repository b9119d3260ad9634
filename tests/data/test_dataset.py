"""Packed splits damaged after ``preprocess`` wrote them are refused with one line naming the fix."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import yaml

from segrepro.data.dataset import load_split, split_length
from segrepro.errors import SegreproError
from tests.conftest import REPO, assert_one_error_line, tiny_params


def segrepro_cli(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m segrepro.cli ARGS`` in ``cwd`` (environment ``env``, default ours), running this checkout's code."""
    env = dict(os.environ if env is None else env, PYTHONPATH=str(REPO / "src"))
    env.pop("DVC_STAGE", None)
    return subprocess.run([sys.executable, "-m", "segrepro.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture()
def packed(tmp_path: Path, synthetic_processed: Path) -> Path:
    copy = tmp_path / "processed"
    shutil.copytree(synthetic_processed, copy)
    return copy


def _resave(name: str, change: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], None]:
    def apply(processed: Path) -> None:
        np.save(processed / name, change(np.load(processed / name)))
    return apply


def _write(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda processed: (processed / name).write_bytes(data)


def _truncate(name: str) -> Callable[[Path], None]:
    def apply(processed: Path) -> None:
        data = (processed / name).read_bytes()
        (processed / name).write_bytes(data[: len(data) * 2 // 3])
    return apply


def _npz_as_npy(processed: Path) -> None:
    np.savez(processed / "archive.npz", images=np.load(processed / "val_images.npy"))
    os.replace(processed / "archive.npz", processed / "val_images.npy")


def _labels_200(labels: np.ndarray) -> np.ndarray:
    labels = labels.copy()
    labels[0, 0, 0] = 200
    return labels


# A version 1.0 .npy header (magic, length, dict literal padded to 64 bytes) whose literal never closes:
# numpy's parser raises tokenize.TokenError.
_HEADER = b"{'descr': '|u1', 'fortran_order': False, 'shape': ((((".ljust(117) + b"\n"
_BROKEN_HEADER = b"\x93NUMPY\x01\x00" + len(_HEADER).to_bytes(2, "little") + _HEADER

DAMAGE = [
    ("empty-file", _write("val_images.npy", b""), "val_images.npy: EOFError"),
    ("truncated", _truncate("val_labels.npy"), "val_labels.npy: ValueError"),
    ("broken-header", _write("val_images.npy", _BROKEN_HEADER), "val_images.npy: TokenError"),
    ("not-npy", _write("val_images.npy", b"hello world" * 10), "val_images.npy: ValueError"),
    ("npz-under-npy-name", _npz_as_npy, "val_images.npy is not a single .npy array"),
    ("float64-images", _resave("val_images.npy", lambda a: a.astype(np.float64)),
     "val_images.npy holds float64, not uint8"),
    ("int64-labels", _resave("val_labels.npy", lambda a: a.astype(np.int64)), "val_labels.npy holds int64, not uint8"),
    ("4-channel-images", _resave("val_images.npy", lambda a: np.concatenate([a, a[..., :1]], axis=3)),
     "images have shape (4, 48, 64, 4), not (N, H, W, 3)"),
    ("label-200", _resave("val_labels.npy", _labels_200), "label values [200] outside classes 0..10 and void 11"),
    ("names-not-utf8", _write("val_names.txt", b"\xff\xfe\n" * 4), "val_names.txt: 'utf-8' codec"),
]


@pytest.mark.parametrize("damage, expected", [pytest.param(*case[1:], id=case[0]) for case in DAMAGE])
def test_damaged_split_is_refused_naming_the_fix(packed, damage, expected):
    load_split(packed, "val")   # the undamaged copy loads
    damage(packed)
    with pytest.raises(SegreproError) as info:
        load_split(packed, "val")
    message = str(info.value)
    assert message.startswith(f"packed split val under {packed} is corrupt (")
    assert expected in message and message.endswith("; rerun `dvc repro preprocess`"), message


def test_void_and_every_class_are_accepted(packed):
    labels = np.load(packed / "val_labels.npy")
    labels[0, 0, :12] = np.arange(12)    # classes 0..10 and void 11
    np.save(packed / "val_labels.npy", labels)
    assert sorted(np.unique(load_split(packed, "val").labels[0, 0, :12].numpy())) == list(range(12))


def test_empty_split_names_the_fix(packed):
    np.save(packed / "val_images.npy", np.zeros((0, 48, 64, 3), np.uint8))
    np.save(packed / "val_labels.npy", np.zeros((0, 48, 64), np.uint8))
    (packed / "val_names.txt").write_text("")
    with pytest.raises(SegreproError, match=r"split val under .* is empty; rerun `dvc repro preprocess`"):
        load_split(packed, "val")


def test_split_length_refuses_an_unreadable_names_file(packed):
    assert split_length(packed, "train") == 4
    (packed / "train_names.txt").write_bytes(b"\xff\n")
    with pytest.raises(SegreproError, match=r"corrupt \(train_names.txt: .*rerun `dvc repro preprocess`"):
        split_length(packed, "train")


def _write_checkpoint(path: Path, params_path: Path) -> None:
    """An untrained baseline checkpoint for the tiny params (evaluate loads it before the test split)."""
    from segrepro.checkpoint import save_checkpoint
    from segrepro.models.build import build_model, model_kwargs
    from segrepro.params import load_params

    params = load_params(params_path)
    kwargs = model_kwargs(params.model, "baseline", params.base.num_classes)
    model = build_model(**dict(kwargs, pretrained="", pretrained_sha256=""))
    save_checkpoint({"model": model.state_dict(), "build": kwargs, "method": "baseline", "seed": 0,
                     "train": {"epochs": 1, "crop_height": 48, "crop_width": 64}}, path)


@pytest.mark.parametrize("stage, damage, needle", [
    ("train", _resave("train_labels.npy", _labels_200), "label values [200]"),
    # evaluate used to score float64 images without a word and exit 0
    ("evaluate", _resave("test_images.npy", lambda a: a.astype(np.float64)), "test_images.npy holds float64"),
], ids=["train-label-200", "evaluate-float64"])
def test_the_stages_print_one_line_and_write_nothing(tmp_path, packed, stage, damage, needle):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params(model={"channels": 16})))
    damage(packed)
    common = ["--method", "baseline", "--seed", "0", "--data", "processed"]
    if stage == "train":
        args = ["train", *common, "--checkpoint", "out/baseline-0.pt", "--live", "out/live"]
    else:
        _write_checkpoint(tmp_path / "baseline-0.pt", tmp_path / "params.yaml")
        args = ["evaluate", *common, "--checkpoint", "baseline-0.pt", "--out", "out/m.json",
                "--per-image", "out/m.npz"]
    done = segrepro_cli(tmp_path, *args)
    assert_one_error_line(done, f"segrepro {stage}: error: packed split ", needle,
                          "is corrupt", "rerun `dvc repro preprocess`")
    out = tmp_path / "out"
    assert not out.exists() or not [p for p in out.rglob("*") if p.is_file()]
