"""Dice, IoU and pixel accuracy for binary masks, per image and averaged.

Convention for empty masks: when both the true and the predicted mask of an image are empty, the
prediction is perfect and Dice = IoU = 1. When only one of them is empty, there is no overlap and
Dice = IoU = 0. This keeps every per-image score in [0, 1] and never divides by zero.

Masks are arrays of shape (H, W) for one image or (N, H, W) (or (N, H, W, 1)) for a batch; any
non-zero (or True) pixel is foreground. Turn model outputs into masks with `probs_to_mask` for
probabilities (after a sigmoid) or `logits_to_mask` for raw logits: a logit of 0 is a probability
of 0.5, so logits are thresholded at 0, never at 0.5.
"""

from __future__ import annotations

import numpy as np


def probs_to_mask(probs: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Return a uint8 0/1 mask from probabilities in [0, 1]."""
    return (np.asarray(probs) > threshold).astype(np.uint8)


def logits_to_mask(logits: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Return a uint8 0/1 mask from logits, thresholded at the logit of `threshold`."""
    cut = float(np.log(threshold / (1.0 - threshold)))
    return (np.asarray(logits, dtype=np.float32) > cut).astype(np.uint8)


def _as_batch(mask: np.ndarray) -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim == 4 and m.shape[-1] == 1:
        m = m[..., 0]
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3:
        raise ValueError(f"expected masks of shape (H, W) or (N, H, W), got {np.shape(mask)}")
    return m.astype(bool)


def _counts(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    t, p = _as_batch(y_true), _as_batch(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"true and predicted masks differ in shape: {t.shape} vs {p.shape}")
    axes = (1, 2)
    inter = np.logical_and(t, p).sum(axes, dtype=np.int64)
    t_sum = t.sum(axes, dtype=np.int64)
    p_sum = p.sum(axes, dtype=np.int64)
    correct = (t == p).sum(axes, dtype=np.int64)
    return inter, t_sum, p_sum, correct


def dice_per_image(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Return the Dice coefficient 2|A∩B| / (|A|+|B|) of each image (1 when both are empty)."""
    inter, t_sum, p_sum, _ = _counts(y_true, y_pred)
    denom = t_sum + p_sum
    return np.where(denom == 0, 1.0, 2.0 * inter / np.maximum(denom, 1))


def iou_per_image(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Return the intersection over union |A∩B| / |A∪B| of each image (1 when both are empty)."""
    inter, t_sum, p_sum, _ = _counts(y_true, y_pred)
    union = t_sum + p_sum - inter
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1))


def pixel_accuracy_per_image(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Return the fraction of pixels whose class is right, for each image."""
    t = _as_batch(y_true)
    _, _, _, correct = _counts(t, y_pred)
    return correct / float(t.shape[1] * t.shape[2])


def dice(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Return the mean per-image Dice coefficient."""
    return float(dice_per_image(y_true, y_pred).mean())


def iou(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Return the mean per-image IoU (Jaccard index)."""
    return float(iou_per_image(y_true, y_pred).mean())


def pixel_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Return the mean per-image pixel accuracy."""
    return float(pixel_accuracy_per_image(y_true, y_pred).mean())


def scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Return {'dice', 'iou', 'pixel_accuracy'}, each averaged over images."""
    return {
        "dice": dice(y_true, y_pred),
        "iou": iou(y_true, y_pred),
        "pixel_accuracy": pixel_accuracy(y_true, y_pred),
    }
