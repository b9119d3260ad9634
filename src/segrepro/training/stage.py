"""The train stage: DVCLive logs, resume states and atomic outputs around ``run_training``.

``train`` is what ``segrepro train`` runs: the recipe itself is
``training.train.run_training``; this module adds what a long, killable run
needs. The DVCLive directory is written in a scratch sibling and renamed into
place with the checkpoint (``segrepro.atomic.atomic_dir``); it carries no
marker, since DVC declares only its ``metrics.json`` and curves, and
``is_live_output`` recognises an earlier one by its contents. After each
epoch the resume state (``training.resume``) is saved beside the checkpoint.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from segrepro import layout
from segrepro.atomic import atomic_dir, check_output
from segrepro.checkpoint import save_checkpoint
from segrepro.data.dataset import split_length
from segrepro.errors import SegreproError
from segrepro.models.build import model_kwargs
from segrepro.params import Params
from segrepro.progress import EpochProgress
from segrepro.runtime import environment
from segrepro.training import distributed, resume
from segrepro.training.train import run_training


def is_live_output(path: Path) -> bool:
    """Whether the folder holds only what train's DVCLive writes: ``metrics.json`` and the
    ``plots/metrics/**.tsv`` curves (``layout.live_metrics``, ``layout.live_plots``)."""
    run = layout.live_dir("run")
    metrics, curves = layout.live_metrics("run").relative_to(run), layout.live_plots("run").relative_to(run)
    files = [p.relative_to(path) for p in Path(path).rglob("*") if not p.is_dir()]
    return all(f == metrics or (f.is_relative_to(curves) and f.suffix == ".tsv") for f in files)


def train(params: Params, method: str, seed: int, processed: Path, checkpoint: Path,
          live_dir: Path) -> dict[str, float]:
    """The train stage: log every epoch with DVCLive, keep a resume state, write the checkpoint atomically.

    The DVCLive directory is written in a scratch sibling and renamed into
    place with the checkpoint (``segrepro.atomic.atomic_dir``), so a killed
    or failed run leaves no valid-looking logs. After each epoch the resume
    state (``training.resume``) is saved beside the checkpoint, with a
    snapshot of the logs; a rerun of the same run restores both and goes on.
    Under torchrun only rank 0 logs and writes, and nothing is resumed; the
    final barrier keeps the other ranks (and torchrun) from finishing before
    the checkpoint exists.
    """
    from dvclive import Live

    with distributed.process_group(params.runtime.device, params.train.batch_size) as ctx:
        if not ctx.is_main:
            _, last = run_training(params, method, seed, processed, ctx)
            ctx.barrier()
            return last
        label = f"{method}-{seed}"
        # Before any epoch: a checkpoint path that is a directory or unwritable fails now, not after training.
        check_output(checkpoint, others={"--live": live_dir})
        check_output(live_dir, "train", owned=is_live_output)
        store = None
        if ctx.resumable:
            kwargs = model_kwargs(params.model, method, params.base.num_classes)
            store = resume.ResumeFile(resume.state_path(checkpoint), resume.fingerprint(
                params, method, seed, processed, kwargs, environment(ctx.device)), label)
        start = store.load() if store is not None else None
        steps = split_length(processed, "train") // params.train.batch_size
        with atomic_dir(live_dir, "train", owned=is_live_output) as live_tmp:
            if start is not None:
                resume.restore_dir(live_tmp, start["live"])
            with Live(str(live_tmp), dvcyaml=False, save_dvc_exp=False, report=None,
                      resume=start is not None) as live, \
                    EpochProgress(label, params.train.epochs, max(steps, 1),
                                  start_epoch=0 if start is None else start["epoch"] + 1) as progress:
                if start is not None:
                    live.step = start["live_step"]  # DVCLive's own resume reads step 0 after one epoch

                def log(epoch: int, metrics: dict[str, float]) -> None:
                    live.log_metric("train/loss", metrics["train_loss"])
                    if "val_miou" in metrics:
                        live.log_metric("val/miou", metrics["val_miou"])
                    live.next_step()
                    progress.epoch(epoch, metrics)

                def keep(state: dict[str, Any]) -> None:
                    store.save(dict(state, live=resume.snapshot_dir(live_tmp), live_step=live.step))

                try:
                    state, last = run_training(params, method, seed, processed, ctx, on_epoch=log,
                                               on_step=progress.step, start=start,
                                               on_state=keep if store is not None else None)
                except SegreproError:
                    if store is not None:
                        store.clear()
                    raise
            save_checkpoint(state, checkpoint)
        if store is not None:
            store.clear()
        ctx.barrier()
    return last
