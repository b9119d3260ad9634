"""Multi-process (torchrun) training that reproduces the one-process recipe.

Training always runs inside a ``Context``, which ``process_group`` yields
and ``run_training`` receives: where the process trains (device, rank,
world size) and the few operations that differ between one process and a
torchrun job (loss reduction, model wrapping, barrier, broadcast, thread
share). Without torchrun (``WORLD_SIZE`` unset or 1) it is a plain
``Context`` — world size 1, rank 0, whose operations are the one-process
recipe's own (``F.cross_entropy``'s mean, the unwrapped model, no-op
barriers) — and the result is the single-process one, bit for bit. Under
torchrun (``WORLD_SIZE > 1``) it is a ``GroupContext`` over an initialised
process group (torch's own default group: no module state here).

Under torchrun the *global* batch stays ``train.batch_size`` so that N
processes train the same model as one process would:

* **Data.** Every rank seeds the same generator and draws the same
  permutation and the same augmentation for the whole global batch, then
  keeps its contiguous slice (``Context.local_rows``). The union of the ranks'
  samples is therefore exactly the one-process batch, in the same order.
* **Loss.** Cross-entropy averaged per rank over that rank's valid pixels
  would weight ranks equally whatever their share of void pixels. Instead
  each rank sums its pixel losses and divides by the *global* valid-pixel
  count (one all_reduce), times the world size because DDP averages the
  ranks' gradients: the averaged gradient is then the gradient of the mean
  over all valid pixels of the global batch, as in one process (exact in
  exact arithmetic).
* **BatchNorm.** Per-rank statistics would differ from the global batch's.
  On CUDA the model's BatchNorms become ``torch.nn.SyncBatchNorm``. That
  module refuses CPU tensors (``ValueError: SyncBatchNorm expected input
  tensor to be on GPU or XPU or privateuseone``, torch 2.13, gloo), so on
  CPU they become ``GlobalBatchNorm2d`` (``training.global_batch``), which all-reduces the sums
  with autograd support. Either way the statistics are the global batch's.
* **Dropout.** ``Dropout2d`` draws its channel masks from the default RNG,
  for the batch it sees. ``GlobalBatchDropout2d`` draws the mask for the
  whole global batch (the same draw one process makes) and keeps the rank's
  rows, so the masks, too, equal the one-process ones.

What remains is floating-point rounding (the same sums in another order),
so the weights match one process closely but not bit for bit. Observed on
the tiny test configuration (SGD, the CPU default's layout) after one step:
on CPU, parameters within 1.2e-7 and BatchNorm running statistics within
1.1e-6 (a few ulps; the test allows 1e-5), against 9e-3 with per-rank
BatchNorm and 3e-3 with per-rank dropout masks. Later steps amplify that
rounding as much as a change of thread count does in one process (1e-4 to
5e-3 after 2–3 steps; ``tests/training/test_distributed.py`` has the
numbers). On CUDA (two ranks sharing one H200 over gloo, 4 steps) the
CUDA kernels' rounding makes it ~3e-5 in fp32 and ~1e-3 under the recipe's
bf16 autocast, the same order as bf16 itself. The ranks stay identical to
each other because DDP applies the same averaged gradient everywhere. Validation, logging and the
checkpoint are rank 0's job; the checkpoint is saved from the unwrapped
model, so its keys equal the one-process ones.
"""
from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from segrepro.errors import SegreproError
from segrepro.runtime import select_device
from segrepro.training.global_batch import GlobalBatchDropout2d, _replace, _to_global_batch_norm


@dataclass(frozen=True)
class Launch:
    """Where this process sits in a torchrun job, as torchrun's environment says."""

    rank: int
    local_rank: int
    world_size: int
    local_world_size: int


@dataclass(frozen=True)
class Context:
    """Where training runs; as such, one process: world size 1, rank 0, the plain recipe.

    ``GroupContext`` overrides the operations for a rank of a torchrun job;
    the trainer calls them the same way in both cases.
    """

    device: torch.device
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    local_world_size: int = 1
    # A killed run may resume (``training.resume``): one process only, where one state file is the run.
    resumable: ClassVar[bool] = True

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that validates, logs and saves."""
        return self.rank == 0

    def share_threads(self, threads: int) -> None:
        """Split ``runtime.threads`` among the processes of one node instead of oversubscribing it."""
        torch.set_num_threads(max(1, threads // self.local_world_size))

    def local_rows(self, global_batch: int) -> slice:
        """This process's contiguous rows of a global batch (all of them for one process)."""
        per_rank = check_global_batch(global_batch, self.world_size)
        return slice(self.rank * per_rank, (self.rank + 1) * per_rank)

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module to train: the model itself in one process."""
        return model

    def cross_entropy(self, logits: torch.Tensor, target: torch.Tensor, ignore_index: int,
                      weight: torch.Tensor | None = None) -> tuple[torch.Tensor, float]:
        """The loss to backpropagate and its value for logging: the mean over the batch's valid pixels."""
        loss = F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index)
        return loss, loss.item()

    def barrier(self) -> None:
        """Wait for every rank: nothing to wait for in one process."""

    def broadcast_from_main(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank: ``obj`` itself in one process."""
        return obj


def _env_int(name: str, default: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        if default is None:
            raise SegreproError(f"WORLD_SIZE is set but {name} is not; launch with torchrun, "
                                f"which sets WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR and MASTER_PORT")
        return default
    try:
        return int(raw)
    except ValueError:
        raise SegreproError(f"environment variable {name}={raw!r} is not an integer; "
                            "unset it or launch with torchrun") from None


def launch_from_env() -> Launch | None:
    """torchrun's launch, or None when this is a plain single-process run.

    ``WORLD_SIZE`` unset or 1 means one process: the caller must then take the
    untouched single-process path.
    """
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        return None
    rank = _env_int("RANK")
    local_rank = _env_int("LOCAL_RANK")
    local_world = _env_int("LOCAL_WORLD_SIZE", world)
    if not 0 <= rank < world or not 0 <= local_rank < local_world:
        raise SegreproError(f"inconsistent torchrun environment RANK={rank}, LOCAL_RANK={local_rank}, "
                            f"WORLD_SIZE={world}; launch with torchrun")
    return Launch(rank, local_rank, world, local_world)


def check_global_batch(global_batch: int, world_size: int) -> int:
    """Per-rank batch size; the global batch must split evenly so every rank sees the same shapes."""
    if global_batch % world_size:
        raise SegreproError(f"global batch {global_batch} (train.batch_size, capped at the training-set "
                            f"size) is not divisible by the {world_size} processes; set train.batch_size "
                            f"to a multiple of {world_size} or change --nproc_per_node")
    return global_batch // world_size


def _rank_device(name: str, launch: Launch) -> torch.device:
    device = select_device(name)
    if device.type != "cuda":
        return device
    # One GPU per local process: the rank index picks it.
    if launch.local_rank >= torch.cuda.device_count():
        raise SegreproError(f"LOCAL_RANK {launch.local_rank} has no GPU ({torch.cuda.device_count()} "
                            "visible); set --nproc_per_node to at most the number of GPUs")
    return torch.device("cuda", launch.local_rank)


@dataclass(frozen=True)
class GroupContext(Context):
    """One rank of a torchrun job, inside the process group ``process_group`` set up."""

    resumable: ClassVar[bool] = False

    def wrap(self, model: nn.Module) -> DistributedDataParallel:
        """Make the model's BatchNorm and Dropout2d global-batch aware (in place) and wrap it in DDP.

        Converting in place keeps ``model`` itself usable for rank-0 validation
        and for the checkpoint (same keys as one process; no ``module.`` prefix).
        """
        if self.device.type == "cuda":
            _replace(model, lambda m: nn.SyncBatchNorm.convert_sync_batchnorm(m)
                     if isinstance(m, nn.BatchNorm2d) else m)
        else:
            _replace(model, lambda m: _to_global_batch_norm(m) if type(m) is nn.BatchNorm2d else m)
        _replace(model, lambda m: GlobalBatchDropout2d(m.p, self.rank, self.world_size)
                 if type(m) is nn.Dropout2d else m)
        if self.device.type == "cuda":
            return DistributedDataParallel(model, device_ids=[self.device.index], output_device=self.device.index)
        return DistributedDataParallel(model)

    def cross_entropy(self, logits: torch.Tensor, target: torch.Tensor, ignore_index: int,
                      weight: torch.Tensor | None = None) -> tuple[torch.Tensor, float]:
        """This rank's loss to backpropagate and the global mean loss (``global_mean_cross_entropy``)."""
        return global_mean_cross_entropy(logits, target, ignore_index, self.world_size, weight)

    def barrier(self) -> None:
        dist.barrier()

    def broadcast_from_main(self, obj: Any) -> Any:
        box = [obj]  # picklable objects
        dist.broadcast_object_list(box, src=0)
        return box[0]


@contextlib.contextmanager
def process_group(device_name: str, global_batch: int) -> Iterator[Context]:
    """The context to train in; under torchrun, with the process group initialised for the block.

    A single process gets a plain ``Context`` on ``device_name``'s device, and
    nothing is set up. The batch is checked before any rendezvous, so a bad
    ``train.batch_size`` fails at once instead of waiting for peers.
    """
    launch = launch_from_env()
    if launch is None:
        yield Context(select_device(device_name))
        return
    check_global_batch(global_batch, launch.world_size)
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise SegreproError(f"WORLD_SIZE={launch.world_size} but {name} is unset; launch with torchrun")
    if dist.is_initialized():
        raise SegreproError("a torch.distributed process group is already initialised; call "
                            "distributed.process_group once per process and pass its context on")
    device = _rank_device(device_name, launch)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", rank=launch.rank, world_size=launch.world_size, device_id=device)
    else:
        dist.init_process_group("gloo", rank=launch.rank, world_size=launch.world_size)
    try:
        yield GroupContext(device, launch.rank, launch.local_rank, launch.world_size, launch.local_world_size)
    finally:
        dist.destroy_process_group()


def global_mean_cross_entropy(logits: torch.Tensor, target: torch.Tensor, ignore_index: int,
                              world_size: int, weight: torch.Tensor | None = None) -> tuple[torch.Tensor, float]:
    """The loss to backpropagate on this rank, and the global mean loss for logging.

    ``world · Σ_rank CE / N_global``: DDP divides the summed gradients by the
    world size, leaving ∇(Σ_all CE / N_global), the one-process gradient of
    the mean over the global batch's valid pixels. The logged value is the
    same on every rank, so a divergence check stops all ranks together.
    With class weights the denominator is the global sum of the valid
    pixels' weights, as ``F.cross_entropy``'s weighted mean in one process.
    """
    local_sum = F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index, reduction="sum")
    keep = target != ignore_index
    valid = keep.sum() if weight is None else weight[target[keep]].sum()
    # float64: a pixel count above 2**24 (a large GPU batch) would round in float32.
    totals = torch.stack([local_sum.detach().double(), valid.double()])  # (2,): CE sum, valid pixels
    dist.all_reduce(totals)
    total_sum, total_valid = totals.tolist()
    if total_valid == 0:  # all void: nan, as F.cross_entropy's mean gives in one process
        return local_sum * math.nan, math.nan
    return local_sum * (world_size / total_valid), total_sum / total_valid
