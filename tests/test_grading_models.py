"""Tests for model submissions: the allow-list (utils.grading.model_check) and the isolated runner.

Every attack is a real `.keras` zip that the test writes, most of them by editing the config of
a tiny model Keras saved; none of them may reach Keras in the grader's process.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from grading_helpers import huge_weights_h5, keras_model, make_dataset, read_keras, tree_digest, write_keras

from utils import grading
from utils.grading import runner


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("lab")
    grading.prepare_lab(make_dataset(base / "mads"), base / "out", seed=0)
    (base / "out" / "answers" / "calibration.json").write_text('{"reference": {"iou": 0.9}}', encoding="utf-8")
    return base / "out"


@pytest.fixture(scope="module")
def base_model(tmp_path_factory) -> tuple[dict, dict[str, bytes]]:
    path = keras_model(tmp_path_factory.mktemp("m") / "good.keras", "good")
    return read_keras(path)


def _tensor(layer: str) -> dict:
    return {"class_name": "__keras_tensor__", "config": {"shape": [None, 16, 16, 3], "dtype": "float32", "keras_history": [layer, 0, 0]}}


def _attacks(config: dict) -> dict[str, tuple[dict, str]]:
    """Return {name: (edited config, words the refusal must contain)}."""
    layers = config["config"]["layers"]
    first, conv = layers[0]["name"], layers[1]
    out: dict[str, tuple[dict, str]] = {}

    def edit(name: str, must: str, change) -> None:
        c = copy.deepcopy(config)
        change(c, c["config"]["layers"])
        out[name] = (c, must)

    op = {"module": "keras.src.ops.numpy", "class_name": "Add", "config": {"name": "evil"}, "registered_name": None,
          "name": "evil", "inbound_nodes": [{"args": [_tensor(first), _tensor(first)], "kwargs": {}}]}
    edit("operation node", "not an allowed layer", lambda c, ls: ls.append(op))
    tfsm = {"module": "keras.layers", "class_name": "TFSMLayer", "config": {"name": "tfsm", "filepath": "evil"},
            "registered_name": None, "name": "tfsm", "inbound_nodes": [{"args": [_tensor(first)], "kwargs": {}}]}
    edit("TFSMLayer", "not an allowed layer", lambda c, ls: ls.append(tfsm))
    function = {"class_name": "function", "config": "TFSMLayer", "module": "keras.layers", "registered_name": "function"}
    edit("function entry", "not a layer's tensor", lambda c, ls: ls[1]["inbound_nodes"][0]["args"].append(function))
    klass = {"class_name": "class", "config": {"class_name": "TFSMLayer", "module": "keras.layers"}}
    edit("class entry", "not allowed", lambda c, ls: ls[1]["inbound_nodes"][0]["kwargs"].update({"layer": klass}))
    edit("unknown module", "only a Functional or Sequential",
         lambda c, ls: c.update({"module": "os", "class_name": "system", "registered_name": None}))
    edit("nested object", "not on the allow-list", lambda c, ls: ls[1]["config"].update(
        {"kernel_initializer": {"module": "keras.src.utils.plot_model", "class_name": "function", "config": {"to_file": "x"}}}))
    edit("activation object", "activation", lambda c, ls: ls[1]["config"].update(
        {"activation": {"module": "keras.layers", "class_name": "TFSMLayer", "config": {}}}))
    edit("registered custom", "custom code", lambda c, ls: ls[1].update({"registered_name": "Custom>Conv"}))
    edit("20000 filters", "filters", lambda c, ls: ls[1]["config"].update({"filters": 20000}))
    edit("6000 input", "6000", lambda c, ls: ls[0]["config"].update({"batch_shape": [None, 6000, 6000, 3]}))
    del conv
    return out


def test_every_config_attack_is_refused_before_keras(base_model, tmp_path, monkeypatch):
    config, members = base_model
    monkeypatch.setattr("keras.saving.load_model", lambda *a, **k: pytest.fail("Keras saw a refused file"))
    for name, (attack, must) in _attacks(config).items():
        path = write_keras(tmp_path / f"{name}.keras", attack, members)
        with pytest.raises(grading.ModelRefused) as err:
            grading.check_keras_file(path, tmp_path / "clean" / name)
        assert must in str(err.value), (name, str(err.value))
        assert not (tmp_path / "clean" / name / "model.keras").exists()
    huge = write_keras(tmp_path / "huge.keras", config, {**members, "model.weights.h5": huge_weights_h5()})
    with pytest.raises(grading.ModelRefused, match="more than"):
        grading.check_keras_file(huge, tmp_path / "clean" / "huge")


def test_a_clean_model_passes_and_its_copy_holds_only_what_was_checked(base_model, tmp_path):
    config, members = base_model
    path = write_keras(tmp_path / "good.keras", config, {**members, "assets/evil.py": b"print('x')"})
    clean = grading.check_keras_file(path, tmp_path / "clean")
    assert "compile_config" not in clean
    import zipfile

    with zipfile.ZipFile(tmp_path / "clean" / "model.keras") as zf:
        assert sorted(zf.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]


def test_the_course_unet_is_allowed(tmp_path):
    from utils.models import build_unet

    build_unet(32, 4, 2).save(tmp_path / "unet.keras")
    grading.check_keras_file(tmp_path / "unet.keras")


def test_runner_predicts_like_the_model_in_process(tmp_path):
    import keras

    path = keras_model(tmp_path / "good.keras", "good")
    grading.check_keras_file(path, tmp_path / "clean")
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (32, 48, 3), dtype=np.uint8) for _ in range(3)]
    got = grading.run_model(tmp_path / "clean" / "model.keras", images, size=16, limits=grading.Limits(timeout=120))
    want = grading.predict_full_size(keras.saving.load_model(path), images, size=16)
    assert all(np.array_equal(g, w) for g, w in zip(got, want))


def test_the_child_cannot_write_outside_scratch_see_hidden_folders_or_reach_the_network(tmp_path):
    sandbox = grading.probe_sandbox()
    if not sandbox.mounts:
        pytest.skip(f"no mount namespace on this machine: {sandbox.warning}")
    secret, scratch = tmp_path / "answers", tmp_path / "scratch"
    secret.mkdir()
    scratch.mkdir()
    (secret / "truth.png").write_bytes(b"hidden")
    script = f"""
import json, os, socket, sys
sys.path.insert(0, {str(runner.ROOT)!r})
from utils.grading.runner import _confine
print(_confine({{"sandbox": {{"mounts": True}}, "hide": [{str(secret)!r}]}}))
open("mine.txt", "w").write("ok")
for target in ({str(tmp_path / 'escape.txt')!r}, {str(runner.ROOT / 'utils' / 'evil.py')!r}):
    try:
        open(target, "w").write("x"); print("WROTE", target)
    except OSError:
        print("refused")
print(os.listdir({str(secret)!r}))
try:
    socket.create_connection(("10.0.0.1", 80), timeout=2); print("CONNECTED")
except OSError:
    print("no network")
"""
    done = subprocess.run([*sandbox.prefix, sys.executable, "-c", script], cwd=scratch, capture_output=True, text=True, timeout=60)
    assert done.stdout.split("\n")[:5] == ["True", "refused", "refused", "[]", "no network"], done.stdout + done.stderr
    assert (scratch / "mine.txt").read_text() == "ok" and not (tmp_path / "escape.txt").exists()


@pytest.fixture(scope="module")
def graded_models(lab, base_model, tmp_path_factory):
    """One class: honest, hostile, hanging and memory-hungry models beside a mask submission."""
    config, members = base_model
    base = tmp_path_factory.mktemp("models")
    subs = base / "subs"
    shutil.copytree(lab / "answers" / "masks", subs / "masks_student" / "masks")
    for student, kind in (("good", "good"), ("sigmoid_all", "sigmoid_all"), ("lambda", "lambda")):
        keras_model(subs / student / "model.keras", kind)
    keras_model(subs / "hang" / "model.keras", "hang", side=384)
    keras_model(subs / "hog" / "model.keras", "hog", side=1024)
    (subs / "empty_masks").mkdir()
    (subs / "empty_masks" / "masks").mkdir()
    keras_model(subs / "empty_masks" / "model.keras", "good")
    for name, (attack, _) in _attacks(config).items():
        write_keras(subs / name.replace(" ", "_") / "model.keras", attack, members)
    surrogate = copy.deepcopy(config)
    surrogate["config"]["layers"][1]["config"]["padding"] = "\udc80same"
    write_keras(subs / "surrogate" / "model.keras", __import__("json").dumps(surrogate), members)
    (subs / "garbage").mkdir()
    (subs / "garbage" / "model.keras").write_bytes(b"PK\x03\x04 definitely not a model" * 20)
    before = tree_digest(base)
    ans_before = tree_digest(lab)
    rows = grading.grade_submissions(lab / "answers", subs, base / "grades", jobs=2, timeout=40, memory_mb=1500, size=16)
    return {r.student: r for r in rows}, base, before, ans_before, lab


def test_hanging_and_hungry_models_become_error_rows_and_the_rest_is_graded(graded_models):
    rows = graded_models[0]
    assert rows["hang"].status == "error" and "time limit" in rows["hang"].reason
    assert rows["hog"].status == "error" and "memory" in rows["hog"].reason
    assert rows["masks_student"].points == 7 and rows["masks_student"].status == "ok"
    assert rows["good"].status == "ok" and rows["good"].iou > 0.5
    assert rows["sigmoid_all"].points == 0 and rows["sigmoid_all"].iou > 0  # all person: a trivial baseline
    assert rows["empty_masks"].status == "ok" and "model.keras graded instead" in rows["empty_masks"].reason


def test_hostile_models_become_error_rows_with_reasons(graded_models):
    rows = graded_models[0]
    assert rows["lambda"].status == "error" and "Lambda" in rows["lambda"].reason
    for name in ("operation_node", "TFSMLayer", "function_entry", "class_entry", "unknown_module", "nested_object",
                 "activation_object", "20000_filters", "6000_input", "garbage"):
        assert rows[name].status == "error" and rows[name].points == 0, name
    assert rows["surrogate"].status == "error" and "\\udc80" not in rows["surrogate"].student


def test_model_grading_changes_nothing_outside_out(graded_models):
    _, base, before, ans_before, lab = graded_models
    assert tree_digest(base, skip=base / "grades") == before
    assert tree_digest(lab) == ans_before
