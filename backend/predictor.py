"""The network as a function from a batch of normalised windows to class probabilities.

Test-time augmentation (TTA) predicts every batch under several flips / rotations, undoes each
transform on the probabilities and averages them. Keras is imported only inside the work.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

TTA_NONE = "none"
TTA_FLIPS = "flips"
TTA_DIHEDRAL = "dihedral"
TTA_MODES = (TTA_NONE, TTA_FLIPS, TTA_DIHEDRAL)

# A transform is (transpose, flip rows, flip columns) applied in that order to (n, h, w, c).
_TRANSFORMS = {
    TTA_NONE: [(False, False, False)],
    TTA_FLIPS: [(False, False, False), (False, True, False), (False, False, True),
                (False, True, True)],
    TTA_DIHEDRAL: [(t, r, c) for t in (False, True) for r in (False, True) for c in (False, True)],
}


def _forward(batch: np.ndarray, transform: tuple[bool, bool, bool]) -> np.ndarray:
    transpose, rows, cols = transform
    if transpose:
        batch = batch.transpose(0, 2, 1, 3)
    if rows:
        batch = batch[:, ::-1]
    if cols:
        batch = batch[:, :, ::-1]
    return np.ascontiguousarray(batch)


def _inverse(probabilities: np.ndarray, transform: tuple[bool, bool, bool]) -> np.ndarray:
    transpose, rows, cols = transform
    if cols:
        probabilities = probabilities[:, :, ::-1]
    if rows:
        probabilities = probabilities[:, ::-1]
    if transpose:
        probabilities = probabilities.transpose(0, 2, 1, 3)
    return probabilities


def transform_count(tta: str) -> int:
    """How many forward passes one batch costs under a TTA mode."""
    return len(_TRANSFORMS[tta])


def _forward_function(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    """The model's inference call, traced once for any batch size and window size.

    Under TensorFlow, one ``tf.function`` with unknown batch, height and width serves every
    window shape (edge windows, TTA transposes) without re-tracing; other backends use
    ``predict_on_batch``.
    """
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        spec = tf.TensorSpec([None, None, None, model.input_shape[-1]], tf.float32)
        function = tf.function(lambda x: model(x, training=False), input_signature=[spec])
        return lambda batch: _writable(function(batch).numpy())
    return lambda batch: _writable(np.asarray(model.predict_on_batch(batch), dtype=np.float32))


def _writable(array: np.ndarray) -> np.ndarray:
    """The caller weights the probabilities in place; TensorFlow may hand out read-only views."""
    return array if array.flags.writeable else array.copy()


def make_predictor(model: Any, tta: str = TTA_NONE) -> Callable[[np.ndarray], np.ndarray]:
    """Wraps a Keras model: (n, h, w, bands) float32 -> (n, h, w, classes) float32 probabilities.

    Args:
        model: a loaded Keras model (softmax output).
        tta: "none", "flips" (4 flips) or "dihedral" (all 8 flips and rotations).
    """
    if tta not in _TRANSFORMS:
        raise ValueError(f"unknown TTA mode {tta!r}")
    transforms = _TRANSFORMS[tta]

    run = _forward_function(model)

    def predict(batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if len(transforms) == 1:
            return run(batch)
        total = None
        for transform in transforms:
            probabilities = _inverse(run(_forward(batch, transform)), transform)
            total = probabilities.copy() if total is None else total + probabilities
        return total / np.float32(len(transforms))

    return predict
