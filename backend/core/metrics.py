"""Confusion matrices and the figures derived from them, for training and for assessment.

One implementation serves the validation scores during training and the accuracy assessment,
so "mIoU" means the same everywhere: the mean IoU over the classes present in the reference
(rows of the matrix); a class present but never predicted counts as 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class Metrics:
    """The figures of one confusion matrix (NaN where undefined)."""

    overall_accuracy: float
    kappa: float
    miou: float
    mean_f1: float
    producers_accuracy: np.ndarray
    users_accuracy: np.ndarray
    f1: np.ndarray
    iou: np.ndarray
    reference_totals: np.ndarray
    predicted_totals: np.ndarray
    in_reference: np.ndarray
    total: int


def confusion_counts(reference: np.ndarray, prediction: np.ndarray, k: int) -> np.ndarray:
    """A (k, k) confusion matrix of one block: rows = reference, columns = prediction.

    Args:
        reference: class indices 0..k-1; negative where there is no reference label.
        prediction: class indices 0..k-1; negative where the map has no data.
        k: the number of classes.
    """
    reference = np.asarray(reference).ravel()
    prediction = np.asarray(prediction).ravel()
    valid = (reference >= 0) & (prediction >= 0)
    pairs = reference[valid].astype(np.int64) * k + prediction[valid]
    return np.bincount(pairs, minlength=k * k).reshape(k, k)


def compute_metrics(matrix: np.ndarray) -> Metrics:
    """Overall accuracy, kappa, per-class producer's/user's accuracy, F1, IoU, mIoU, mean F1."""
    matrix = np.asarray(matrix, dtype=np.int64)
    total = int(matrix.sum())
    diagonal = np.diag(matrix).astype(np.float64)
    rows = matrix.sum(axis=1).astype(np.float64)
    columns = matrix.sum(axis=0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        producers = np.where(rows > 0, diagonal / rows, np.nan)
        users = np.where(columns > 0, diagonal / columns, np.nan)
        f1 = np.where(rows + columns > 0, 2 * diagonal / (rows + columns), np.nan)
        union = rows + columns - diagonal
        iou = np.where(union > 0, diagonal / union, np.nan)
    if total:
        observed = float(diagonal.sum() / total)
        expected = float((rows * columns).sum() / (float(total) ** 2))
        kappa = (observed - expected) / (1 - expected) if expected < 1 else math.nan
    else:
        observed = kappa = math.nan
    present = rows > 0
    miou = float(iou[present].mean()) if present.any() else math.nan
    mean_f1 = float(f1[present].mean()) if present.any() else math.nan
    return Metrics(observed, float(kappa), miou, mean_f1, producers, users, f1, iou,
                   rows.astype(np.int64), columns.astype(np.int64), present, total)
