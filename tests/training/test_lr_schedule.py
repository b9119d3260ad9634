"""The LR schedule built from torch's schedulers follows warm-up + poly decay over a whole run."""
from __future__ import annotations

import pytest
import torch

from segrepro.training.train import lr_schedule


def reference_factor(it: int, total: int, warmup: int, power: float) -> float:
    """The schedule's closed form, as the recipe computed it per iteration before torch's schedulers:
    linear warm-up (it + 1) / warmup, then (1 - progress)^power over the remaining iterations."""
    if it < warmup:
        return (it + 1) / warmup
    return max(0.0, 1 - (it - warmup) / max(total - warmup, 1)) ** power


def _run(total: int, warmup: int, power: float, lrs: tuple[float, ...], steps: int) -> list[list[float]]:
    """The learning rate of each parameter group at each of ``steps`` iterations, stepped as training does."""
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in lrs]
    optimizer = torch.optim.SGD(groups, lr=lrs[0])
    schedule = lr_schedule(optimizer, total, warmup, power)
    seen = []
    for _ in range(steps):
        seen.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        schedule.step()
    return seen


# (total, warmup, power): the default run (45 steps/epoch × 16 epochs, 1 warm-up epoch), no warm-up,
# a one-step warm-up, a warm-up as long as the run, linear decay, and 3 steps past the end.
@pytest.mark.parametrize("total, warmup, power, steps", [(720, 45, 0.9, 720), (40, 0, 0.9, 40), (40, 1, 0.9, 40),
                                                         (12, 12, 0.9, 12), (30, 6, 1.0, 30), (20, 4, 0.9, 23)])
def test_schedule_equals_the_closed_form(total, warmup, power, steps):
    lrs = (0.01, 0.01 * 0.1)  # the base group and a scaled one (DDSM's offset heads train at lr · lr_scale)
    seen = _run(total, warmup, power, lrs, steps)
    assert len(seen) == steps
    for it, row in enumerate(seen):
        for lr, got in zip(lrs, row):
            want = lr * reference_factor(it, total, warmup, power)
            assert got == pytest.approx(want, rel=1e-9, abs=1e-300), (it, got, want)
    assert len({row[0] for row in seen}) > steps // 2  # the rate moves: not a constant compared with itself


def test_default_run_has_the_same_float32_step_sizes():
    """SGD applies the rate to float32 weights as a float32 scalar: on the default run every one of
    those equals the closed form's, so training is unchanged bit for bit (checkpoint sha256 equal on
    the tiny configuration, too: see the report of issue 14)."""
    lrs = (0.01, 0.001)
    seen = torch.tensor(_run(720, 45, 0.9, lrs, 720), dtype=torch.float32)
    want = torch.tensor([[lr * reference_factor(it, 720, 45, 0.9) for lr in lrs] for it in range(720)],
                        dtype=torch.float32)
    assert torch.equal(seen, want)


def test_state_dict_round_trip_continues_the_schedule():
    """What resume relies on: a schedule rebuilt and loaded from a state continues with the same rates."""
    def make():
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
        return optimizer, lr_schedule(optimizer, 30, 6, 0.9)

    opt_a, sched_a = make()
    for _ in range(10):
        opt_a.step()
        sched_a.step()
    opt_b, sched_b = make()
    opt_b.load_state_dict(opt_a.state_dict())
    sched_b.load_state_dict(sched_a.state_dict())
    for _ in range(20):
        assert opt_b.param_groups[0]["lr"] == opt_a.param_groups[0]["lr"]
        for opt, sched in ((opt_a, sched_a), (opt_b, sched_b)):
            opt.step()
            sched.step()
