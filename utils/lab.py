"""What the lab notebooks share that is not the lesson: the baseline, open-TODO messages, the self-check, the report.

The model, the loss, the training loop and the evaluation are the student's work and stay in the
notebooks. Both tracks (Keras and PyTorch) call these helpers, so the grader's "unmodified starter"
baseline (`utils.grading.prepare.starter_masks`) is computed by the very function the starters use.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from utils.course import runs_dir
from utils.errors import CourseError
from utils.metrics import scores

REPORT_ENV = "LAB_REPORT"


def prior_mask(y_train: np.ndarray) -> np.ndarray:
    """Return the trivial baseline: the pixels most often "person" in the training masks, as many as the average person covers.

    `y_train` holds 0/1 masks of shape (N, size, size); the result is a (size, size) uint8 0/1 mask.
    """
    y = np.asarray(y_train)
    if y.ndim != 3 or len(y) == 0:
        raise CourseError(f"prior_mask needs training masks of shape (N, size, size) with N > 0, got {y.shape}")
    prior = y.mean(axis=0)
    return (prior > np.quantile(prior, 1 - y.mean())).astype(np.uint8)


def todo_open(number: int, what: str) -> None:
    """Print one line saying that TODO `number` is still open and what to do; never raises."""
    try:
        print(f"[TODO {number}] {what}", flush=True)
    except Exception:  # noqa: BLE001 - a message must never stop the notebook
        pass


def _check(ok: bool, passed: str, failed: str) -> bool:
    print(f"  {'ok  ' if ok else 'FIX '} {passed if ok else failed}")
    return ok


def self_check(predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray, masks: np.ndarray,
               *, baseline_iou: float | None = None) -> dict | None:
    """Check `predict` on validation frames as the grader would; print one line per check and the scores.

    The grader needs, for N frames of shape (N, size, size, 3), an array of N masks of shape
    (size, size), dtype uint8, holding only 0 and 1. Returns {'dice', 'iou', 'pixel_accuracy'}
    on the frames, or None when a check failed. With `baseline_iou`, also says whether the model
    beats the trivial baseline. Never raises on a mistake in `predict`: it is reported instead.
    """
    images, masks = np.asarray(images), np.asarray(masks)
    expected = (len(images), *images.shape[1:3])
    print(f"self-check on {len(images)} validation frames:")
    try:
        pred = predict(images)
    except Exception as exc:  # noqa: BLE001 - the student's code: report, do not stop
        print(f"  FIX  predict(images) raised {type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
        print("       run predict on a few frames in a cell of its own to see the full traceback")
        return None
    if not _check(isinstance(pred, np.ndarray), "predict returns a NumPy array",
                  f"predict returns {type(pred).__name__}, not a NumPy array: convert it "
                  "(keras.ops.convert_to_numpy, or tensor.cpu().numpy() in PyTorch)"):
        return None
    good = _check(pred.shape == expected, f"shape {pred.shape}: one (size, size) mask per frame",
                  f"shape {pred.shape}, expected {expected}: drop the channel axis (pred[..., 0]) "
                  "and keep one mask per input frame")
    good &= _check(pred.dtype == np.uint8, "dtype uint8",
                   f"dtype {pred.dtype}, expected uint8: threshold, then .astype(np.uint8)")
    values = np.unique(pred) if pred.size else np.array([])
    shown = ", ".join(str(v) for v in values[:5].tolist()) + (", ..." if len(values) > 5 else "")
    good &= _check(set(values.tolist()) <= {0, 1}, "values only 0 and 1",
                   f"values {shown}: masks must hold only 0 and 1 (logits > 0, or probabilities > 0.5)")
    if not good:
        print("self-check failed: the grader would refuse these masks; fix the lines marked FIX")
        return None
    fraction = float(pred.mean()) if pred.size else 0.0
    truth = float(masks.mean()) if masks.size else 0.0
    if fraction < 0.2 * truth or fraction > min(1.0, 3 * truth + 0.05):
        print(f"  note {fraction:.1%} of the pixels are predicted person, {truth:.1%} really are: "
              "a threshold at the wrong place (0.5 on logits?) or a loss that does not match the "
              "model's output (from_logits?) gives masks that are almost empty or almost full")
    result = scores(masks, pred)
    line = f"validation IoU {result['iou']:.3f}, Dice {result['dice']:.3f}"
    if baseline_iou is not None:
        beats = result["iou"] > baseline_iou
        line += f" (baseline IoU {baseline_iou:.3f}: {'beaten' if beats else 'NOT beaten, so it would earn no points'})"
    print(line)
    return result


def report_path(name: str) -> Path:
    """Return where `write_report` writes: $LAB_REPORT if set, else runs_dir()/lab/<name>.json."""
    env = os.environ.get(REPORT_ENV, "").strip()
    return Path(env).expanduser() if env else runs_dir() / "lab" / f"{name}.json"


def write_report(report: dict, name: str) -> Path:
    """Write the solution's JSON report to $LAB_REPORT if set, else runs_dir()/lab/<name>.json; return the path."""
    path = report_path(name)
    try:
        text = json.dumps(report, indent=2, sort_keys=False)
    except (TypeError, ValueError) as exc:
        raise CourseError(f"report {name!r} is not plain JSON ({exc}): convert NumPy numbers with float()/int()") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")
    return path
