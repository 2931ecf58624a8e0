"""Tests for utils.grading: preparing the lab, and grading a class of good, partial and hostile submissions."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from utils import grading, mads
from utils.errors import CourseError

INNER = mads.INNER
W, H = 48, 32


def make_dataset(root: Path) -> Path:
    """Write a tiny MADS in the Kaggle layout (8 sequences, RGBA masks) under root; return root."""
    rng = np.random.default_rng(1)
    inner = root / INNER / INNER
    (inner / "images").mkdir(parents=True)
    (inner / "masks").mkdir()
    rows = []
    for style in ("HipHop", "Jazz", "Kata", "Sports"):
        for seq in (1, 2):
            for cam in ("C0", "C1"):
                for frame in (30, 60, 90):
                    name = f"{style}_{style}{seq}_{cam}_{frame:05d}.png"
                    image = rng.integers(0, 90, (H, W, 3), dtype=np.uint8)
                    mask = np.zeros((H, W), np.uint8)
                    top, left = int(rng.integers(2, 10)), int(rng.integers(2, 30))
                    mask[top : top + 16 + frame // 30, left : left + 10] = 255
                    image[mask > 0] = (230, 190, 170)
                    Image.fromarray(image).save(inner / "images" / name)
                    rgba = np.dstack([mask, mask, mask, np.full_like(mask, 255)])
                    Image.fromarray(rgba, "RGBA").save(inner / "masks" / name)
                    rows.append(f"images/{name},masks/{name}")
    (root / "df.csv").write_text("images,masks\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return root


def digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("SEG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kagglehub"))
    monkeypatch.setenv("SEG_OFFLINE", "1")
    monkeypatch.delenv("MADS_DIR", raising=False)


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("lab")
    data = make_dataset(base / "mads")
    grading.prepare_lab(data, base / "out", seed=0)
    return base / "out"


# ------------------------------------------------------------------------------------------ prepare


def test_prepare_lab_layout_split_and_copies(tmp_path):
    data = make_dataset(tmp_path / "mads")
    summary = grading.prepare_lab(data / INNER, tmp_path / "out")
    out = tmp_path / "out"
    names = lambda sub: sorted(p.name for p in (out / sub).iterdir())  # noqa: E731
    assert names("student/train/images") == names("student/train/masks")
    assert names("student/test/images") == names("answers/images") == names("answers/masks")
    assert not (out / "student" / "test" / "masks").exists()
    assert summary["train_frames"] + summary["test_frames"] == 48
    assert summary["train_frames"] == len(names("student/train/images")) and summary["test_frames"] > 0
    group = lambda n: "_".join(n.split("_")[:2])  # noqa: E731
    train_seq = {group(n) for n in names("student/train/images")}
    test_seq = {group(n) for n in names("student/test/images")}
    assert train_seq and test_seq and not train_seq & test_seq
    assert set(summary["test_sequences"]) == test_seq
    source = data / INNER / INNER
    first = names("answers/images")[0]
    assert (out / "answers/images" / first).read_bytes() == (source / "images" / first).read_bytes()
    with Image.open(out / "answers/masks" / first) as m:
        assert m.mode == "L" and set(np.unique(np.asarray(m))) == {0, 255}
    assert json.loads((out / "answers" / "split.json").read_text())["test_sequences"] == sorted(test_seq)
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
    (tmp_path / "empty").mkdir()
    grading.prepare_lab(data, tmp_path / "empty")  # an empty folder is fine
    assert (tmp_path / "empty" / "answers" / "masks").is_dir()


# ------------------------------------------------------------------------------------------ rubric


def test_rubric_points_and_file(tmp_path):
    r = grading.DEFAULT_RUBRIC
    assert [grading.points_for(x, r) for x in (1.0, 0.9, 0.89, 0.85, 0.8, 0.7, 0.5, 0.3, 1e-6, 0.0)] == [
        10, 10, 9, 9, 8, 6, 4, 2, 2, 0,
    ]
    path = tmp_path / "rubric.json"
    path.write_text(json.dumps({"bands": [{"at_least": 0.5, "points": 1}]}), encoding="utf-8")
    custom = grading.load_rubric(path)
    assert grading.points_for(0.6, custom) == 1 and grading.points_for(0.4, custom) == 0
    path.write_text('{"bands": [{"points": 3}]}', encoding="utf-8")
    with pytest.raises(CourseError, match="band 1"):
        grading.load_rubric(path)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(CourseError, match="not valid JSON"):
        grading.load_rubric(path)


# ------------------------------------------------------------------------------------------ grading


def _small_model(path: Path, *, kind: str) -> None:
    import keras

    inputs = keras.Input((16, 16, 3))
    if kind == "lambda":
        x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
        outputs = keras.layers.Conv2D(1, 1)(x)
    elif kind == "good":
        # bright pixels are the person: logit = 10 * (mean colour - 0.6)
        outputs = keras.layers.Conv2D(
            1, 1, kernel_initializer=keras.initializers.Constant(10 / 3), bias_initializer=keras.initializers.Constant(-6.0)
        )(inputs)
    else:  # a constant sigmoid output: "all" gives 0.62 everywhere, "none" 0.38 everywhere
        bias = 0.5 if kind == "sigmoid_all" else -0.5
        outputs = keras.layers.Conv2D(
            1, 1, activation="sigmoid", kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(bias)
        )(inputs)
    keras.Model(inputs, outputs).save(path)


def _zip_bomb(path: Path) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", "{}")
        with zf.open("model.weights.h5", "w") as fh:
            chunk = b"\0" * (1 << 20)
            for _ in range(80):  # 80 MiB of zeros, a few hundred KiB packed
                fh.write(chunk)


def _custom_class(path: Path) -> None:
    config = {"module": "keras.src.models.functional", "class_name": "Functional", "config": {
        "layers": [{"module": "os", "class_name": "system", "config": {"command": "echo hi"}}]}}
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("metadata.json", "{}")


@pytest.fixture(scope="module")
def graded(lab, tmp_path_factory):
    """A class of submissions, graded once; returns (rows by student, submissions, out, hashes before)."""
    subs = tmp_path_factory.mktemp("subs")
    answers = lab / "answers"
    names = sorted(p.name for p in (answers / "masks").iterdir())
    assert len(names) >= 12

    def masks_dir(student: str) -> Path:
        d = subs / student / "masks"
        d.mkdir(parents=True)
        return d

    shutil.copytree(answers / "masks", subs / "perfect" / "masks")
    (subs / "empty").mkdir()
    d = masks_dir("partial")
    for n in names[: len(names) // 2]:
        shutil.copy(answers / "masks" / n, d / n)
    d = masks_dir("wrongsize")
    for n in names:
        shutil.copy(answers / "masks" / n, d / n)
    Image.fromarray(np.full((10, 10), 255, np.uint8)).save(d / names[0])
    d = masks_dir("notpng")
    for n in names:
        shutil.copy(answers / "masks" / n, d / n)
    (d / names[1]).write_text("this is not an image", encoding="utf-8")
    d = masks_dir("misnamed")  # right masks, wrong file names
    for i, n in enumerate(names):
        shutil.copy(answers / "masks" / n, d / f"frame_{i:03d}.png")
    d = masks_dir("zeroone")  # saved as 0/1 instead of 0/255
    for n in names:
        with Image.open(answers / "masks" / n) as m:
            Image.fromarray((np.asarray(m) > 0).astype(np.uint8)).save(d / n)
    for student, kind in (("lambda", "lambda"), ("model", "good"), ("sigmoid_all", "sigmoid_all"), ("sigmoid_none", "sigmoid_none")):
        (subs / student).mkdir()
        _small_model(subs / student / "model.keras", kind=kind)
    (subs / "garbage").mkdir()
    (subs / "garbage" / "model.keras").write_bytes(b"PK\x03\x04 definitely not a model" * 20)
    (subs / "bomb").mkdir()
    _zip_bomb(subs / "bomb" / "model.keras")
    (subs / "custom").mkdir()
    _custom_class(subs / "custom" / "model.keras")
    before = digest(subs)
    out = tmp_path_factory.mktemp("grades")
    rows = grading.grade_submissions(answers, subs, out)
    return {r.student: r for r in rows}, subs, out, before, rows


def test_every_student_is_in_the_gradebook_sorted(graded):
    by_student, subs, out, _, rows = graded
    students = sorted(p.name for p in subs.iterdir())
    assert [r.student for r in rows] == students
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        body = list(reader)
    assert header == ["student", "iou", "dice", "points", "status", "reason"]
    assert [line[0] for line in body] == students
    assert all(line[4] in ("ok", "partial", "error") and line[5] for line in body)


def test_perfect_submission_gets_full_marks(graded):
    by_student, _, out, _, _ = graded
    r = by_student["perfect"]
    assert (r.iou, r.dice, r.points, r.status) == (1.0, 1.0, 10, "ok")
    assert (out / "reports" / "perfect.png").stat().st_size > 1000
    report = (out / "reports" / "perfect.md").read_text(encoding="utf-8")
    assert "1.0000" in report and "10 / 10" in report
    zero_one = by_student["zeroone"]
    assert zero_one.iou == 1.0 and zero_one.status == "ok"


def test_scores_are_ordered_perfect_partial_empty(graded):
    by_student = graded[0]
    perfect, partial, empty = by_student["perfect"], by_student["partial"], by_student["empty"]
    assert perfect.iou > partial.iou > empty.iou == 0.0
    assert perfect.points > partial.points > empty.points == 0
    assert partial.status == "partial" and "masks missing" in partial.reason
    assert 0.4 < partial.iou < 0.6  # half the masks, each perfect
    assert empty.status == "error" and "empty submission" in empty.reason
    misnamed = by_student["misnamed"]
    assert misnamed.status == "error" and misnamed.points == 0 and "none of the" in misnamed.reason


def test_wrong_size_and_non_png_cost_only_their_image(graded):
    by_student = graded[0]
    wrong, notpng = by_student["wrongsize"], by_student["notpng"]
    assert wrong.status == "partial" and "is 10x10, expected 48x32" in wrong.reason
    assert notpng.status == "partial" and "not a PNG" in notpng.reason
    assert 0.85 < wrong.iou < 1.0 and 0.85 < notpng.iou < 1.0


def test_models_lambda_refused_good_graded_threshold_by_activation(graded):
    by_student = graded[0]
    lam = by_student["lambda"]
    assert lam.status == "error" and "Lambda" in lam.reason and "refused" in lam.reason
    good = by_student["model"]
    assert good.status == "ok" and good.iou > 0.5
    assert by_student["sigmoid_none"].iou == 0.0  # 0.38 after a sigmoid is background, not a positive logit
    assert 0.0 < by_student["sigmoid_all"].iou < 0.5  # 0.62 everywhere: everything is the person


def test_hostile_model_files_become_error_rows(graded):
    by_student = graded[0]
    assert by_student["garbage"].status == "error" and "model.keras" in by_student["garbage"].reason
    assert by_student["bomb"].status == "error" and "zip bomb" in by_student["bomb"].reason
    assert by_student["custom"].status == "error" and "custom code" in by_student["custom"].reason
    assert "os" in by_student["custom"].reason


def test_student_files_are_never_changed(graded):
    _, subs, _, before, _ = graded
    assert digest(subs) == before


def test_one_failing_student_does_not_stop_the_batch(lab, tmp_path, monkeypatch):
    subs = tmp_path / "subs"
    for student in ("alice", "bob"):
        shutil.copytree(lab / "answers" / "masks", subs / student / "masks")
    real = grading._from_masks

    def flaky(folder, answers):
        if folder.parent.name == "alice":
            raise RuntimeError("disk on fire")
        return real(folder, answers)

    monkeypatch.setattr(grading, "_from_masks", flaky)
    rows = grading.grade_submissions(lab / "answers", subs, tmp_path / "out", rubric={"bands": [{"at_least": 0.99, "points": 5}]})
    assert [(r.student, r.status) for r in rows] == [("alice", "error"), ("bob", "ok")]
    assert "disk on fire" in rows[0].reason and rows[1].points == 5
    with pytest.raises(CourseError, match="inside"):
        grading.grade_submissions(lab / "answers", subs, subs / "grades")


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
    with Image.open(dest / "masks" / images[0].name) as m:
        assert m.size == (W, H) and m.mode == "L"
