"""The PyTorch lab notebooks: the starter leaves the work open and scores 0; the solution learns and reports.

Both notebooks run unmodified, in the smoke profile, on a lab package that `prepare_lab` writes from a
tiny MADS in a temporary folder, in a fresh kernel started from a subprocess (as a student or
`lab calibrate` would run them); their submissions are graded by `grade_submissions`.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from grading_helpers import make_dataset
from IPython.core.inputtransformer2 import TransformerManager

from utils.grading import grade_submissions, prepare_lab

ROOT = Path(__file__).resolve().parents[1]
STARTERS = [ROOT / "lab" / "BodySegmentationPytorch.ipynb", ROOT / "lab" / "BodySegmentationPytorch.es.ipynb"]
SOLUTION = ROOT / "lab" / "solution" / "BodySegmentationPytorch.ipynb"
COURSE_HELPERS = {"build_unet", "compile_segmenter", "fit_segmenter", "predict_masks"}
COURSE_MODULES = {"utils.models", "utils.training"}
# Absolute bands with the floor on: a submission at or below the best trivial baseline earns nothing.
RUBRIC = {
    "metric": "iou",
    "bands": [{"at_least": 0.5, "points": 4}, {"above": 0.0, "points": 2}],
    "otherwise": 0,
    "floor": "baselines",
}
REPORT_KEYS = {"framework", "data", "profile", "frames", "validation", "test", "train_seconds", "best_epoch", "device"}

RUN = """
import sys
import nbclient, nbformat
path, out = sys.argv[1], sys.argv[2]
nb = nbformat.read(path, as_version=4)
client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": sys.argv[3]}})
try:
    client.execute()
finally:
    nbformat.write(nb, out)
"""


def _tree(path: Path) -> ast.Module:
    """Every code cell of a notebook, magics turned into Python, as one syntax tree."""
    nb = nbformat.read(str(path), as_version=4)
    code = "\n".join(TransformerManager().transform_cell(c.source) for c in nb.cells if c.cell_type == "code")
    return ast.parse(code)


def _course_helpers_used(tree: ast.Module) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name in COURSE_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found += [node.module] if node.module in COURSE_MODULES else []
            found += [a.name for a in node.names if a.name in COURSE_HELPERS or f"{node.module}.{a.name}" in COURSE_MODULES]
        elif isinstance(node, ast.Name) and node.id in COURSE_HELPERS:
            found.append(node.id)
        elif isinstance(node, ast.Attribute) and node.attr in COURSE_HELPERS | {"models", "training"}:
            found.append(node.attr)
    return found


@pytest.mark.parametrize("path", STARTERS, ids=lambda p: p.name)
def test_starter_uses_none_of_the_course_model_or_training_helpers(path):
    assert _course_helpers_used(_tree(path)) == []


def test_the_helper_check_sees_every_way_in():
    code = (
        "from utils.models import build_unet\nimport utils.training\nfrom utils import models\n"
        "utils.training.fit_segmenter(m)\npredict_masks(m, x)\n"
    )
    found = set(_course_helpers_used(ast.parse(code)))
    assert found >= {"utils.models", "build_unet", "utils.training", "models", "fit_segmenter", "predict_masks"}


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    """A lab package (student/ and answers/) prepared from a tiny MADS."""
    base = tmp_path_factory.mktemp("lab")
    prepare_lab(make_dataset(base / "mads"), base / "package")
    return base / "package"


def _run(notebook: Path, package: Path, work: Path) -> tuple[str, Path]:
    """Execute a notebook unmodified in the smoke profile on the package; return its printed text and runs folder."""
    env = {k: v for k, v in os.environ.items() if k not in ("LAB_REPORT", "MADS_DIR", "SEG_PROFILE")}
    env.update(SEG_SMOKE="1", SEG_OFFLINE="1", LAB_DIR=str(package / "student"), SEG_RUNS_DIR=str(work / "runs"),
               SEG_DATA_DIR=str(work / "data"), MPLBACKEND="Agg")
    out = work / notebook.name
    done = subprocess.run([sys.executable, "-c", RUN, str(notebook), str(out), str(notebook.parent)],
                          env=env, capture_output=True, text=True, timeout=900)
    nb = nbformat.read(str(out), as_version=4) if out.is_file() else None
    errors = [f"{o.ename}: {o.evalue}" for c in (nb.cells if nb else []) if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"]
    assert done.returncode == 0 and not errors, f"{notebook.name} failed: {errors or done.stderr[-2000:]}"
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "stream")
    return text, work / "runs"


def _grade(submission: Path, package: Path, work: Path):
    """Grade one submission folder as the instructor would; return its gradebook row."""
    shutil.copytree(submission, work / "submissions" / "student")
    (row,) = grade_submissions(package / "answers", work / "submissions", work / "grades", rubric=RUBRIC, jobs=1, reports=())
    return row


def test_unmodified_starter_says_which_todos_are_open_and_scores_0(package, tmp_path):
    text, runs = _run(STARTERS[0], package, tmp_path)
    for number in range(1, 6):
        assert f"TODO {number}" in text, f"no message for open TODO {number} in:\n{text[-3000:]}"
    masks = sorted((runs / "lab" / "submission" / "masks").glob("*.png"))
    assert [p.name for p in masks] == sorted(p.name for p in (package / "student" / "test" / "images").glob("*.png"))
    row = _grade(runs / "lab" / "submission", package, tmp_path)
    assert row.status == "ok" and row.points == 0, row


def test_solution_learns_scores_points_and_writes_its_report(package, tmp_path):
    text, runs = _run(SOLUTION, package, tmp_path)
    assert "TODO" not in text, text[-3000:]  # nothing left open
    row = _grade(runs / "lab" / "solution_pytorch_submission", package, tmp_path)
    assert row.status == "ok" and row.points > 0, row

    report = json.loads((runs / "lab" / "solution_pytorch.json").read_text(encoding="utf-8"))
    assert REPORT_KEYS <= set(report), REPORT_KEYS - set(report)
    assert report["framework"] == "pytorch" and report["data"] == "mads" and report["profile"]["name"] == "smoke"
    frames = report["frames"]
    assert frames["train"] > 0 and frames["val"] > 0 and frames["test"] > 0
    assert frames["train"] + frames["val"] + frames["test"] == report["profile"]["limit"]
    for part in ("validation", "test"):
        assert 0.0 <= report[part]["iou"] <= report[part]["dice"] <= 1.0, report[part]
    assert 1 <= report["best_epoch"] <= report["recipe"]["epochs"]
    assert report["train_seconds"] > 0 and report["device"].split()[0] in ("cpu", "cuda")
