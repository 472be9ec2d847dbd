"""How well the written network's confidence matches its accuracy on held-out features.

Each validated run keeps, every epoch, the U-Net's probabilities on a fixed sample of the
held-out labelled pixels (:class:`HeldOutSample`), and once the forest network's on the same
pixels. Once the epoch and the candidate are chosen (``choice.py``), the written candidate's
probabilities at that epoch, pooled over the folds, give the calibration error (ECE) as the
network gives them and as classification writes them: with the label smoothing of training
undone (``core/calibration.py``). The report draws both (a reliability diagram).

No temperature is fitted. One fitted on these pixels was tried: the folds train on a third
fewer features than the model file, so their confidence misjudges its own; on polygons no run
saw it tripled the error on slovenia and doubled it on buildings (docs/benchmarks.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.calibration import Reliability, reliability, undo_label_smoothing

SAMPLE_PIXELS = 10_000
"""Held-out labelled pixels kept per validated run (a few MB over 50 epochs)."""
FEWEST_PIXELS = 200
"""Below this many held-out pixels no calibration error is reported (too few to bin)."""


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
    """The calibration of the written candidate on the held-out sample: as the network gives
    its probabilities, and with the label smoothing of training undone (as classified)."""

    smoothing: float
    before: Reliability
    after: Reliability
    pixels: int

    def metrics(self) -> dict:
        """What the model file's metadata says of it."""
        return {"ece_uncalibrated": round(self.before.ece, 4), "ece": round(self.after.ece, 4),
                "calibration_pixels": self.pixels}

    def summary(self) -> str:
        undone = (f"with the label smoothing of training ({self.smoothing:g}) undone, as the "
                  "confidence and probability rasters give it" if self.smoothing else
                  "as the confidence and probability rasters give it")
        return (f"Calibration on {self.pixels:,} held-out pixels: expected calibration error "
                f"{self.before.ece:.3f} as the network gives its probabilities, "
                f"{self.after.ece:.3f} {undone} (the map does not change). It rests on the "
                "validated runs, which saw fewer features than the model file.")


def label_smoothing_of(written: str) -> float:
    """The label smoothing the written candidate trained with (classification undoes it): the
    U-Net's, alone or in the average; 0 for the forest network alone, which learns the
    teacher's probabilities, not smoothed labels."""
    from .choice import FOREST_NETWORK
    from .config import LABEL_SMOOTHING

    return 0.0 if written == FOREST_NETWORK else LABEL_SMOOTHING


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


def calibrate(runs: list, epoch: int, written: str, smoothing: float) -> Calibration | None:
    """The written candidate's calibration on the held-out sample, with and without the
    label ``smoothing`` undone; None with too few held-out pixels."""
    probabilities, labels = written_probabilities(runs, epoch, written)
    if len(labels) < FEWEST_PIXELS:
        return None
    return Calibration(smoothing, reliability(probabilities, labels),
                       reliability(undo_label_smoothing(probabilities, smoothing), labels),
                       len(labels))
