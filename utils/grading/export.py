"""Grades in the files learning platforms import: Canvas's gradebook CSV and Moodle's "Import grades from CSV".

The roster is the platform's own export of the course's gradebook (Canvas: *Grades → Export*;
Moodle: *Grades → Export → Plain text file*). A submission folder maps to the roster row whose
identifier column (Canvas: `SIS Login ID` by default; Moodle: `Email address` by default; any
column with `--match`) equals the folder name as the gradebook shows it, NFC-normalised and
ignoring case. Nothing is guessed: a folder that matches no row or several, two folders that
match one row, and roster rows with no submission are listed (returned, printed, and written to
`export-unmatched.csv`), and their grade cells are left empty.

- Canvas: columns Student, ID, SIS User ID, SIS Login ID, Section (copied from the roster), then
  one column for the assignment: the roster's own column when its name is the assignment's
  (Canvas writes `Name (12345)`, the number being the assignment's id; keeping it updates that
  assignment), else the name alone (Canvas then creates a new assignment on import). A
  `Points Possible` row follows the header, as in Canvas's export. An empty cell changes nothing.
- Moodle: the identifier column, the grade column (named after the assignment) and a feedback
  column; on the import page map the identifier to the matching user field, the grade to the
  grade item and the feedback to its feedback.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from utils.errors import CourseError
from utils.grading.gradebook import GRADEBOOK, read_gradebook, write_table
from utils.grading.rubric import num

PLATFORMS = ("canvas", "moodle")
CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
DEFAULT_MATCH = {"canvas": "SIS Login ID", "moodle": "Email address"}
DEFAULT_ASSIGNMENT = "Body segmentation lab"
UNMATCHED = "export-unmatched.csv"
_NOT_FOR_STUDENTS = re.compile(r"^(POSSIBLE COPY|DUPLICATE NAME)")


@dataclass
class Export:
    """What an export wrote and what it could not match."""

    path: Path
    unmatched_path: Path
    graded: int = 0
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (problem, name, detail)

    def lines(self) -> list[str]:
        """Return the summary to print, one line each."""
        out = [f"wrote {self.graded} grade(s) to {self.path}"]
        out += [f"{problem}: {name} ({detail})" for problem, name, detail in self.problems]
        if self.problems:
            out.append(f"{len(self.problems)} entry(ies) not exported, listed in {self.unmatched_path}")
        return out


def _key(text: str) -> str:
    return unicodedata.normalize("NFC", text.strip()).casefold()


def read_roster(path: str | Path, platform: str) -> tuple[list[str], list[dict]]:
    """Return (header, student rows) of a platform's gradebook export; Canvas's Points Possible and muted rows are skipped."""
    path = Path(path).expanduser()
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            header = [h.strip() for h in (reader.fieldnames or [])]
    except OSError as exc:
        raise CourseError(f"cannot read the roster {path} ({exc.strerror}): give the gradebook CSV exported by {platform.title()}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CourseError(f"{path} is not a UTF-8 CSV ({exc}): export the roster again as CSV") from None
    rows = [{(k or "").strip(): (v or "") for k, v in r.items()} for r in rows]
    if platform == "canvas":
        missing = [c for c in CANVAS_COLUMNS if c not in header]
        if missing:
            raise CourseError(f"{path} lacks the column {missing[0]!r}: give Canvas's own gradebook export (Grades → Export)")
        rows = [r for r in rows if r["Student"].strip() not in ("Points Possible", "Student, Test") and r["ID"].strip()
                and "muted" not in r["Student"].strip().lower()]
    return header, rows


def _canvas_column(header: list[str], assignment: str) -> str:
    for h in header:
        if h == assignment or (h.startswith(f"{assignment} (") and h.endswith(")") and h[len(assignment) + 2 : -1].isdigit()):
            return h
    return assignment


def _feedback(row: dict, mask_max: float, written_max: float) -> str:
    parts = [f"Masks: {num(row['points'])}/{num(mask_max)} (mean IoU {row['iou']:.3f})"]
    if row["status"] != "ok":
        notes = [n for n in (s.strip() for s in row["reason"].split(";")) if n and not _NOT_FOR_STUDENTS.match(n)]
        if notes:
            parts.append(f"{row['status']}: {'; '.join(notes)}")
    if written_max:
        if row.get("written") is not None:
            comment = f": {row['comment']}" if row.get("comment") else ""
            parts.append(f"Written analysis: {num(row['written'])}/{num(written_max)}{comment}")
        else:
            parts.append("Written analysis: not graded yet")
    return ". ".join(parts)


def export_grades(
    out: str | Path,
    roster: str | Path,
    platform: str,
    *,
    assignment: str = DEFAULT_ASSIGNMENT,
    match: str | None = None,
    mask_max: float = 7,
    written_max: float = 3,
) -> Export:
    """Write `out/<platform>.csv` from `out/gradebook.csv` and the roster, and `out/export-unmatched.csv`; return what happened.

    The grade is the gradebook's `total` when the written part was merged (`grade --manual`),
    else its mask `points`; an empty total (no written points yet) leaves the cell empty.
    """
    if platform not in PLATFORMS:
        raise CourseError(f"--export {platform!r}: choose one of {', '.join(PLATFORMS)}")
    out = Path(out).expanduser()
    book = read_gradebook(out / GRADEBOOK)
    header, people = read_roster(roster, platform)
    column = match or DEFAULT_MATCH[platform]
    if column not in header:
        raise CourseError(f"the roster {roster} has no column {column!r}: choose the identifier column with --match (columns: {', '.join(header)})")
    merged = bool(book) and "total" in book[0]
    result = Export(out / f"{platform}.csv", out / UNMATCHED)
    by_key: dict[str, list[int]] = {}
    for i, person in enumerate(people):
        if person[column].strip():
            by_key.setdefault(_key(person[column]), []).append(i)
    claims: dict[int, list[dict]] = {}
    for row in book:
        student = row["student"]
        hits = by_key.get(_key(student), [])
        if not hits:
            result.problems.append(("folder matches no roster entry", student, f"no {column} equal to it"))
        elif len(hits) > 1:
            result.problems.append(("folder matches several roster entries", student, f"{len(hits)} rows share this {column}"))
        else:
            claims.setdefault(hits[0], []).append(row)
    grades: dict[int, dict] = {}
    for i, rows in claims.items():
        if len(rows) > 1:
            for row in rows:
                result.problems.append(("several folders match one roster entry", row["student"], f"{column} {people[i][column]}"))
        else:
            grades[i] = rows[0]
    for i, person in enumerate(people):
        if i not in claims:
            result.problems.append(("roster entry without a submission", person[column] or person.get("Student", "?"), "grade left empty"))
    for i, row in list(grades.items()):
        if row["status"] == "incomplete":  # the run stopped before this student: no grade rather than 0
            result.problems.append(("not graded (the run was interrupted)", row["student"], "grade left empty: grade the class again"))
            del grades[i]
    value = {i: (row["total"] if merged else row["points"]) for i, row in grades.items()}
    if merged:
        for row in grades.values():
            if row["total"] is None:
                result.problems.append(("no written points yet", row["student"], "grade left empty: merge them with --manual"))
    result.graded = sum(v is not None for v in value.values())
    total_max = mask_max + (written_max if merged else 0)
    if platform == "canvas":
        target = _canvas_column(header, assignment)
        table = [["Points Possible", "", "", "", "", total_max]]
        table += [[*(p[c] for c in CANVAS_COLUMNS), value.get(i)] for i, p in enumerate(people)]
        write_table(result.path, [*CANVAS_COLUMNS, target], table)
    else:
        table = [[people[i][column], value[i], _feedback(grades[i], mask_max, written_max if merged else 0)]
                 for i in sorted(grades) if value[i] is not None]
        write_table(result.path, [column, assignment, f"{assignment} feedback"], table)
    write_table(result.unmatched_path, ["problem", "name", "detail"], result.problems)
    return result
