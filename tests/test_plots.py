import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from utils import figures, plots  # noqa: E402


def masks():
    truth = np.zeros((2, 16, 16), np.uint8)
    truth[:, 4:12, 4:12] = 1
    pred = np.roll(truth, 2, axis=2)
    images = np.full((2, 16, 16, 3), 128, np.uint8)
    return images, truth, pred


def test_overlay_tints_only_the_mask_and_keeps_range():
    images, truth, _ = masks()
    out = plots.overlay(images[0], truth[0])
    assert out.shape == (16, 16, 3) and out.min() >= 0 and out.max() <= 1
    np.testing.assert_allclose(out[0, 0], 128 / 255)  # background untouched
    assert not np.allclose(out[8, 8], 128 / 255)  # inside the mask: tinted


def test_compare_overlay_draws_both_outlines():
    images, truth, pred = masks()
    out = plots.compare_overlay(images[0], truth[0], pred[0])
    pixels = out.reshape(-1, 3)
    for colour in (plots.TRUTH_COLOUR, plots.PRED_COLOUR):
        assert np.isclose(pixels, colour).all(axis=1).sum() > 8


def test_best_and_worst():
    best, worst = plots.best_and_worst(np.array([0.5, 0.9, 0.1, 0.7]), k=2)
    assert best.tolist() == [1, 3] and worst.tolist() == [2, 0]


def test_grids_have_one_panel_per_item():
    images, truth, pred = masks()
    assert len(plots.show_samples(images, truth, n=2).axes) == 6
    fig = plots.show_overlays(images, truth, pred, titles=["a", "b"], columns=2)
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]
    hist = {"U-Net": {"loss": [1.0, 0.5], "val_loss": [1.1, 0.6], "dice": [0.5, 0.8], "val_dice": [0.4, 0.7]}}
    fig = plots.plot_history(hist)
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 2


def test_scene_has_touching_objects_that_merge_semantically():
    _, classes, instances = figures.scene()
    from skimage import measure

    assert instances.max() == 5  # five objects drawn
    assert measure.label(classes == 1).max() == 2  # the two touching discs merge into one region
