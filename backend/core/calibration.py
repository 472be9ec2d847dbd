"""Probabilities that mean what they say: label smoothing undone, one temperature, and the
calibration error.

A network's class probabilities are often over- or under-confident: of the pixels it gives
0.9, far fewer or more than 90 % are right. Two maps bring them back:

- **Label smoothing undone.** The U-Net trains on targets ``(1 - s) y + s / K`` (``s``: the
  label smoothing, ``K`` classes), so its best output for a pixel it is sure of is
  ``1 - s + s / K``, never 1: its probabilities are under-confident by construction. They are
  read back in the units of the labels: ``(p - s / K) / (1 - s)``, clipped and renormalised.
  Training stores ``s`` in the model file (``ModelMetadata.label_smoothing``) and
  classification undoes it (``classify/outputs.py``). The average of the U-Net and the forest
  network is read the same way (the forest network learns the teacher's vote shares, as
  under-confident); a forest network alone is stored with 0. On the held-out bench it lowered
  the calibration error on six of eight datasets and raised it by at most 0.03 on the other two
  (docs/benchmarks.md).
- **A temperature** (Guo et al. 2017, "On calibration of modern neural networks"): each
  probability vector p becomes p ** (1 / T), renormalised. Model files of an earlier version
  carry one fitted on validation; training no longer fits it (on the bench, a temperature
  fitted on the folds' held-out features tripled the error on polygons no run saw).

Both maps are monotone in every class, so the chosen class never changes: the map is the same;
the confidence and probability rasters, and the suggestions ranked from them, change.

The calibration error is the expected calibration error (ECE): pixels binned by confidence
(the chosen class's probability) into :data:`BINS` equal bins, and the gap between each bin's
accuracy and mean confidence averaged with the bins' shares of the pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BINS = 15
"""Equal-width confidence bins of the calibration error (the usual choice, Guo et al. 2017)."""
LIMITS = (0.25, 5.0)
"""The temperatures allowed. Where validation gets every pixel right, the likelihood keeps
rising as the temperature falls (every probability pushed to 0 or 1); the lower limit stops
that at raising the probabilities to the fourth power. Fitted temperatures of networks are
usually 0.5 to 3 (Guo et al. 2017)."""
TINY = 1e-7
"""Probabilities are clipped to this before their logarithm."""
MAX_SMOOTHING = 0.5
"""The most label smoothing a model file may claim (training uses ``config.LABEL_SMOOTHING``)."""


def smooth_labels(probabilities: np.ndarray, smoothing: float, axis: int = -1) -> np.ndarray:
    """``(1 - s) p + s / K``: the targets a network trained with label smoothing ``s`` learns
    for labels (or probabilities) ``p``; :func:`undo_label_smoothing` reads them back."""
    return (1.0 - smoothing) * probabilities + smoothing / probabilities.shape[axis]


def undo_label_smoothing(probabilities: np.ndarray, smoothing: float, axis: int = -1
                         ) -> np.ndarray:
    """``probabilities`` (classes along ``axis``) of a network trained on labels smoothed by
    ``smoothing``, in the units of the labels: ``(p - s / K) / (1 - s)``, clipped at
    :data:`TINY` and renormalised; as they are when ``smoothing`` is 0."""
    if not smoothing:
        return probabilities
    classes = probabilities.shape[axis]
    sharp = np.clip((probabilities - smoothing / classes) / (1.0 - smoothing), TINY, None)
    return (sharp / sharp.sum(axis=axis, keepdims=True)).astype(probabilities.dtype)


def calibrate_probabilities(probabilities: np.ndarray, smoothing: float, temperature: float,
                            axis: int = -1) -> np.ndarray:
    """What a model file's probabilities mean: label smoothing undone, then its temperature."""
    return apply_temperature(undo_label_smoothing(probabilities, smoothing, axis), temperature,
                             axis)


def apply_temperature(probabilities: np.ndarray, temperature: float, axis: int = -1
                      ) -> np.ndarray:
    """``probabilities`` (any shape, classes along ``axis``) raised to 1 / T and renormalised;
    as they are when T is 1."""
    if temperature == 1.0:
        return probabilities
    logs = np.log(np.clip(probabilities, TINY, 1.0)) / temperature
    logs -= logs.max(axis=axis, keepdims=True)
    scaled = np.exp(logs)
    return (scaled / scaled.sum(axis=axis, keepdims=True)).astype(probabilities.dtype)


@dataclass
class Reliability:
    """Per confidence bin: the pixels in it, their mean confidence and their accuracy (NaN in
    an empty bin); and the expected calibration error over all bins."""

    counts: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    ece: float


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS
                ) -> Reliability:
    """The reliability table of (pixels, classes) probabilities against true channels."""
    confidence = probabilities.max(-1).astype(np.float64)
    right = (probabilities.argmax(-1) == labels).astype(np.float64)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    counts = np.bincount(which, minlength=bins).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(which, confidence, bins) / counts
        accuracy = np.bincount(which, right, bins) / counts
    used = counts > 0
    ece = float(np.sum(counts[used] * np.abs(accuracy[used] - mean_confidence[used]))
                / max(counts.sum(), 1))
    return Reliability(counts, mean_confidence, accuracy, ece)


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of the true channels."""
    from scipy.optimize import minimize_scalar

    logs = np.log(np.clip(probabilities.astype(np.float64), TINY, 1.0))
    rows = np.arange(len(labels))

    def loss(log_temperature: float) -> float:
        scaled = logs / np.exp(log_temperature)
        scaled -= scaled.max(-1, keepdims=True)
        return float(np.mean(np.log(np.exp(scaled).sum(-1)) - scaled[rows, labels]))

    found = minimize_scalar(loss, bounds=tuple(np.log(LIMITS)), method="bounded",
                            options={"xatol": 1e-3})
    return float(np.exp(found.x))
