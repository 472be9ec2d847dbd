"""The U-Net: a pure functional Keras builder (after the keras-io segmentation example).

Only ``keras`` layers are used, so the same model builds and trains under every Keras backend.
The network is fully convolutional: any input height and width that is a multiple of
``2 ** depth`` works, so inference windows may be larger than the training tiles.
"""
from __future__ import annotations

import keras
from keras import layers

from .presets import PRESETS, UNetConfig  # noqa: F401  (re-exported: the builder's settings)


def conv_block(x, filters: int, name: str):
    """Two 3x3 conv - batch-norm - ReLU layers."""
    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        # momentum 0.9: the moving statistics settle within a few dozen steps, which matters
        # for short trainings on few labels (the default 0.99 needs hundreds).
        x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn{i}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
    return x


def spectral_block(x, width: int, name: str, count: int = 2):
    """1 x 1 conv - batch-norm - ReLU layers: a per-pixel network over the bands."""
    for i in range(1, count + 1):
        x = layers.Conv2D(width, 1, use_bias=False, name=f"{name}_conv{i}")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn{i}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
    return x


def build_unet(bands: int, classes: int, config: UNetConfig = UNetConfig(),
               name: str = "unet") -> keras.Model:
    """Builds a U-Net that maps (H, W, bands) images to (H, W, classes) softmax probabilities.

    Args:
        bands: number of input bands.
        classes: number of output classes (channel i is the i-th class of the class map).
        config: depth, filters and dropout.
        name: the model's name.
    """
    inputs = keras.Input(shape=(None, None, bands), name="image")
    x = inputs
    if config.spectral:
        x = spectral_block(inputs, config.spectral, "spectral")
        pixel = x
    skips = []
    for level in range(config.depth):
        x = conv_block(x, config.filters * 2 ** level, f"down{level}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"pool{level}")(x)
    x = conv_block(x, config.filters * 2 ** config.depth, "bottleneck")
    if config.dropout and not config.spectral:
        x = layers.Dropout(config.dropout, name="bottleneck_dropout")(x)
    for level in reversed(range(config.depth)):
        x = layers.Conv2DTranspose(config.filters * 2 ** level, 2, strides=2, padding="same",
                                   name=f"up{level}_transpose")(x)
        x = layers.Concatenate(name=f"up{level}_concat")([x, skips[level]])
        x = conv_block(x, config.filters * 2 ** level, f"up{level}")
    if config.spectral:
        # Dropping context features in training makes the per-pixel path carry the decision:
        # with a few dozen polygons, context is what a network memorises first.
        if config.dropout:
            x = layers.Dropout(config.dropout, name="context_dropout")(x)
        x = layers.Concatenate(name="fuse_concat")([pixel, x])
        x = spectral_block(x, config.spectral, "fuse", count=1)
    # float32 output keeps the softmax stable under mixed precision.
    outputs = layers.Conv2D(classes, 1, activation="softmax", dtype="float32",
                            name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)
