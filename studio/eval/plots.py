"""Plots of evaluation results as PNG: PR curves, confusion matrices, AP per class.

matplotlib's object API with the Agg canvas (no pyplot): no global state, safe off the GUI thread,
and the same PNG bytes serve the report and the comparison window.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from studio.core.types import PALETTE

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from studio.eval.evaluate import EvalResult

MAX_CLASSES = 12
"""PR curves and bars show at most this many classes (those with the most ground truth)."""


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _top_classes(results: Sequence[EvalResult]) -> list[str]:
    """Classes with ground truth, most objects first (ties by name), at most MAX_CLASSES."""
    counts = results[0].per_class
    present = [name for name, c in counts.items() if c["gt"] > 0]
    return sorted(present, key=lambda name: (-counts[name]["gt"], name))[:MAX_CLASSES]


def pr_curves(results: Sequence[EvalResult], *, iou: float = 0.5) -> Figure:
    """Interpolated precision vs recall at IoU `iou`, one panel per class, one line per run."""
    classes = _top_classes(results)
    cols = min(4, max(1, len(classes)))
    rows = max(1, math.ceil(len(classes) / cols))
    figure = _figure(3.2 * cols, 2.8 * rows)
    axes = figure.subplots(rows, cols, squeeze=False).ravel()
    ids = {label.name: label.id for label in results[0].data.labels}
    for ax, name in zip(axes, classes, strict=False):
        for i, result in enumerate(results):
            curve = result.coco.pr_curve(ids[name], iou=iou)
            if curve is not None:
                recall, precision = curve
                reached = recall[: int(np.flatnonzero(precision > 0)[-1]) + 1] if np.any(precision > 0) else recall[:1]
                ap = float(np.mean(precision))
                ax.plot(reached, precision[: len(reached)], color=PALETTE[i], drawstyle="steps-post",
                        label=f"{result.pred_name}  AP{round(iou * 100)} {ap:.2f}")
        ax.set(title=name, xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
    for ax in axes[len(classes):]:
        ax.set_axis_off()
    figure.suptitle(f"Precision-recall at IoU {iou:.2f}")
    return figure


def confusion_matrix(result: EvalResult) -> Figure:
    """Counts of true class (rows) vs predicted class (columns); background catches misses and false positives."""
    names = {label.id: label.name for label in result.data.labels}
    matrix = result.diagnosis.confusion.trimmed()
    axis = [names[i] for i in matrix.label_ids] + ["background"]
    size = 1.8 + 0.45 * len(axis)
    figure = _figure(size + 1.8, size)
    ax = figure.subplots()
    from matplotlib.ticker import MaxNLocator

    image = ax.imshow(matrix.counts, cmap="Blues")
    colorbar = figure.colorbar(image, ax=ax, shrink=0.8)
    colorbar.ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts
    ax.set_xticks(range(len(axis)), axis, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(axis)), axis, fontsize=8)
    ax.set(xlabel="predicted", ylabel="ground truth",
           title=f"{result.pred_name}: confusion (score >= {result.diagnosis.conf:g}, IoU >= {result.diagnosis.iou:g})")
    threshold = matrix.counts.max() / 2 if matrix.counts.size else 0
    if len(axis) <= 25:
        for (i, j), count in np.ndenumerate(matrix.counts):
            if count:
                ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                        color="white" if count > threshold else "black")
    return figure


def ap_bars(results: Sequence[EvalResult]) -> Figure:
    """AP@[.5:.95] per class, one bar per run."""
    classes = _top_classes(results)
    figure = _figure(max(5.0, 0.9 * len(classes) * max(1, len(results)) / 2 + 2), 3.6)
    ax = figure.subplots()
    width = 0.8 / len(results)
    x = np.arange(len(classes))
    for i, result in enumerate(results):
        values = [result.per_class[name]["ap"] or 0.0 for name in classes]
        ax.bar(x + (i - (len(results) - 1) / 2) * width, values, width, color=PALETTE[i], label=result.pred_name)
    ax.set_xticks(x, classes, rotation=30, ha="right")
    ax.set(ylim=(0, 1), ylabel="AP@[.5:.95]", title="AP per class")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return figure


@dataclass(frozen=True)
class Plot:
    title: str
    file_name: str
    png: bytes


def render_plots(results: Sequence[EvalResult]) -> list[Plot]:
    """Every plot of a comparison as PNG, in display order: PR curves, AP per class, one confusion matrix per run."""
    figures = [("Precision-recall curves", "pr_curves.png", pr_curves(results)),
               ("AP per class", "ap_per_class.png", ap_bars(results))]
    figures += [(f"Confusion matrix: {result.pred_name}", f"confusion_{i}.png", confusion_matrix(result))
                for i, result in enumerate(results, start=1)]
    return [Plot(title, file_name, png_bytes(figure)) for title, file_name, figure in figures]
