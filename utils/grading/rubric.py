"""The rubric: from a mean score to points, with no points at or below the trivial baselines."""

from __future__ import annotations

import json
from pathlib import Path

from utils.errors import CourseError

DEFAULT_RUBRIC: dict = {
    "metric": "iou",
    "bands": [
        {"at_least": 0.90, "points": 10},
        {"at_least": 0.85, "points": 9},
        {"at_least": 0.80, "points": 8},
        {"at_least": 0.70, "points": 6},
        {"at_least": 0.50, "points": 4},
        {"above": 0.0, "points": 2},
    ],
    "otherwise": 0,
    # "baselines": a score at or below the best trivial baseline (all background, all person, the
    # unmodified starter's output), computed from the answers, earns `otherwise`; "none": no floor.
    "floor": "baselines",
}


def check_rubric(rubric: dict, where: str = "rubric") -> dict:
    """Return the rubric if it is well formed, else raise CourseError naming what is wrong."""
    fix = "see DEFAULT_RUBRIC in utils/grading/rubric.py or lab/README.md"
    if not isinstance(rubric, dict) or not isinstance(rubric.get("bands"), list) or not rubric["bands"]:
        raise CourseError(f"{where}: needs a non-empty list 'bands' of {{'at_least' or 'above', 'points'}}: {fix}")
    if rubric.get("metric", "iou") not in ("iou", "dice"):
        raise CourseError(f"{where}: 'metric' must be 'iou' or 'dice', not {rubric.get('metric')!r}: {fix}")
    if rubric.get("floor", "baselines") not in ("baselines", "none"):
        raise CourseError(f"{where}: 'floor' must be 'baselines' or 'none', not {rubric.get('floor')!r}: {fix}")
    for i, band in enumerate(rubric["bands"], start=1):
        keys = {"at_least", "above"} & set(band) if isinstance(band, dict) else set()
        if len(keys) != 1 or not isinstance(band.get("points"), (int, float)) or isinstance(band.get("points"), bool):
            raise CourseError(f"{where}: band {i} needs exactly one of 'at_least'/'above' and a number 'points': {fix}")
        value = band[keys.pop()]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
            raise CourseError(f"{where}: band {i} threshold {value!r} must be a number between 0 and 1: {fix}")
    if not isinstance(rubric.get("otherwise", 0), (int, float)):
        raise CourseError(f"{where}: 'otherwise' must be a number of points: {fix}")
    return rubric


def load_rubric(path: str | Path) -> dict:
    """Return the rubric read from a JSON file (same shape as DEFAULT_RUBRIC)."""
    path = Path(path)
    try:
        rubric = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CourseError(f"cannot read the rubric {path} ({exc.strerror}): give an existing JSON file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CourseError(f"{path} is not valid JSON ({exc}): fix the rubric file") from None
    return check_rubric(rubric, str(path))


def _bands(rubric: dict) -> list[tuple[float, bool, float]]:
    out = [(float(b.get("at_least", b.get("above"))), "above" in b, float(b["points"])) for b in rubric["bands"]]
    return sorted(out, key=lambda t: (t[0], t[1]), reverse=True)


def points_for(score: float, rubric: dict = DEFAULT_RUBRIC, floor: float | None = None) -> float:
    """Return the points the rubric gives to a mean score (the highest band reached; none at or below `floor`)."""
    if floor is not None and rubric.get("floor", "baselines") == "baselines" and score <= floor:
        return float(rubric.get("otherwise", 0))
    for threshold, strict, points in _bands(rubric):
        if score > threshold or (not strict and score >= threshold):
            return points
    return float(rubric.get("otherwise", 0))


def max_points(rubric: dict = DEFAULT_RUBRIC) -> float:
    """Return the most points the rubric can give."""
    return max([p for _, _, p in _bands(rubric)] + [float(rubric.get("otherwise", 0))])


def rubric_text(rubric: dict = DEFAULT_RUBRIC, floor: float | None = None) -> str:
    """Return the rubric as one readable line, e.g. "IoU ≥ 0.90 → 10, …, otherwise 0"."""
    metric = "IoU" if rubric.get("metric", "iou") == "iou" else "Dice"
    parts = [f"{metric} {'>' if strict else '≥'} {t:.2f} → {num(p)}" for t, strict, p in _bands(rubric)]
    text = ", ".join(parts + [f"otherwise {num(rubric.get('otherwise', 0))}"])
    if floor is not None and rubric.get("floor", "baselines") == "baselines":
        text += f"; {metric} ≤ {floor:.3f} (best trivial baseline) → {num(rubric.get('otherwise', 0))}"
    return text


def num(x: float) -> str:
    """Return a number of points as short text (10, 2.5)."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"
