"""One validated run (one cross-validation fold, or the single split): train on the features
the split does not hold out, validate on those it does. ``run.py`` calls it once per fold."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..core.progress import Progress
from .checkpoint import Stage
from .config import VALIDATED_SHARE
from .distribute import device_scope
from .loop import EpochLoop, class_weights
from .sampling import (CELL, VALIDATION_INTERIOR, FeatureSplit, WindowSampler, summarise_labels,
                       validation_windows)
from .forest_student import distil_forest
from .scores import feature_confusions
from .teacher import teach


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


def validated_run(run: Any, split: FeatureSplit, bar: Progress, fold: str = "",
                  fixed_epochs: int = 0, deadline_share: float = VALIDATED_SHARE,
                  intro: str = "", plan: list[int] | None = None, restore: Stage | None = None,
                  checkpoint: Callable[[EpochLoop], None] | None = None) -> Validated:
    """Trains on the features ``split`` does not hold out, validating on those it does.

    Everything fitted on labels (the teacher) sees the training features only. With
    ``fixed_epochs`` the run trains exactly that many epochs (the later folds of a
    cross-validation follow the first one's length and replay its epoch ``plan``); else it
    stops early or at its deadline, shortening its learning-rate schedule to end there.
    ``intro``, when given, is logged once the model is built (``{weights}``: its size).
    ``restore``: this run's state in a checkpoint (``checkpoint.py``): a finished run is not
    trained again, an interrupted one goes on after its last whole epoch. ``checkpoint`` is
    called after every whole epoch.
    """
    from .data import TrainingBatches, open_scenes, read_validation

    config, inputs, progress, classes = run.config, run.inputs, run.progress, run.classes
    readers, scenes = open_scenes(inputs.images, inputs.masks, inputs.lookup, run.id_readers,
                                  split.heldout, inputs.bands, run.stats, classes, bar)
    heldout_scenes = [summarise_labels(lambda x, y, w, h, r=r: r.read(x, y, w, h, True)[1],
                                       r.width, r.height, classes, CELL)
                      for r in readers]
    train_totals = sum(s.totals for s in scenes)
    val_totals = sum(s.totals for s in heldout_scenes)
    windows = validation_windows(heldout_scenes, config.seed)
    val_set = read_validation(readers, windows, VALIDATION_INTERIOR, run.multiple)
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
    finished = restore is not None and restore.fields["finished"]
    forest = forest_network = companion = None
    forest_matrices = network_matrices = None
    if config.teacher and not finished:
        forest = teach(readers, classes, config.seed, progress)
        forest_network = distil_forest(readers, classes, config.seed, progress)
    if forest is not None:
        forest_matrices = score_forest(forest, val_set, classes)
    if forest_network is not None:
        companion = predict_windows(forest_network, val_set.pixels)
        network_matrices = feature_confusions(val_set.features, val_set.labels,
                                              companion.argmax(-1), val_set.feature_count,
                                              classes)
    data = TrainingBatches(readers, WindowSampler(scenes, run.tile), run.batch_size,
                           config.augment, config.seed)
    keras = run.keras
    keras.utils.set_random_seed(config.seed)
    with device_scope(keras, run.device):
        model = run.make_model()
        if intro:
            progress.info(intro.format(weights=model.count_params()))
        loop = EpochLoop(keras, model, config, run.steps, data, val_set, inputs,
                         class_weights(train_totals), bar, progress, fixed_epochs=fixed_epochs,
                         deadline_share=deadline_share, name=fold, csv_path=run.csv_temporary,
                         plan=plan, checkpoint=checkpoint, companion=companion)
        if restore is not None:
            loop.restore(restore)
            progress.info(f"{fold or 'Validated run: '}resumed after epoch {loop.epoch}"
                          + (" (finished)." if finished else "."))
        if not finished:
            loop.run()
    return Validated(split, loop, model, train_totals, val_totals, forest_matrices,
                     forest_network, network_matrices)


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
