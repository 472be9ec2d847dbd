"""Validation scores during training, read off a confusion matrix by ``backend.metrics``.

Training labels are output channels shifted by one (0 = no label), so this module only maps them
onto the shared confusion matrix; the figures themselves come from the one implementation that
the accuracy assessment uses too.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.metrics import compute_metrics, confusion_counts


@dataclass
class Scores:
    """IoU, precision and recall per class (NaN where undefined), mIoU and pixel accuracy.

    mIoU is the mean over the classes present in the validation labels.
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
    return confusion_counts(np.asarray(labels).astype(np.int64) - 1, predicted, classes)


def scores(matrix: np.ndarray) -> Scores:
    """Scores of a confusion matrix (rows true, columns predicted)."""
    figures = compute_metrics(matrix)
    miou = 0.0 if np.isnan(figures.miou) else figures.miou
    accuracy = 0.0 if np.isnan(figures.overall_accuracy) else figures.overall_accuracy
    return Scores(figures.iou, figures.users_accuracy, figures.producers_accuracy, miou, accuracy,
                  figures.total)


def feature_confusions(features: np.ndarray, labels: np.ndarray, predicted: np.ndarray,
                       count: int, classes: int) -> np.ndarray:
    """(count, classes, classes): one confusion matrix per validated feature.

    Args:
        features: feature index (0 .. count - 1) of each pixel, -1 where it has no label.
        labels: label indices, 0 = no label, c + 1 = output channel c.
        predicted: predicted output channels, same shape.
    """
    scored = (np.asarray(features) >= 0) & (np.asarray(labels) > 0)
    key = ((features[scored].astype(np.int64) * classes + labels[scored].astype(np.int64) - 1)
           * classes + predicted[scored].astype(np.int64))
    return np.bincount(key, minlength=count * classes * classes).reshape(count, classes,
                                                                          classes)
