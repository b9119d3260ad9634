"""Two CPU processes (gloo) train the same model as one process with the same global batch.

The two-process run is launched twice: with ``torch.multiprocessing.spawn``
(so each rank can report its own final weights) and with ``torchrun``
through the ``segrepro train`` CLI (the way the pipeline runs it).
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
import yaml

from segrepro.errors import SegreproError
from segrepro.params import load_params
from tests.conftest import REPO, tiny_params

WORLD = 2
# One step of batch 4 over the 4 tiny training images (2 samples per rank), in the CPU default's layout:
# channels-last, output stride 32, random scale 0.5–1.5. Why one step (measured 2026-11-28, torch 2.13
# CPU, tiny real CamVid, SGD):
# * After one step the two-rank weights equal one process's to rounding — parameters 1.2e-7, BatchNorm
#   running statistics 1.1e-6, on AVX-512 and with AVX2 kernels (ATEN_CPU_CAPABILITY=avx2 …) alike — while
#   a real defect is far above that: per-rank BatchNorm 9.0e-3, per-rank Dropout2d masks 2.9e-3.
# * From the second step on, the training itself amplifies rounding, and one process alone shows it: the
#   same one-process run at 1 and at 2 threads ends 1.3e-4 apart after 2 steps of this layout, and after
#   3 steps 5.5e-3 (channels-last), 6.4e-4 (stride 32), 4.9e-4 (scale 0.5–1.5), 9.9e-6 (NCHW, stride 16,
#   scale 0.5–2, the configuration these tests used before); the two-rank run lands within the same
#   distance. With AVX2 kernels that former 3-step configuration ended 5.5e-4 apart (1.2e-7 after one
#   step): a multi-step tolerance holds on one CPU class by luck. The "unexplained" multi-step gaps of
#   earlier notes were this amplification, not DDP.
# * Real CamVid (tiny_processed), not the generated scenes of synthetic_processed: there the gap was
#   7e-4 after one step (measured before the above, not re-examined), so these tests need the mirror.
# * ImageNet input normalisation, not the default per-image one: with per-image statistics the same
#   one step already differs by 8.9e-5 between 1 and 2 threads in ONE process (ImageNet: 9.5e-7; the
#   inputs are bit-identical at both counts, the training amplifies the convolutions' rounding), and the
#   two ranks, at 1 thread each, equal the 1-thread process to 1.4e-6 (measured 2026-11-28, AVX-512).
#   The normalisation runs before the global batch is split into rows, the same code in both runs, so
#   ImageNet's keeps the comparison at its 1e-7 rounding without leaving a path untested.
# SGD: AdamW divides each step by √v, so an entry whose gradient is ~0 turns the all_reduce's rounding
# into a step of ~lr (7.2e-4 after one step here); the global-batch equality checked is the gradients',
# which SGD passes on unamplified.
OVERRIDES = {"train": {"epochs": 1, "batch_size": 4, "crop_height": 48, "crop_width": 64,
                       "channels_last": True, "optimizer": "sgd", "lr": 0.01, "weight_decay": 0.0005,
                       "scale_min": 0.5, "scale_max": 1.5},
             "model": {"output_stride": 32, "input_norm": "imagenet"},
             "runtime": {"threads": 2, "inference_batch_size": 4},
             "evaluate": {"latency_runs": 1}}
# |two-process − one-process| ≤ ATOL + RTOL·|one-process| per entry: 80× the rounding above, 300× below
# the smallest defect.
ATOL = RTOL = 1e-5
TORCHRUN_ENV = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _params_file(tmp_path: Path, **overrides: dict) -> Path:
    sections = {k: dict(v) for k, v in OVERRIDES.items()}
    for section, values in overrides.items():
        sections.setdefault(section, {}).update(values)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tiny_params(**sections)))
    return path


def _worker(rank: int, port: int, params_path: Path, processed: Path, out: Path) -> None:
    """One rank, set up as torchrun would; records the weights this rank ends with."""
    os.environ.update(WORLD_SIZE=str(WORLD), RANK=str(rank), LOCAL_RANK=str(rank),
                      LOCAL_WORLD_SIZE=str(WORLD), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    import segrepro.training.stage as train_module

    run_training = train_module.run_training

    def spy(*args, **kwargs):
        state, last = run_training(*args, **kwargs)
        torch.save({"model": state["model"], "last": last}, out / f"rank{rank}.pt")
        return state, last

    train_module.run_training = spy
    train_module.train(load_params(params_path), "baseline", 0, processed, out / "ddp.pt", out / "live-ddp")


@pytest.fixture()
def no_torchrun_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in TORCHRUN_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture()
def single(tmp_path: Path, tiny_processed: Path, no_torchrun_env: None) -> tuple[Path, Path]:
    """One process, same seed and global batch: the reference."""
    from segrepro.training.stage import train

    params_path = _params_file(tmp_path)
    ckpt = tmp_path / "single.pt"
    train(load_params(params_path), "baseline", 0, tiny_processed, ckpt, tmp_path / "live-single")
    return params_path, ckpt


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a if a[k].is_floating_point())


def _assert_close(ddp: dict[str, torch.Tensor], single: dict[str, torch.Tensor]) -> None:
    for k in single:
        if single[k].is_floating_point():
            torch.testing.assert_close(ddp[k], single[k], atol=ATOL, rtol=RTOL, msg=lambda m, k=k: f"{k}: {m}")
        else:
            assert torch.equal(ddp[k], single[k]), k


def test_two_ranks_match_one_process(tmp_path: Path, tiny_processed: Path, single: tuple[Path, Path]) -> None:
    params_path, single_ckpt = single
    out = tmp_path / "ddp"
    out.mkdir()
    mp.spawn(_worker, args=(_free_port(), params_path, tiny_processed, out), nprocs=WORLD, join=True)

    reference = torch.load(single_ckpt)
    ranks = [torch.load(out / f"rank{r}.pt") for r in range(WORLD)]
    # DDP applies the same averaged gradient on every rank, and the global-batch BatchNorm leaves the
    # same running statistics everywhere: the ranks end bit-identical.
    assert all(torch.equal(ranks[0]["model"][k], ranks[1]["model"][k]) for k in ranks[0]["model"])
    assert ranks[0]["last"] == ranks[1]["last"]

    # Only rank 0 validates, logs and saves; the checkpoint has exactly the one-process layout.
    ddp = torch.load(out / "ddp.pt")
    assert ddp.keys() == reference.keys()
    assert list(ddp["model"]) == list(reference["model"])
    assert all(torch.equal(ddp["model"][k], ranks[0]["model"][k]) for k in ddp["model"])
    assert (out / "live-ddp" / "metrics.json").is_file()

    _assert_close(ddp["model"], reference["model"])
    # The update itself is far larger than the tolerance, so the comparison is not vacuous.
    from segrepro.models.build import build_model

    torch.manual_seed(0)
    initial = build_model(**reference["build"]).state_dict()
    assert _max_diff(reference["model"], initial) > 100 * ATOL


def test_torchrun_cli_matches_spawned_ranks(tmp_path: Path, tiny_processed: Path,
                                            single: tuple[Path, Path]) -> None:
    params_path, single_ckpt = single
    env = {k: v for k, v in os.environ.items() if k not in TORCHRUN_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    ckpt = tmp_path / "torchrun.pt"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", f"--nproc_per_node={WORLD}",
           "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
           "-m", "segrepro.cli", "train", "--params", str(params_path), "--method", "baseline",
           "--seed", "0", "--data", str(tiny_processed), "--checkpoint", str(ckpt),
           "--live", str(tmp_path / "live-torchrun")]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    reference, ddp = torch.load(single_ckpt), torch.load(ckpt)
    assert list(ddp["model"]) == list(reference["model"])
    _assert_close(ddp["model"], reference["model"])


def test_indivisible_global_batch_is_refused(tmp_path: Path, synthetic_processed: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from segrepro.training.stage import train

    # Checked before the rendezvous: no peer is started, and none is needed to get the error.
    monkeypatch.setenv("WORLD_SIZE", str(WORLD))
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    params_path = _params_file(tmp_path, train={"batch_size": 3})
    with pytest.raises(SegreproError, match=r"global batch 3 .* not divisible by the 2 processes"):
        train(load_params(params_path), "baseline", 0, synthetic_processed, tmp_path / "x.pt", tmp_path / "live")
    assert not (tmp_path / "x.pt").exists()


def test_single_process_context_is_the_plain_recipe(no_torchrun_env: None) -> None:
    import torch.distributed as dist
    import torch.nn.functional as F

    from segrepro.training import distributed

    assert distributed.launch_from_env() is None
    with distributed.process_group("cpu", 3) as ctx:  # 3 is fine for one process
        assert type(ctx) is distributed.Context and not dist.is_initialized()
        assert (ctx.rank, ctx.world_size, ctx.is_main, ctx.resumable) == (0, 1, True, True)
        assert ctx.device == torch.device("cpu")
        assert ctx.local_rows(3) == slice(0, 3)
        model = torch.nn.Conv2d(3, 2, 1)
        assert ctx.wrap(model) is model
        assert ctx.broadcast_from_main({"a": 1}) == {"a": 1}
        ctx.barrier()
        # The loss is F.cross_entropy's mean, bit for bit, void pixels left out.
        logits, target = torch.randn(2, 4, 3, 5), torch.randint(0, 4, (2, 3, 5))
        target[0, 0] = 255
        weight = torch.rand(4)
        loss, value = ctx.cross_entropy(logits, target, 255, weight)
        want = F.cross_entropy(logits, target, weight=weight, ignore_index=255)
        assert torch.equal(loss, want) and value == want.item()
