"""Figures that need more than one seaborn call: training curves and boundary-error overlays; embedding."""
from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from segrepro import layout
from segrepro.data.camvid import PALETTE, VOID
from segrepro.reporting.labels import method_label


def training_curves(train_dir: Path, methods: Sequence[str], seeds: Sequence[int]) -> pd.DataFrame:
    """DVCLive's TSV logs → long format (method, seed, epoch, metric, value)."""
    frames = []
    for method in methods:
        for seed in seeds:
            root = layout.live_plots(layout.run_key(method, seed), train_dir)
            for metric, rel in (("train loss", "train/loss.tsv"), ("val mIoU", "val/miou.tsv")):
                path = root / rel
                if path.is_file():
                    df = pd.read_csv(path, sep="\t")
                    frames.append(pd.DataFrame({"method": method_label(method), "seed": seed,
                                                "epoch": df["step"] + 1, "metric": metric, "value": df.iloc[:, -1]}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["method", "seed", "epoch", "metric", "value"])


def _boundary(labels: np.ndarray) -> np.ndarray:
    edge = np.zeros(labels.shape, bool)
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= labels[1:, :] != labels[:-1, :]
    return edge


def colorize(labels: np.ndarray) -> np.ndarray:
    palette = np.array(list(PALETTE) + [(0, 0, 0)], dtype=np.uint8)
    return palette[np.minimum(labels, VOID)]


def error_overlay(image: np.ndarray, gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Image dimmed, wrong non-void pixels in red, ground-truth boundaries in white."""
    out = (image.astype(np.float32) * 0.45).astype(np.uint8)
    wrong = (pred != gt) & (gt != VOID)
    out[wrong] = (230, 40, 40)
    out[_boundary(gt)] = (255, 255, 255)
    return out


def overlay_grid(images: np.ndarray, labels: np.ndarray, predictions: dict[str, np.ndarray],
                 names: Sequence[str]) -> plt.Figure:
    """Rows: test images; columns: image, ground truth, one error overlay per method."""
    cols = 2 + len(predictions)
    fig, axes = plt.subplots(len(images), cols, figsize=(2.6 * cols, 2.1 * len(images)), squeeze=False)
    for r, (image, gt) in enumerate(zip(images, labels)):
        panels = [("image", image), ("ground truth", colorize(gt))]
        panels += [(method_label(method), error_overlay(image, gt, pred[r]))
                   for method, pred in predictions.items()]
        for c, (title, panel) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(panel)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title)
        axes[r, 0].set_ylabel(names[r], fontsize=7)
    fig.tight_layout()
    return fig


def figure_html(fig: plt.Figure, alt: str, element_id: str) -> str:
    """The figure as an embedded PNG ``<img>`` with alt text and an id, shown at its natural size.

    matplotlib's inline backend gives no alt text or id; the report needs both
    (accessibility, and the tests find the figure by its id). The figure is closed.
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi)
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (f'<img id="{html.escape(element_id)}" alt="{html.escape(alt)}" '
            f'style="max-width: 100%; height: auto" src="data:image/png;base64,{data}"/>')
