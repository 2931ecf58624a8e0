import numpy as np
import pytest

from utils import metrics


def square(size=8, lo=2, hi=6):
    m = np.zeros((size, size), np.uint8)
    m[lo:hi, lo:hi] = 1
    return m


def test_known_overlap():
    truth = square()  # 16 pixels
    pred = np.zeros_like(truth)
    pred[2:6, 2:4] = 1  # 8 pixels, all inside
    assert metrics.dice(truth, pred) == pytest.approx(2 * 8 / (16 + 8))
    assert metrics.iou(truth, pred) == pytest.approx(8 / 16)
    assert metrics.pixel_accuracy(truth, pred) == pytest.approx((64 - 8) / 64)


def test_empty_masks_convention():
    empty = np.zeros((4, 4), np.uint8)
    assert metrics.dice(empty, empty) == 1.0 and metrics.iou(empty, empty) == 1.0
    full = np.ones((4, 4), np.uint8)
    assert metrics.dice(empty, full) == 0.0 and metrics.iou(full, empty) == 0.0


def test_averages_are_per_image():
    truth = np.stack([square(), np.zeros((8, 8), np.uint8)])
    pred = np.stack([square(), square()])
    np.testing.assert_allclose(metrics.dice_per_image(truth, pred), [1.0, 0.0])
    assert metrics.scores(truth, pred)["dice"] == pytest.approx(0.5)


def test_channel_axis_and_shape_mismatch():
    truth = square()[None, ..., None]
    assert metrics.iou(truth, square()[None]) == 1.0
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.dice(square(8), square(6, 1, 3))


def test_thresholds_logits_at_zero_not_half():
    logits = np.array([-3.0, -0.1, 0.1, 0.4, 3.0])
    np.testing.assert_array_equal(metrics.logits_to_mask(logits), [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(metrics.probs_to_mask(np.array([0.2, 0.5, 0.51])), [0, 0, 1])
    probs = 1 / (1 + np.exp(-logits))
    np.testing.assert_array_equal(metrics.logits_to_mask(logits, 0.7), metrics.probs_to_mask(probs, 0.7))
