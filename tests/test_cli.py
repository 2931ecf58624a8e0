"""The command line as a user runs it: `python -m utils ...` in a subprocess."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*args, env=None, timeout=600):
    full_env = {**os.environ, "SEG_OFFLINE": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "utils", *map(str, args)], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def ph2_200(tmp_path_factory):
    dest = tmp_path_factory.mktemp("ph2")
    result = run("synth", "ph2", dest)
    assert result.returncode == 0, result.stderr
    return dest


def test_synth_then_info_reports_200_cases_80_80_40(ph2_200):
    result = run("info", ph2_200)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout[result.stdout.index("{") :])
    assert info["cases"] == 200
    per_class = {k: v for k, v in info["per_class"].items() if v}
    assert per_class == {"common nevus": 80, "atypical nevus": 80, "melanoma": 40}


def test_info_on_a_missing_path_is_one_line_and_non_zero(tmp_path):
    result = run("info", tmp_path / "nowhere")
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "nowhere" in lines[0]
    assert "Traceback" not in result.stderr


def test_info_on_a_folder_without_a_dataset(tmp_path):
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    result = run("info", tmp_path)
    assert result.returncode != 0
    assert "neither PH2 nor MADS" in result.stderr and "Traceback" not in result.stderr


def test_synth_refuses_to_overwrite(ph2_200):
    result = run("synth", "ph2", ph2_200)
    assert result.returncode == 2 and "PH2Dataset" in result.stderr and "Traceback" not in result.stderr


def test_train_prints_json_last_and_evaluate_agrees(tmp_path):
    data = tmp_path / "small"
    assert run("synth", "ph2", data, "--count", "24").returncode == 0
    model = tmp_path / "unet.keras"
    env = {"SEG_DATA_DIR": str(tmp_path / "cache"), "SEG_SMOKE": "1"}
    trained = run("train", "--data", data, "--size", "32", "--epochs", "2", "--out", model, env=env)
    assert trained.returncode == 0, trained.stderr[-3000:]
    report = json.loads(trained.stdout.strip().splitlines()[-1])
    assert {"dice", "iou", "pixel_accuracy", "epochs", "seconds", "data"} <= report.keys()
    assert report["data"] == "synthetic" and report["epochs"] == 2 and report["size"] == 32
    assert 0.0 <= report["dice"] <= 1.0 and model.is_file()
    evaluated = run("evaluate", "--model", model, "--data", data, env=env)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    again = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert again["test_cases"] == report["test_cases"]
    assert again["dice"] == pytest.approx(report["dice"], abs=0.02)


def test_evaluate_a_missing_model(tmp_path):
    result = run("evaluate", "--model", tmp_path / "none.keras")
    assert result.returncode == 2 and "train one first" in result.stderr


def test_links_refuses_a_bad_repo():
    result = run("links", "--repo", "not a repo")
    assert result.returncode == 2 and "OWNER/NAME" in result.stderr


def test_train_and_evaluate_start_without_tensorflow_chatter():
    # TensorFlow 2.21 prints CUDA probes and oneDNN notes before its log level applies; the command line
    # keeps them off the terminal (a stack whose TensorFlow prints nothing passes trivially).
    code = (
        "from utils.__main__ import quiet_tensorflow_import\n"
        "quiet_tensorflow_import()\n"
        "import numpy as np\n"
        "from utils.models import build_unet\n"
        "print(build_unet(32, 4, 2)(np.zeros((1, 32, 32, 3), 'float32')).shape)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL")}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(1, 32, 32, 1)"
    assert done.stderr == "", done.stderr
