"""Tests for the instructor's workflow around the grader: profiles, calibration, the relative rubric,
the written part (--manual), platform exports (--export) and duplicate submissions.

Every notebook, roster and class is built by the test itself.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
from grading_helpers import isolated, make_dataset, tree_digest  # noqa: F401 (isolated: autouse fixture)
from PIL import Image

from utils import grading, mads
from utils.errors import CourseError
from utils.grading import calibrate as calibration
from utils.grading.duplicates import NEAR_IDENTICAL, SHARED_ERRORS, mean_iou_packed, min_shared, pack
from utils.profiles import choose_profile

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("lab")
    grading.prepare_lab(make_dataset(base / "mads"), base / "out", seed=0)
    return base / "out"


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


# ------------------------------------------------------------------------------------------ profiles


def test_seg_profile_overrides_smoke_and_hardware_but_not_an_explicit_name(monkeypatch):
    monkeypatch.setenv("SEG_SMOKE", "1")
    assert choose_profile(False).name == "smoke"
    monkeypatch.setenv("SEG_PROFILE", "gpu")
    assert choose_profile(False).name == "gpu"  # SEG_PROFILE wins over SEG_SMOKE and over the hardware
    assert choose_profile(True, "cpu").name == "cpu"  # an explicit name wins over SEG_PROFILE
    monkeypatch.setenv("SEG_PROFILE", "fast")
    with pytest.raises(CourseError, match="SEG_PROFILE") as err:
        choose_profile(False)
    assert "smoke, cpu, gpu" in str(err.value) and "\n" not in str(err.value)


# ------------------------------------------------------------------------------------------ calibrate


CONTRACT_NOTEBOOK = [
    "import json, os, sys\nfrom pathlib import Path\n"
    "here = Path.cwd().resolve()\n"
    "root = next(p for p in (here, *here.parents) if (p / 'utils' / '__init__.py').is_file())\n"
    "sys.path.insert(0, str(root))",
    "from utils import mads\nfrom utils.profiles import choose_profile\n"
    "profile = choose_profile(False)\n"
    "train = mads.list_frames(Path(os.environ['LAB_DIR']) / 'train')\n"
    "test = sorted((Path(os.environ['LAB_DIR']) / 'test' / 'images').glob('*.png'))",
    "report = {'framework': 'keras', 'data': 'package', 'profile': profile.as_dict(),\n"
    "          'frames': {'train': len(train), 'val': 0, 'test': len(test)},\n"
    "          'validation': {'iou': 0.8, 'dice': 0.88}, 'test': {'iou': 0.75 + len(train) / 1000, 'dice': 0.85},\n"
    "          'train_seconds': 1.5, 'best_epoch': 3, 'device': 'CPU'}\n"
    "Path(os.environ['LAB_REPORT']).write_text(json.dumps(report))\n"
    "Path('scratch.txt').write_text('written where the notebook runs')",
]


def write_notebook(path: Path, cells: list[str]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# a tiny solution")] + [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_calibrate_runs_a_contract_notebook_on_the_package_and_records_the_reference(lab, tmp_path):
    notebook = write_notebook(tmp_path / "solution.ipynb", CONTRACT_NOTEBOOK)
    package = lab / "student"
    before = tree_digest(package)
    out = tmp_path / "answers" / "calibration.json"
    done = subprocess.run(
        [sys.executable, "-m", "utils", "lab", "calibrate", "--package", lab, "--notebook", notebook, "--profile", "cpu", "--out", out],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    train_frames = len(list((package / "train" / "images").glob("*.png")))
    reference = 0.75 + train_frames / 1000  # the notebook read LAB_DIR: its score depends on the package
    assert f'held-out ("test") IoU {reference:.4f}' in done.stdout and "validation IoU 0.8000" in done.stdout
    assert "profile cpu" in done.stdout and "device CPU" in done.stdout and "training 2 s" in done.stdout
    record = json.loads(out.read_text(encoding="utf-8"))
    assert record["reference"]["iou"] == pytest.approx(reference) and record["profile"] == "cpu"  # SEG_PROFILE beat SEG_SMOKE
    assert record["framework"] == "keras" and record["package"] == str(package.resolve()) and record["frames"]["test"] == 12
    assert record["run_seconds"] > 0 and record["date"][:2] == "20"
    assert tree_digest(package) == before  # nothing written into the package
    assert calibration.load_reference(out) == (pytest.approx(reference), calibration.load_reference(out)[1])
    assert calibration.load_reference(None, answers=out.parent)[0] == pytest.approx(reference)


def test_calibrate_names_the_failing_cell_a_missing_report_and_a_non_package(lab, tmp_path):
    failing = write_notebook(tmp_path / "failing.ipynb", [CONTRACT_NOTEBOOK[0], "raise ValueError('no model yet')"])
    with pytest.raises(CourseError, match=r"failed in cell 2 \(raise ValueError.*ValueError: no model yet") as err:
        calibration.calibrate(lab / "student", notebook=failing, timeout=120)
    assert "\n" not in str(err.value)
    silent = write_notebook(tmp_path / "silent.ipynb", ["x = 1"])
    with pytest.raises(CourseError, match="wrote no report"):
        calibration.calibrate(lab / "student", notebook=silent, timeout=120)
    with pytest.raises(CourseError, match="not a lab package"):
        calibration.calibrate(tmp_path, notebook=silent)
    with pytest.raises(CourseError, match="does not exist"):
        calibration.calibrate(lab / "student", notebook=tmp_path / "none.ipynb")
    with pytest.raises(CourseError, match="inside the package"):
        calibration.calibrate(lab / "student", notebook=silent, out=lab / "student" / "calibration.json")


# ------------------------------------------------------------------------------------------ rubric


def test_relative_rubric_bands_follow_reference_and_baseline_with_the_floor():
    r, R, B = grading.DEFAULT_RUBRIC, 0.92, 0.25
    assert grading.is_relative(r) and grading.max_points(r) == 7 and grading.written_points(r) == 3
    points = [grading.points_for(x, r, floor=B, reference=R) for x in (1.0, 0.90, 0.899, 0.87, 0.82, 0.81, 0.585, 0.58, 0.26, 0.25, 0.0)]
    assert points == [7, 7, 6, 6, 5, 3, 3, 1, 1, 0, 0]
    resolved = grading.resolve_rubric(r, R, B)
    assert [b.get("at_least", b.get("above")) for b in resolved["bands"]] == [0.9, 0.87, 0.82, 0.585, 0.25]
    text = grading.rubric_text(resolved, B)
    assert "R = 0.920" in text and "B = 0.250" in text and "R − 0.02 = 0.900 → 7" in text and "written" in text
    # the same score earns more where the reference is lower (a CPU-profile class)
    assert grading.points_for(0.83, r, floor=B, reference=0.85) == 7 > grading.points_for(0.83, r, floor=B, reference=0.92)
    # the floor holds even when a relative band would sit below it
    low = {"bands": [{"at_least": {"baseline": 1, "offset": -0.1}, "points": 2}], "otherwise": 0}
    assert grading.points_for(0.2, low, floor=0.25) == 0 and grading.points_for(0.2, {**low, "floor": "none"}, floor=0.25) == 2
    with pytest.raises(CourseError, match="not above the best trivial baseline"):
        grading.resolve_rubric(r, 0.2, 0.25)
    with pytest.raises(CourseError, match="--reference"):
        grading.points_for(0.5, r, floor=B)
    with pytest.raises(CourseError, match="relative threshold"):
        grading.check_rubric({"bands": [{"at_least": {"reference": "R - 0.02"}, "points": 7}]})
    with pytest.raises(CourseError, match="relative threshold"):
        grading.check_rubric({"bands": [{"at_least": {"refrence": 1}, "points": 7}]})
    assert grading.points_for(0.95, grading.ABSOLUTE_EXAMPLE) == 10  # absolute rubrics keep working


def test_reference_from_a_number_a_file_or_the_answers_folder(tmp_path):
    assert calibration.load_reference("0.91")[0] == 0.91 and calibration.load_reference(0.8)[0] == 0.8
    assert calibration.load_reference(None, answers=tmp_path) is None
    (tmp_path / "calibration.json").write_text(json.dumps({"reference": {"iou": 0.88, "dice": 0.93}, "profile": "gpu"}))
    assert calibration.load_reference(None, "dice", tmp_path)[0] == 0.93
    value, where = calibration.load_reference(tmp_path / "calibration.json")
    assert value == 0.88 and "gpu profile" in where
    for bad, match in (("1.5", r"\(0, 1\]"), (tmp_path / "none.json", "cannot read"), (tmp_path / "other.json", "not a calibration JSON")):
        (tmp_path / "other.json").write_text("{}")
        with pytest.raises(CourseError, match=match):
            calibration.load_reference(bad)


def test_grading_with_a_relative_rubric_and_no_reference_is_a_one_line_error(lab, tmp_path):
    subs = tmp_path / "subs"
    shutil.copytree(lab / "answers" / "masks", subs / "alice" / "masks")
    with pytest.raises(CourseError) as err:
        grading.grade_submissions(lab / "answers", subs, tmp_path / "out")
    message = str(err.value)
    assert "--reference" in message and "lab calibrate" in message and "calibration.json" in message and "\n" not in message
    assert not (tmp_path / "out" / "gradebook.csv").exists()
    rows = grading.grade_submissions(lab / "answers", subs, tmp_path / "out", reference=0.9, reports=())
    assert rows[0].points == 7
    used = json.loads((tmp_path / "out" / "rubric.json").read_text(encoding="utf-8"))
    assert used["reference"]["value"] == 0.9 and used["baseline"]["value"] > 0 and used["bands"][0]["at_least"] == 0.88
    assert used["mask_points"] == 7 and used["written_points"] == 3


# ------------------------------------------------------------------------------------------ manual and export


BOOK = [
    grading.GradeRow("Alice.Smith", 0.91, 0.95, 7, "ok", "all 12 test images graded"),
    grading.GradeRow("bob", 0.80, 0.88, 5, "partial", "3 of 12 masks missing (first: x.png); POSSIBLE COPY with carol"),
    grading.GradeRow("José", 0.60, 0.70, 3, "ok", "all 12 test images graded"),
    grading.GradeRow("mallory", 0.10, 0.15, 0, "ok", "all 12 test images graded"),
]


@pytest.fixture
def book(tmp_path) -> Path:
    """A gradebook as `grade` writes it, for four folders."""
    out = tmp_path / "grades"
    out.mkdir()
    grading.write_gradebook(BOOK, out / "gradebook.csv")
    return out


def write_manual(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_manual_points_merge_into_the_gradebook_and_unmatched_rows_are_listed(book, tmp_path):
    import unicodedata

    manual = write_manual(tmp_path / "written.csv", [
        "student,points,comment",
        "Alice.Smith,3,clear evidence and a concrete fix",
        f"{unicodedata.normalize('NFD', 'José')},1.5,=no evidence given",  # NFD from a Mac keyboard still matches
        "bob,2,",
        "Ghost,2,nobody of that name",
    ])
    merged = grading.merge_manual(book, manual, 3)
    assert merged.matched == 3 and merged.unmatched_rows == [(5, "Ghost")] and merged.without_row == ["mallory"]
    assert any("line 5" in line and "Ghost" in line for line in merged.lines())
    table = read_csv(book / "gradebook.csv")
    assert table[0] == ["student", "iou", "dice", "points", "status", "reason", "written", "total", "comment"]
    rows = {r[0]: r for r in table[1:]}
    assert rows["Alice.Smith"][6:] == ["3", "10", "clear evidence and a concrete fix"]
    assert rows["José"][6:] == ["1.5", "4.5", "'=no evidence given"]  # escaped for spreadsheets
    assert rows["mallory"][6:] == ["", "", ""]  # not guessed
    again = grading.read_gradebook(book / "gradebook.csv")
    assert {r["student"]: r["total"] for r in again} == {"Alice.Smith": 10, "bob": 7, "José": 4.5, "mallory": None}


@pytest.mark.parametrize("line, match", [
    ("bob,4,too many", "line 2: points 4 must be between 0 and 3"),
    ("bob,-1,", "line 2: points -1"),
    ("bob,two,", "line 2: points 'two' is not a number"),
    ("bob,2,ok,extra", "line 2: expected student,points,comment"),
])
def test_a_bad_manual_row_names_the_file_and_line(book, tmp_path, line, match):
    manual = write_manual(tmp_path / "written.csv", ["student,points,comment", line])
    before = (book / "gradebook.csv").read_bytes()
    with pytest.raises(CourseError, match=match) as err:
        grading.merge_manual(book, manual, 3)
    assert str(manual) in str(err.value) and "\n" not in str(err.value)
    assert (book / "gradebook.csv").read_bytes() == before
    write_manual(manual, ["name,grade", "bob,2"])
    with pytest.raises(CourseError, match="line 1: the header must be student,points,comment"):
        grading.merge_manual(book, manual, 3)
    write_manual(manual, ["student,points", "bob,2", "bob,3"])
    with pytest.raises(CourseError, match="lines 2 and 3"):
        grading.merge_manual(book, manual, 3)


def canvas_roster(path: Path) -> Path:
    rows = [
        ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Quiz 1 (17)", "Body segmentation lab (4242)", "Current Score"],
        ["    Points Possible", "", "", "", "", "5", "10", "(read only)"],
        ["Smith, Alice", "101", "S101", "alice.smith", "Group A", "4", "", "80"],
        ["Bobson, Bob", "102", "S102", "BOB", "Group A", "5", "", "100"],
        ["Pérez, José", "103", "S103", "josé", "Group B", "3", "", "60"],
        ["Absent, Zed", "104", "S104", "zed", "Group B", "2", "", "40"],
        ["Paused, Pat", "105", "S105", "pat", "Group B", "2", "", "40"],
        ["Student, Test", "999", "", "", "Group A", "", "", ""],
    ]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return path


def test_canvas_export_maps_folders_to_the_roster_and_lists_what_does_not_match(book, tmp_path):
    interrupted = grading.GradeRow("Pat", 0.0, 0.0, 0, "incomplete", "run interrupted before this student was graded")
    grading.write_gradebook([*BOOK, interrupted], book / "gradebook.csv")
    grading.merge_manual(book, write_manual(tmp_path / "w.csv", ["student,points,comment", "Alice.Smith,3,good", "bob,1,thin"]), 3)
    done = grading.export_grades(book, canvas_roster(tmp_path / "roster.csv"), "canvas", mask_max=7, written_max=3)
    table = read_csv(book / "canvas.csv")
    assert table[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Body segmentation lab (4242)"]  # the id kept
    assert table[1][0] == "Points Possible" and table[1][5] == "10"
    grades = {r[3]: r[5] for r in table[2:]}
    assert grades == {"alice.smith": "10", "BOB": "6", "josé": "", "zed": "", "pat": ""}  # 'Alice.Smith' matched ignoring case
    assert [r[:3] for r in table[2:4]] == [["Smith, Alice", "101", "S101"], ["Bobson, Bob", "102", "S102"]]
    problems = {(p, n) for p, n, _ in done.problems}
    assert ("folder matches no roster entry", "mallory") in problems
    assert ("roster entry without a submission", "zed") in problems
    assert ("not graded (the run was interrupted)", "Pat") in problems  # an interrupted run never exports a 0
    assert ("no written points yet", "José") in problems  # José's mask points are not posted without the written part
    listed = read_csv(book / "export-unmatched.csv")
    assert listed[0] == ["problem", "name", "detail"] and {tuple(r[:2]) for r in listed[1:]} == problems
    assert done.graded == 2 and any("mallory" in line for line in done.lines())


def test_moodle_export_writes_identifier_grade_and_feedback(book, tmp_path):
    roster = tmp_path / "moodle.csv"
    with open(roster, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([
            ["First name", "Last name", "ID number", "Institution", "Department", "Email address"],
            ["Alice", "Smith", "Alice.Smith", "", "", "alice@example.edu"],
            ["Bob", "Bobson", "bob", "", "", "bob@example.edu"],
            ["Bob", "Twin", "BOB", "", "", "bob2@example.edu"],  # two roster rows claim the folder `bob`
            ["Zed", "Absent", "zed", "", "", "zed@example.edu"],
        ])
    done = grading.export_grades(book, roster, "moodle", match="ID number", assignment="Lab 1", mask_max=7, written_max=3)
    table = read_csv(book / "moodle.csv")
    assert table[0] == ["ID number", "Lab 1", "Lab 1 feedback"]
    assert [r[:2] for r in table[1:]] == [["Alice.Smith", "7"]]  # no written part merged: the mask points
    assert table[1][2].startswith("Masks: 7/7 (mean IoU 0.910)")
    problems = {(p, n) for p, n, _ in done.problems}
    assert ("folder matches several roster entries", "bob") in problems and ("roster entry without a submission", "zed") in problems
    assert ("folder matches no roster entry", "José") in problems and ("folder matches no roster entry", "mallory") in problems
    with pytest.raises(CourseError, match="no column 'Email'"):
        grading.export_grades(book, roster, "moodle", match="Email")
    with pytest.raises(CourseError, match="lacks the column 'Student'"):
        grading.export_grades(book, roster, "canvas")


def test_moodle_feedback_carries_the_written_comment_but_not_copy_flags(book, tmp_path):
    grading.merge_manual(book, write_manual(tmp_path / "w.csv", ["student,points,comment", "bob,2,name the failing limb"]), 3)
    roster = tmp_path / "moodle.csv"
    roster.write_text("Email address,ID number\nbob,77\n", encoding="utf-8")
    grading.export_grades(book, roster, "moodle", mask_max=7, written_max=3)
    (row,) = read_csv(book / "moodle.csv")[1:]
    assert row[:2] == ["bob", "7"]
    assert "partial: 3 of 12 masks missing" in row[2] and "Written analysis: 2/3: name the failing limb" in row[2]
    assert "COPY" not in row[2]


# ------------------------------------------------------------------------------------------ duplicates


def _save(masks: dict[str, np.ndarray], folder: Path) -> None:
    folder.mkdir(parents=True)
    for name, mask in masks.items():
        Image.fromarray(mask.astype(np.uint8) * 255).save(folder / name, optimize=True)


@pytest.fixture(scope="module")
def duplicate_class(lab, tmp_path_factory):
    base = tmp_path_factory.mktemp("dups")
    subs = base / "subs"
    truth = {p.name: mads.read_mask(p) for p in sorted((lab / "answers" / "masks").glob("*.png"))}
    alice = {n: np.roll(m, 1, axis=1) for n, m in truth.items()}  # honest, slightly off
    _save(alice, subs / "alice" / "masks")
    shutil.copytree(subs / "alice", subs / "carol")  # the same files
    rng = np.random.default_rng(0)
    dave = {}
    for n, m in alice.items():  # alice's masks with two pixels changed each, saved again
        m = m.copy()
        ys, xs = np.nonzero(m)
        pick = rng.choice(len(ys), 2, replace=False)
        m[ys[pick], xs[pick]] = 0
        dave[n] = m
    _save(dave, subs / "dave" / "masks")
    erin = {n: np.maximum(m, np.roll(m, -1, axis=1)) | np.roll(m, -2, axis=1) for n, m in truth.items()}  # honest, different
    _save(erin, subs / "erin" / "masks")
    strong = {}
    for student, which in (("kim", 0), ("lee", -1)):  # two near-perfect students, each missing a different pixel
        strong[student] = {}
        for n, m in truth.items():
            m = m.copy()
            ys, xs = np.nonzero(m)
            m[ys[which], xs[which]] = 0
            strong[student][n] = m
        _save(strong[student], subs / student / "masks")
    person = {n: np.ones_like(m) for n, m in truth.items()}
    _save(person, subs / "frank" / "masks")
    shutil.copytree(subs / "frank", subs / "gina")  # the same all-person files: a baseline, not a copy
    with Image.open(lab / "answers" / "baselines" / "starter_cpu.png") as s:
        starter = np.asarray(s) > 0
    shape = next(iter(truth.values())).shape
    _save({n: mads.resize_mask(starter, shape) for n in truth}, subs / "hank" / "masks")
    shutil.copytree(subs / "hank", subs / "ivy")  # both handed in the unmodified starter
    out = base / "grades"
    rows = grading.grade_submissions(lab / "answers", subs, out, reference=0.9, reports=())
    return {r.student: r for r in rows}, out, strong, truth


def test_identical_and_near_identical_pairs_are_flagged_in_both_rows_and_listed(duplicate_class):
    rows, out = duplicate_class[:2]
    for student, others in (("alice", ("carol", "dave")), ("carol", ("alice", "dave")), ("dave", ("alice", "carol"))):
        assert "POSSIBLE COPY" in rows[student].reason and all(o in rows[student].reason for o in others), student
    table = read_csv(out / "duplicates.csv")
    assert table[0] == ["student_a", "student_b", "checks", "identical_files", "test_images", "mean_iou_between", "shared_errors"]
    pairs = {(r[0], r[1]): r for r in table[1:]}
    assert set(pairs) == {("alice", "carol"), ("alice", "dave"), ("carol", "dave")}
    assert pairs["alice", "carol"][2] == "identical files; near-identical masks" and pairs["alice", "carol"][3] == "12"
    assert pairs["alice", "dave"][2] == "near-identical masks" and pairs["alice", "dave"][3] == "0"
    assert NEAR_IDENTICAL <= float(pairs["alice", "dave"][5]) < 1.0 and SHARED_ERRORS <= float(pairs["alice", "dave"][6]) < 1.0
    assert min_shared(12) == 3


def test_honest_and_baseline_submissions_are_not_flagged(duplicate_class):
    rows, _, strong, truth = duplicate_class
    assert rows["erin"].points > 0
    names = sorted(truth)
    # kim and lee agree closely because both are nearly right, but they share none of their mistakes
    assert mean_iou_packed(pack(strong["kim"], names), pack(strong["lee"], names)) >= NEAR_IDENTICAL
    for student in ("erin", "frank", "gina", "hank", "ivy", "kim", "lee"):
        assert "COPY" not in rows[student].reason, (student, rows[student].reason)
    assert rows["hank"].points == rows["frank"].points == 0


# ------------------------------------------------------------------------------------------ command line


def test_command_line_grade_then_manual_and_export_without_grading_again(lab, tmp_path):
    subs = tmp_path / "subs"
    shutil.copytree(lab / "answers" / "masks", subs / "alice.smith" / "masks")

    def run(*args):
        return subprocess.run([sys.executable, "-m", "utils", "grade", "--out", tmp_path / "grades", *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)

    missing = run("--answers", lab / "answers", "--submissions", subs, "--reports", "none")
    errors = [line for line in missing.stderr.splitlines() if line.startswith("error:")]
    assert missing.returncode == 2 and len(errors) == 1 and "--reference" in errors[0] and "lab calibrate" in errors[0]
    graded = run("--answers", lab / "answers", "--submissions", subs, "--reports", "none", "--reference", "0.9")
    assert graded.returncode == 0, graded.stderr[-2000:]
    assert "R = 0.900" in graded.stderr and (tmp_path / "grades" / "duplicates.csv").is_file()
    manual = write_manual(tmp_path / "written.csv", ["student,points,comment", "alice.smith,2.5,good"])
    roster = canvas_roster(tmp_path / "roster.csv")
    again = run("--gradebook-only", "--manual", manual, "--export", "canvas", "--roster", roster)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "written part merged for 1 student(s)" in again.stdout and "roster entry without a submission: zed" in again.stdout
    exported = read_csv(tmp_path / "grades" / "canvas.csv")
    assert exported[1][0] == "Points Possible" and exported[1][5] == "10"  # 7 + 3, from grades/rubric.json
    grades = {r[3]: r[5] for r in exported[2:]}
    assert grades["alice.smith"] == "9.5"
    alone = run("--gradebook-only")
    assert alone.returncode == 2 and "does nothing alone" in alone.stderr
    no_roster = run("--gradebook-only", "--export", "moodle")
    assert no_roster.returncode == 2 and "--roster" in no_roster.stderr
