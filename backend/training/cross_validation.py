"""Choosing the best epoch, and pooling the epochs of cross-validation folds.

With few digitised features one held-out share is a handful of polygons, and its figure swings
by more than 0.1 from one split to the next. Training then runs one validated run per fold
(``backend.sampling.fold_features``: each feature held out by exactly one fold) for the same
number of epochs, and the validation curve is pooled: epoch by epoch, the folds' confusion
matrices of their held-out features are summed, so every validated feature counts once. The best
epoch is chosen on that pooled curve by the same rule as for a single run (:func:`is_better`).
"""
from __future__ import annotations

import math

import numpy as np

from .scores import scores


def is_better(record: dict, best: dict) -> bool:
    """Whether an epoch's record beats the best so far: a higher validation mIoU, or a tie in
    it (common with few validation labels) with a lower validation loss."""
    value, top = record["val_miou"], best.get("val_miou", -1.0)
    return value > top + 1e-4 or (value > top - 1e-4
                                  and record["val_loss"] < best.get("val_loss", math.inf))


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
        pooled["improved"] = pooled["val_miou"] > best.get("val_miou", -1.0) + 1e-4
        pooled["best"] = is_better(pooled, best)
        if pooled["best"]:
            best, best_matrix = pooled, matrix
        history.append(pooled)
    return history, best, best_matrix
