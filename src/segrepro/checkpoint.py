"""Checkpoint files: written with a content hash, verified at every load.

A checkpoint is a ``torch.save`` dict: ``model`` (the state dict), ``build``
(the model's constructor arguments), ``method``, ``seed``, ``train`` (the
train params, ``train_record``) and ``environment``. ``save_checkpoint`` adds
``sha256``: a hash over every entry but itself — the tensors in sorted key
order, each as name, dtype, shape and raw bytes, then the other entries as
sorted JSON — so a flipped byte anywhere in a weight or in the model
arguments is caught by ``load_checkpoint`` even when it still unpickles into
a plausible number (a zip archive carries no checksum torch checks).
Non-finite weights are refused too: a NaN checkpoint evaluates to garbage,
not to an error.

The hash lives in the file, not beside it, so a checkpoint stays one DVC
output; it is computed from the tensors, not from the file bytes, so it does
not depend on how torch lays out the archive. Loading keeps
``weights_only=True``. A checkpoint written before the hash existed is
refused with the advice to retrain it.

Past the hash, ``load_checkpoint`` checks every entry a stage reads
(``REQUIRED``, ``TRAIN_KEYS``, ``BUILD_KEYS``: evaluate and the report copy
them into the metrics), so a checkpoint that hashes fine but lacks one fails
at load, naming the file and what is missing, not with a ``KeyError`` after
the whole evaluation.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import torch

from segrepro import layout
from segrepro.atomic import atomic_file
from segrepro.errors import SegreproError, reason
from segrepro.params import Params

HASH_KEY = "sha256"
# The entries every stage may read, with their types (``environment`` is optional: older checkpoints lack it).
REQUIRED: dict[str, type] = {"model": dict, "build": dict, "method": str, "seed": int, "train": dict}
TRAIN_KEYS = ("epochs", "crop_height", "crop_width")       # of ``train``: the recipe evaluate records
BUILD_KEYS = ("method", "backbone", "decoder", "output_stride")  # of ``build``: the model evaluate records


def train_record(params: Params) -> dict[str, Any]:
    """The checkpoint's ``train`` entry: the train params, with ``runtime.threads`` and
    ``runtime.device`` where they stood before they moved to ``runtime`` (after ``flip``).

    The two belong in the record (CPU bits depend on the thread count), and the old keys and
    their order are kept on purpose: the checkpoint is pickled, so the same entry keeps new
    checkpoints byte-identical to those made before the move, and their md5s in the pins valid.
    For the same reason ``optimizer`` is recorded only when it is not ``sgd``, the one optimiser
    before the option existed (the GPU profile's pinned checkpoints are SGD runs).
    """
    record: dict[str, Any] = {}
    for key, value in dataclasses.asdict(params.train).items():
        if key == "optimizer" and value == "sgd":
            continue
        record[key] = value
        if key == "flip":
            record.update(threads=params.runtime.threads, device=params.runtime.device)
    return record


def retrain_advice(path: Path) -> str:
    """How to rebuild the checkpoint at ``path`` and nothing upstream: the DVC commands where it is one of
    the pipeline's own (``models/<method>-<seed>.pt``, relative to the checkout), else ``segrepro train``
    (a file elsewhere has no stage, and its name need not say which run it is)."""
    key = Path(path).stem
    if Path(path).as_posix() == layout.checkpoint(key).as_posix():
        return (f"retrain it with `dvc repro -s -f train@{key}` "
                f"(or restore the recorded one with `dvc checkout {path}`)")
    return (f"retrain it with `segrepro train --checkpoint {path}` (in the pipeline, "
            f"{layout.checkpoint('<method>-<seed>')}: `dvc repro -s -f train@<method>-<seed>`)")


def _tensor_bytes(tensor: torch.Tensor) -> bytes:
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""


def content_hash(state: dict[str, Any]) -> str:
    """sha256 of the weights (sorted keys; name, dtype, shape, bytes) and every other entry but the hash."""
    digest = hashlib.sha256()
    for name in sorted(state["model"]):
        tensor = state["model"][name]
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(_tensor_bytes(tensor))
    rest = {k: v for k, v in state.items() if k not in ("model", HASH_KEY)}
    digest.update(json.dumps(rest, sort_keys=True).encode())
    return digest.hexdigest()


def checkpoint_bytes(state: dict[str, Any]) -> bytes:
    """The file's bytes: serialised through memory, as torch.save names the archive after the file."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` plus its content hash atomically (same state, same bytes)."""
    state = dict(state, **{HASH_KEY: content_hash(state)})
    data = checkpoint_bytes(state)
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The verified state of the checkpoint at ``path``; every problem is a SegreproError naming the file."""
    path = Path(path)
    if path.is_dir():
        raise SegreproError(f"checkpoint {path} is a directory; pass the checkpoint file "
                            f"({layout.checkpoint('<method>-<seed>')})")
    if not path.is_file():
        raise SegreproError(f"checkpoint {path} is missing; run `dvc repro` to train it")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt zip, truncated file, foreign pickle
        raise SegreproError(f"checkpoint {path} is unreadable ({reason(exc)}); {retrain_advice(path)}") from exc
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict) or "build" not in state:
        raise SegreproError(f"checkpoint {path} is not a segrepro checkpoint; {retrain_advice(path)}")
    if HASH_KEY not in state:
        raise SegreproError(f"checkpoint {path} has no content hash (written before checkpoints were "
                            f"hashed), so it cannot be verified; {retrain_advice(path)}")
    try:
        actual = content_hash(state)
    except (TypeError, ValueError, AttributeError, RuntimeError) as exc:
        raise SegreproError(f"checkpoint {path} is malformed ({reason(exc)}); {retrain_advice(path)}") from exc
    if actual != state[HASH_KEY]:
        raise SegreproError(f"checkpoint {path} was modified after training (content hash mismatch); "
                            f"{retrain_advice(path)}")
    bad = [name for name, t in state["model"].items()
           if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise SegreproError(f"checkpoint {path} holds non-finite weights ({', '.join(bad[:3])}); "
                            f"{retrain_advice(path)}")
    problems = schema_problems(state)
    if problems:
        raise SegreproError(f"checkpoint {path} is incomplete ({'; '.join(problems)}), so no stage can use it; "
                            f"{retrain_advice(path)}")
    return state


def _type_problem(where: str, value: Any, kind: type) -> str | None:
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return None
    return f"{where} is {type(value).__name__}, not {kind.__name__}"


def schema_problems(state: dict[str, Any]) -> list[str]:
    """What keeps ``state`` from being a checkpoint the stages can read (``REQUIRED``, ``TRAIN_KEYS``,
    ``BUILD_KEYS``); empty when nothing does."""
    problems = [f"no '{key}'" if key not in state else _type_problem(f"'{key}'", state[key], kind)
                for key, kind in REQUIRED.items()]
    for section, keys in (("train", TRAIN_KEYS), ("build", BUILD_KEYS)):
        if isinstance(state.get(section), dict):
            missing = [k for k in keys if k not in state[section]]
            problems.append(f"'{section}' has no {', '.join(missing)}" if missing else None)
    for key in TRAIN_KEYS:
        if isinstance(state.get("train"), dict) and key in state["train"]:
            problems.append(_type_problem(f"train.{key}", state["train"][key], int))
    return [p for p in problems if p]
