"""Scoring: per-image IoU and Dice against the answers, the trivial baselines, the points."""

from __future__ import annotations

import numpy as np

from utils import mads
from utils.grading.answers import Answers
from utils.metrics import dice_per_image, iou_per_image


def score_images(preds: dict[str, np.ndarray], refused: dict[str, str], answers: Answers) -> tuple[dict[str, float], dict[str, float]]:
    """Return per-image IoU and Dice; a missing prediction counts as empty, a refused one scores 0."""
    ious, dices = {}, {}
    for name in answers.names:
        truth = answers.masks[name]
        if name in refused:
            ious[name] = dices[name] = 0.0
            continue
        pred = preds.get(name)
        pred = np.zeros_like(truth) if pred is None else pred
        ious[name] = float(iou_per_image(truth, pred)[0])
        dices[name] = float(dice_per_image(truth, pred)[0])
    return ious, dices


def baseline_scores(answers: Answers) -> dict[str, dict[str, float]]:
    """Return the mean IoU and Dice of the trivial baselines: all background, all person, the starter's output."""
    candidates: dict[str, dict[str, np.ndarray]] = {
        "all background": {n: np.zeros(answers.shapes[n], np.uint8) for n in answers.names},
        "all person": {n: np.ones(answers.shapes[n], np.uint8) for n in answers.names},
    }
    for profile, mask in answers.starters.items():
        candidates[f"unmodified starter ({profile} profile)"] = {n: mads.resize_mask(mask, answers.shapes[n]) for n in answers.names}
    out = {}
    for label, preds in candidates.items():
        ious, dices = score_images(preds, {}, answers)
        out[label] = {"iou": float(np.mean(list(ious.values()))), "dice": float(np.mean(list(dices.values())))}
    return out


def floor_of(baselines: dict[str, dict[str, float]], metric: str) -> tuple[float, str]:
    """Return the best baseline's score for the rubric's metric, and its name."""
    label = max(baselines, key=lambda k: baselines[k][metric])
    return baselines[label][metric], label
