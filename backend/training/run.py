"""Training a U-Net from images and their masks: the loop, best-model keeping, cancel, logs.

The steps: check the inputs (grids, bands, class maps) before anything heavy; summarise the
labels; hold out whole validation blocks; compute normalisation statistics; train on windows
sampled away from validation, validating after each epoch; keep the weights of the epoch with
the best validation mIoU; stop early when it stalls; write the model (with its metadata), a CSV
of epochs beside it, the HTML report and optionally a TensorBoard log.

An epoch is a fixed number of sampled pixels (not a pass over the scene), so the time an epoch
takes does not grow with the scene, and early stopping bounds the whole run.
Cancelling stops after the current batch; the best weights so far are still written.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.errors import Cancelled, UserError
from ..core.model_file import ModelMetadata
from ..core.normalization import BandStats, compute_band_stats
from ..core.progress import ConsoleProgress, Progress, SubProgress
from .config import (CROSS_VALIDATION_BELOW, FEW_PIXELS, FOLDS, MIN_STEPS, PIXELS_PER_EPOCH,
                     VALIDATED_SHARE, TrainingConfig, TrainingResult)
from .cross_validation import pool_folds
from .inputs import Inputs, check_init_model, check_inputs
from .loop import EpochLoop, class_weights, smoothed_val_miou
from .sampling import (CELL, VALIDATION_INTERIOR, FeatureSplit, SplitLabels, WindowSampler,
                       fold_features, split_features, summarise_labels, validation_windows)
from .scores import scores
from .summary import model_metrics, write_training_report


def train_unet(config: TrainingConfig, progress: Progress | None = None) -> TrainingResult:
    """Trains (or fine-tunes) a U-Net and writes the model, its CSV log and the report.

    Raises:
        UserError: for inputs that cannot train (explained), with no model file written.
        Cancelled: when cancelled before the first training step.
    """
    progress = progress or ConsoleProgress(quiet=True)
    started = time.time()
    inputs = check_inputs(config)
    init_metadata = (check_init_model(config.init_model, inputs, bool(config.bands))
                     if config.init_model else None)
    from ..core.deps import require_keras

    keras = require_keras()
    from ...models.presets import LOSSES, PRESETS, size_multiple

    if config.loss not in LOSSES:
        raise UserError(f"Unknown loss '{config.loss}'; use one of {', '.join(LOSSES)}.")
    if config.model_size not in PRESETS:
        raise UserError(f"Unknown model size '{config.model_size}'; use one of "
                        f"{', '.join(PRESETS)}.")
    classes = len(inputs.class_map)

    # labels, the split by whole features, windows
    from ..core.feature_ids import feature_id_reader

    id_readers = []
    for mask in inputs.masks:
        reader, source = feature_id_reader(mask)
        id_readers.append(reader)
        (progress.info if source.startswith("features from") else progress.warn)(
            f"Validation groups of {os.path.basename(mask)}: {source}.")
    full = [SplitLabels(m, inputs.lookup, r) for m, r in zip(inputs.masks, id_readers)]
    features = [f for i, labels in enumerate(full) for f in labels.features(i)]
    totals = np.zeros(classes, np.int64)
    for f in features:
        totals[f.label - 1] += f.pixels
    if totals.sum() == 0:
        raise UserError("The mask holds no labelled pixel (all 0): digitise some polygons and "
                        "build the mask again, and check that they cover image pixels with "
                        "data.")
    present = [c for c in range(classes) if totals[c] > 0]
    if len(present) < 2:
        raise UserError(f"Only one class ('{inputs.class_map.names[present[0]]}') has labelled "
                        "pixels; a classifier needs at least two. Digitise other classes too.")
    for c in range(classes):
        if totals[c] == 0:
            progress.warn(f"class '{inputs.class_map.names[c]}' has no labelled pixel; the "
                          "network keeps an output for it but cannot learn it.")
    folds = FOLDS if 0 < len(features) < CROSS_VALIDATION_BELOW else 1
    splits = (fold_features(features, len(full), classes, folds, config.seed) if folds > 1 else
              [split_features(features, len(full), classes, config.validation_fraction,
                              config.seed)])
    if not any(len(h) for s in splits for h in s.heldout):
        raise UserError("No class has two or more digitised features, so none can be held out "
                        "to validate the network honestly. Digitise at least two separate "
                        "polygons of each class.")
    unvalidated = splits[0].unvalidated

    architecture = dict(init_metadata.architecture) if init_metadata else {
        "model_size": config.model_size, **_preset_dict(PRESETS[config.model_size])}
    multiple = size_multiple(architecture["depth"])
    sizes = [(l.width, l.height) for l in full]
    tile = _fit_tile(config.tile_size, sizes, multiple, progress)

    # normalisation
    if init_metadata is not None:
        stats = BandStats(list(init_metadata.mean), list(init_metadata.std), 0)
        progress.info("Normalisation statistics are the starting model's.")
    else:
        stats = compute_band_stats(inputs.images, inputs.bands, SubProgress(progress, 0.02,
                                                                            0.05))
    warnings: list[str] = []
    for c, info in enumerate(inputs.class_map.classes):
        if c in unvalidated:
            warnings.append(f"Class '{info.name}' has a single digitised feature: it trains but "
                            "is not validated. Digitise a second, separate polygon of it.")
        if 0 < totals[c] < FEW_PIXELS:
            warnings.append(f"Class '{info.name}' has only {int(totals[c])} labelled pixels; "
                            "its scores are unreliable. Digitise more of it.")
    for warning in warnings:
        progress.warn(warning)
    if folds > 1:
        progress.info(f"Validation: {len(features)} digitised features are few, so validation "
                      f"is {folds}-fold cross-validation by whole features: each feature is "
                      f"held out in one of {folds} runs, whose labels of it never reach the "
                      "loss, and the figures pool what each run predicted for the features it "
                      "never saw.")
    steps = config.steps_per_epoch or max(
        MIN_STEPS, round(PIXELS_PER_EPOCH / (config.batch_size * tile[0] * tile[1])))

    # device, the validated run(s)
    from ..core.device import choose_device, precision_scope

    device = choose_device(config.device)
    progress.info(f"Device: {device.description}.")
    make_model = lambda: _make_model(keras, config, inputs, init_metadata,  # noqa: E731
                                     architecture, device, precision_scope)
    share = SubProgress(progress, 0.08, 0.55 if config.final_fit else 0.95)
    runs: list[_Validated] = []
    for k, split in enumerate(splits):
        runs.append(_validated_run(
            keras, config, inputs, stats, id_readers, split, tile, multiple, steps, device,
            make_model,
            SubProgress(share, k / folds, (k + 1) / folds), progress,
            fold=f"Fold {k + 1}/{folds}, " if folds > 1 else "",
            fixed_epochs=len(runs[0].loop.history) if runs else 0,
            # the final fit repeats at most one fold's epochs: K folds and it fit in the
            # (K + 1) / 2 validated runs' worth of time that one split would have had
            deadline_share=VALIDATED_SHARE * 2 / (folds + 1),
            intro=(f"U-Net '{architecture['model_size']}': depth {architecture['depth']}, "
                   f"{architecture['filters']} filters, {{weights:,}} weights; {steps} steps of "
                   f"{config.batch_size} windows per epoch, up to {config.epochs} epochs (early "
                   f"stop after {config.patience} without improvement), loss {config.loss}."
                   if k == 0 else "")))
        if runs[-1].loop.cancelled or not runs[-1].loop.history:
            break
        runs[-1].loop.data = None  # the fold's scenes are not needed any more
        if k:
            runs[-1].loop.val_set = None  # the report shows the first fold's tiles
    loop = runs[0].loop
    if folds > 1:  # the first fold's loop carries the pooled curves from here on
        loop.history, loop.best_record, loop.best_confusion = pool_folds(
            [r.loop.history for r in runs], [r.loop.confusions for r in runs])
        loop.cancelled = any(r.loop.cancelled for r in runs)
        loop.write_csv()
    if not loop.history:
        raise Cancelled()
    model = runs[0].model
    model.set_weights(runs[0].loop.best_weights)
    heldout_count = sum(len(h) for r in runs for h in r.split.heldout)
    val_totals = sum(r.val_totals for r in runs)
    train_totals = runs[0].train_totals if folds == 1 else totals
    final_fit = False
    if config.final_fit and not loop.cancelled:
        epochs = int(loop.best_record["epoch"])
        progress.info(f"Final fit: training again on all {len(features)} features, held-out "
                      f"ones included, for the {epochs} epochs validation chose. The validation "
                      "figures are those of the run without the held-out features.")
        final = None
        try:  # a cancel during the final fit keeps the validated model
            from .data import TrainingBatches, open_scenes

            # the scenes are read again, with every label
            everything, all_scenes = open_scenes(inputs.images, inputs.masks, inputs.lookup,
                                                 id_readers, None, inputs.bands, stats, classes,
                                                 SubProgress(progress, 0.55, 0.56))
            if config.teacher:
                _teach(everything, classes, config.seed, progress)
            all_data = TrainingBatches(everything, WindowSampler(all_scenes, tile),
                                       config.batch_size, config.augment, config.seed)
            keras.utils.set_random_seed(config.seed)
            with keras.device(device.keras_device):
                final_model = make_model()
                final = EpochLoop(keras, final_model, config, steps, all_data, None, inputs,
                                  class_weights(sum(s.totals for s in all_scenes)),
                                  SubProgress(progress, 0.56, 0.95), progress, fit_epochs=epochs)
                final.run()
        except Cancelled:
            pass
        if final is not None and final.best_weights is not None:
            model, final_fit = final_model, True
            model.set_weights(final.best_weights)
        else:
            progress.warn("The final fit was cancelled: the model written is the validated "
                          "one, trained without the held-out features"
                          + (" of the first fold." if folds > 1 else "."))

    # outputs
    best = loop.best_record
    best_scores = scores(loop.best_confusion)
    estimate = smoothed_val_miou(loop.history, int(best["epoch"]))
    metadata = ModelMetadata(
        bands=inputs.bands, band_count=inputs.band_count, input_dtype=inputs.input_dtype,
        mean=stats.mean, std=stats.std, class_map=inputs.class_map.to_dict(),
        tile_size=int(max(tile)), architecture=architecture, pixel_size=inputs.pixel_size,
        crs_wkt=inputs.crs_wkt,
        metrics=model_metrics(loop, best_scores, inputs, device, config, heldout_count,
                              len(features), unvalidated, train_totals, val_totals,
                              time.time() - started) | {"final_fit": final_fit,
                                                        "cross_validation_folds": folds})
    from ..core.model_file import save_model

    # An uncompiled copy: the file then holds no optimizer state nor custom loss, and plain
    # keras.saving.load_model(path, safe_mode=True) opens it without this plugin.
    export = keras.models.clone_model(model)
    export.set_weights(model.get_weights())
    save_model(export, config.output_model, metadata)
    note = (f"Cancelled after epoch {loop.history[-1]['epoch']}: the model written is the best "
            f"so far (epoch {best['epoch']}, validation mIoU {best['val_miou']:.3f})."
            if loop.cancelled else
            f"Early stop: no better validation mIoU for {config.patience} epochs."
            if loop.stopped_early else
            f"Stopped after epoch {loop.history[-1]['epoch']}: the time limit "
            f"({config.time_limit:g} minutes) leaves the rest for the final fit."
            if loop.out_of_time else "")
    if note:
        (progress.warn if loop.cancelled else progress.info)(note)
    progress.info(f"Best epoch {best['epoch']}: validation mIoU {best['val_miou']:.3f} "
                  f"({estimate:.3f} with its neighbouring epochs). Model "
                  f"written to {config.output_model} ({time.time() - started:.0f} s).")
    report = None
    if config.output_report:
        report = config.output_report
        validated = ((f"Validation: {folds}-fold cross-validation by whole features. Each of "
                      f"the {heldout_count} validated digitised features was held out whole from "
                      f"one of {folds} runs; the curves and scores pool what each run predicted "
                      "for the features it never saw." if folds > 1 else
                      f"Validation: {heldout_count} of {len(features)} digitised features were "
                      "held out whole; the curves and scores are theirs, from the run that "
                      "never saw their labels.")
                     + f" Estimated mIoU on polygons training never saw: {estimate:.3f} (best "
                     f"epoch {best['epoch']} and the epochs either side; that epoch alone: "
                     f"{best['val_miou']:.3f}).")
        if final_fit:
            validated += (f" The model file was then trained again on all features for the "
                          f"{best['epoch']} epochs chosen (final fit); expect it to do a little "
                          "better than these figures.")
        write_training_report(report, loop, inputs, best_scores, config, device, architecture,
                              tile, folds, [validated] + warnings + ([note] if note else []))
    progress.set_fraction(1.0)
    return TrainingResult(config.output_model, loop.csv_path, report, float(best["val_miou"]),
                          estimate, int(best["epoch"]), len(loop.history), loop.cancelled,
                          loop.stopped_early, loop.history, metadata)


@dataclass
class _Validated:
    """One validated run (one fold): its loop, model and label counts."""

    split: FeatureSplit
    loop: "EpochLoop"
    model: Any
    train_totals: np.ndarray
    val_totals: np.ndarray


def _validated_run(keras, config: TrainingConfig, inputs: Inputs, stats: BandStats,
                   id_readers: list, split: FeatureSplit, tile: tuple[int, int], multiple: int,
                   steps: int, device, make_model, bar: Progress, progress: Progress,
                   fold: str = "", fixed_epochs: int = 0,
                   deadline_share: float = VALIDATED_SHARE, intro: str = "") -> _Validated:
    """Trains on the features ``split`` does not hold out, validating on those it does.

    Everything fitted on labels (the teacher) sees the training features only. With
    ``fixed_epochs`` the run trains exactly that many epochs (the later folds of a
    cross-validation follow the first one's length); else it stops early or at its deadline.
    ``intro``, when given, is logged once the model is built (``{weights}``: its size).
    """
    from .data import TrainingBatches, open_scenes, read_validation

    classes = len(inputs.class_map)
    readers, scenes = open_scenes(inputs.images, inputs.masks, inputs.lookup, id_readers,
                                  split.heldout, inputs.bands, stats, classes, bar)
    heldout_scenes = [summarise_labels(lambda x, y, w, h, r=r: r.read(x, y, w, h, True)[1],
                                       r.width, r.height, classes, CELL)
                      for r in readers]
    train_totals = sum(s.totals for s in scenes)
    val_totals = sum(s.totals for s in heldout_scenes)
    windows = validation_windows(heldout_scenes, config.seed)
    val_set = read_validation(readers, windows, VALIDATION_INTERIOR, multiple)
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
    if config.teacher:
        _teach(readers, classes, config.seed, progress)
    data = TrainingBatches(readers, WindowSampler(scenes, tile), config.batch_size,
                           config.augment, config.seed)
    keras.utils.set_random_seed(config.seed)
    with keras.device(device.keras_device):
        model = make_model()
        if intro:
            progress.info(intro.format(weights=model.count_params()))
        loop = EpochLoop(keras, model, config, steps, data, val_set, inputs,
                         class_weights(train_totals), bar, progress, fixed_epochs=fixed_epochs,
                         deadline_share=deadline_share, name=fold)
        loop.run()
    return _Validated(split, loop, model, train_totals, val_totals)


def _teach(readers: list, classes: int, seed: int, progress: Progress) -> None:
    """Gives the in-memory scenes the pseudo-labels of a forest fitted on their training labels."""
    from ..core.deps import require_sklearn
    from .teacher import fit_teacher, pseudo_labels

    require_sklearn()
    forest = fit_teacher(readers, classes, seed, progress)
    if progress.cancelled():  # the forest cannot be interrupted; its few seconds can
        raise Cancelled()
    if forest is None:
        progress.warn("No teacher: the scenes are too large to hold in memory, or fewer than "
                      "two classes have training pixels. Training goes on from the labels alone.")
        return
    for reader in readers:
        if progress.cancelled():
            raise Cancelled()
        if reader.in_memory:
            reader.soft = pseudo_labels(reader, forest, classes, seed)


def _preset_dict(preset: Any) -> dict:
    return {"depth": int(preset.depth), "filters": int(preset.filters),
            "dropout": float(preset.dropout), "spectral": int(preset.spectral)}


def _fit_tile(tile_size: int, sizes: list[tuple[int, int]], multiple: int,
              progress: Progress) -> tuple[int, int]:
    """The window (height, width): the tile size, cut to the smallest scene, in multiples."""
    if tile_size < multiple or tile_size % multiple:
        raise UserError(f"The tile size must be a multiple of {multiple} (2 to the power of the "
                        f"network depth); got {tile_size}.")
    height = min(h for _, h in sizes) // multiple * multiple
    width = min(w for w, _ in sizes) // multiple * multiple
    if min(height, width) < multiple * 2:
        raise UserError(f"The image is too small to train on: at least {multiple * 2} pixels "
                        "are needed in each direction.")
    tile = (min(tile_size, height), min(tile_size, width))
    if tile != (tile_size, tile_size):
        progress.info(f"The image is smaller than the {tile_size}-pixel tile size: windows "
                      f"are {tile[0]} x {tile[1]} pixels.")
    return tile


def _make_model(keras, config: TrainingConfig, inputs: Inputs, init_metadata, architecture,
                device, precision_scope):
    from ...models.unet import UNetConfig, build_unet
    from ..core.model_file import load_model

    with precision_scope(device):
        if init_metadata is not None:
            model, _ = load_model(config.init_model)
        else:
            model = build_unet(len(inputs.bands), len(inputs.class_map),
                               UNetConfig(architecture["depth"], architecture["filters"],
                                          architecture["dropout"],
                                          architecture.get("spectral", 0)))
    return model
