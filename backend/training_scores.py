"""Per-class scores from a confusion matrix of labelled pixels (rows true, columns predicted)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Scores:
    """IoU, precision and recall per class, and their summaries.

    Classes that neither occur nor are predicted get NaN and are left out of the means.
    """

    iou: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    miou: float
    accuracy: float
    pixels: int


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """Counts (true, predicted) pairs over pixels with a label (1..C; 0 ignored).

    Args:
        labels: label indices, 0 = no label, c + 1 = output channel c.
        predicted: predicted output channels (0..C-1), same shape.
        classes: number of channels.
    """
    keep = labels > 0
    index = (labels[keep].astype(np.int64) - 1) * classes + predicted[keep].astype(np.int64)
    return np.bincount(index, minlength=classes * classes).reshape(classes, classes)


def scores(matrix: np.ndarray) -> Scores:
    """Scores of a confusion matrix."""
    matrix = matrix.astype(np.float64)
    tp = np.diag(matrix)
    truth, predicted = matrix.sum(axis=1), matrix.sum(axis=0)
    union = truth + predicted - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        precision = np.where(predicted > 0, tp / predicted, np.where(truth > 0, 0.0, np.nan))
        recall = np.where(truth > 0, tp / truth, np.nan)
    total = matrix.sum()
    present = ~np.isnan(iou)
    miou = float(np.mean(iou[present])) if present.any() else 0.0
    return Scores(iou, precision, recall, miou, float(tp.sum() / total) if total else 0.0,
                  int(total))
