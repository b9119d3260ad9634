"""Evaluate one checkpoint on the test split and write its metrics JSON and per-image statistics.

The model is rebuilt from the arguments stored in the checkpoint (never
from the current params), so a results file always describes the model that
produced it; the training environment the checkpoint records
(``state["environment"]``, from ``segrepro.runtime.environment``) is copied
into the metrics JSON as ``train_environment``. The checkpoint is verified
first (``segrepro.checkpoint``): a changed byte or a non-finite weight fails
the stage naming the file, instead of evaluating a different model. The
per-image ``.npz`` describes itself (``registry.describe``: its BF
tolerances, trimap widths and class names), so compare and the report never
re-read the ``evaluate`` parameters.

Where it ran: ``evaluation_environment`` in the metrics JSON is
``runtime.machine_description`` of the evaluating machine (torch, device,
CPU capability and model, GPU, CUDA, threads), what the latency must be
quoted with; ``device`` (the GPU name, else the processor or ``cpu``) is
kept as before.

Outputs: both paths are checked at the start (``atomic.check_output``: not a
directory, writable, neither the checkpoint nor each other), so a wrong
``--out`` fails before the checkpoint is read; the two files are written
together (``atomic.atomic_files``), so a new ``.npz`` never sits beside an
older metrics JSON.

Progress (``segrepro.progress``, on stdout): the prediction pass and the
per-image statistics are run in chunks of the batch size each already uses
(``predict``'s ``runtime.inference_batch_size``, ``per_image_stats``' 32 images), so
the results are those of one call; the cost measurement prints a start and a
done line.
"""
from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import torch

import numpy as np

from segrepro import checkpoint
from segrepro.atomic import atomic_files, check_output, json_text
from segrepro.data.camvid import CLASSES
from segrepro.data.dataset import load_split
from segrepro.errors import SegreproError, reason
from segrepro.layout import checkpoint as checkpoint_file, run_key
from segrepro.evaluation.cost import count_flops, count_params, measure_latency
from segrepro.inference import predict
from segrepro.metrics.boundary import boundary_iou_dilation
from segrepro.metrics.confusion import class_scores
from segrepro.metrics.registry import describe, per_image_stats, summarize
from segrepro.models.build import SegmentationModel, build_model
from segrepro.params import Base, Evaluate, Params
from segrepro.progress import task, track
from segrepro.runtime import machine_description, make_deterministic, select_device


QUALITATIVE_SAMPLES = 4
STATS_BATCH = 32  # images per per_image_stats call (its own default)


def load_checkpoint(path: Path) -> tuple[SegmentationModel, dict[str, Any]]:
    """The model of a verified checkpoint (``segrepro.checkpoint``: content hash, finite weights)."""
    state = checkpoint.load_checkpoint(path)
    try:
        kwargs = dict(state["build"], pretrained="", pretrained_sha256="")
        model = build_model(**kwargs)
    except SegreproError:
        raise
    except Exception as exc:  # constructor arguments missing, unknown or of the wrong type
        raise SegreproError(f"checkpoint {path} records model arguments build_model cannot take "
                            f"({reason(exc)}); {checkpoint.retrain_advice(path)}") from exc
    mismatch = weights_mismatch(model.state_dict(), state["model"])
    if mismatch:
        raise SegreproError(f"checkpoint {path} does not fit the model it records ({mismatch}); "
                            f"{checkpoint.retrain_advice(path)}")
    try:
        model.load_state_dict(state["model"])
    except Exception as exc:  # what weights_mismatch does not see (a dtype torch cannot copy)
        raise SegreproError(f"checkpoint {path} does not fit the model it records ({reason(exc)}); "
                            f"{checkpoint.retrain_advice(path)}") from exc
    return model, state


def _listed(names: list[str], what: str, shown: int = 3) -> str | None:
    if not names:
        return None
    more = f", … {len(names) - shown} more" if len(names) > shown else ""
    return f"{len(names)} {what} ({', '.join(names[:shown])}{more})"


def weights_mismatch(expected: dict[str, torch.Tensor], given: dict[str, Any]) -> str:
    """The state-dict mismatch in a few words: counts and the first few names of the missing,
    unexpected and wrongly shaped weights (empty when they fit)."""
    shape = [k for k in expected
             if k in given and tuple(getattr(given[k], "shape", ())) != tuple(expected[k].shape)]
    parts = [_listed([k for k in expected if k not in given], "missing"),
             _listed([k for k in given if k not in expected], "unexpected"),
             _listed(shape, "of another shape")]
    return "; ".join(p for p in parts if p)


def _predict_tracked(model: SegmentationModel, images: torch.Tensor, batch_size: int,
                     device: torch.device, label: str) -> torch.Tensor:
    starts = range(0, len(images), batch_size)
    return torch.cat([predict(model, images[s:s + batch_size], batch_size, device)
                      for s in track(starts, label=f"{label}  predicting the test split", unit="batch")])


def _stats_tracked(pred: torch.Tensor, labels: torch.Tensor, base: Base, ev: Evaluate, device: torch.device,
                   label: str) -> dict[str, np.ndarray]:
    parts = [per_image_stats(pred[s:s + STATS_BATCH].to(device), labels[s:s + STATS_BATCH].to(device),
                             base.num_classes, base.ignore_index, ev.bf_tolerances, ev.trimap_widths,
                             ev.boundary_iou_ratio, batch=STATS_BATCH)
             for s in track(range(0, len(pred), STATS_BATCH), label=f"{label}  per-image statistics",
                            unit="batch")]
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def evaluate(params: Params, method: str, seed: int, processed: Path, checkpoint: Path,
             out: Path, per_image_out: Path) -> dict[str, Any]:
    """Write the metrics JSON (``out``) and the per-image statistics (``per_image_out``, .npz)."""
    base, ev = params.base, params.evaluate
    check_output(out, others={"--checkpoint": checkpoint, "--per-image": per_image_out})
    check_output(per_image_out, others={"--checkpoint": checkpoint})
    device = select_device(params.runtime.device)
    make_deterministic(seed, params.runtime.threads, device)
    model, state = load_checkpoint(checkpoint)
    if (state["method"], state["seed"]) != (method, seed):
        key = run_key(method, seed)
        raise SegreproError(f"checkpoint {checkpoint} holds {run_key(state['method'], state['seed'])}, not {key}; "
                            f"pass {checkpoint_file(key, Path(checkpoint).parent)} or rerun `dvc repro train@{key}`")
    model = model.to(device)
    test = load_split(processed, "test")
    label = run_key(method, seed)
    pred = _predict_tracked(model, test.images, params.runtime.inference_batch_size, device, label)
    height, width = test.images.shape[1:3]
    stats = _stats_tracked(pred, test.labels, base, ev, device, label)
    # The quality metrics (mIoU included) are the registry's reducers of the image-mean statistics; the
    # per-class IoU and accuracies come from the dataset confusion, the sum of the per-image ones.
    result = {**class_scores(torch.from_numpy(stats["confusion"].sum(0))),
              **summarize(stats, ev.bf_tolerances, ev.trimap_widths)}
    with task(f"{label}  model cost (FLOPs, latency over {ev.latency_runs} runs)"):
        flops = count_flops(model, height, width, device)
        latency = measure_latency(model, height, width, device, ev.latency_runs)
    result.update({
        "bf_tolerances_px": list(ev.bf_tolerances),
        "trimap_widths_px": list(ev.trimap_widths),
        "boundary_iou_dilation_px": boundary_iou_dilation(int(height), int(width), ev.boundary_iou_ratio),
        "method": method,
        "seed": seed,
        "classes": list(CLASSES),
        "test_images": len(test),
        "input_size": [int(height), int(width)],
        "params": count_params(model),
        "flops": flops,
        "latency_s": latency,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "evaluation_environment": machine_description(device),
        "torch": str(torch.__version__),
        "backbone": state["build"]["backbone"],
        "decoder": state["build"]["decoder"],
        "output_stride": state["build"]["output_stride"],
        "epochs": state["train"]["epochs"],
        "crop": [state["train"]["crop_height"], state["train"]["crop_width"]],
        "train_environment": state.get("environment", {}),
    })
    # A fixed, evenly spread sample of test predictions for the report's qualitative figure.
    samples = np.linspace(0, len(test) - 1, num=min(QUALITATIVE_SAMPLES, len(test))).round().astype(np.int64)
    with atomic_files(per_image_out, out) as (tmp_npz, tmp_json):
        with open(tmp_npz, "wb") as fh:
            np.savez_compressed(fh, names=np.array(test.names), sample_index=samples,
                                sample_pred=pred[samples].numpy(), **stats,
                                **describe(ev.bf_tolerances, ev.trimap_widths, CLASSES))
        tmp_json.write_text(json_text(result))
    return result
