"""What the model file holds and how sure validation is: the side-by-side scores of the U-Net,
the forest and the forest network, the choice between them, and the interval over features."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from landcoverunet.backend.training.choice import (AVERAGE, FOREST, FOREST_NETWORK, NETWORK,
                                                   choose)
from landcoverunet.backend.training.interval import (SURE, bootstrap_interval,
                                                     features_per_class, miou_of,
                                                     share_corrected)
from landcoverunet.backend.training.validation_scores import feature_confusions, scores


def feature_matrix(classes: int, true: int, predicted: dict[int, int]) -> np.ndarray:
    """One feature of class ``true`` whose pixels were predicted as {class: pixels}."""
    matrix = np.zeros((classes, classes), np.int64)
    for c, n in predicted.items():
        matrix[true, c] = n
    return matrix


def test_miou_of_agrees_with_the_shared_metrics():
    rng = np.random.default_rng(0)
    for _ in range(20):
        matrix = rng.integers(0, 50, (4, 4))
        matrix[rng.integers(4)] = 0  # a class absent from the reference
        assert miou_of(matrix) == pytest.approx(scores(matrix).miou)


def test_feature_confusions_sum_to_the_confusion_matrix():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, (3, 16, 16))
    features = np.where(labels > 0, rng.integers(0, 5, labels.shape), -1)
    predicted = rng.integers(0, 3, labels.shape)
    per_feature = feature_confusions(features, labels, predicted, 5, 3)
    assert per_feature.shape == (5, 3, 3)
    expected = np.zeros((3, 3), np.int64)
    for t, p in zip(labels[labels > 0] - 1, predicted[labels > 0]):
        expected[t, p] += 1
    assert (per_feature.sum(0) == expected).all()


def test_the_interval_is_wide_with_few_features_and_narrows_with_many():
    few = np.array([feature_matrix(2, 0, {0: 30}), feature_matrix(2, 0, {0: 25}),
                    feature_matrix(2, 1, {1: 40}), feature_matrix(2, 1, {1: 20})])
    low, high = bootstrap_interval(few, seed=0)
    # every feature validated right, yet two per class cannot promise the next polygon is
    assert low < 0.8 and high == pytest.approx(1.0)
    rng = np.random.default_rng(2)
    many = []
    for _ in range(60):
        true = int(rng.integers(2))
        right = int(rng.integers(20, 40))
        many.append(feature_matrix(2, true, {true: right, 1 - true: int(rng.integers(0, 10))}))
    many = np.array(many)
    low_many, high_many = bootstrap_interval(many, seed=0)
    point = miou_of(many.sum(0))
    assert low_many <= point <= high_many
    assert high_many - low_many < 0.15 < high - low
    assert list(features_per_class(many, 2)) == [int((many[:, 0].sum(-1) > 0).sum()),
                                                 int((many[:, 1].sum(-1) > 0).sum())]


def _run(network, average, forest_network, forest, epochs: int = 3):
    """A validated run as ``choice.choose`` sees it: per epoch per-feature matrices."""
    loop = SimpleNamespace(feature_matrices=[network] * epochs,
                           blend_matrices=[average] * epochs if average is not None else [])
    return SimpleNamespace(loop=loop, forest_network_matrices=forest_network, forest=forest)


def _features(classes: int, right_share: float, count: int = 6) -> np.ndarray:
    """``count`` features per class, each with ``right_share`` of its 20 pixels right."""
    right = int(round(20 * right_share))
    return np.array([feature_matrix(classes, c, {c: right, (c + 1) % classes: 20 - right})
                     for c in range(classes) for _ in range(count)])


def test_the_average_is_written_unless_a_network_alone_is_surely_better():
    weak, middling, strong = _features(3, 0.5), _features(3, 0.7), _features(3, 0.9)
    runs = [_run(weak, middling, strong, strong), _run(weak, middling, strong, strong)]
    choice = choose(runs, epoch=2, seed=0)
    assert choice.written == FOREST_NETWORK
    assert set(choice.figures) == {NETWORK, AVERAGE, FOREST_NETWORK, FOREST}
    assert choice.figures[NETWORK] < choice.figures[AVERAGE] < choice.figures[FOREST_NETWORK]
    assert len(choice.matrices) == 2 * len(strong)  # the folds' features pooled
    assert choice.low <= choice.miou <= choice.high
    text = choice.summary(choice.miou)
    assert "forest" in text and "U-Net" in text and "interval" in text
    assert choice.confidence[FOREST_NETWORK] == 1.0 and choice.confidence[NETWORK] == 0.0
    # where the U-Net validates better on every feature it is kept; without such evidence
    # (a tie, or a gain that the features do not bear out) the average is written
    assert choose([_run(strong, middling, weak, weak)], 2, 0).written == NETWORK
    assert choose([_run(strong, strong, strong, weak)], 2, 0).written == AVERAGE
    mixed = _features(3, 0.9).copy()
    mixed[::3] = _features(3, 0.3)[::3]  # a third of the features go badly
    assert choose([_run(mixed, middling, weak, weak)], 2, 0).written == AVERAGE
    # fine-tuning a model keeps the U-Net whatever the forest does
    assert choose(runs, 2, 0, networks_only=True).written == NETWORK


def test_rough_validation_never_overrules_the_average():
    """With three features per class the U-Net validates better on every one of them, but such
    validation may not overrule the average; the report says so."""
    weak, middling, strong = (_features(3, share, count=3) for share in (0.5, 0.7, 0.9))
    choice = choose([_run(strong, middling, weak, weak)], 2, 0)
    assert choice.confidence[NETWORK] >= SURE and choice.figures[NETWORK] > \
        choice.figures[AVERAGE]
    assert choice.written == AVERAGE and choice.overruled == NETWORK and choice.few == [0, 1, 2]
    notes = " ".join(choice.notes(["a", "b", "c"], np.ones(3), choice.miou))
    assert "found the U-Net alone better" in notes and "holds the U-Net + forest network" in notes
    many = choose([_run(_features(3, 0.9), _features(3, 0.7), _features(3, 0.5),
                         _features(3, 0.5))], 2, 0)
    assert many.written == NETWORK and many.overruled is None


def test_without_a_teacher_only_the_network_is_scored_and_few_features_are_named():
    network = _features(2, 0.8, count=3)
    choice = choose([_run(network, None, None, None)], epoch=1, seed=0)
    assert choice.written == NETWORK and set(choice.figures) == {NETWORK}
    assert choice.few == [0, 1]  # three features per class: fewer than five
    empty = SimpleNamespace(loop=SimpleNamespace(feature_matrices=[], blend_matrices=[]),
                            forest_network_matrices=None, forest=None)
    assert choose([empty], 1, 0) is None  # a run restored from an older checkpoint


def test_with_few_features_the_upper_end_reaches_the_fit_on_training_pixels():
    network = _features(2, 0.6, count=3)
    choice = choose([_run(network, None, None, None)], epoch=1, seed=0)
    low, high = choice.low, choice.high
    # a validated network written as it is, fitting its training pixels below the interval
    assert choice.allow_for_training(0.5, high - 0.1, None) == 0.5
    assert (choice.low, choice.high, choice.training_fit) == (low, high, None)
    # few features: the upper end rises, the estimate stays (it swings both ways there)
    assert choice.allow_for_training(0.5, 0.97, 2 / 3) == 0.5
    assert (choice.low, choice.high, choice.training_fit) == (low, 0.97, 0.97)
    assert choice.validated is None
    assert "training pixels (0.970)" in " ".join(choice.notes(["a", "b"], np.ones(2), 0.5))


def test_a_final_fit_on_more_features_raises_the_estimate_and_the_upper_end():
    many = choose([_run(_features(2, 0.6, count=6), None, None, None)], 1, 0)
    high = many.high
    # the file is a validated network: validation is trusted as it is
    assert many.allow_for_training(0.5, 0.99, None) == 0.5
    assert many.high == high and many.training_fit is None
    # the file trained on all features, each validated run on two thirds of them
    raised = many.allow_for_training(0.5, 0.8, 2 / 3)
    assert raised == pytest.approx(0.6) and many.validated == 0.5
    assert many.high == max(high, 0.8)
    assert many.low <= raised <= many.high
    notes = " ".join(many.notes(["a", "b"], np.ones(2), raised))
    assert "0.500 as validated" in notes and "share of features each run trained on" in notes
    assert many.metrics(["a", "b"])["validated_miou"] == 0.5


def test_the_share_correction_weighs_validation_against_the_fit():
    # the bootstrap's share gives Efron's .632 rule
    assert share_corrected(0.5, 0.7, 0.632) == pytest.approx(0.632 * 0.5 + 0.368 * 0.7)
    # validation at or above the fit, or no share held out: nothing to correct
    assert share_corrected(0.8, 0.7, 2 / 3) == 0.8
    assert share_corrected(0.5, 0.7, 1.0) == 0.5
