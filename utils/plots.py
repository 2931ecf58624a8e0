"""Figures for the lessons and the lab: sample grids, overlays, training curves, best and worst cases."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from skimage.segmentation import find_boundaries

from utils.course import say

TRUTH_COLOUR = (0.1, 0.9, 0.2)  # green: the expert's mask
PRED_COLOUR = (1.0, 0.2, 0.6)  # magenta: the model's mask


def overlay(image: np.ndarray, mask: np.ndarray, colour=TRUTH_COLOUR, alpha: float = 0.35) -> np.ndarray:
    """Return the image (uint8 or float) as float RGB with the mask tinted and its outline drawn."""
    img = np.asarray(image, dtype=np.float32)
    img = img / 255.0 if img.max() > 1.0 else img
    out = img.copy()
    m = np.asarray(mask).astype(bool)
    out[m] = (1 - alpha) * out[m] + alpha * np.asarray(colour)
    out[find_boundaries(m, mode="inner")] = colour
    return np.clip(out, 0, 1)


def compare_overlay(image: np.ndarray, truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Return the image with the true outline in green and the predicted outline in magenta."""
    img = overlay(image, np.zeros_like(truth), alpha=0)
    img[find_boundaries(np.asarray(truth).astype(bool), mode="thick")] = TRUTH_COLOUR
    img[find_boundaries(np.asarray(pred).astype(bool), mode="thick")] = PRED_COLOUR
    return img


def show_samples(images: np.ndarray, masks: np.ndarray, titles: Sequence[str] | None = None, n: int = 4):
    """Show n rows of image / mask / overlay; return the figure."""
    n = min(n, len(images))
    fig, axes = plt.subplots(n, 3, figsize=(9, 3 * n), squeeze=False)
    for row in range(n):
        panels = (images[row], masks[row], overlay(images[row], masks[row]))
        for col, (panel, name) in enumerate(zip(panels, ("image", "mask", "overlay"))):
            ax = axes[row, col]
            ax.imshow(panel, cmap="gray" if panel.ndim == 2 else None)
            ax.set_axis_off()
            label = f"{titles[row]}: {name}" if titles is not None and col == 0 else name
            ax.set_title(label, fontsize=9)
    fig.tight_layout()
    return fig


def show_overlays(
    images: np.ndarray,
    truth: np.ndarray,
    pred: np.ndarray,
    titles: Sequence[str] | None = None,
    columns: int = 4,
):
    """Show images with true (green) and predicted (magenta) outlines in a grid; return the figure."""
    n = len(images)
    rows = max(1, -(-n // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for i in range(n):
        ax = axes.ravel()[i]
        ax.imshow(compare_overlay(images[i], truth[i], pred[i]))
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    fig.suptitle(say("green: expert mask, magenta: prediction", "verde: máscara del experto, magenta: predicción"), fontsize=10)
    fig.tight_layout()
    return fig


def best_and_worst(per_image: np.ndarray, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Return the indices of the k best and the k worst scores (best first, worst first)."""
    order = np.argsort(per_image, kind="stable")
    k = min(k, len(order))
    return order[::-1][:k], order[:k]


def plot_history(histories: Mapping[str, Mapping[str, Sequence[float]]], metrics: Sequence[str] = ("loss", "dice")):
    """Plot training and validation curves of several models side by side; return the figure."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for name, hist in histories.items():
            if metric in hist:
                epochs = np.arange(1, len(hist[metric]) + 1)
                (line,) = ax.plot(epochs, hist[metric], label=say(f"{name} train", f"{name} entrenamiento"))
                if f"val_{metric}" in hist:
                    ax.plot(epochs, hist[f"val_{metric}"], "--", color=line.get_color(), label=say(f"{name} validation", f"{name} validación"))
        ax.set_xlabel(say("epoch", "época"))
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
