"""Per-epoch training state, so a killed ``segrepro train`` resumes where it stopped.

After every epoch the trainer writes one file, atomically
(``segrepro.atomic``): the weights, the optimiser and LR-scheduler state,
the iteration and epoch counters, every random stream training draws from
(the data-order/augmentation generator, torch's global CPU generator — used
by dropout —, CUDA's and the on-GPU augmentation generator when training on
a GPU, numpy's and Python's global ones), the last epoch's metrics and a
snapshot of the DVCLive files with their step. A rerun of the same (method,
seed, params, data, environment) restores all of it and continues with the
next epoch; on CPU the final checkpoint is then bit-identical to that of an
uninterrupted run, and the DVCLive logs hold each epoch once.

Where: ``<checkpoint dir>/.resume/<checkpoint stem>.state``, e.g.
``models/.resume/sdn-0.state``. It must live outside the stage's declared
outputs, because ``dvc repro`` deletes those before rerunning a stage, and it
must not enter any hash: ``.dvcignore`` and ``.gitignore`` exclude
``.resume/``, and the checkpoint's content hash (``segrepro.checkpoint``)
covers only the final checkpoint's entries. The file is removed when
training ends (successfully or with a ``SegreproError``: a run that failed
for a reason the user must fix should not be resumed into the same failure).

A state whose fingerprint (``fingerprint``: a hash of everything the
result depends on) differs from this run's, or that cannot be read, is
ignored with one printed line and training starts from epoch 0. Not under
torchrun (``WORLD_SIZE > 1``): there no state is written or read.
"""
from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from segrepro.atomic import atomic_file
from segrepro.checkpoint import checkpoint_bytes, train_record
from segrepro.params import Params

VERSION = 2  # 2: the LR schedule is torch.optim.lr_scheduler.SequentialLR (was LambdaLR)


def state_path(checkpoint: Path) -> Path:
    """Where the resume state of the checkpoint at ``checkpoint`` lives."""
    checkpoint = Path(checkpoint)
    return checkpoint.parent / ".resume" / f"{checkpoint.stem}.state"


def fingerprint(params: Params, method: str, seed: int, processed: Path, build: dict[str, Any],
                environment: dict[str, str]) -> str:
    """Hash of what a training run's bits depend on: method, seed, params used, data card, environment."""
    card = Path(processed) / "card.json"
    data = hashlib.sha256(card.read_bytes()).hexdigest() if card.is_file() else ""
    relevant = {"version": VERSION, "method": method, "seed": seed, "build": build,
                "train": train_record(params), "base": [params.base.num_classes, params.base.ignore_index],
                "evaluate.batch_size": params.runtime.inference_batch_size, "data": data,  # old key: same hash
                "environment": environment}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()


def capture_rng(generator: torch.Generator, device_generator: torch.Generator | None) -> dict[str, Any]:
    """Every random stream training draws from, as tensors and plain values (``weights_only``-loadable)."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {"generator": generator.get_state(), "torch": torch.get_rng_state(),
             "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "gauss": float(gauss)},
             "python": {"version": version, "internal": torch.tensor(internal, dtype=torch.int64),
                        "gauss_next": [] if gauss_next is None else [gauss_next]}}
    if device_generator is not None:
        state["device_generator"] = device_generator.get_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any], generator: torch.Generator,
                device_generator: torch.Generator | None) -> None:
    """Put every stream back where ``capture_rng`` found it."""
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["internal"].tolist()),
                     p["gauss_next"][0] if p["gauss_next"] else None))
    if device_generator is not None and "device_generator" in state:
        device_generator.set_state(state["device_generator"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def snapshot_dir(root: Path) -> dict[str, str]:
    """The text files under ``root`` (DVCLive's metrics.json and .tsv plots), relative path → content."""
    root = Path(root)
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def restore_dir(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        target = Path(root) / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


class ResumeFile:
    """The resume state of one run: ``load`` what a previous run left, ``save`` after an epoch, ``clear``."""

    def __init__(self, path: Path, fingerprint: str, label: str) -> None:
        self.path, self.fingerprint, self.label = Path(path), fingerprint, label

    def load(self) -> dict[str, Any] | None:
        """The saved state if it belongs to this run; otherwise None (and one line saying why)."""
        if not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
            ok = state["fingerprint"] == self.fingerprint
        except Exception as exc:  # truncated, foreign or older file: start over, say so
            print(f"{self.label}: ignoring unreadable resume state {self.path} ({type(exc).__name__}); "
                  "training from epoch 0", flush=True)
            return None
        if not ok:
            print(f"{self.label}: ignoring resume state {self.path}: it was written with other params, "
                  "data or environment; training from epoch 0", flush=True)
            return None
        print(f"{self.label}: resuming after epoch {state['epoch'] + 1} from {self.path}", flush=True)
        return state

    def save(self, state: dict[str, Any]) -> None:
        data = checkpoint_bytes(dict(state, fingerprint=self.fingerprint))
        with atomic_file(self.path) as tmp:
            tmp.write_bytes(data)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
        try:
            self.path.parent.rmdir()  # only when empty: other runs' states stay
        except OSError:
            pass
