import keras
import numpy as np
import pytest

from utils.models import build_unet, compile_segmenter
from utils.training import WarmStartStatistics, _batch_norms, fit_segmenter

MOMENTUM = 0.9


def _net():
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.BatchNormalization(momentum=MOMENTUM, name="bn")(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(1, 1)(x))
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    return model


def _batches(n: int, size: int = 3):
    rng = np.random.default_rng(0)
    # each batch has its own per-channel centre and spread, so every batch's statistics differ
    x = np.concatenate([rng.normal(rng.uniform(-3, 3, 2), rng.uniform(0.5, 2, 2), (size, 4, 4, 2)) for _ in range(n)])
    return x.astype(np.float32), np.zeros((n * size, 4, 4, 1), np.float32)


def _expected(x, size, steps):
    """Moving statistics after `steps` batches: plain average while young, then the usual blend."""
    mean, var = np.zeros(2), np.ones(2)
    for t in range(1, steps + 1):
        batch = x[(t - 1) * size : t * size].astype(np.float64)
        keep = min(MOMENTUM, (t - 1) / t)
        mean = keep * mean + (1 - keep) * batch.mean(axis=(0, 1, 2))
        var = keep * var + (1 - keep) * batch.var(axis=(0, 1, 2))
    return mean, var


def _fit(model, x, y, callbacks):
    model.fit(x, y, batch_size=3, epochs=1, shuffle=False, verbose=0, callbacks=callbacks)
    bn = model.get_layer("bn")
    return keras.ops.convert_to_numpy(bn.moving_mean), keras.ops.convert_to_numpy(bn.moving_variance)


@pytest.mark.parametrize("steps", [1, 3, 14])
def test_warm_start_averages_the_batches_then_blends(steps):
    x, y = _batches(steps)
    mean, var = _fit(_net(), x, y, [WarmStartStatistics()])
    want_mean, want_var = _expected(x, 3, steps)
    np.testing.assert_allclose(mean, want_mean, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(var, want_var, rtol=1e-4, atol=1e-4)
    plain_mean, _ = _fit(_net(), x, y, [])  # Keras alone still remembers its starting 0 and 1
    assert not np.allclose(plain_mean, want_mean, atol=1e-2)


def test_warm_start_continues_across_fit_calls():
    x, y = _batches(6)
    model = _net()
    _fit(model, x[:9], y[:9], [WarmStartStatistics()])
    mean, var = _fit(model, x[9:], y[9:], [WarmStartStatistics()])  # counts from the optimizer's 3 steps
    want_mean, want_var = _expected(x, 3, 6)
    np.testing.assert_allclose(mean, want_mean, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(var, want_var, rtol=1e-4, atol=1e-4)


def test_batch_norms_found_in_nested_models_once():
    inner = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.BatchNormalization(name="inner_bn")])
    inputs = keras.Input((8, 8, 3))
    outer = keras.Model(inputs, keras.layers.BatchNormalization(name="outer_bn")(inner(inner(inputs))))
    assert sorted(layer.name for layer in _batch_norms(outer)) == ["inner_bn", "outer_bn"]
    assert len(list(_batch_norms(build_unet(32, base_filters=4, depth=2)))) == 2 * (2 + 1 + 2)


def test_compile_segmenter_creates_the_optimizer_slots():
    model = compile_segmenter(build_unet(32, base_filters=4, depth=2))
    assert model.optimizer.built
    # AdamW keeps two moments per trainable variable, created before the first step is traced
    assert len(model.optimizer.variables) >= 2 * len(model.trainable_variables)


def test_fit_segmenter_run_depends_on_its_seed_only():
    """The same seed gives the same run whatever Python's global `random` went through before (Keras would
    reorder a PyDataset's batches with it unless fit is told not to shuffle)."""
    import random

    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (24, 16, 16, 3), dtype=np.uint8)
    masks = (images[..., 0] > 128).astype(np.uint8)
    losses = []
    for state in (1, 2):
        keras.utils.set_random_seed(0)  # same initial weights
        model = compile_segmenter(build_unet(16, base_filters=2, depth=1))
        random.seed(state)  # anything earlier in a notebook may have moved this
        history = fit_segmenter(model, (images[:20], masks[:20]), (images[20:], masks[20:]), epochs=2, batch_size=4, seed=0, verbose=0)
        losses.append(history.history["loss"])
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-6)
