"""The temperature of the model file, fitted on held-out features (``core/calibration.py``).

Each validated run keeps, every epoch, the U-Net's probabilities on a fixed sample of the
held-out labelled pixels (:class:`HeldOutSample`), and once the forest network's on the same
pixels. Once the epoch and the candidate are chosen (``choice.py``), the written candidate's
probabilities at that epoch, pooled over the folds, fit the temperature. The model file is the
final fit, trained on every feature, so the temperature of the validated runs stands in for
its own; on the held-out bench that is checked against polygons no run saw
(docs/benchmarks.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.calibration import Reliability, apply_temperature, fit_temperature, reliability
from .interval import FEW_FEATURES

SAMPLE_PIXELS = 10_000
"""Held-out labelled pixels kept per validated run (a few MB over 50 epochs)."""
FEWEST_PIXELS = 200
"""Below this many held-out pixels the temperature stays 1 (too few to fit one number)."""


@dataclass
class HeldOutSample:
    """A fixed sample of the labelled pixels of the validation windows.

    Attributes:
        index: sorted flat indices into the windows' (N, S, S) labels.
        labels: the sampled pixels' true output channels (0-based).
        window: pixels per window (S * S).
    """

    index: np.ndarray
    labels: np.ndarray
    window: int

    @classmethod
    def of(cls, labels: np.ndarray, seed: int) -> "HeldOutSample":
        """At most :data:`SAMPLE_PIXELS` of the labelled pixels (labels 1..C), drawn once."""
        flat = np.flatnonzero(labels.ravel() > 0)
        if len(flat) > SAMPLE_PIXELS:
            flat = np.sort(np.random.default_rng([seed, 29]).choice(flat, SAMPLE_PIXELS,
                                                                    replace=False))
        return cls(flat, labels.ravel()[flat].astype(np.int64) - 1,
                   int(np.prod(labels.shape[1:])))

    def take(self, first_window: int, probabilities: np.ndarray) -> np.ndarray:
        """The sampled pixels' rows of a batch of windows' (B, S, S, C) probabilities."""
        start = first_window * self.window
        stop = start + len(probabilities) * self.window
        inside = self.index[(self.index >= start) & (self.index < stop)] - start
        return np.asarray(probabilities).reshape(-1, probabilities.shape[-1])[inside]


@dataclass
class Calibration:
    """The fitted temperature and the calibration before and after, on the held-out sample."""

    temperature: float
    before: Reliability
    after: Reliability
    pixels: int
    rough: bool = False
    """The validation was rough (a class with few validated features): no temperature was
    fitted, the file keeps 1."""

    def metrics(self) -> dict:
        """What the model file's metadata says of it."""
        return {"temperature": round(self.temperature, 4),
                "ece_uncalibrated": round(self.before.ece, 4),
                "ece": round(self.after.ece, 4), "calibration_pixels": self.pixels,
                "temperature_fitted": not self.rough}

    def summary(self) -> str:
        if self.rough:
            return (f"Calibration: expected calibration error {self.before.ece:.3f} on "
                    f"{self.pixels:,} held-out pixels. No temperature was fitted: with fewer "
                    f"than {FEW_FEATURES} validated features of some classes, validation "
                    "misjudges the map's confidence (on the held-out bench a temperature "
                    "fitted there tripled the error on polygons no run saw).")
        return (f"Calibration on {self.pixels:,} held-out pixels: temperature "
                f"{self.temperature:.2f}; expected calibration error {self.before.ece:.3f} "
                f"before, {self.after.ece:.3f} after (the confidence and probability rasters "
                "are calibrated; the map does not change).")


def written_probabilities(runs: list, epoch: int, written: str) -> tuple[np.ndarray, np.ndarray]:
    """The written candidate's probabilities on every run's held-out sample at ``epoch``
    (its last epoch if it stopped before), and the true channels."""
    from .choice import AVERAGE, FOREST_NETWORK

    found, labels = [], []
    for run in runs:
        loop = run.loop
        if loop.held_sample is None or not loop.sample_probabilities:
            continue
        network = loop.sample_probabilities[min(epoch, len(loop.sample_probabilities)) - 1]
        network = network.astype(np.float32)
        companion = loop.sample_companion
        if written == FOREST_NETWORK and companion is not None:
            chosen = companion.astype(np.float32)
        elif written == AVERAGE and companion is not None:
            chosen = (network + companion.astype(np.float32)) / 2
        else:
            chosen = network
        found.append(chosen)
        labels.append(loop.held_sample.labels)
    if not found:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
    return np.concatenate(found), np.concatenate(labels)


def calibrate(runs: list, epoch: int, written: str, rough: bool) -> Calibration | None:
    """The temperature of the written candidate; None with too few held-out pixels. Where
    validation is ``rough`` (``interval.few_classes``), the temperature stays 1, as the
    written candidate and the epoch keep their defaults there (``choice.py``)."""
    probabilities, labels = written_probabilities(runs, epoch, written)
    if len(labels) < FEWEST_PIXELS:
        return None
    before = reliability(probabilities, labels)
    if rough:
        return Calibration(1.0, before, before, len(labels), rough=True)
    temperature = fit_temperature(probabilities, labels)
    return Calibration(temperature, before,
                       reliability(apply_temperature(probabilities, temperature), labels),
                       len(labels))
