"""How far the validation figure can be trusted: a bootstrap over the held-out features.

Pixels of one polygon are not independent evidence (they look alike and are right or wrong
together), so the interval resamples whole features, within their class so that every class
stays in each resample: with two or three features per class the figure swings by 0.1 to 0.4
from one choice of polygons to the next (issue 21), and the interval shows that instead of one
number that looks exact.
"""
from __future__ import annotations

import numpy as np

ROUNDS = 1000
"""Bootstrap resamples."""
LEVEL = 0.9
"""Coverage of the interval (from the 5th to the 95th percentile)."""
FEW_FEATURES = 5
"""With fewer validated features than this in a class, the report says the interval is rough."""
SURE = 0.95
"""How often, in a paired bootstrap (:func:`chance_better`), one figure must beat another for
validation to call it better: a network alone replacing the average (``choice.py``), an
epoch replacing a later one (``cross_validation.mark_epoch``). Only where every class has
:data:`FEW_FEATURES` validated features or more (:func:`few_classes`): over two or three
polygons per class the bootstrap is sure of what the held-out bench then contradicts."""


def miou_of(matrices: np.ndarray) -> np.ndarray:
    """mIoU of each (..., K, K) confusion matrix (rows true): the mean IoU over the classes
    present in its rows, a present class never predicted counting 0 (``core/metrics.py``)."""
    diagonal = np.diagonal(matrices, axis1=-2, axis2=-1).astype(np.float64)
    truth = matrices.sum(-1)
    union = truth + matrices.sum(-2) - diagonal
    present = truth > 0
    iou = np.where(present, diagonal / np.maximum(union, 1), 0.0)
    count = present.sum(-1)
    return np.where(count > 0, iou.sum(-1) / np.maximum(count, 1), 0.0)


def share_corrected(validated: float, fit: float, share: float) -> float:
    """The mIoU expected of a model trained on every feature, from validation by runs that each
    trained on ``share`` of them: ``share * validated + (1 - share) * fit``, Efron's .632 rule
    with the runs' training share in place of the bootstrap's 0.632.

    Validation is then pessimistic by what the held-out share of the labels is worth (on the
    held-out bench, buildings' 3-fold figure fell 0.02 to 0.12 below the map), while the model's
    figure on its own training pixels (``fit``) is optimistic; the estimate stays between the
    two. The .632+ rule, which leans back to validation where the fit is far above it, was
    measured too and stayed up to 0.11 below the map on buildings (docs/benchmarks.md).
    """
    if not fit > validated or not 0.0 < share < 1.0:
        return validated
    return share * validated + (1.0 - share) * fit


def feature_classes(matrices: np.ndarray) -> np.ndarray:
    """(F,) the class of each feature: the row holding its pixels."""
    return matrices.sum(-1).argmax(-1)


def pseudo_features(matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per class, one made-up feature mapped right and one mapped wrong, of the class's median
    feature size (the wrong one as the class it is most often confused with).

    With two or three features per class that all validate right (or all wrong), resampling
    them alone gives an interval of zero width, though the next polygon may well go the other
    way. Adding a right and a wrong one to each class's pool (the rule of succession) widens the
    interval where features are few and hardly moves it where they are many.
    """
    classes = feature_classes(matrices)
    k = matrices.shape[-1]
    errors = matrices.sum(0).astype(np.float64)
    np.fill_diagonal(errors, -1.0)
    made, made_classes = [], []
    for c in np.unique(classes):
        size = float(np.median(matrices[classes == c].sum((1, 2))))
        other = int(errors[c].argmax()) if errors[c].max() > 0 else (c + 1) % k
        right = np.zeros((k, k))
        right[c, c] = size
        wrong = np.zeros((k, k))
        wrong[c, other] = size
        made += [right, wrong]
        made_classes += [c, c]
    return np.array(made), np.array(made_classes)


def bootstrap_interval(matrices: np.ndarray, seed: int, rounds: int = ROUNDS,
                       level: float = LEVEL) -> tuple[float, float]:
    """(low, high) of the mIoU: the features (F, K, K) resampled with replacement within each
    class, from a pool that also holds the class's :func:`pseudo_features`; (nan, nan)
    without features."""
    if len(matrices) == 0 or matrices.shape[-1] < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng([seed, 23])
    made, made_classes = pseudo_features(matrices)
    real = feature_classes(matrices)
    pool = np.concatenate([matrices.astype(np.float64), made])
    pool_classes = np.concatenate([real, made_classes])
    counts = np.zeros((rounds, len(pool)), np.float64)
    rows = np.arange(rounds)[:, None]
    for c in np.unique(real):
        mine = np.flatnonzero(pool_classes == c)
        drawn = mine[rng.integers(len(mine), size=(rounds, int((real == c).sum())))]
        np.add.at(counts, (rows, drawn), 1.0)
    k = matrices.shape[-1]
    sums = (counts @ pool.reshape(len(pool), k * k)).reshape(rounds, k, k)
    values = miou_of(sums)
    tail = (1.0 - level) / 2 * 100
    point = float(miou_of(matrices.sum(0)))
    # the made-up features pull a perfect class down; the interval still holds the figure
    return (min(point, float(np.percentile(values, tail))),
            max(point, float(np.percentile(values, 100 - tail))))


def chance_better(better: np.ndarray, than: np.ndarray, seed: int,
                  rounds: int = ROUNDS) -> float:
    """How often ``better``'s mIoU beats ``than``'s when the same features (both (F, K, K),
    one matrix per feature, in the same order) are resampled within each class: a paired
    bootstrap, so the polygons both were scored on cancel out of the comparison."""
    if len(better) == 0:
        return 0.0
    rng = np.random.default_rng([seed, 29])
    classes = feature_classes(better + than)
    counts = np.zeros((rounds, len(better)), np.float64)
    rows = np.arange(rounds)[:, None]
    for c in np.unique(classes):
        mine = np.flatnonzero(classes == c)
        np.add.at(counts, (rows, mine[rng.integers(len(mine), size=(rounds, len(mine)))]), 1.0)
    k = better.shape[-1]

    def resampled(matrices: np.ndarray) -> np.ndarray:
        return miou_of((counts @ matrices.reshape(len(matrices), k * k).astype(np.float64))
                       .reshape(rounds, k, k))

    return float((resampled(better) > resampled(than)).mean())


def features_per_class(matrices: np.ndarray, classes: int) -> np.ndarray:
    """(classes,) how many validated features each class has."""
    return np.bincount(feature_classes(matrices), minlength=classes) if len(matrices) else \
        np.zeros(classes, np.int64)


def few_classes(matrices: np.ndarray) -> list[int]:
    """The classes validated by fewer than :data:`FEW_FEATURES` of the per-feature matrices
    (present ones only): where validation is rough, and may neither overrule a default (the
    average, the latest epoch) nor be taken at its word."""
    if not len(matrices):
        return []
    classes = matrices.shape[1]
    counts = features_per_class(matrices, classes)
    present = matrices.sum((0, 2)) > 0
    return [c for c in range(classes) if present[c] and counts[c] < FEW_FEATURES]
