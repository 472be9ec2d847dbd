"""Whether every digitised class is on the map: the model checked on its own training labels.

A class of a few dozen pixels can vanish from a network's map (issue 21: IoU 0.00 where the
forest mapped it perfectly) while the validation figure, averaged over classes, hardly shows it.
A class the user digitised must never disappear silently, so after training the written model
classifies windows around each class's labelled cells, and a class it predicts on none of its
own labelled pixels there is named in the log and the report.

The same check gives the model's mIoU on those training pixels: an optimistic bound on the map,
which the interval's upper end reaches where validation is on the low side, and toward which the
estimate is raised for the labels the validated runs did not see
(``choice.Choice.allow_for_training``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .interval import miou_of

WINDOWS_PER_CLASS = 8
"""Windows checked per class (around its labelled cells with the most pixels)."""


@dataclass
class TrainingPixels:
    """What the written model predicts on its own training pixels (those checked).

    Attributes:
        missing: output channels with training pixels that it predicts on none of them.
        confusion: (classes, classes) rows true, over every labelled pixel of the windows.
    """

    missing: list[int]
    confusion: np.ndarray

    @property
    def miou(self) -> float:
        return float(miou_of(self.confusion))


def check_training_pixels(model: Any, readers: list, scenes: list, tile: tuple[int, int],
                          classes: int) -> TrainingPixels:
    """The model's predictions in windows of ``tile`` around each class's fullest label
    cells, against the labels there.

    Args:
        model: the network written (its probabilities).
        readers: the scenes' readers (``data.SceneReader``, every label as training).
        scenes: their label summaries (``sampling.SceneLabels``).
    """
    from .distribute import predict_batch

    height, width = tile
    missing = []
    confusion = np.zeros((classes, classes), np.int64)
    for c in range(classes):
        cells = []
        for s, scene in enumerate(scenes):
            flat = scene.counts[..., c].ravel()
            for index in np.argsort(flat)[::-1][:WINDOWS_PER_CLASS]:
                if flat[index] > 0:
                    cells.append((int(flat[index]), s, int(index)))
        if not cells:
            continue
        cells = sorted(cells, reverse=True)[:WINDOWS_PER_CLASS]
        batch = np.zeros((len(cells), height, width, len(readers[0].bands)), np.float32)
        labels = np.zeros((len(cells), height, width), np.uint8)
        for i, (_, s, index) in enumerate(cells):
            scene = scenes[s]
            row, col = divmod(index, scene.counts.shape[1])
            x = col * scene.cell + scene.cell // 2 - width // 2
            y = row * scene.cell + scene.cell // 2 - height // 2
            batch[i], labels[i], _ = readers[s].read_padded(x, y, width, height)
        predicted = predict_batch(model, batch).argmax(-1)
        if not (predicted[labels == c + 1] == c).any():
            missing.append(c)
        labelled = labels > 0
        np.add.at(confusion, (labels[labelled].astype(np.int64) - 1, predicted[labelled]), 1)
    return TrainingPixels(missing, confusion)
