"""The written part, graded by hand: merging the instructor's CSV of points and comments into the gradebook.

The CSV has a header `student,points,comment` (comment optional) and one row per student. A row
matches the gradebook row whose `student` cell holds the same text, as `gradebook.csv` shows it
(names are NFC-normalised on both sides; case, spaces and accents must agree; a cell that
`gradebook.csv` starts with `'` matches with or without that quote). Nothing is guessed: rows
that match no submission, and submissions with no row, are returned for the instructor to see.
"""

from __future__ import annotations

import csv
import math
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from utils.errors import CourseError
from utils.grading.gradebook import GRADEBOOK, GRADEBOOK_COLUMNS, MANUAL_COLUMNS, read_gradebook, write_table
from utils.grading.names import csv_cell
from utils.grading.rubric import num


@dataclass
class ManualMerge:
    """What merging the written part did."""

    gradebook: Path
    matched: int = 0
    unmatched_rows: list[tuple[int, str]] = field(default_factory=list)  # (line in the CSV, student as written there)
    without_row: list[str] = field(default_factory=list)  # gradebook students the CSV does not mention

    def lines(self) -> list[str]:
        """Return the summary to print, one line each."""
        out = [f"written part merged for {self.matched} student(s): {self.gradebook}"]
        out += [f"manual row at line {line} matches no submission: {name!r}" for line, name in self.unmatched_rows]
        out += [f"no written points for: {name}" for name in self.without_row]
        return out


def _key(text: str) -> str:
    return unicodedata.normalize("NFC", text.strip())


def read_manual(path: str | Path, written_max: float) -> dict[str, tuple[int, float, str]]:
    """Return {student: (line, points, comment)} from the instructor's CSV, or raise CourseError naming the file and line."""
    path = Path(path).expanduser()
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = [h.strip().lower() for h in next(reader, [])]
            if header[:2] != ["student", "points"] or (len(header) > 2 and header[2] != "comment"):
                raise CourseError(f"{path}, line 1: the header must be student,points,comment (found {','.join(header) or 'nothing'})")
            out: dict[str, tuple[int, float, str]] = {}
            for cells in reader:
                line = reader.line_num
                if not any(c.strip() for c in cells):
                    continue
                if len(cells) < 2 or len(cells) > 3:
                    raise CourseError(f"{path}, line {line}: expected student,points,comment, found {len(cells)} cell(s)")
                student, text = _key(cells[0]), cells[1].strip()
                try:
                    points = float(text)
                except ValueError:
                    raise CourseError(f"{path}, line {line}: points {text!r} is not a number (use a decimal point, e.g. 2.5)") from None
                if not math.isfinite(points) or not 0 <= points <= written_max:
                    raise CourseError(f"{path}, line {line}: points {text} must be between 0 and {num(written_max)} (the written part)")
                if not student:
                    raise CourseError(f"{path}, line {line}: the student cell is empty")
                if student in out:
                    raise CourseError(f"{path}, lines {out[student][0]} and {line}: {student!r} appears twice: keep one row")
                out[student] = (line, points, cells[2].strip() if len(cells) > 2 else "")
    except OSError as exc:
        raise CourseError(f"cannot read the manual grades {path} ({exc.strerror}): give the CSV student,points,comment") from None
    except UnicodeDecodeError:
        raise CourseError(f"{path} is not UTF-8 text: save it as CSV UTF-8") from None
    except csv.Error as exc:
        raise CourseError(f"{path}: not a valid CSV ({exc})") from None
    return out


def merge_manual(out: str | Path, manual: str | Path, written_max: float) -> ManualMerge:
    """Add the written points, total and comment to `out/gradebook.csv` (rewritten in one step); return what matched."""
    if written_max <= 0:
        raise CourseError("the rubric has no written part ('written': 0): give a rubric with one to merge --manual points")
    path = Path(out).expanduser() / GRADEBOOK
    rows = read_gradebook(path)
    marks = read_manual(manual, written_max)
    result = ManualMerge(path)
    used: set[str] = set()
    table = []
    for r in rows:
        shown = _key(r["student"])
        candidates = [shown] + ([shown[1:]] if shown.startswith("'") and csv_cell(shown[1:]) == shown else [])
        hit = next((c for c in candidates if c in marks), None)
        if hit is None:
            result.without_row.append(r["student"])
            written, total, comment = None, None, ""
        else:
            used.add(hit)
            result.matched += 1
            _, written, comment = marks[hit]
            total = r["points"] + written
        table.append([r["student"], f"{r['iou']:.4f}", f"{r['dice']:.4f}", r["points"], r["status"], r["reason"], written, total, comment])
    result.unmatched_rows = sorted((line, name) for name, (line, _, _) in marks.items() if name not in used)
    write_table(path, GRADEBOOK_COLUMNS + MANUAL_COLUMNS, table)
    return result
