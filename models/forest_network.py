"""A per-pixel network that a random forest is distilled into: the forest's map as a Keras model.

The training run fits a random forest (the teacher, ``backend/training/teacher.py``) on the
user's labels. Where the U-Net does not beat it on polygons it never saw, the model file should
still map at least as well as the forest, yet classify without scikit-learn. This network is
how: fixed (untrained) convolutions compute each pixel's neighbourhood features, like the
forest's (the bands, and per band the mean and the spread over 3 x 3 and 7 x 7 pixels), and a
small per-pixel head (1 x 1 convolutions) learns the forest's probabilities from them.

Only layer types of the U-Net builder are used (``Conv2D``, ``BatchNormalization``,
``Activation`` relu/softmax, ``Concatenate``), so the file passes ``backend/model/keras_safety.py``, loads
under every Keras backend, averages with a U-Net (``models/ensemble.py``) and exports to ONNX
unchanged. The spread is the window mean of ``|x - local mean|`` written as two ReLUs (no
square root or product layer is needed), a texture figure like the forest's standard deviation.
"""
from __future__ import annotations

import keras
import numpy as np
from keras import layers

WINDOWS = (3, 7)
"""Edges in pixels of the windows whose band means and spreads the head sees (the teacher's)."""
FEATURES = "pixel_features"
"""The name of the layer whose output is the head's input (every feature of a pixel)."""
HEAD_WIDTH = 128
"""Width of the head's two hidden 1 x 1 layers."""


def _fixed(x, filters: int, kernel: np.ndarray, name: str):
    """A Conv2D with a given kernel that training never changes (zero padding at the edges)."""
    layer = layers.Conv2D(filters, kernel.shape[0], padding="same", use_bias=False,
                          trainable=False, name=name)
    out = layer(x)
    layer.set_weights([kernel.astype(np.float32)])
    return out


def _mean_kernel(bands: int, size: int) -> np.ndarray:
    """(size, size, bands, bands): each band's mean over the window."""
    kernel = np.zeros((size, size, bands, bands), np.float32)
    for b in range(bands):
        kernel[:, :, b, b] = 1.0 / size ** 2
    return kernel


def _deviation_kernel(bands: int, size: int) -> np.ndarray:
    """(size, size, bands, 2 bands): x - mean(x) and mean(x) - x per band."""
    kernel = np.zeros((size, size, bands, 2 * bands), np.float32)
    centre = size // 2
    for b in range(bands):
        kernel[:, :, b, b] = -1.0 / size ** 2
        kernel[centre, centre, b, b] += 1.0
        kernel[:, :, b, bands + b] = -kernel[:, :, b, b]
    return kernel


def _spread_kernel(bands: int, size: int) -> np.ndarray:
    """(size, size, 2 bands, bands): the window mean of the two ReLU halves, i.e. of |x - m|."""
    kernel = np.zeros((size, size, 2 * bands, bands), np.float32)
    for b in range(bands):
        kernel[:, :, b, b] = kernel[:, :, bands + b, b] = 1.0 / size ** 2
    return kernel


def build_forest_network(bands: int, classes: int, windows: tuple[int, ...] = WINDOWS,
                         width: int = HEAD_WIDTH, name: str = "forest_network") -> keras.Model:
    """(H, W, bands) normalised pixels -> (H, W, classes) probabilities, any H and W."""
    inputs = keras.Input(shape=(None, None, bands), name="image")
    columns = [inputs]
    for size in windows:
        columns.append(_fixed(inputs, bands, _mean_kernel(bands, size), f"mean{size}"))
        deviation = _fixed(inputs, 2 * bands, _deviation_kernel(bands, size), f"deviation{size}")
        deviation = layers.Activation("relu", name=f"deviation{size}_relu")(deviation)
        columns.append(_fixed(deviation, bands, _spread_kernel(bands, size), f"spread{size}"))
    x = layers.Concatenate(name=FEATURES)(columns)
    x = layers.BatchNormalization(momentum=0.9, name="head_bn0")(x)
    for i in (1, 2):
        x = layers.Conv2D(width, 1, activation="relu", name=f"head_conv{i}")(x)
    outputs = layers.Conv2D(classes, 1, activation="softmax", dtype="float32",
                            name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)


def feature_model(network: keras.Model) -> keras.Model:
    """The fixed part: normalised pixels -> every pixel's features (shares the layers)."""
    return keras.Model(network.input, network.get_layer(FEATURES).output)


def dense_head(network: keras.Model) -> keras.Model:
    """The trained part as a per-pixel model over feature vectors, (N, F) -> (N, classes):
    Dense layers train far faster than 1 x 1 convolutions on 1 x 1 images. Its weights are
    put back into the network with :func:`load_head`."""
    width = network.get_layer("head_conv1").filters
    features = keras.Input(shape=(network.get_layer(FEATURES).output.shape[-1],))
    x = layers.BatchNormalization(momentum=0.9, name="head_bn0")(features)
    for i in (1, 2):
        x = layers.Dense(width, activation="relu", name=f"head_conv{i}")(x)
    outputs = layers.Dense(network.get_layer("probabilities").filters, activation="softmax",
                           name="probabilities")(x)
    return keras.Model(features, outputs)


def load_head(network: keras.Model, head: keras.Model) -> None:
    """Copies a trained :func:`dense_head` into the network's 1 x 1 layers."""
    for layer in head.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if isinstance(layer, layers.Dense):
            weights = [weights[0][None, None]] + weights[1:]
        network.get_layer(layer.name).set_weights(weights)


def field_radius(windows: tuple[int, ...] = WINDOWS) -> int:
    """How far (pixels) from a pixel the features look: a window's half edge, twice."""
    return 2 * (max(windows) // 2)
