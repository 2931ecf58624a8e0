import numpy as np

from utils.data import augment_pair, make_dataset


def arrays(n=10, size=8):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    masks = (images[..., 0] > 127).astype(np.uint8)  # a mask that is a function of the image
    return images, masks


def test_augmentation_moves_image_and_mask_together():
    images, masks = arrays()
    for seed in range(8):
        img, msk = augment_pair(images[0], masks[0], np.random.default_rng(seed))
        np.testing.assert_array_equal(msk, (img[..., 0] > 127).astype(np.uint8))


def test_batches_shapes_types_and_scale():
    images, masks = arrays(10)
    ds = make_dataset(images, masks, 4)
    assert len(ds) == 3
    x, y = ds[0]
    assert x.dtype == np.float32 and y.dtype == np.float32
    assert x.shape == (4, 8, 8, 3) and y.shape == (4, 8, 8, 1)
    assert x.max() <= 1.0 and set(np.unique(y)) <= {0.0, 1.0}
    assert ds[2][0].shape[0] == 2
    np.testing.assert_array_equal(x, images[:4] / np.float32(255))


def test_shuffle_is_seeded_and_changes_per_epoch():
    images, masks = arrays(12)
    a, b = make_dataset(images, masks, 12, shuffle=True, seed=3), make_dataset(images, masks, 12, shuffle=True, seed=3)
    np.testing.assert_array_equal(a[0][0], b[0][0])
    first = a[0][0].copy()
    a.on_epoch_end()
    assert not np.array_equal(first, a[0][0])
    assert sorted(a.order.tolist()) == list(range(12))


def test_augmented_batches_keep_pairs():
    images, masks = arrays(6)
    x, y = make_dataset(images, masks, 6, shuffle=True, augment=True, seed=1)[0]
    np.testing.assert_array_equal(y[..., 0], (x[..., 0] * 255 > 127).astype(np.float32))


def _batch_the_old_way(images, masks, batch_size, seed, epoch, index, order):
    """The batch spelled out: this epoch's order, per-image augment_pair from the (seed, epoch, batch) generator."""
    idx = order[index * batch_size : (index + 1) * batch_size]
    rng = np.random.default_rng([seed, epoch, index])
    pairs = [augment_pair(i, m, rng) for i, m in zip(images[idx], masks[idx])]
    x = np.stack([p[0] for p in pairs]).astype(np.float32) / 255.0
    y = np.stack([p[1] for p in pairs]).astype(np.float32)[..., None]
    return x, y


def test_batches_are_the_same_for_a_seed_whatever_the_worker_count():
    from utils.data import SegmentationBatches

    images, masks = arrays(20)
    one, three = (SegmentationBatches(images, masks, 8, shuffle=True, augment=True, seed=5, workers=w) for w in (1, 3))
    for epoch in range(2):
        for index in range(len(one)):
            want = _batch_the_old_way(images, masks, 8, 5, epoch, index, one.order)
            for ds in (one, three):
                x, y = ds[index]
                np.testing.assert_array_equal(x, want[0])
                np.testing.assert_array_equal(y, want[1])
        one.on_epoch_end()
        three.on_epoch_end()

