"""The rubric: from a mean score to points, with no points at or below the trivial baselines.

A band's threshold is either a number (an absolute IoU or Dice) or, in a relative rubric, an
object that combines the class's two reference points:

    {"reference": a, "baseline": b, "offset": c}   ->   threshold = a·R + b·B + c

where R is the reference solution's score on the held-out part of the package (`lab calibrate`,
in the profile the class uses) and B the best trivial baseline's score on the hidden test set
(computed by the grader). Missing keys count as 0. `resolve_rubric` turns a relative rubric into
an absolute one for given R and B. The written error analysis is graded by hand: `written`
gives its points (merged with `grade --manual`).
"""

from __future__ import annotations

import json
from pathlib import Path

from utils.errors import CourseError

# Masks: 7 points, relative to the reference R and the best trivial baseline B. Written error
# analysis: 3 points, graded by hand. Why these bands: within 0.02 of R counts as the reference
# (a margin for run-to-run variation and for R being measured on other frames); 0.05 and 0.10
# below R is a working model with a weaker choice (loss, size, epochs, augmentation); halfway from
# B to R has learnt the task but not well; anything above B has learnt something from the images.
DEFAULT_RUBRIC: dict = {
    "metric": "iou",
    "bands": [
        {"at_least": {"reference": 1, "offset": -0.02}, "points": 7},
        {"at_least": {"reference": 1, "offset": -0.05}, "points": 6},
        {"at_least": {"reference": 1, "offset": -0.10}, "points": 5},
        {"at_least": {"reference": 0.5, "baseline": 0.5}, "points": 3},
        {"above": {"baseline": 1}, "points": 1},
    ],
    "otherwise": 0,
    # "baselines": a score at or below the best trivial baseline (all background, all person, the
    # unmodified starter's output), computed from the answers, earns `otherwise`; "none": no floor.
    "floor": "baselines",
    # The written error analysis, graded by the instructor (`grade --manual FILE`); 0 for none.
    "written": 3,
}

ABSOLUTE_EXAMPLE: dict = {  # the rubric of earlier years: fixed IoU bands, 10 points, no written part
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
    "floor": "baselines",
    "written": 0,
}

_TERMS = ("reference", "baseline", "offset")


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


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
        if len(keys) != 1 or not _is_number(band.get("points")):
            raise CourseError(f"{where}: band {i} needs exactly one of 'at_least'/'above' and a number 'points': {fix}")
        value = band[keys.pop()]
        if isinstance(value, dict):
            if not value or set(value) - set(_TERMS) or not all(_is_number(v) for v in value.values()):
                raise CourseError(f"{where}: band {i} relative threshold {value!r} may hold only numbers under "
                                  f"{', '.join(_TERMS)} (threshold = reference·R + baseline·B + offset): {fix}")
        elif not _is_number(value) or not 0.0 <= value <= 1.0:
            raise CourseError(f"{where}: band {i} threshold {value!r} must be a number between 0 and 1 or a "
                              f"relative threshold such as {{\"reference\": 1, \"offset\": -0.05}}: {fix}")
    if not _is_number(rubric.get("otherwise", 0)):
        raise CourseError(f"{where}: 'otherwise' must be a number of points: {fix}")
    if not _is_number(rubric.get("written", 0)) or rubric.get("written", 0) < 0:
        raise CourseError(f"{where}: 'written' must be the points of the written part (a number, 0 for none): {fix}")
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


def is_relative(rubric: dict) -> bool:
    """Return whether any band's threshold depends on the reference or the baseline."""
    return any(isinstance(b.get("at_least", b.get("above")), dict) for b in rubric["bands"])


def needs_reference(rubric: dict) -> bool:
    """Return whether the rubric needs the reference score R (a band uses a non-zero 'reference' term)."""
    return any(isinstance(t := b.get("at_least", b.get("above")), dict) and t.get("reference", 0) != 0 for b in rubric["bands"])


def threshold(value: float | dict, reference: float | None, baseline: float | None) -> float:
    """Return a band's threshold as a number: itself, or reference·R + baseline·B + offset."""
    if not isinstance(value, dict):
        return float(value)
    if value.get("reference", 0) and reference is None:
        raise CourseError("the rubric is relative to the reference score and none was given: pass --reference FILE|IOU")
    if value.get("baseline", 0) and baseline is None:
        raise CourseError("the rubric is relative to the best trivial baseline and none was computed")
    return value.get("reference", 0) * (reference or 0.0) + value.get("baseline", 0) * (baseline or 0.0) + value.get("offset", 0)


def resolve_rubric(rubric: dict, reference: float | None = None, baseline: float | None = None) -> dict:
    """Return the rubric with every threshold a number (R and B filled in), keeping the relative form under 'relative'."""
    check_rubric(rubric)
    if not is_relative(rubric):
        return rubric
    if reference is not None and baseline is not None and needs_reference(rubric) and reference <= baseline:
        raise CourseError(f"the reference score {reference:.3f} is not above the best trivial baseline {baseline:.3f}: "
                          "calibrate the reference again (`python -m utils lab calibrate`) or give a larger --reference")
    bands = []
    for band in rubric["bands"]:
        key = "at_least" if "at_least" in band else "above"
        bands.append({key: round(min(1.0, max(0.0, threshold(band[key], reference, baseline))), 6), "points": band["points"]})
    return {**rubric, "bands": bands, "relative": {"bands": rubric["bands"], "reference": reference, "baseline": baseline}}


def _bands(rubric: dict) -> list[tuple[float, bool, float]]:
    if is_relative(rubric):
        raise CourseError("the rubric is relative: resolve it first with resolve_rubric(rubric, reference, baseline)")
    out = [(float(b.get("at_least", b.get("above"))), "above" in b, float(b["points"])) for b in rubric["bands"]]
    return sorted(out, key=lambda t: (t[0], t[1], t[2]), reverse=True)


def points_for(score: float, rubric: dict = DEFAULT_RUBRIC, floor: float | None = None, reference: float | None = None) -> float:
    """Return the points the rubric gives to a mean score (the most among the bands reached; none at or below `floor`).

    A relative rubric is resolved with `reference` (R) and `floor` (B) first.
    """
    if is_relative(rubric):
        rubric = resolve_rubric(rubric, reference, floor)
    if floor is not None and rubric.get("floor", "baselines") == "baselines" and score <= floor:
        return float(rubric.get("otherwise", 0))
    reached = [points for t, strict, points in _bands(rubric) if score > t or (not strict and score >= t)]
    return max(reached, default=float(rubric.get("otherwise", 0)))


def max_points(rubric: dict = DEFAULT_RUBRIC) -> float:
    """Return the most points the masks can earn under the rubric (the written part not included)."""
    return max([float(b["points"]) for b in rubric["bands"]] + [float(rubric.get("otherwise", 0))])


def written_points(rubric: dict = DEFAULT_RUBRIC) -> float:
    """Return the points of the written part (graded by hand; 0 when the rubric has none)."""
    return float(rubric.get("written", 0))


def _relative_text(value: dict) -> str:
    parts = []
    for term, symbol in (("reference", "R"), ("baseline", "B")):
        w = value.get(term, 0)
        if w:
            parts.append(symbol if w == 1 else f"{w:g}·{symbol}")
    text = " + ".join(parts) or "0"
    offset = value.get("offset", 0)
    if offset:
        text += f" {'−' if offset < 0 else '+'} {abs(offset):g}"
    return text


def rubric_text(rubric: dict = DEFAULT_RUBRIC, floor: float | None = None) -> str:
    """Return the rubric as one readable line, e.g. "IoU ≥ 0.90 → 7, …, otherwise 0" (relative bands with R and B)."""
    metric = "IoU" if rubric.get("metric", "iou") == "iou" else "Dice"
    if is_relative(rubric):
        bands = [(b.get("at_least", b.get("above")), "above" in b, b["points"]) for b in rubric["bands"]]
        parts = [f"{metric} {'>' if s else '≥'} {_relative_text(t) if isinstance(t, dict) else f'{t:.2f}'} → {num(p)}" for t, s, p in bands]
    else:
        relative = {id(b): r for b, r in zip(rubric["bands"], rubric.get("relative", {}).get("bands", []))}
        parts = []
        for b in sorted(rubric["bands"], key=lambda b: (b.get("at_least", b.get("above")), "above" in b), reverse=True):
            t, strict = b.get("at_least", b.get("above")), "above" in b
            rel = relative.get(id(b), {}).get("at_least", relative.get(id(b), {}).get("above"))
            shown = f"{_relative_text(rel)} = {t:.3f}" if isinstance(rel, dict) else f"{t:.2f}"
            parts.append(f"{metric} {'>' if strict else '≥'} {shown} → {num(b['points'])}")
    text = ", ".join(parts + [f"otherwise {num(rubric.get('otherwise', 0))}"])
    if floor is not None and rubric.get("floor", "baselines") == "baselines":
        text += f"; {metric} ≤ {floor:.3f} (best trivial baseline) → {num(rubric.get('otherwise', 0))}"
    rel = rubric.get("relative")
    if rel and rel.get("reference") is not None:
        text += f"; R = {rel['reference']:.3f} (reference)"
    if rel and rel.get("baseline") is not None:
        text += f", B = {rel['baseline']:.3f} (best trivial baseline)"
    if written_points(rubric):
        text += f"; written error analysis: {num(written_points(rubric))} points, graded by hand"
    return text


def num(x: float) -> str:
    """Return a number of points as short text (10, 2.5)."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"
