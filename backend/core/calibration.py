"""Probabilities that mean what they say: one temperature, and the calibration error.

A network's class probabilities are often over- or under-confident: of the pixels it gives
0.9, far fewer or more than 90 % are right. Temperature scaling (Guo et al. 2017, "On
calibration of modern neural networks") fixes that with one number T fitted on held-out
labels: each probability vector p becomes p ** (1 / T), renormalised, which is the softmax of
the logits divided by T for a softmax network and, for an average of networks, the same
monotone map of every pixel's probabilities. The chosen class never changes, so the map is the
same; the confidence and probability rasters, and the suggestions ranked from them, change.

The calibration error is the expected calibration error (ECE): pixels binned by confidence
(the chosen class's probability) into :data:`BINS` equal bins, and the gap between each bin's
accuracy and mean confidence averaged with the bins' shares of the pixels.

Training fits T on the held-out features (``training/temperature.py``), the model file carries it
(``ModelMetadata.temperature``) and classification applies it (``classify/outputs.py``).
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
