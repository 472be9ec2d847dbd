"""Segmentation metrics for partial labels, written with ``keras.ops`` only (any Keras backend).

As in the losses, label 0 means "no label" and 1..C are output channels plus one; unlabelled
pixels never count. Both metrics accumulate a confusion matrix over batches, so an epoch's value
is computed over all its pixels rather than averaged per batch.
"""
from __future__ import annotations

import keras
from keras import ops

from .losses import PACKAGE


def confusion_counts(y_true, y_pred, classes: int):
    """Confusion matrix (rows: true channel, columns: predicted channel) of labelled pixels.

    Args:
        y_true: integer labels (0 = no label, 1..C).
        y_pred: class probabilities, channels last.
        classes: number of output channels C.
    """
    if len(y_true.shape) == len(y_pred.shape):  # (..., 1), or packed with pseudo-labels
        y_true = y_true[..., 0]
    # one-hot products rather than a bincount: shapes stay static, so the same code traces
    # under jax.jit and torch.compile as well as tf.function
    labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
    predicted = ops.reshape(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), (-1,))
    valid = ops.cast(labels > 0, "float32")
    truth = ops.one_hot(ops.maximum(labels - 1, 0), classes, dtype="float32") * valid[:, None]
    return ops.matmul(ops.transpose(truth), ops.one_hot(predicted, classes, dtype="float32"))


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaskedMeanIoU(keras.metrics.Metric):
    """Mean intersection over union over labelled pixels only, of the classes the labels hold.

    The definition of ``backend/core/metrics.py`` (the validation and accuracy figures): the
    mean over classes present in the labels; a class only predicted counts in the others'
    unions, not in the mean. An epoch without a rare class is not rewarded or punished for it.
    """

    def __init__(self, num_classes: int, name: str = "miou", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.num_classes = int(num_classes)
        self.matrix = self.add_variable(shape=(self.num_classes, self.num_classes),
                                        initializer="zeros", dtype="float32", name="matrix")

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.matrix.assign(self.matrix + confusion_counts(y_true, y_pred, self.num_classes))

    def result(self):
        matrix = ops.convert_to_tensor(self.matrix)
        true_positive = ops.diagonal(matrix)
        labelled = ops.sum(matrix, axis=1)
        union = ops.sum(matrix, axis=0) + labelled - true_positive
        present = ops.cast(labelled > 0, "float32")
        iou = true_positive / ops.maximum(union, 1.0)
        return ops.sum(iou * present) / ops.maximum(ops.sum(present), 1.0)

    def reset_state(self):
        self.matrix.assign(ops.zeros((self.num_classes, self.num_classes), dtype="float32"))

    def get_config(self) -> dict:
        return {"num_classes": self.num_classes, "name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaskedAccuracy(keras.metrics.Metric):
    """Share of labelled pixels whose most probable class is the label."""

    def __init__(self, name: str = "accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.correct = self.add_variable(shape=(), initializer="zeros", dtype="float32",
                                         name="correct")
        self.total = self.add_variable(shape=(), initializer="zeros", dtype="float32",
                                       name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = ops.cast(y_true, "int32")
        if len(labels.shape) == len(y_pred.shape):
            labels = ops.squeeze(labels, axis=-1)
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32") + 1
        valid = ops.cast(labels > 0, "float32")
        self.correct.assign(self.correct + ops.sum(valid * ops.cast(predicted == labels,
                                                                     "float32")))
        self.total.assign(self.total + ops.sum(valid))

    def result(self):
        return self.correct / ops.maximum(self.total, 1.0)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)


CUSTOM_OBJECTS = {f"{PACKAGE}>{cls.__name__}": cls for cls in (MaskedMeanIoU, MaskedAccuracy)}
CUSTOM_OBJECTS.update({cls.__name__: cls for cls in (MaskedMeanIoU, MaskedAccuracy)})
