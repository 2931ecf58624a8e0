import ast
import inspect
import json
import os
import subprocess
import sys
import textwrap
from importlib.util import find_spec
from pathlib import Path

import keras
import numpy as np
import pytest

from utils.errors import CourseError
from utils.models import OverlapMetric, SegmentationLoss, build_unet, compile_segmenter


def test_shapes_and_logits_out():
    model = build_unet(32, base_filters=4, depth=2)
    assert model.output_shape == (None, 32, 32, 1)
    assert model.layers[-1].get_config().get("activation") == "linear"
    out = model.predict(np.zeros((2, 32, 32, 3), np.float32), verbose=0)
    assert out.dtype == np.float32


def test_each_encoder_level_runs_once_and_feeds_its_skip():
    model = build_unet(32, base_filters=4, depth=2)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    names = [layer.name for layer in convs]
    assert len(names) == len(set(names))
    # 2 convs per block (2 encoder blocks, the bottleneck, 2 decoder blocks) + the logits
    assert len(convs) == 2 * 5 + 1
    assert sum(isinstance(layer, keras.layers.Conv2DTranspose) for layer in model.layers) == 2
    for level in range(2):
        skip = model.get_layer(f"skip{level}")
        inbound = {t._keras_history.operation.name for t in skip.input}
        assert inbound == {f"up{level}", f"enc{level}_relu2"}
        # the encoder output is consumed by the pool and the skip, and nothing computes it again
        assert len(model.get_layer(f"enc{level}_conv1")._inbound_nodes) == 1


def test_batch_normalisation_present():
    model = build_unet(32, base_filters=4, depth=2)
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers) == 10


def test_size_must_divide():
    with pytest.raises(CourseError, match="divisible"):
        build_unet(30, depth=2)


def test_mixed_precision_keeps_float32_logits():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_unet(32, base_filters=4, depth=2)
        assert model.get_layer("enc0_conv1").compute_dtype == "float16"
        assert model.get_layer("enc0_conv1").variable_dtype == "float32"
        assert model.get_layer("logits").compute_dtype == "float32"
        assert model.output.dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_loss_from_logits_and_dice_term():
    y = np.zeros((1, 4, 4, 1), np.float32)
    y[0, :2] = 1
    confident = np.where(y > 0, 8.0, -8.0).astype(np.float32)
    wrong = -confident
    bce = SegmentationLoss()
    assert float(bce(y, confident)) < 0.01 < 5 < float(bce(y, wrong))
    both = SegmentationLoss(dice_weight=1.0)
    assert float(both(y, wrong)) > float(bce(y, wrong)) + 0.9


def test_overlap_metrics_match_numpy():
    from utils import metrics

    rng = np.random.default_rng(0)
    truth = (rng.random((3, 8, 8, 1)) > 0.5).astype(np.float32)
    logits = rng.normal(size=(3, 8, 8, 1)).astype(np.float32)
    pred = metrics.logits_to_mask(logits)
    for kind, ref in (("dice", metrics.dice), ("iou", metrics.iou)):
        metric = OverlapMetric(kind)
        metric.update_state(truth, logits)
        assert float(metric.result()) == pytest.approx(ref(truth, pred), abs=1e-6)


def test_compiled_model_learns_a_step_and_saves(tmp_path):
    model = compile_segmenter(build_unet(32, base_filters=4, depth=2), dice_weight=0.5)
    x = np.random.default_rng(0).random((4, 32, 32, 3)).astype(np.float32)
    y = (x[..., :1] > 0.5).astype(np.float32)
    hist = model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert set(hist.history) >= {"loss", "dice", "iou"}
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


SCRIPT = textwrap.dedent(
    """
    import numpy as np, keras
    from utils.models import build_unet, compile_segmenter
    assert keras.backend.backend() == "{backend}"
    model = compile_segmenter(build_unet(32, base_filters=4, depth=2))
    x = np.random.default_rng(0).random((4, 32, 32, 3)).astype("float32")
    y = (x[..., :1] > 0.5).astype("float32")
    loss = model.train_on_batch(x, y)
    # warm-started statistics read and write the moving averages through this backend's variables
    from utils.training import WarmStartStatistics
    inputs = keras.Input((4, 4, 2))
    net = keras.Model(inputs, keras.layers.Conv2D(1, 1)(keras.layers.BatchNormalization(momentum=0.9)(inputs)))
    net.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    b = np.random.default_rng(1).normal(np.arange(3)[:, None, None, None, None], 1.0, (3, 2, 4, 4, 2)).astype("float32")
    net.fit(b.reshape(6, 4, 4, 2), np.zeros((6, 4, 4, 1), "float32"), batch_size=2, shuffle=False, verbose=0,
            callbacks=[WarmStartStatistics()])
    got = keras.ops.convert_to_numpy(net.layers[1].moving_mean)
    want = b.mean(axis=(1, 2, 3)).mean(axis=0)
    if keras.backend.backend() == "jax":  # documented: the callback leaves JAX's trainer alone
        assert not np.allclose(got, want, atol=1e-2)
    else:
        np.testing.assert_allclose(got, want, atol=1e-4)
    print("ok", model.output_shape)
    """
)


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_other_keras_backends_build_and_train(backend):
    if find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed, so Keras cannot use its {backend} backend here")
    env = {**os.environ, "KERAS_BACKEND": backend}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(backend=backend)], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "ok (None, 32, 32, 1)" in run.stdout


# ------------------------------------------------------------------ the TensorFlow lesson's own cells

TF_LESSON = Path(__file__).resolve().parent.parent / "notebooks" / "SemanticSegmentationTF.ipynb"
LESSON_NAMES = {"MaxPoolingWithArgmax", "MaxUnpooling", "conv_block", "build_segnet", "build_unet",
                "dice_per_image", "iou_per_image"}


def _lesson_function(name: str) -> ast.FunctionDef:
    for cell in json.loads(TF_LESSON.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse("".join(cell["source"]))
        except SyntaxError:  # the Colab cell's shell commands
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == name:
                return node
    raise AssertionError(f"{TF_LESSON.name} defines no {name}")


@pytest.mark.parametrize("name", ["conv_block", "build_unet"])
def test_lesson_unet_is_the_package_unet(name):
    import utils.models

    package = ast.parse(textwrap.dedent(inspect.getsource(getattr(utils.models, name)))).body[0]
    assert ast.dump(_lesson_function(name)) == ast.dump(package), (
        f"{name} in {TF_LESSON.name} differs from utils/models.py: change both the same way"
    )


@pytest.fixture(scope="module")
def lesson():
    tf = pytest.importorskip("tensorflow", reason="the TensorFlow lesson's SegNet layers call TensorFlow")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the TensorFlow lesson runs on Keras's TensorFlow backend")
    sys.path.insert(0, str(TF_LESSON.parent.parent / "benchmarks"))
    from notebook_code import definitions

    namespace = {"keras": keras, "layers": keras.layers, "ops": keras.ops, "tf": tf, "CourseError": CourseError}
    return definitions(TF_LESSON, LESSON_NAMES, namespace)


def test_lesson_unpooling_puts_each_maximum_back_where_it_was(lesson):
    x = np.random.default_rng(0).random((2, 6, 4, 3)).astype(np.float32)
    pooled, positions = lesson["MaxPoolingWithArgmax"]()(x)
    out = np.asarray(lesson["MaxUnpooling"]()(pooled, positions))
    want = np.zeros_like(x)
    for b, r, c, ch in np.ndindex(2, 3, 2, 3):
        window = x[b, 2 * r : 2 * r + 2, 2 * c : 2 * c + 2, ch]
        dr, dc = np.unravel_index(window.argmax(), (2, 2))
        want[b, 2 * r + dr, 2 * c + dc, ch] = window.max()
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(np.asarray(pooled), want.reshape(2, 3, 2, 2, 2, 3).max(axis=(2, 4)))


def test_lesson_pooling_pair_passes_gradients_to_the_maxima_only(lesson):
    import tensorflow as tf

    x = tf.Variable(np.random.default_rng(1).random((1, 4, 4, 2)).astype(np.float32))
    with tf.GradientTape() as tape:
        pooled, positions = lesson["MaxPoolingWithArgmax"]()(x)
        total = tf.reduce_sum(lesson["MaxUnpooling"]()(pooled * 2.0, positions))
    grad = tape.gradient(total, x).numpy()
    assert np.count_nonzero(grad) == 8 and set(np.unique(grad)) == {0.0, 2.0}


def test_lesson_segnet_matches_the_unet_but_for_the_skips(lesson):
    segnet = lesson["build_segnet"](32, base_filters=4, depth=2)
    unet = lesson["build_unet"](32, base_filters=4, depth=2)
    assert segnet.output_shape == unet.output_shape == (None, 32, 32, 1)

    def widths(model, prefix):
        return [layer.filters for layer in model.layers if layer.name.startswith(prefix) and hasattr(layer, "filters")]

    for prefix in ("enc", "bottleneck", "dec", "logits"):
        assert widths(segnet, prefix) == widths(unet, prefix), prefix
    bn = [layer.momentum for layer in segnet.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert bn and set(bn) == {0.9}
    assert not any(isinstance(layer, keras.layers.Concatenate) for layer in segnet.layers)
    # the decoder's first convolution sees only the un-pooled maps: half the U-Net's concatenated channels
    assert segnet.get_layer("dec0_conv1").input.shape[-1] == unet.get_layer("dec0_conv1").input.shape[-1] // 2
    out = segnet.predict(np.zeros((2, 32, 32, 3), np.float32), verbose=0)
    assert out.shape == (2, 32, 32, 1) and out.dtype == np.float32
    with pytest.raises(CourseError, match="divisible"):
        lesson["build_segnet"](30, depth=2)


def test_lesson_metrics_match_the_package_metrics(lesson):
    from utils import metrics

    rng = np.random.default_rng(2)
    truth = (rng.random((5, 8, 8)) > 0.6).astype(np.float32)
    logits = rng.normal(size=(5, 8, 8)).astype(np.float32)
    truth[0], logits[0] = 0, -1  # empty truth predicted empty: 1 by convention
    pred = (logits > 0).astype(np.uint8)
    dice = np.asarray(lesson["dice_per_image"](truth[..., None], logits[..., None]))
    iou = np.asarray(lesson["iou_per_image"](truth[..., None], logits[..., None]))
    np.testing.assert_allclose(dice, metrics.dice_per_image(truth, pred), rtol=1e-6)
    np.testing.assert_allclose(iou, metrics.iou_per_image(truth, pred), rtol=1e-6)
    assert dice[0] == 1.0
