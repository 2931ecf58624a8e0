"""The gradebook: one row per entry of the submissions folder, flushed as each finishes, replaced atomically.

While a run is going, rows are appended and flushed to `gradebook.in-progress.csv` in the order
students finish; that file exists only while a run is unfinished, so after a crash or a kill its
presence says the run did not complete, and its rows are every student finished before. At the
end `gradebook.csv` is written next to it under a temporary name, sorted by student, and moved
into place in one step (os.replace). When a run is interrupted (Ctrl-C, SIGTERM), every student
not yet graded still gets a row, with status `incomplete`. Every text cell is escaped for
spreadsheets (OWASP CSV injection: a leading `=`, `+`, `-`, `@`, tab or carriage return gets a `'`).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from utils.grading.names import csv_cell
from utils.grading.rubric import num

GRADEBOOK_COLUMNS = ("student", "iou", "dice", "points", "status", "reason")
MANUAL_COLUMNS = ("written", "total", "comment")  # added by `grade --manual` (utils.grading.manual)
GRADEBOOK = "gradebook.csv"
IN_PROGRESS = "gradebook.in-progress.csv"
PREVIOUS = "gradebook.previous.csv"


@dataclass
class GradeRow:
    """One line of the gradebook."""

    student: str  # the folder name made visible (see utils.grading.names.display_name)
    iou: float
    dice: float
    points: float
    status: str  # "ok", "partial", "error" or "incomplete"
    reason: str


def _cells(row: GradeRow) -> list[str]:
    return [csv_cell(row.student), f"{row.iou:.4f}", f"{row.dice:.4f}", num(row.points), csv_cell(row.status), csv_cell(row.reason)]


class Gradebook:
    """Writes rows as they come, and the final sorted file at the end."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.path = self.out / GRADEBOOK
        if self.path.exists():  # an earlier run's result is kept aside, never mistaken for this one's
            os.replace(self.path, self.out / PREVIOUS)
        self._fh = open(self.out / IN_PROGRESS, "w", newline="", encoding="utf-8")  # noqa: SIM115 - closed in finish
        self._writer = csv.writer(self._fh)
        self._writer.writerow(GRADEBOOK_COLUMNS)
        self._sync()

    def _sync(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def add(self, row: GradeRow) -> None:
        """Append one finished student's row and push it to disk."""
        self._writer.writerow(_cells(row))
        self._sync()

    def finish(self, rows: Iterable[GradeRow], *, complete: bool) -> Path:
        """Write the sorted gradebook atomically; remove the in-progress file only when the run completed."""
        tmp = self.out / f".{GRADEBOOK}.tmp"
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(GRADEBOOK_COLUMNS)
            for row in sorted(rows, key=lambda r: r.student):
                writer.writerow(_cells(row))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        self._fh.close()
        if complete:
            (self.out / IN_PROGRESS).unlink(missing_ok=True)
        return self.path


def write_gradebook(rows: Iterable[GradeRow], path: Path) -> None:
    """Write rows as a gradebook CSV (escaped, sorted by student) in one atomic step."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(GRADEBOOK_COLUMNS)
        for row in sorted(rows, key=lambda r: r.student):
            writer.writerow(_cells(row))
    os.replace(tmp, path)


def read_gradebook(path: Path) -> list[dict]:
    """Return gradebook.csv's rows as dicts (scores as floats; written and total, when merged, as floats or None)."""
    from utils.errors import CourseError

    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            header = reader.fieldnames or []
    except OSError as exc:
        raise CourseError(f"cannot read the gradebook {path} ({exc.strerror}): grade the class first (without --gradebook-only)") from None
    missing = [c for c in GRADEBOOK_COLUMNS if c not in header]
    if missing:
        raise CourseError(f"{path} is not a gradebook written by `grade` (no {missing[0]} column): grade the class again")
    for r in rows:
        r["iou"], r["dice"], r["points"] = float(r["iou"]), float(r["dice"]), float(r["points"])
        for column in ("written", "total"):
            if column in r:
                r[column] = float(r[column]) if r[column] not in ("", None) else None
    return rows


def write_table(path: Path, header: Iterable[str], rows: Iterable[Iterable[object]]) -> Path:
    """Write a CSV atomically, every cell escaped for spreadsheets (numbers as they are)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([csv_cell(h) for h in header])
        for row in rows:
            writer.writerow(["" if c is None else num(c) if isinstance(c, (int, float)) and not isinstance(c, bool) else csv_cell(c) for c in row])
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path
