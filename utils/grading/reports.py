"""Reports: for the instructor (with the truth, keep them private) and feedback for the student (without).

- `reports/<student>.md|png` (instructor): scores, points, the lowest-scoring images, and the best
  and worst cases as image / truth / prediction.
- `feedback/<student>.md|png` (student, the one to send back): the aggregate scores and points,
  the notes, and the student's own prediction over a few test images chosen by name, not by score.
  No true mask, no per-image score: nothing that lets a student probe the hidden answers.

Names and reasons are escaped for Markdown and HTML; file names are made from the folder name
(see utils.grading.names.file_stem), never taken from it as a path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from utils.grading.answers import Answers
from utils.grading.gradebook import GradeRow
from utils.grading.names import markdown_text
from utils.grading.rubric import max_points, num, rubric_text

REPORT_KINDS = ("instructor", "feedback")


@dataclass
class Result:
    """One student's row, what was graded, and the per-image scores (kept only until reports are written)."""

    row: GradeRow
    stem: str  # file name stem for this student's reports
    source: str = "nothing"
    preds: dict[str, np.ndarray] = field(default_factory=dict)
    iou: dict[str, float] = field(default_factory=dict)
    dice: dict[str, float] = field(default_factory=dict)
    signature: object = None  # utils.grading.duplicates.Signature, for the duplicate checks


def _figure(rows: list[list[tuple[np.ndarray, str]]], title: str, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3 * len(rows[0]), 2.6 * len(rows)))
    axes = fig.subplots(len(rows), len(rows[0]), squeeze=False)
    for r, panels in enumerate(rows):
        for c, (panel, label) in enumerate(panels):
            axes[r, c].imshow(panel)
            axes[r, c].set_title(label, fontsize=8)
            axes[r, c].set_axis_off()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def _common(result: Result, answers: Answers, rubric: dict, floor: float | None) -> list[str]:
    r = result.row
    return [
        f"- status: **{markdown_text(r.status)}**",
        f"- graded from: {markdown_text(result.source)}",
        f"- mean IoU over the {len(answers.names)} test images: **{r.iou:.4f}**",
        f"- mean Dice: {r.dice:.4f}",
        f"- points for the masks: **{num(r.points)} / {num(max_points(rubric))}** (rubric: {markdown_text(rubric_text(rubric, floor))})",
        f"- notes: {markdown_text(r.reason)}",
    ]


def write_instructor_report(result: Result, answers: Answers, rubric: dict, folder: Path, *, floor: float | None = None, baselines: dict | None = None, k: int = 2) -> None:
    """Write `folder/<stem>.md` (and `.png` when something was graded): for the instructor only."""
    from utils.plots import PRED_COLOUR, TRUTH_COLOUR, overlay

    folder.mkdir(parents=True, exist_ok=True)
    figure = folder / f"{result.stem}.png"
    graded = [n for n in answers.names if n in result.preds]
    figure.unlink(missing_ok=True)
    if graded:
        order = sorted(graded, key=lambda n: (result.iou[n], n))
        best = order[::-1][:k]
        picks = [(n, "best") for n in best] + [(n, "worst") for n in order[:k] if n not in best]
        rows = []
        for name, label in picks:
            image, truth, pred = answers.image(name), answers.masks[name], result.preds[name]
            rows.append([(image, f"{label}: {name}"), (overlay(image, truth, TRUTH_COLOUR), "truth"),
                         (overlay(image, pred, PRED_COLOUR), f"prediction, IoU {result.iou[name]:.3f}")])
        _figure(rows, f"mean IoU {result.row.iou:.3f}", figure)
    lines = [f"# Lab report (instructor): {markdown_text(result.row.student)}", "", *_common(result, answers, rubric, floor)]
    if baselines:
        lines += ["", "Trivial baselines on this test set: " + ", ".join(
            f"{markdown_text(k)} IoU {v['iou']:.3f}" for k, v in baselines.items())]
    if result.iou:
        worst = sorted(result.iou, key=lambda n: (result.iou[n], n))[:5]
        lines += ["", "## Lowest-scoring images", "", "| image | IoU | Dice |", "| --- | --- | --- |"]
        lines += [f"| {markdown_text(n)} | {result.iou[n]:.3f} | {result.dice[n]:.3f} |" for n in worst]
    if graded:
        lines += ["", "Best and worst cases (image, truth in green, prediction in magenta):", "", f"![cases]({result.stem}.png)"]
    lines += ["", "*Holds the hidden truth: do not send this report to the student (send feedback/ instead).*"]
    (folder / f"{result.stem}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_feedback(result: Result, answers: Answers, rubric: dict, folder: Path, *, floor: float | None = None, k: int = 3) -> None:
    """Write `folder/<stem>.md` (and `.png`): the student's own predictions and aggregate scores, no truth."""
    from utils.plots import PRED_COLOUR, overlay

    folder.mkdir(parents=True, exist_ok=True)
    figure = folder / f"{result.stem}.png"
    figure.unlink(missing_ok=True)
    shown = [n for n in answers.names if n in result.preds][:k]  # the first by name: says nothing about scores
    if shown:
        _figure([[(answers.image(n), n), (overlay(answers.image(n), result.preds[n], PRED_COLOUR), "your mask")] for n in shown],
                "your predictions", figure)
    lines = [f"# Lab feedback: {markdown_text(result.row.student)}", "", *_common(result, answers, rubric, floor)]
    if shown:
        lines += ["", "Some of your masks over their test images (chosen by file name):", "", f"![your masks]({result.stem}.png)"]
    (folder / f"{result.stem}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
