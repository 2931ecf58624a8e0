"""Tests for utils.grading: preparing the lab, the rubric and its baselines, and grading a class of masks.

Every hostile or careless submission is built by the test itself (no binary blobs are committed).
Models and the isolated runner are tested in test_grading_models.py.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from grading_helpers import INNER, H, W, isolated, make_dataset, png_bytes, tree_digest  # noqa: F401 (isolated: autouse fixture)
from PIL import Image

from utils import grading
from utils.errors import CourseError
from utils.grading import gradebook as gradebook_module
from utils.grading import grader as grader_module


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("lab")
    data = make_dataset(base / "mads")
    grading.prepare_lab(data, base / "out", seed=0)
    # the default rubric is relative to a reference IoU: this class's "calibration" says 0.9
    (base / "out" / "answers" / "calibration.json").write_text(json.dumps({"reference": {"iou": 0.9, "dice": 0.94}}), encoding="utf-8")
    return base / "out"


def names_of(lab: Path) -> list[str]:
    return sorted(p.name for p in (lab / "answers" / "masks").iterdir())


# ------------------------------------------------------------------------------------------ prepare


def test_prepare_lab_layout_split_hashes_and_baselines(tmp_path):
    data = make_dataset(tmp_path / "mads")
    summary = grading.prepare_lab(data / INNER, tmp_path / "out")
    out = tmp_path / "out"
    names = lambda sub: sorted(p.name for p in (out / sub).iterdir())  # noqa: E731
    assert names("student/train/images") == names("student/train/masks")
    assert names("student/test/images") == names("answers/images") == names("answers/masks")
    assert not (out / "student" / "test" / "masks").exists()
    assert summary["train_frames"] + summary["test_frames"] == 48
    group = lambda n: "_".join(n.split("_")[:2])  # noqa: E731
    train_seq = {group(n) for n in names("student/train/images")}
    test_seq = {group(n) for n in names("student/test/images")}
    assert train_seq and test_seq and not train_seq & test_seq
    source = data / INNER / INNER
    first = names("answers/images")[0]
    assert (out / "answers/images" / first).read_bytes() == (source / "images" / first).read_bytes()
    with Image.open(out / "answers/masks" / first) as m:
        assert m.mode == "L" and set(np.unique(np.asarray(m))) == {0, 255}
    manifest = json.loads((out / "answers" / "manifest.json").read_text())["files"]
    assert f"masks/{first}" in manifest and "split.json" in manifest and len(manifest[f"masks/{first}"]) == 64
    starters = names("answers/baselines")
    assert "starter_smoke.png" in starters and "starter_cpu.png" in starters
    with Image.open(out / "answers/baselines/starter_cpu.png") as m:
        assert m.size == (128, 128) and 0 < (np.asarray(m) > 0).mean() < 1
    again = grading.prepare_lab(data, tmp_path / "out2")  # deterministic
    assert again["test_sequences"] == summary["test_sequences"]


def test_prepare_lab_refuses_a_non_empty_folder(tmp_path):
    data = make_dataset(tmp_path / "mads")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(CourseError, match="not empty") as err:
        grading.prepare_lab(data, out)
    assert "\n" not in str(err.value)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_starter_baseline_matches_what_the_unmodified_starter_submits(lab):
    """The starter notebook's BASELINE cell, replayed on the package: its mask is the recorded one."""
    from utils import mads

    data = mads.load_mads(lab / "student" / "train", size=64, limit=24, cache=False, progress=False)
    split = mads.split_by_sequence(data, fractions=(0.7, 0.1, 0.2), seed=0)
    y_train = data.masks[split["train"]]
    prior = y_train.mean(axis=0)
    prior_mask = (prior > np.quantile(prior, 1 - y_train.mean())).astype(np.uint8)
    recorded = grading.starter_masks(lab / "student" / "train")["smoke"]
    assert np.array_equal(recorded, prior_mask)


# ------------------------------------------------------------------------------------------ rubric


def test_rubric_points_floor_and_file(tmp_path):
    r = grading.ABSOLUTE_EXAMPLE
    assert [grading.points_for(x, r) for x in (1.0, 0.9, 0.89, 0.85, 0.8, 0.7, 0.5, 0.3, 1e-6, 0.0)] == [
        10, 10, 9, 9, 8, 6, 4, 2, 2, 0,
    ]
    assert grading.points_for(0.2, r, floor=0.25) == 0 and grading.points_for(0.25, r, floor=0.25) == 0
    assert grading.points_for(0.26, r, floor=0.25) == 2
    assert grading.points_for(0.2, {**r, "floor": "none"}, floor=0.25) == 2
    assert "best trivial baseline" in grading.rubric_text(r, 0.25)
    path = tmp_path / "rubric.json"
    path.write_text(json.dumps({"bands": [{"at_least": 0.5, "points": 1}]}), encoding="utf-8")
    custom = grading.load_rubric(path)
    assert grading.points_for(0.6, custom) == 1 and grading.points_for(0.4, custom) == 0
    path.write_text('{"bands": [{"points": 3}]}', encoding="utf-8")
    with pytest.raises(CourseError, match="band 1"):
        grading.load_rubric(path)
    path.write_text('{"bands": [{"above": 0, "points": 3}], "floor": "maybe"}', encoding="utf-8")
    with pytest.raises(CourseError, match="floor"):
        grading.load_rubric(path)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(CourseError, match="not valid JSON"):
        grading.load_rubric(path)


# ------------------------------------------------------------------------------------------ names


def test_names_are_visible_normalised_and_escaped():
    assert grading.display_name(b"caf\xe9") == "caf\\xe9"  # Latin-1 bytes from a Windows zip
    nfd = unicodedata.normalize("NFD", "José")
    assert grading.display_name(nfd) == "José" == grading.display_name("José")
    assert grading.display_name("evil\u202egnp.exe") == "evil\\u202egnp.exe"
    assert grading.display_name("a\\x41") == "a\\\\x41"  # a literal backslash never looks like an escape
    assert grading.display_name("tab\there") == "tab\\u0009here"
    for formula in ("=HYPERLINK(\"http://x\",\"y\")", "@SUM(A1)", "+1", "-1", "\tcmd", " =1+1"):
        assert grading.csv_cell(formula).startswith("'")
    assert grading.csv_cell("alice") == "alice"
    shown = grading.markdown_text("<img src=x onerror=alert(1)> [link](http://x)")
    assert "<" not in shown and "](" not in shown


# ------------------------------------------------------------------------------------------ masks


def test_mask_decoding_bit_depths_modes_and_bombs():
    mask = np.zeros((H, W), np.uint8)
    mask[5:20, 10:30] = 1
    expected = (H, W)
    for array, mode in ((mask * 255, "L"), (mask, "L"), (mask.astype(np.uint16) * 255, "I;16"), (mask.astype(np.uint16) * 65535, "I;16"),
                        (np.dstack([mask * 255] * 3), "RGB"), (np.dstack([mask * 255] * 3 + [np.full_like(mask, 255)]), "RGBA"),
                        (np.dstack([np.zeros_like(mask)] * 3 + [mask * 255]), "RGBA")):
        assert np.array_equal(grading.decode_mask(png_bytes(array, mode), expected), mask), mode
    palette = Image.fromarray(mask, "P")
    palette.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    import io

    buf = io.BytesIO()
    palette.save(buf, format="PNG")
    assert np.array_equal(grading.decode_mask(buf.getvalue(), expected), mask)
    bit = io.BytesIO()
    Image.fromarray(mask.astype(bool)).save(bit, format="PNG")
    assert np.array_equal(grading.decode_mask(bit.getvalue(), expected), mask)
    with pytest.raises(grading.MaskRefused, match="not a PNG"):
        grading.decode_mask(b"GIF89a....", expected)
    with pytest.raises(grading.MaskRefused, match="is 10x10, expected 48x32"):
        grading.decode_mask(png_bytes(np.zeros((10, 10), np.uint8)), expected)
    # a decompression bomb: 13,300 x 13,300 declared; refused from the header, before decoding a pixel
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", 13300, 13300, 16, 6, 0, 0, 0)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))  # noqa: E731
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100000, 9)) + chunk(b"IEND", b"")
    with pytest.raises(grading.MaskRefused, match="13300x13300"):
        grading.decode_mask(bomb, expected)
    rgb16 = struct.pack(">IIBBBBB", W, H, 16, 2, 0, 0, 0)
    with pytest.raises(grading.MaskRefused, match="16-bit RGB"):
        grading.decode_mask(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", rgb16) + chunk(b"IEND", b""), expected)


# ------------------------------------------------------------------------------------------ a class


def _copy_masks(lab: Path, dest: Path, names: list[str]) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for n in names:
        shutil.copy(lab / "answers" / "masks" / n, dest / n)
    return dest


@pytest.fixture(scope="module")
def graded(lab, tmp_path_factory):
    """A class of careless and hostile mask submissions, graded once."""
    base = tmp_path_factory.mktemp("class")
    subs = base / "subs"
    subs.mkdir()
    names = names_of(lab)
    assert len(names) >= 12
    shutil.copytree(lab / "answers" / "masks", subs / "perfect" / "masks")
    (subs / "empty").mkdir()
    _copy_masks(lab, subs / "partial" / "masks", names[: len(names) // 2])
    d = _copy_masks(lab, subs / "wrongsize" / "masks", names)
    Image.fromarray(np.full((10, 10), 255, np.uint8)).save(d / names[0])
    d = _copy_masks(lab, subs / "oversized" / "masks", names)  # one huge PNG costs one image only
    Image.fromarray(np.zeros((3000, 3000), np.uint8)).save(d / names[1])
    d = _copy_masks(lab, subs / "notpng" / "masks", names)
    (d / names[1]).write_text("this is not an image", encoding="utf-8")
    d = (subs / "misnamed" / "masks")
    d.mkdir(parents=True)
    for i, n in enumerate(names):
        shutil.copy(lab / "answers" / "masks" / n, d / f"frame_{i:03d}.png")
    for student, convert in (("zeroone", lambda a: (a > 0).astype(np.uint8)), ("sixteen", lambda a: (a > 0).astype(np.uint16) * 255)):
        d = subs / student / "masks"
        d.mkdir(parents=True)
        for n in names:
            with Image.open(lab / "answers" / "masks" / n) as m:
                arr = convert(np.asarray(m))
            Image.fromarray(arr).save(d / n)
    d = _copy_masks(lab, subs / "casecollide" / "masks", names)
    shutil.copy(d / names[0], d / (names[0][:-4] + ".PNG"))
    d = _copy_masks(lab, subs / "hardlink" / "masks", names[1:])
    os.link(lab / "answers" / "masks" / names[0], d / names[0])  # the answer itself, hard-linked
    d = _copy_masks(lab, subs / "symlink" / "masks", names[1:])
    (d / names[0]).symlink_to(lab / "answers" / "masks" / names[0])
    d = _copy_masks(lab, subs / "oddfile" / "masks", names)  # a stray mask whose name is not UTF-8
    with open(os.path.join(os.fsencode(d), b"caf\xe9.png"), "wb") as fh:
        fh.write((d / names[0]).read_bytes())
    (subs / "linkedfolder").symlink_to(subs / "perfect")
    (subs / "stray.txt").write_text("not a folder", encoding="utf-8")
    shutil.copytree(lab / "answers" / "masks", subs / ".hidden" / "masks")
    (subs / "__MACOSX").mkdir()
    shutil.copytree(lab / "answers" / "masks", subs / os.fsdecode(b"caf\xe9") / "masks")  # not UTF-8
    shutil.copytree(lab / "answers" / "masks", subs / unicodedata.normalize("NFC", "José") / "masks")
    shutil.copytree(lab / "answers" / "masks", subs / unicodedata.normalize("NFD", "José") / "masks")
    (subs / "=HYPERLINK(\"http:__x\",\"y\")").mkdir()
    (subs / "<b>bold<_b>").mkdir()
    (subs / "right\u202eto-left").mkdir()
    d = subs / "allperson" / "masks"
    d.mkdir(parents=True)
    for n in names:
        Image.fromarray(np.full((H, W), 255, np.uint8)).save(d / n)
    before = tree_digest(base)
    ans_before = tree_digest(lab)
    out = base / "grades"
    rows = grading.grade_submissions(lab / "answers", subs, out, jobs=2)
    return {"rows": {r.student: r for r in rows}, "list": rows, "subs": subs, "out": out, "base": base,
            "before": before, "ans_before": ans_before, "lab": lab}


def test_one_row_per_entry_whatever_its_name(graded):
    rows, subs = graded["rows"], graded["subs"]
    entries = sorted(os.listdir(os.fsencode(subs)))
    assert len(graded["list"]) == len(entries)
    assert {"linkedfolder", "stray.txt", ".hidden", "__MACOSX", "caf\\xe9"} <= set(rows)
    assert rows["linkedfolder"].status == "error" and "link" in rows["linkedfolder"].reason
    assert rows["stray.txt"].status == "error" and "not a folder" in rows["stray.txt"].reason
    assert rows[".hidden"].points == 7 and rows["caf\\xe9"].points == 7
    assert rows["oddfile"].iou == 1.0 and "caf\\xe9.png" in rows["oddfile"].reason
    assert "right\\u202eto-left" in rows
    josé = [r for r in graded["list"] if r.student == "José"]
    assert len(josé) == 2 and all("DUPLICATE NAME" in r.reason for r in josé)


def test_gradebook_is_escaped_and_complete(graded):
    out = graded["out"]
    assert not (out / "gradebook.in-progress.csv").exists()
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as fh:
        body = list(csv.reader(fh))
    assert body[0] == ["student", "iou", "dice", "points", "status", "reason"]
    assert len(body) - 1 == len(graded["list"])
    assert all(not cell.startswith(("=", "+", "-", "@")) for line in body for cell in line)
    assert any(line[0] == "'=HYPERLINK(\"http:__x\",\"y\")" for line in body)
    assert all(line[4] in ("ok", "partial", "error") for line in body[1:])


def test_scores_statuses_and_reasons(graded):
    rows = graded["rows"]
    perfect, partial, empty = rows["perfect"], rows["partial"], rows["empty"]
    assert (perfect.iou, perfect.dice, perfect.points, perfect.status) == (1.0, 1.0, 7, "ok")
    assert perfect.iou > partial.iou > empty.iou == 0.0
    assert partial.status == "partial" and "masks missing" in partial.reason and 0.4 < partial.iou < 0.6
    assert empty.status == "error" and "empty submission" in empty.reason
    assert rows["misnamed"].status == "error" and "match no test image" in rows["misnamed"].reason
    assert rows["zeroone"].iou == 1.0 and rows["sixteen"].iou == 1.0 and rows["sixteen"].status == "ok"
    wrong, oversized, notpng = rows["wrongsize"], rows["oversized"], rows["notpng"]
    assert wrong.status == "partial" and "is 10x10, expected 48x32" in wrong.reason and 0.85 < wrong.iou < 1.0
    assert oversized.status == "partial" and "3000x3000" in oversized.reason and 0.85 < oversized.iou < 1.0
    assert notpng.status == "partial" and "not a PNG" in notpng.reason and 0.85 < notpng.iou < 1.0
    collide = rows["casecollide"]
    assert collide.status == "partial" and "collide when case is ignored" in collide.reason and collide.iou < 1.0


def test_links_to_the_answers_score_nothing(graded):
    rows = graded["rows"]
    for student in ("hardlink", "symlink"):
        assert rows[student].status == "partial" and rows[student].iou < 1.0
    assert "hard links" in rows["hardlink"].reason and "link" in rows["symlink"].reason


def test_trivial_baselines_earn_nothing(graded, lab):
    rows = graded["rows"]
    baselines = grading.baseline_scores(grading.Answers(lab / "answers"))
    assert {"all background", "all person", "unmodified starter (cpu profile)"} <= set(baselines)
    assert rows["allperson"].iou == pytest.approx(baselines["all person"]["iou"], abs=1e-6)
    assert rows["allperson"].iou > 0 and rows["allperson"].points == 0
    assert "trivial baseline" in rows["allperson"].reason


def test_nothing_outside_out_changes(graded):
    assert tree_digest(graded["base"], skip=graded["out"]) == graded["before"]
    assert tree_digest(graded["lab"]) == graded["ans_before"]


def test_reports_escape_names_and_feedback_hides_the_truth(graded):
    out = graded["out"]
    instructor = sorted((out / "reports").glob("*.md"))
    feedback = sorted((out / "feedback").glob("*.md"))
    assert len(instructor) == len(feedback) == len(graded["list"])
    assert all(p.name.isascii() and "/" not in p.stem for p in instructor)
    bold = next(p for p in feedback if p.name.startswith("b_bold"))
    assert "<b>" not in bold.read_text(encoding="utf-8") and "&lt;b&gt;" in bold.read_text(encoding="utf-8")
    perfect = (out / "feedback" / "perfect.md").read_text(encoding="utf-8")
    assert "1.0000" in perfect and "7 / 7" in perfect and "R = 0\\.900" in perfect
    assert "truth" not in perfect.lower() and "IoU |" not in perfect  # no per-image table, no true masks
    assert "truth" in (out / "reports" / "perfect.md").read_text(encoding="utf-8")
    assert (out / "feedback" / "perfect.png").stat().st_size > 1000


def test_instructor_mistakes_are_one_line_errors(lab, tmp_path):
    subs = tmp_path / "subs"
    shutil.copytree(lab / "answers" / "masks", subs / "alice" / "masks")
    (tmp_path / "file.txt").write_text("x", encoding="utf-8")
    for out, match in ((tmp_path / "file.txt", "is a file"), (lab / "answers" / "grades", "inside the answers"),
                       (subs / "grades", "inside the submissions")):
        with pytest.raises(CourseError, match=match) as err:
            grading.grade_submissions(lab / "answers", subs, out)
        assert "\n" not in str(err.value)
    assert not (lab / "answers" / "grades").exists() and not (subs / "grades").exists()
    answers = tmp_path / "answers"
    shutil.copytree(lab / "answers", answers)
    first = sorted((answers / "masks").iterdir())[0]
    Image.fromarray(np.zeros((H, W), np.uint8)).save(first)  # tampered with after `lab prepare`
    with pytest.raises(CourseError, match="answers changed since `lab prepare`"):
        grading.grade_submissions(answers, subs, tmp_path / "out")


def test_interrupted_run_keeps_finished_rows_and_says_so(lab, tmp_path, monkeypatch):
    subs = tmp_path / "subs"
    for student in ("alice", "bob", "carol", "dave"):
        shutil.copytree(lab / "answers" / "masks", subs / student / "masks")
    real = grader_module._grade_entry

    def stop_at_carol(entry, ctx):
        if entry.shown == "carol":  # the instructor's `kill` arrives while carol is being graded
            os.kill(os.getpid(), signal.SIGTERM)
            ctx.cancel.wait(10)  # the grader sets it as soon as the signal reaches it
        return real(entry, ctx)

    monkeypatch.setattr(grader_module, "_grade_entry", stop_at_carol)
    with pytest.raises(KeyboardInterrupt):
        grading.grade_submissions(lab / "answers", subs, tmp_path / "out", jobs=1)
    rows = grading.read_gradebook(tmp_path / "out" / "gradebook.csv")
    status = {r["student"]: r["status"] for r in rows}
    assert status["alice"] == status["bob"] == "ok"
    assert status["dave"] == "incomplete" and status["carol"] in ("ok", "incomplete")  # carol may finish while stopping
    assert (tmp_path / "out" / gradebook_module.IN_PROGRESS).exists()
    with open(tmp_path / "out" / gradebook_module.IN_PROGRESS, encoding="utf-8") as fh:
        flushed = fh.read().splitlines()
    assert flushed[0].startswith("student,") and {"alice", "bob"} <= {line.split(",")[0] for line in flushed[1:]}
    assert "dave" not in {line.split(",")[0] for line in flushed[1:]}


def test_one_failing_student_does_not_stop_the_batch(lab, tmp_path, monkeypatch):
    subs = tmp_path / "subs"
    for student in ("alice", "bob"):
        shutil.copytree(lab / "answers" / "masks", subs / student / "masks")
    real = grader_module._grade_folder

    def flaky(entry, fd, ctx):
        if entry.shown == "alice":
            raise RuntimeError("disk on fire")
        return real(entry, fd, ctx)

    monkeypatch.setattr(grader_module, "_grade_folder", flaky)
    rows = grading.grade_submissions(lab / "answers", subs, tmp_path / "out", rubric={"bands": [{"at_least": 0.99, "points": 5}]})
    assert [(r.student, r.status) for r in rows] == [("alice", "error"), ("bob", "ok")]
    assert "disk on fire" in rows[0].reason and rows[1].points == 5


def test_write_submission_round_trip(lab, tmp_path):
    images = sorted((lab / "student" / "test" / "images").glob("*.png"))
    dest = grading.write_submission(tmp_path / "subs" / "sub", images, lambda x: (x.mean(axis=-1) > 150).astype(np.uint8), size=16)
    assert grading.submission_summary(dest) == {"folder": str(dest), "masks": len(images), "model": False}
    rows = grading.grade_submissions(lab / "answers", tmp_path / "subs", tmp_path / "grades")
    assert rows[0].student == "sub" and rows[0].status == "ok" and rows[0].iou > 0.5
    (dest / "model.keras").write_bytes(b"stale")
    with pytest.raises(CourseError, match="overwrite=True"):
        grading.write_submission(dest, images[:2], lambda x: np.zeros(x.shape[:3], np.uint8), size=16)
    grading.write_submission(dest, images[:2], lambda x: np.zeros(x.shape[:3], np.uint8), size=16, overwrite=True)
    assert grading.submission_summary(dest) == {"folder": str(dest), "masks": 2, "model": False}


def test_command_line_grade_options_and_one_line_errors(lab, tmp_path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    subs = tmp_path / "subs"
    shutil.copytree(lab / "answers" / "masks", subs / "alice" / "masks")
    (tmp_path / "file.txt").write_text("x", encoding="utf-8")

    def run(*args):
        return subprocess.run([sys.executable, "-m", "utils", "grade", "--answers", lab / "answers", "--submissions", subs, *args],
                              cwd=root, capture_output=True, text=True, timeout=300)

    bad = run("--out", tmp_path / "file.txt")
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error:")]
    assert bad.returncode == 2 and len(errors) == 1 and "is a file" in errors[0] and "Traceback" not in bad.stderr
    good = run("--out", tmp_path / "grades", "--jobs", "1", "--timeout", "60", "--memory", "2048", "--reports", "feedback")
    assert good.returncode == 0, good.stderr[-2000:]
    assert "1 ok" in good.stdout and (tmp_path / "grades" / "feedback" / "alice.md").is_file()
    assert not (tmp_path / "grades" / "reports").exists()
