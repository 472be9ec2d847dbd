"""Segmentation losses for partial labels, written with ``keras.ops`` only (any Keras backend).

Labels arrive as integers per pixel: 0 means "no label" (unlabelled or image nodata) and 1..C
are output channels 0..C-1 plus one. Unlabelled pixels are excluded from every loss, so a mask
with a few digitised polygons trains without treating the rest of the scene as a class.
Every loss returns one scalar for the batch: a mean over the labelled pixels (weighted where the
loss is class-weighted), so batches with few labels do not count more than batches with many.
"""
from __future__ import annotations

import keras
from keras import ops

from .presets import LOSSES  # noqa: F401  (re-exported: the names make_loss builds)

EPSILON = 1e-7
PACKAGE = "landcoverunet"


def _prepare(y_true, y_pred):
    """One-hot targets (zero on unlabelled pixels), the valid mask and clipped probabilities."""
    classes = y_pred.shape[-1]
    labels = ops.cast(y_true, "int32")
    if len(labels.shape) == len(y_pred.shape):
        labels = ops.squeeze(labels, axis=-1)
    probabilities = ops.clip(ops.cast(y_pred, "float32"), EPSILON, 1.0 - EPSILON)
    valid = ops.cast(labels > 0, "float32")
    onehot = ops.one_hot(ops.maximum(labels - 1, 0), classes, dtype="float32")
    onehot = onehot * ops.expand_dims(valid, -1)
    return onehot, valid, probabilities


def _pixel_weights(onehot, valid, class_weights):
    """Per-pixel weight: its class's weight on labelled pixels, 0 elsewhere."""
    if class_weights is None:
        return valid
    weights = ops.convert_to_tensor(class_weights, dtype="float32")
    return ops.sum(onehot * weights, axis=-1)


def _weighted_mean(pixel_loss, onehot, valid, class_weights):
    """Mean of a per-pixel loss over the labelled pixels, each weighted by its class's weight."""
    weights = _pixel_weights(onehot, valid, class_weights)
    return ops.sum(pixel_loss * weights) / ops.maximum(ops.sum(weights), EPSILON)


class _MaskedLoss(keras.losses.Loss):
    """Base: keeps the optional class weights in the config so the loss serialises."""

    def __init__(self, class_weights=None, name=None, reduction="sum_over_batch_size",
                 dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.class_weights = None if class_weights is None else [float(w) for w in
                                                                 class_weights]

    def get_config(self) -> dict:
        config = super().get_config()
        config["class_weights"] = self.class_weights
        return config

    def __call__(self, y_true, y_pred, sample_weight=None):
        return _per_device(super().__call__(y_true, y_pred, sample_weight))


def _per_device(loss):
    """A device's share of the batch loss when several train at once (``tf.distribute``).

    The devices' gradients are summed, so each device's mean must count 1 / devices. Keras scales
    a per-pixel loss in its own reduction, but returns a scalar, which every loss here is, as is;
    without this, two GPUs would train at twice the learning rate.
    """
    if keras.backend.backend() != "tensorflow":
        return loss
    import tensorflow as tf

    context = tf.distribute.get_replica_context()  # None outside the devices' step
    replicas = context.num_replicas_in_sync if context is not None else 1
    return loss / replicas if replicas > 1 else loss


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaskedCrossEntropy(_MaskedLoss):
    """Categorical cross-entropy over labelled pixels, optionally class-weighted.

    With class weights, the result is the weighted mean (sum of w * ce over the sum of w), as in
    PyTorch, so the loss scale does not depend on how rare the classes in a batch are.

    Args:
        class_weights: optional weight per output channel.
        label_smoothing: the target of a labelled pixel is (1 - s) on its class plus s / C on
            every class, so the network is not pushed to full certainty on a few polygons.
    """

    def __init__(self, class_weights=None, label_smoothing: float = 0.0,
                 name="masked_cross_entropy", **kwargs):
        super().__init__(class_weights=class_weights, name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        onehot, valid, probabilities = _prepare(y_true, y_pred)
        target = onehot
        if self.label_smoothing:
            classes = y_pred.shape[-1]
            target = (onehot * (1.0 - self.label_smoothing)
                      + ops.expand_dims(valid, -1) * (self.label_smoothing / classes))
        pixel_loss = -ops.sum(target * ops.log(probabilities), axis=-1)
        return _weighted_mean(pixel_loss, onehot, valid, self.class_weights)

    def get_config(self) -> dict:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package=PACKAGE)
class FocalLoss(_MaskedLoss):
    """Focal loss (Lin et al. 2017): cross-entropy scaled down on pixels already right.

    Args:
        gamma: focusing strength; 0 gives cross-entropy.
        class_weights: optional per-class alpha.
    """

    def __init__(self, gamma: float = 2.0, class_weights=None, name="focal", **kwargs):
        super().__init__(class_weights=class_weights, name=name, **kwargs)
        self.gamma = float(gamma)

    def call(self, y_true, y_pred):
        onehot, valid, probabilities = _prepare(y_true, y_pred)
        focus = ops.power(1.0 - probabilities, self.gamma)
        pixel_loss = -ops.sum(onehot * focus * ops.log(probabilities), axis=-1)
        return _weighted_mean(pixel_loss, onehot, valid, self.class_weights)

    def get_config(self) -> dict:
        return {**super().get_config(), "gamma": self.gamma}


@keras.saving.register_keras_serializable(package=PACKAGE)
class DiceLoss(_MaskedLoss):
    """Soft Dice loss, one minus the mean per-class Dice over the labelled pixels of the batch.

    Dice looks at overlap per class rather than per pixel, so rare classes count as much as
    common ones without explicit weights.
    """

    def __init__(self, smooth: float = 1.0, class_weights=None, name="dice", **kwargs):
        super().__init__(class_weights=class_weights, name=name, **kwargs)
        self.smooth = float(smooth)

    def call(self, y_true, y_pred):
        onehot, valid, probabilities = _prepare(y_true, y_pred)
        probabilities = probabilities * ops.expand_dims(valid, -1)
        axes = tuple(range(len(probabilities.shape) - 1))
        intersection = ops.sum(onehot * probabilities, axis=axes)
        total = ops.sum(onehot, axis=axes) + ops.sum(probabilities, axis=axes)
        dice = (2.0 * intersection + self.smooth) / (total + self.smooth)
        return 1.0 - ops.mean(dice)

    def get_config(self) -> dict:
        return {**super().get_config(), "smooth": self.smooth}


@keras.saving.register_keras_serializable(package=PACKAGE)
class FocalDiceLoss(_MaskedLoss):
    """Focal loss plus Dice loss: pixel-wise focus on hard pixels, class-wise overlap."""

    def __init__(self, gamma: float = 2.0, smooth: float = 1.0, class_weights=None,
                 name="focal_dice", **kwargs):
        super().__init__(class_weights=class_weights, name=name, **kwargs)
        self.gamma, self.smooth = float(gamma), float(smooth)
        self._focal = FocalLoss(gamma, class_weights)
        self._dice = DiceLoss(smooth)

    def call(self, y_true, y_pred):
        return self._focal.call(y_true, y_pred) + self._dice.call(y_true, y_pred)

    def get_config(self) -> dict:
        return {**super().get_config(), "gamma": self.gamma, "smooth": self.smooth}


class PseudoLabelLoss(_MaskedLoss):
    """A masked loss on the labels plus a soft cross-entropy on pseudo-labelled pixels.

    Targets are either plain labels (then only the base loss counts, as in validation) or packed
    as (..., classes + 2): the label, the pseudo-label probabilities and their per-pixel weight.
    The pseudo part is a weighted mean over the pseudo-labelled pixels, times ``weight``.

    Only used while training: model files are saved without their loss.

    Args:
        base: the loss on the labelled pixels.
        weight: weight of the pseudo part.
    """

    def __init__(self, base: keras.losses.Loss, weight: float = 0.5, name="pseudo_label",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.base, self.weight = base, float(weight)

    def call(self, y_true, y_pred):
        if len(y_true.shape) != len(y_pred.shape) or y_true.shape[-1] == 1:
            return self.base.call(y_true, y_pred)
        labels, soft, given = y_true[..., 0], y_true[..., 1:-1], y_true[..., -1]
        probabilities = ops.clip(ops.cast(y_pred, "float32"), EPSILON, 1.0 - EPSILON)
        pixel_loss = -ops.sum(soft * ops.log(probabilities), axis=-1)
        pseudo = ops.sum(pixel_loss * given) / ops.maximum(ops.sum(given), EPSILON)
        return self.base.call(labels, y_pred) + self.weight * pseudo


def make_loss(name: str, class_weights=None, label_smoothing: float = 0.0) -> keras.losses.Loss:
    """Builds the named loss; class weights apply to weighted cross-entropy, focal and focal+dice.

    Args:
        name: one of :data:`LOSSES`.
        class_weights: one weight per output channel.
        label_smoothing: for the two cross-entropies (see :class:`MaskedCrossEntropy`).
    """
    if name == "cross_entropy":
        return MaskedCrossEntropy(label_smoothing=label_smoothing)
    if name == "weighted_cross_entropy":
        return MaskedCrossEntropy(class_weights=class_weights, label_smoothing=label_smoothing)
    if name == "focal":
        return FocalLoss(class_weights=class_weights)
    if name == "dice":
        return DiceLoss()
    if name == "focal_dice":
        return FocalDiceLoss(class_weights=class_weights)
    raise ValueError(f"Unknown loss '{name}'; use one of {', '.join(LOSSES)}.")


CUSTOM_OBJECTS = {f"{PACKAGE}>{cls.__name__}": cls for cls in
                  (MaskedCrossEntropy, FocalLoss, DiceLoss, FocalDiceLoss)}
CUSTOM_OBJECTS.update({cls.__name__: cls for cls in
                       (MaskedCrossEntropy, FocalLoss, DiceLoss, FocalDiceLoss)})
