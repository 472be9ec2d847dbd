"""Validation: the validated runs (one per cross-validation fold, or the single split), each
training on the features its split does not hold out and validating on those it does, and
their curves (pooled over the folds) as one :class:`Validation` outcome.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

import numpy as np

from ..core.errors import Cancelled
from ..core.progress import Progress, SubProgress
from .checkpoint import Checkpoint, Stage
from .config import VALIDATED_SHARE
from .cross_validation import pool_folds
from .distribute import device_scope
from .epoch_log import write_epoch_csv
from .loop import EpochLoop, class_weights
from .plan import TrainingPlan, make_model
from .stopping import Length, early_stopping, fixed_length
from .sampling import (CELL, VALIDATION_INTERIOR, FeatureSplit, WindowSampler, summarise_labels,
                       validation_windows)
from .forest_student import distil_forest
from .validation_scores import feature_confusions
from .teaching import teach


@dataclass
class Validated:
    """One validated run (one fold): its loop, model and label counts, and the forest and the
    forest network scored on the same held-out features (one confusion matrix per feature;
    None where there was no teacher)."""

    split: FeatureSplit
    loop: "EpochLoop"
    model: Any
    train_totals: np.ndarray
    val_totals: np.ndarray
    forest: np.ndarray | None = None
    forest_network: Any = None
    forest_network_matrices: np.ndarray | None = None


@dataclass
class Curves:
    """The validation curves the run reports: one validated run's, or the folds' pooled (the
    first fold's run gives what does not pool: its steps, its validation tiles for the
    report's pictures, and how it stopped)."""

    history: list[dict]
    best_record: dict
    best_confusion: np.ndarray
    cancelled: bool
    stopped_early: bool
    out_of_time: bool
    steps: int
    csv_path: str
    val_set: Any
    samples: list[int]
    best_predictions: np.ndarray | None


@dataclass
class Validation:
    """What validation made: each run (fold), the curves, and the validated network at the
    chosen epoch (what is written when there is no final fit)."""

    runs: list[Validated]
    curves: Curves
    validated_model: Any
    heldout_count: int
    """Digitised features validated, over all folds."""
    val_totals: np.ndarray
    train_totals: np.ndarray

    @property
    def epoch(self) -> int:
        """The chosen epoch."""
        return int(self.curves.best_record["epoch"])


def validate(plan: TrainingPlan, checkpoint: Checkpoint, csv_path: str,
             progress: Progress) -> Validation:
    """The validated run(s); with folds, their curves pooled.

    Raises:
        Cancelled: when cancelled before the first epoch ended.
    """
    config, folds = plan.config, plan.folds
    share = SubProgress(progress, 0.08, 0.55 if config.final_fit else 0.95)
    runs: list[Validated] = []
    for k, split in enumerate(plan.splits):
        stage = f"fold{k + 1}"
        runs.append(validated_run(
            plan, split, SubProgress(share, k / folds, (k + 1) / folds), progress, csv_path,
            fixed_length(len(runs[0].loop.history)) if runs else
            # the final fit repeats at most one fold's epochs: K folds and it fit in the
            # (K + 1) / 2 validated runs' worth of time that one split would have had
            early_stopping(config, VALIDATED_SHARE * 2 / (folds + 1)),
            fold=f"Fold {k + 1}/{folds}, " if folds > 1 else "",
            epoch_plan=runs[0].loop.plan.planned if runs else None,
            restore=checkpoint.stage(stage),
            # a bound method of the checkpoint, not a closure over the run: such a cycle kept
            # the networks and open rasters alive until the interpreter's last garbage
            # collection, which then crashed the process at exit under QGIS
            checkpoint=partial(checkpoint.save_loop, stage),
            intro=_intro(plan) if k == 0 else ""))
        if runs[-1].loop.cancelled or not runs[-1].loop.history:
            break
        runs[-1].loop.data = None  # the fold's scenes are not needed any more
        runs[-1].loop.companion = None
        if k:  # the report shows the first fold's tiles; later folds leave only curves
            runs[-1].loop.val_set = runs[-1].loop.model = runs[-1].loop.best_weights = None
            runs[-1].model = runs[-1].forest_network = None
    curves = _curves(runs, folds, plan.inputs.class_map.names)
    if not curves.history:
        raise Cancelled()
    validated_model = runs[0].model
    validated_model.set_weights(runs[0].loop.best_weights)
    return Validation(runs, curves, validated_model,
                      sum(len(h) for r in runs for h in r.split.heldout),
                      sum(r.val_totals for r in runs),
                      runs[0].train_totals if folds == 1 else plan.totals)


def _curves(runs: list[Validated], folds: int, names: list[str]) -> Curves:
    """The first run's curves, or with folds, theirs pooled (and their epoch log rewritten)."""
    first = runs[0].loop
    history, best, confusion = first.history, first.best_record, first.best_confusion
    if folds > 1:
        history, best, confusion = pool_folds(
            [r.loop.history for r in runs], [r.loop.confusions for r in runs],
            [r.loop.feature_matrices for r in runs])
        write_epoch_csv(first.csv_path, history, names)
    return Curves(history, best, confusion, any(r.loop.cancelled for r in runs),
                  first.stopped_early, first.out_of_time, first.steps, first.csv_path,
                  first.val_set, first.samples, first.best_predictions)


def _intro(plan: TrainingPlan) -> str:
    """The first run's opening line (``{weights}``: the network's size, once built)."""
    config, a = plan.config, plan.architecture
    return (f"U-Net '{a['model_size']}': depth {a['depth']}, {a['filters']} filters, "
            f"{{weights:,}} weights; {plan.steps} steps of {plan.batch_size} windows per "
            f"epoch, up to {config.epochs} epochs (early stop after {config.patience} without "
            f"improvement), loss {config.loss}.")


def validated_run(plan: TrainingPlan, split: FeatureSplit, bar: Progress, progress: Progress,
                  csv_path: str, length: Length, fold: str = "", intro: str = "",
                  epoch_plan: list[int] | None = None, restore: Stage | None = None,
                  checkpoint: Callable[[EpochLoop], None] | None = None) -> Validated:
    """Trains on the features ``split`` does not hold out, validating on those it does.

    Everything fitted on labels (the teacher) sees the training features only. ``length``
    (``stopping.py``): the later folds of a cross-validation train exactly the first one's
    epochs and replay its ``epoch_plan``; the first stops early or at its deadline, shortening
    its learning-rate schedule to end there. ``intro``, when given, is logged once the model
    is built (``{weights}``: its size). ``restore``: this run's state in a checkpoint
    (``checkpoint.py``): a finished run is not trained again, an interrupted one goes on after
    its last whole epoch. ``checkpoint`` is called after every whole epoch.
    """
    from .data import TrainingBatches

    config = plan.config
    readers, scenes = plan.open_scenes(split.heldout, bar)
    val_set, train_totals, val_totals = _validation_set(plan, split, readers, scenes, fold,
                                                        progress)
    finished = restore is not None and restore.fields["finished"]
    teachers = _Teachers.fit(plan, readers, val_set, progress) \
        if config.teacher and not finished else _Teachers()
    data = TrainingBatches(readers, WindowSampler(scenes, plan.tile), plan.batch_size,
                           config.augment, config.seed)
    keras = plan.keras
    keras.utils.set_random_seed(config.seed)
    with device_scope(keras, plan.device):
        model = make_model(plan)
        if intro:
            progress.info(intro.format(weights=model.count_params()))
        loop = EpochLoop(keras, model, config, plan.steps, data, val_set, plan.inputs,
                         class_weights(train_totals), bar, progress, length, name=fold,
                         csv_path=csv_path, plan=epoch_plan, checkpoint=checkpoint,
                         companion=teachers.companion)
        if restore is not None:
            loop.restore(restore)
            progress.info(f"{fold or 'Validated run: '}resumed after epoch {loop.epoch}"
                          + (" (finished)." if finished else "."))
        if not finished:
            loop.run()
    return Validated(split, loop, model, train_totals, val_totals, teachers.forest_matrices,
                     teachers.forest_network, teachers.network_matrices)


def _validation_set(plan: TrainingPlan, split: FeatureSplit, readers: list, scenes: list,
                    fold: str, progress: Progress) -> tuple[Any, np.ndarray, np.ndarray]:
    """(the validation windows read, training and validation pixels per class), logged."""
    from .data import read_validation

    classes, inputs = plan.classes, plan.inputs
    heldout_scenes = [summarise_labels(lambda x, y, w, h, r=r: r.read(x, y, w, h, True)[1],
                                       r.width, r.height, classes, CELL)
                      for r in readers]
    train_totals = sum(s.totals for s in scenes)
    val_totals = sum(s.totals for s in heldout_scenes)
    windows = validation_windows(heldout_scenes, plan.config.seed)
    val_set = read_validation(readers, windows, VALIDATION_INTERIOR, plan.multiple)
    heldout = sum(len(h) for h in split.heldout)
    features = int(split.features_per_class.sum())
    progress.info(f"{fold or 'Validation: '}{heldout} of {features} digitised features held out "
                  f"whole ({int(val_totals.sum())} of {int((train_totals + val_totals).sum())} "
                  "labelled pixels"
                  + (f"; {val_set.labelled_pixels} of them in {len(windows)} sampled windows"
                     if val_set.labelled_pixels < val_totals.sum() else "")
                  + "). Their labels never reach the loss" + (" of this run." if fold else "."))
    if not fold:
        for c, info in enumerate(inputs.class_map.classes):
            progress.info(f"  class {info.id} '{info.name}': "
                          f"{int(split.features_per_class[c])} features, "
                          f"{int(train_totals[c])} training, {int(val_totals[c])} validation "
                          "pixels")
    return val_set, train_totals, val_totals


@dataclass
class _Teachers:
    """A run's teacher forest and forest network, scored on its held-out features (one
    confusion matrix per feature), and the forest network's probabilities on the validation
    windows (the U-Net's companion in the average). Empty without a teacher."""

    forest_matrices: np.ndarray | None = None
    forest_network: Any = None
    network_matrices: np.ndarray | None = None
    companion: np.ndarray | None = None

    @classmethod
    def fit(cls, plan: TrainingPlan, readers: list, val_set, progress: Progress) -> "_Teachers":
        seed, classes = plan.config.seed, plan.classes
        forest = teach(readers, classes, seed, progress, max(plan.tile))
        network = distil_forest(readers, classes, seed, progress)
        found = cls(score_forest(forest, val_set, classes) if forest is not None else None,
                    network)
        if network is not None:
            found.companion = predict_windows(network, val_set.pixels)
            found.network_matrices = feature_confusions(
                val_set.features, val_set.labels, found.companion.argmax(-1),
                val_set.feature_count, classes)
        return found


def score_forest(forest, val_set, classes: int) -> np.ndarray:
    """The forest's confusion matrix per held-out feature, on the validation windows' pixels
    (the features it sees fit inside a window's margin of context)."""
    from .teacher import forest_probabilities

    predicted = np.zeros(val_set.labels.shape, np.uint8)
    for i in range(len(val_set.labels)):
        where = np.flatnonzero(val_set.labels[i].ravel() > 0)
        if len(where):
            probabilities = forest_probabilities(forest, val_set.pixels[i], val_set.valid[i],
                                                 where, classes)
            predicted[i].ravel()[where] = probabilities.argmax(-1)
    return feature_confusions(val_set.features, val_set.labels, predicted,
                              val_set.feature_count, classes)


def predict_windows(model, pixels: np.ndarray, batch: int = 8) -> np.ndarray:
    """(N, S, S, classes) float16 probabilities of a network on the validation windows."""
    from .distribute import predict_batch

    return np.concatenate([np.asarray(predict_batch(model, pixels[i:i + batch]), np.float16)
                           for i in range(0, len(pixels), batch)])
