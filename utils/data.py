"""Input pipeline: the loaders' uint8 arrays to shuffled, batched, augmented, prefetched batches.

A `keras.utils.PyDataset` serves the batches, so the same pipeline feeds Keras on TensorFlow,
PyTorch or JAX. Batches are assembled in worker threads while the model trains on the previous one.
"""

from __future__ import annotations

import keras
import numpy as np


def augment_pair(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Return image and mask under the same random rotation by 90° steps and horizontal flip."""
    k = int(rng.integers(4))
    image, mask = np.rot90(image, k, axes=(0, 1)), np.rot90(mask, k, axes=(0, 1))
    if rng.random() < 0.5:
        image, mask = image[:, ::-1], mask[:, ::-1]
    return image, mask


def to_model_input(images: np.ndarray) -> np.ndarray:
    """Return uint8 images as float32 in [0, 1], the scale the course's models expect."""
    return np.asarray(images, dtype=np.float32) / 255.0


class SegmentationBatches(keras.utils.PyDataset):
    """Batches of (float32 images in [0, 1], float32 masks of shape (N, H, W, 1))."""

    def __init__(
        self,
        images: np.ndarray,
        masks: np.ndarray,
        batch_size: int,
        *,
        shuffle: bool = False,
        augment: bool = False,
        seed: int = 0,
        workers: int = 2,
    ):
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=8)
        if len(images) != len(masks):
            raise ValueError(f"{len(images)} images but {len(masks)} masks")
        self.images, self.masks = images, masks
        self.batch_size = int(batch_size)
        self.shuffle, self.augment, self.seed = shuffle, augment, seed
        self.epoch = 0
        self.order = self._order()

    def _order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.images))
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.images))

    def __len__(self) -> int:
        return -(-len(self.images) // self.batch_size)

    def __getitem__(self, index: int):
        idx = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        images, masks = self.images[idx], self.masks[idx]
        if self.augment:
            # one generator per (seed, epoch, batch): the same batches whatever the thread order
            rng = np.random.default_rng([self.seed, self.epoch, index])
            pairs = [augment_pair(i, m, rng) for i, m in zip(images, masks)]
            images = np.stack([p[0] for p in pairs])
            masks = np.stack([p[1] for p in pairs])
        x = to_model_input(images)
        y = np.asarray(masks, dtype=np.float32)[..., None]
        return x, y

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = self._order()


def make_dataset(
    images: np.ndarray,
    masks: np.ndarray,
    batch_size: int,
    *,
    shuffle: bool = False,
    augment: bool = False,
    seed: int = 0,
) -> SegmentationBatches:
    """Return batches ready for `model.fit`; shuffle and augment for training, neither for evaluation."""
    return SegmentationBatches(images, masks, batch_size, shuffle=shuffle, augment=augment, seed=seed)
