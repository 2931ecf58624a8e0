"""The course's Keras U-Net, its loss and its metrics, written with `keras.ops` for any backend."""

from __future__ import annotations

import keras
from keras import layers, ops

from utils.errors import CourseError


def conv_block(x, filters: int, name: str):
    """Return x after two 3×3 convolutions, each followed by batch normalisation and ReLU."""
    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn{i}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
    return x


def build_unet(size: int = 128, base_filters: int = 16, depth: int = 4, *, channels: int = 3, name: str = "unet"):
    """Return a U-Net mapping (size, size, channels) images in [0, 1] to (size, size, 1) float32 logits.

    Each encoder level's output is computed once: it feeds both the next level (after pooling) and,
    through the skip connection, the decoder level of the same resolution.
    """
    if depth < 1 or size % (2**depth):
        raise CourseError(f"U-Net size {size} must be divisible by 2**depth = {2**depth}: choose another size or depth")
    inputs = keras.Input((size, size, channels), name="image")
    x = inputs
    skips = []
    for level in range(depth):
        x = conv_block(x, base_filters * 2**level, f"enc{level}")
        skips.append(x)  # kept for the decoder: no second pass through the encoder
        x = layers.MaxPooling2D(name=f"pool{level}")(x)
    x = conv_block(x, base_filters * 2**depth, "bottleneck")
    for level in reversed(range(depth)):
        filters = base_filters * 2**level
        x = layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=f"up{level}")(x)
        x = layers.Concatenate(name=f"skip{level}")([x, skips[level]])
        x = conv_block(x, filters, f"dec{level}")
    # float32 logits even under mixed precision: the loss and the threshold need the full range
    logits = layers.Conv2D(1, 1, dtype="float32", name="logits")(x)
    return keras.Model(inputs, logits, name=name)


@keras.saving.register_keras_serializable(package="segcourse")
class SegmentationLoss(keras.losses.Loss):
    """Pixel-wise binary cross-entropy on logits, plus `dice_weight` × soft Dice loss."""

    def __init__(self, dice_weight: float = 0.0, name: str = "bce_dice", **kwargs):
        super().__init__(name=name, **kwargs)
        self.dice_weight = float(dice_weight)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "float32")
        y_pred = ops.cast(y_pred, "float32")
        bce = ops.mean(ops.binary_crossentropy(y_true, y_pred, from_logits=True), axis=(1, 2, 3))
        if not self.dice_weight:
            return bce
        probs = ops.sigmoid(y_pred)
        inter = ops.sum(probs * y_true, axis=(1, 2, 3))
        total = ops.sum(probs, axis=(1, 2, 3)) + ops.sum(y_true, axis=(1, 2, 3))
        soft_dice = (2.0 * inter + 1.0) / (total + 1.0)
        return bce + self.dice_weight * (1.0 - soft_dice)

    def get_config(self):
        return {**super().get_config(), "dice_weight": self.dice_weight}


@keras.saving.register_keras_serializable(package="segcourse")
class OverlapMetric(keras.metrics.Metric):
    """Mean per-image Dice or IoU of thresholded predictions (1 when truth and prediction are empty).

    `from_logits=True` thresholds at 0 (probability 0.5); otherwise at 0.5.
    """

    def __init__(self, kind: str = "dice", from_logits: bool = True, name: str | None = None, **kwargs):
        if kind not in ("dice", "iou"):
            raise ValueError(f"kind must be 'dice' or 'iou', not {kind!r}")
        super().__init__(name=name or kind, **kwargs)
        self.kind = kind
        self.from_logits = from_logits
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        cut = 0.0 if self.from_logits else 0.5
        pred = ops.cast(ops.cast(y_pred, "float32") > cut, "float32")
        true = ops.cast(ops.cast(y_true, "float32") > 0.5, "float32")
        axes = tuple(range(1, len(pred.shape)))
        inter = ops.sum(pred * true, axis=axes)
        total = ops.sum(pred, axis=axes) + ops.sum(true, axis=axes)
        denom = total if self.kind == "dice" else total - inter
        numer = 2.0 * inter if self.kind == "dice" else inter
        score = ops.where(denom > 0, numer / ops.maximum(denom, 1.0), 1.0)
        self.total.assign_add(ops.sum(score))
        self.count.assign_add(ops.cast(ops.shape(score)[0], "float32"))

    def result(self):
        return ops.divide_no_nan(self.total, self.count)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "from_logits": self.from_logits}


def compile_segmenter(model, learning_rate: float = 1e-3, dice_weight: float = 0.0, weight_decay: float = 1e-4):
    """Compile `model` (logits out) with AdamW, BCE-from-logits [+ Dice] and Dice / IoU metrics; return it.

    The optimizer's slots are created here, for a built model. Left to the first training step, they
    would be created while TensorFlow traces that step, which then traces it a second time: about 3 s
    more before a U-Net's first batch on a CPU. Call it in the scope the model was built in.
    """
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay),
        loss=SegmentationLoss(dice_weight),
        metrics=[OverlapMetric("dice"), OverlapMetric("iou")],
    )
    if model.built:
        model.optimizer.build(model.trainable_variables)
    return model
