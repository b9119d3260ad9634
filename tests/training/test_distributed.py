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
# batch 4 over the 4 tiny training images: one step per epoch, 2 samples per rank.
# NCHW: with train.channels_last on CPU the two-rank run ends 5.8e-3 from the single process (seen
# 2026-11-27, not yet explained), so the N-processes-equal-one guarantee is stated for NCHW (README).
# The two equivalence tests run on real CamVid (tiny_processed), not on the generated scenes of
# synthetic_processed: there the two-rank weights end up to 7e-4 from the single process after 1 step
# and 3.5e-2 after 3 (class_weighting none; the default weighting fails too), and also with real labels
# under generated images (4.8e-2) or real images over generated labels (3.5e-4). Seen 2026-11-27, not
# yet explained; until it is, these two tests need the mirror.
# SGD: the default AdamW divides each step by √v, so an entry whose gradient is ~0 turns the all_reduce's
# rounding into a step of ~lr (seen 2026-11-27 with AdamW at lr 1e-3 and stride 16, where SGD stays within
# 1.2e-7: 8.8e-4 apart after 3 steps, relative 18 at such entries); the global-batch equality these tests
# check is the gradients', which SGD passes on unamplified. Output stride 16: at the default stride 32 the
# same SGD/NCHW run ends 5.2e-5 apart after 3 steps (3.3e-5 with 96x128 crops), not yet explained (the
# layer-4 maps are 2x2 here, so its BatchNorm normalises over 16 values per channel; ill-conditioning is a
# guess, not a finding). So the guarantee is stated for SGD, NCHW and stride 16 (README, "Training on
# several GPUs or nodes"). Scale 0.5–2: with the default's 0.5–1.5 (2026-11-27) the same run ends 3.1e-4
# apart (conv1's weight, 66% of its entries beyond 1e-5), not yet explained either; the tolerance below was
# calibrated at 0.5–2, so the test keeps that range.
OVERRIDES = {"train": {"epochs": 3, "batch_size": 4, "crop_height": 48, "crop_width": 64,
                       "channels_last": False, "optimizer": "sgd", "lr": 0.01, "weight_decay": 0.0005,
                       "scale_min": 0.5, "scale_max": 2.0},
             "model": {"output_stride": 16},
             "runtime": {"threads": 2, "inference_batch_size": 4},
             "evaluate": {"latency_runs": 1}}
# Tolerance, |two-process − one-process| ≤ ATOL + RTOL·|one-process| per entry, from what was observed
# after 3 steps (torch 2.13 CPU): parameters differ by ≤ 1.2e-7 and BatchNorm running statistics by
# ≤ 1.7e-6 at values ~2 (a few float32 ulps; the same sums run in another order across all_reduce).
# Leaving out the global-batch BatchNorm gives 1.9e-2 on the parameters, leaving out the global-batch
# Dropout2d masks 7.8e-3: 1e-5 sits two orders of magnitude from both "rounding" and "other training".
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
