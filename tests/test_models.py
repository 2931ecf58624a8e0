import os
import subprocess
import sys
import textwrap
from importlib.util import find_spec

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
