"""utils.lab (the lab notebooks' shared helpers) and the Keras lab notebooks themselves."""

from __future__ import annotations

import json

import numpy as np
import pytest

from utils import lab
from utils.errors import CourseError

# ---------------------------------------------------------------- prior_mask


def test_prior_mask_marks_the_most_frequent_pixels_as_many_as_the_average_person():
    y = np.zeros((10, 6, 6), np.uint8)
    y[:, 1:4, 2:4] = 1  # always person: 6 pixels
    y[0, 5, 5] = 1  # rarely person
    mask = lab.prior_mask(y)
    assert mask.dtype == np.uint8 and mask.shape == (6, 6)
    assert set(np.unique(mask).tolist()) <= {0, 1}
    assert mask[1:4, 2:4].all()  # the always-person block
    assert mask[5, 5] == 0  # a pixel seen once is not in it
    assert abs(int(mask.sum()) - y.mean() * 36) <= 1  # about the average person's area


def test_prior_mask_is_the_formula_the_grader_used_before():
    rng = np.random.default_rng(3)
    y = (rng.random((10, 16, 16)) < np.linspace(0.05, 0.9, 16)[None, None, :]).astype(np.uint8)
    prior = y.mean(0)
    expected = (prior > np.quantile(prior, 1 - y.mean())).astype(np.uint8)
    np.testing.assert_array_equal(lab.prior_mask(y), expected)


def test_prior_mask_refuses_no_masks():
    with pytest.raises(CourseError, match="shape"):
        lab.prior_mask(np.zeros((0, 4, 4), np.uint8))
    with pytest.raises(CourseError, match="shape"):
        lab.prior_mask(np.zeros((4, 4), np.uint8))


def test_starter_masks_use_prior_mask(tmp_path, monkeypatch):
    from utils.grading import prepare

    calls = []
    real = prepare.prior_mask
    monkeypatch.setattr(prepare, "prior_mask", lambda y: calls.append(y.shape) or real(y))
    from grading_helpers import make_dataset

    from utils import mads

    root = make_dataset(tmp_path / "mads")
    out = prepare.starter_masks(mads.find_mads(root))
    assert out and len(calls) == len(out)  # one baseline per profile, each from prior_mask


# ---------------------------------------------------------------- todo_open


def test_todo_open_prints_one_line_with_the_number(capsys):
    lab.todo_open(3, "still open: train your model (the baseline fills in meanwhile)")
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert "TODO 3" in out and "train your model" in out


def test_todo_open_never_raises(capsys):
    class Unprintable:
        def __str__(self):
            raise RuntimeError("no")

    lab.todo_open(1, Unprintable())  # type: ignore[arg-type]


# ---------------------------------------------------------------- self_check


@pytest.fixture
def frames():
    rng = np.random.default_rng(0)
    masks = np.zeros((5, 8, 8), np.uint8)
    masks[:, 2:6, 3:5] = 1
    images = rng.integers(0, 255, (5, 8, 8, 3), dtype=np.uint8)
    return images, masks


def test_self_check_passes_good_masks_and_returns_scores(frames, capsys):
    images, masks = frames
    result = lab.self_check(lambda x: masks.copy(), images, masks, baseline_iou=0.5)
    out = capsys.readouterr().out
    assert result is not None and result["iou"] == pytest.approx(1.0)
    assert "FIX" not in out and "validation IoU 1.000" in out and "beaten" in out


@pytest.mark.parametrize(
    "bad, words",
    [
        (lambda m: m.astype(np.float32), "uint8"),
        (lambda m: m[..., None], "channel axis"),
        (lambda m: m * 255, "only 0 and 1"),
        (lambda m: m[:-1], "one mask per input frame"),
        (lambda m: m.tolist(), "not a NumPy array"),
    ],
)
def test_self_check_names_each_mistake_and_how_to_fix_it(frames, capsys, bad, words):
    images, masks = frames
    assert lab.self_check(lambda x: bad(masks), images, masks) is None
    out = capsys.readouterr().out
    assert "FIX" in out and words in out


def test_self_check_reports_an_exception_in_predict(frames, capsys):
    images, masks = frames

    def predict(x):
        raise ValueError("shapes (5, 8) and (3,) do not match")

    assert lab.self_check(predict, images, masks) is None
    out = capsys.readouterr().out
    assert "ValueError" in out and "do not match" in out


def test_self_check_warns_on_almost_full_masks_and_an_unbeaten_baseline(frames, capsys):
    images, masks = frames
    result = lab.self_check(lambda x: np.ones_like(masks), images, masks, baseline_iou=0.5)
    out = capsys.readouterr().out
    assert result is not None and result["iou"] == pytest.approx(0.125)
    assert "from_logits" in out and "NOT beaten" in out


def test_self_check_speaks_spanish_in_the_spanish_notebooks(frames, capsys):
    images, masks = frames
    assert lab.self_check(lambda x: masks.astype(np.float32), images, masks, lang="es") is None
    out = capsys.readouterr().out
    assert "ARREGLA" in out and "se esperaba uint8" in out and "FIX" not in out
    result = lab.self_check(lambda x: np.ones_like(masks), images, masks, baseline_iou=0.5, lang="es")
    out = capsys.readouterr().out
    assert result is not None and "IoU de validación 0.125" in out and "NO superada" in out


def test_both_languages_have_every_self_check_line():
    assert set(lab.MESSAGES["en"]) == set(lab.MESSAGES["es"])


def test_self_check_refuses_an_unknown_language(frames):
    images, masks = frames
    with pytest.raises(CourseError, match="unknown language 'fr'"):
        lab.self_check(lambda x: masks, images, masks, lang="fr")


# ---------------------------------------------------------------- write_report


def test_write_report_goes_to_runs_dir_by_default(tmp_path, monkeypatch):
    monkeypatch.delenv("LAB_REPORT", raising=False)
    monkeypatch.setenv("SEG_RUNS_DIR", str(tmp_path / "runs"))
    path = lab.write_report({"framework": "keras", "test": {"iou": 0.5}}, "solution_keras")
    assert path == tmp_path / "runs" / "lab" / "solution_keras.json"
    assert json.loads(path.read_text(encoding="utf-8"))["test"]["iou"] == 0.5


def test_write_report_follows_lab_report(tmp_path, monkeypatch):
    target = tmp_path / "deep" / "calibration.json"
    monkeypatch.setenv("LAB_REPORT", str(target))
    assert lab.write_report({"a": 1}, "solution_pytorch") == target
    assert json.loads(target.read_text(encoding="utf-8")) == {"a": 1}


def test_write_report_refuses_what_json_cannot_hold(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_REPORT", str(tmp_path / "r.json"))
    with pytest.raises(CourseError, match="float"):
        lab.write_report({"iou": np.float32(0.5)}, "solution_keras")
    assert not (tmp_path / "r.json").exists()


# ---------------------------------------------------------------- the Keras lab notebooks

import ast  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import nbformat  # noqa: E402

from utils import grading  # noqa: E402

LAB = Path(__file__).resolve().parents[1] / "lab"
STARTERS = [LAB / "BodySegmentation.ipynb", LAB / "BodySegmentation.es.ipynb"]
SOLUTIONS = [LAB / "solution" / "BodySegmentation.ipynb", LAB / "solution" / "BodySegmentation.es.ipynb"]
FORBIDDEN_NAMES = {"build_unet", "compile_segmenter", "fit_segmenter", "predict_masks"}
FORBIDDEN_MODULES = {"utils.models", "utils.training"}
# Absolute bands, so that these tests do not depend on the default rubric; the floor is the best
# trivial baseline (the unmodified starter's mask among them).
RUBRIC = {"metric": "iou", "bands": [{"at_least": 0.9, "points": 10}, {"at_least": 0.5, "points": 5},
                                    {"above": 0.0, "points": 2}], "otherwise": 0, "floor": "baselines"}


def _code_trees(path: Path) -> list[ast.Module]:
    from IPython.core.inputtransformer2 import TransformerManager

    nb = nbformat.read(str(path), as_version=4)
    return [ast.parse(TransformerManager().transform_cell(c.source)) for c in nb.cells if c.cell_type == "code"]


def _course_helpers_used(path: Path) -> set[str]:
    found = set()
    for tree in _code_trees(path):
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if module in FORBIDDEN_MODULES:
                    found.add(module)
                if module == "utils" and {a.name for a in node.names} & {"models", "training"}:
                    found.add(module)
                found |= {a.name for a in node.names} & FORBIDDEN_NAMES
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names} & FORBIDDEN_MODULES
            elif isinstance(node, ast.Name | ast.Attribute):
                name = node.id if isinstance(node, ast.Name) else node.attr
                if name in FORBIDDEN_NAMES:
                    found.add(name)
    return found


@pytest.mark.parametrize("path", STARTERS + SOLUTIONS, ids=lambda p: p.relative_to(LAB).as_posix())
def test_lab_notebooks_use_none_of_the_course_model_or_training_helpers(path):
    assert _course_helpers_used(path) == set()


def test_the_helper_check_catches_an_import(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("from utils.training import fit_segmenter as fit\n%matplotlib inline")])
    nbformat.write(nb, str(tmp_path / "x.ipynb"))
    assert _course_helpers_used(tmp_path / "x.ipynb") == {"utils.training", "fit_segmenter"}


@pytest.fixture(scope="module")
def lab_package(tmp_path_factory):
    """A `lab prepare`d package of a tiny synthetic MADS: (student folder, answers folder)."""
    from grading_helpers import make_dataset

    base = tmp_path_factory.mktemp("lab")
    grading.prepare_lab(make_dataset(base / "mads"), base / "package", seed=0)
    return base / "package" / "student", base / "package" / "answers"


def _run(notebook: Path, student: Path, work: Path) -> tuple[str, Path]:
    """Execute a notebook in the smoke profile on the package; return its printed text and runs folder."""
    runs = work / "runs"
    env = {**os.environ, "LAB_DIR": str(student), "SEG_SMOKE": "1", "SEG_OFFLINE": "1", "SEG_RUNS_DIR": str(runs),
           "MPLBACKEND": "Agg"}
    env.pop("LAB_REPORT", None)
    env.pop("SEG_PROFILE", None)
    out = work / "executed.ipynb"
    done = subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", str(notebook),
         "--output", str(out), "--ExecutePreprocessor.timeout=600"],
        cwd=notebook.parent, env=env, capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    nb = nbformat.read(str(out), as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.get("name") == "stdout")
    return text, runs


def _grade(submission: Path, answers: Path, work: Path) -> grading.GradeRow:
    shutil.copytree(submission, work / "submissions" / "student")
    (row,) = grading.grade_submissions(answers, work / "submissions", work / "grades", rubric=RUBRIC, jobs=1)
    return row


@pytest.mark.parametrize("notebook", STARTERS, ids=lambda p: p.name)
def test_unmodified_starter_runs_says_what_is_open_and_scores_nothing(notebook, lab_package, tmp_path):
    student, answers = lab_package
    text, runs = _run(notebook, student, tmp_path)
    for number in range(1, 6):
        assert f"[TODO {number}]" in text
    if notebook.name.endswith(".es.ipynb"):  # the course's helpers speak the notebook's language
        assert "autocomprobación con" in text and "perfil smoke" in text and "self-check on" not in text
    else:
        assert "self-check on" in text and "profile smoke" in text
    submission = runs / "lab" / "submission"
    assert not (submission / "model.keras").exists()
    assert len(list((submission / "masks").glob("*.png"))) == len(list((student / "test" / "images").glob("*.png")))
    row = _grade(submission, answers, tmp_path)
    assert row.status == "ok" and row.points == 0, row
    assert row.iou > 0  # it did submit the baseline's masks, which the floor then pays nothing for


@pytest.mark.parametrize("notebook", SOLUTIONS, ids=lambda p: p.name)
def test_solution_runs_reports_and_beats_the_baselines(notebook, lab_package, tmp_path):
    student, answers = lab_package
    text, runs = _run(notebook, student, tmp_path)
    assert "[TODO" not in text
    report = json.loads((runs / "lab" / "solution_keras.json").read_text(encoding="utf-8"))
    assert report["framework"] == "keras" and report["data"] in ("mads", "synthetic") and report["profile"]["name"] == "smoke"
    assert {"train", "val", "test"} <= set(report["frames"]) and all(report["frames"].values())
    for part in ("validation", "test"):
        assert 0.0 <= report[part]["iou"] <= report[part]["dice"] <= 1.0
    assert report["train_seconds"] > 0 and 1 <= report["best_epoch"] <= report["epochs"] and report["device"]
    submission = runs / "lab" / "solution_submission"
    assert (submission / "model.keras").is_file()
    row = _grade(submission, answers, tmp_path)
    assert row.status == "ok" and row.points > 0, row
