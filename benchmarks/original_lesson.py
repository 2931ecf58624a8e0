"""The original lesson's networks, rebuilt from the description in issue #17, as a reference contender.

NOT course code: these reproduce the public lesson's design and its defects (see shared/datasets.md)
so the benchmarks can time the course's networks against what a learner would otherwise have run.

- TensorFlow / Keras: a U-Net with one 3×3 convolution per level, ReLU then batch normalisation
  (Keras's default momentum 0.99), max pooling, bilinear up-sampling, each encoder level run a second
  time to make its skip tensor, a sigmoid output and binary cross-entropy on probabilities, Adam.
- PyTorch: the same U-Net (batch norm with PyTorch's default momentum 0.1, `nn.BCELoss` on the
  sigmoid's output), and its SegNet, whose sigmoid output is fed to `nn.BCEWithLogitsLoss` (the
  sigmoid applied twice).

Widths follow the course's profiles (base filters doubled at each of `depth` levels, a bottleneck
twice the deepest), so both networks see the same input sizes and channel counts.
"""

from __future__ import annotations


def keras_unet(size: int, base_filters: int = 16, depth: int = 4):
    """Return the original lesson's Keras U-Net (probabilities out), not compiled."""
    import keras
    from keras import layers

    inputs = keras.Input((size, size, 3))
    encoders = []
    for level in range(depth):
        conv = layers.Conv2D(base_filters * 2**level, 3, padding="same")
        norm = layers.BatchNormalization()
        encoders.append(lambda x, conv=conv, norm=norm: norm(layers.ReLU()(conv(x))))
    x, skips = inputs, []
    for encoder in encoders:
        skips.append(encoder(x))  # the defect: the same layers run again, only to make the skip
        x = layers.MaxPooling2D()(encoder(x))
    x = layers.BatchNormalization()(layers.ReLU()(layers.Conv2D(base_filters * 2**depth, 3, padding="same")(x)))
    for level in reversed(range(depth)):
        x = layers.UpSampling2D(interpolation="bilinear")(x)
        x = layers.Concatenate()([x, skips[level]])
        x = layers.BatchNormalization()(layers.ReLU()(layers.Conv2D(base_filters * 2**level, 3, padding="same")(x)))
    probs = layers.Conv2D(1, 1, activation="sigmoid", dtype="float32")(x)
    return keras.Model(inputs, probs, name="original_unet")


def compile_keras(model, learning_rate: float = 1e-3):
    """Compile as the original lesson did (Adam, BCE on probabilities), with the course's Dice metric."""
    import keras

    from utils.models import OverlapMetric

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[OverlapMetric("dice", from_logits=False)],
    )
    return model


def torch_classes():
    """Return (OriginalUNet, OriginalSegNet, loss_for): PyTorch modules and the loss each was trained with."""
    import torch
    from torch import nn

    def level(c_in, c_out):
        return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(c_out))

    class OriginalUNet(nn.Module):
        """One convolution per level, encoder re-run for the skips, bilinear up-sampling, sigmoid out."""

        def __init__(self, base_filters: int = 16, depth: int = 4):
            super().__init__()
            widths = [base_filters * 2**i for i in range(depth + 1)]
            self.encoders = nn.ModuleList(level(a, b) for a, b in zip([3, *widths], widths[:depth]))
            self.pool = nn.MaxPool2d(2)
            self.bottleneck = level(widths[depth - 1], widths[depth])
            self.up = nn.UpsamplingBilinear2d(scale_factor=2)
            self.decoders = nn.ModuleList(level(widths[i + 1] + widths[i], widths[i]) for i in range(depth))
            self.head = nn.Sequential(nn.Conv2d(widths[0], 1, 1), nn.Sigmoid())

        def forward(self, x):
            skips = []
            for encoder in self.encoders:
                skips.append(encoder(x))  # the defect: run again, only to make the skip tensor
                x = self.pool(encoder(x))
            x = self.bottleneck(x)
            for i in reversed(range(len(skips))):
                x = self.decoders[i](torch.cat([self.up(x), skips[i]], dim=1))
            return self.head(x)

    class OriginalSegNet(nn.Module):
        """Encoder-decoder without skips, one convolution per level, ending in a sigmoid."""

        def __init__(self, base_filters: int = 16, depth: int = 4):
            super().__init__()
            widths = [base_filters * 2**i for i in range(depth)]
            self.encoders = nn.ModuleList(level(a, b) for a, b in zip([3, *widths], widths))
            self.pool = nn.MaxPool2d(2)
            self.up = nn.Upsample(scale_factor=2)
            self.decoders = nn.ModuleList(level(widths[i], widths[max(i - 1, 0)]) for i in range(depth))
            self.head = nn.Sequential(nn.Conv2d(widths[0], 1, 1), nn.Sigmoid())

        def forward(self, x):
            for encoder in self.encoders:
                x = self.pool(encoder(x))
            for i in reversed(range(len(self.decoders))):
                x = self.decoders[i](self.up(x))
            return self.head(x)

    def loss_for(model):
        # the U-Net: BCE on its probabilities; the SegNet: BCE-with-logits on them (sigmoid twice)
        return nn.BCEWithLogitsLoss() if isinstance(model, OriginalSegNet) else nn.BCELoss()

    return OriginalUNet, OriginalSegNet, loss_for
