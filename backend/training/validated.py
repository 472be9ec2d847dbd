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
from .teacher import teach


@dataclass
class Validated:
    """One validated run (one fold): its loop, model and label counts."""

    split: FeatureSplit
    loop: "EpochLoop"
    model: Any
    train_totals: np.ndarray
    val_totals: np.ndarray


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
    if config.teacher and not finished:
        teach(readers, classes, config.seed, progress)
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
                         plan=plan, checkpoint=checkpoint)
        if restore is not None:
            loop.restore(restore)
            progress.info(f"{fold or 'Validated run: '}resumed after epoch {loop.epoch}"
                          + (" (finished)." if finished else "."))
        if not finished:
            loop.run()
    return Validated(split, loop, model, train_totals, val_totals)
