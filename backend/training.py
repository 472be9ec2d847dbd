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

import csv
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .class_map import ClassMap
from .cross_validation import is_better, pool_folds
from .errors import Cancelled, UserError
from .model_file import ModelMetadata, read_metadata
from .normalization import BandStats, compute_band_stats
from .progress import ConsoleProgress, Progress, SubProgress
from .raster_io import atomic_output, open_raster
from .sampling import (CELL, VALIDATION_INTERIOR, FeatureSplit, SplitLabels, WindowSampler,
                       fold_features, split_features, summarise_labels, validation_windows)
from .training_scores import Scores, confusion_matrix, scores

MODEL_SIZES = ("small", "medium", "large")
PIXELS_PER_EPOCH = 2 ** 21
"""Pixels seen per epoch when the number of steps is automatic (about 128 windows of 128^2)."""
MIN_STEPS = 4
VALIDATED_SHARE = 0.45
"""Share of the time limit the validated run may use (the final fit repeats at most its
epochs, without validation). With K cross-validation folds, each fold may use 2 / (K + 1) of
this share, so the folds and the final fit still end within about 90 % of the limit."""
CROSS_VALIDATION_BELOW = 60
"""With fewer digitised features than this, validation is cross-validation of :data:`FOLDS`
folds by whole features: one held-out share would be a handful of polygons, whose score swings
by more than 0.1 from one split to the next (docs/benchmarks.md)."""
FOLDS = 3
"""Folds of that cross-validation: each costs a validated run, and each trains on two thirds."""
FEW_PIXELS = 50
"""A class with fewer labelled pixels than this gets a warning: its scores are unreliable."""
REPORT_SAMPLES = 4
LABEL_SMOOTHING = 0.1
"""Label smoothing of the cross-entropy losses: a few polygons should not make the network sure."""
WEIGHT_DECAY = 1e-2
"""AdamW's decoupled weight decay."""
EMA_EPOCHS = 1.0
"""The weights validated and kept are an exponential moving average of the training weights
over about this many epochs (at least 10 steps): with few labels the raw weights swing from
step to step, and their average generalises better and more steadily (as SWA does)."""


@dataclass
class TrainingConfig:
    """Everything a training run needs; the defaults are the plugin's defaults.

    Attributes:
        images: training images (same bands).
        masks: one mask per image, from buildmasks, on the image's grid.
        output_model: the ``.keras`` file to write.
        bands: 1-based bands to use; None for all.
        tile_size: edge of training windows (reduced for small scenes, with a message).
        model_size: "small", "medium" or "large" (see ``models.unet.PRESETS``).
        epochs: maximum number of epochs.
        batch_size: windows per step.
        learning_rate: peak learning rate (1 epoch warm-up, then cosine decay).
        loss: one of ``models.losses.LOSSES``.
        augment: flips, rotations, radiometric jitter.
        validation_fraction: share of labelled pixels held out as validation blocks.
        patience: epochs without a better validation mIoU before stopping.
        seed: makes sampling, the split and the initial weights repeatable.
        init_model: a model file to start from (fine-tune or resume).
        device: "auto", "cpu" or "gpu".
        steps_per_epoch: batches per epoch; 0 for about :data:`PIXELS_PER_EPOCH` pixels.
        output_report: the HTML report (optional).
        tensorboard_dir: a TensorBoard log folder (optional).
        workers: threads preparing batches.
        final_fit: after the validated run has chosen the number of epochs, train again on
            all features (held-out ones included) for that many epochs and write that model;
            the validation figures remain those of the validated run.
        teacher: fit a per-pixel random forest on the training labels and train on its soft
            pseudo-labels of unlabelled pixels too (``backend.teacher``).
        time_limit: minutes training may take (0: no limit); the validated run stops after
            :data:`VALIDATED_SHARE` of it, so the final fit fits in the rest.
    """

    images: list[str]
    masks: list[str]
    output_model: str
    bands: list[int] | None = None
    tile_size: int = 64
    model_size: str = "small"
    epochs: int = 50
    batch_size: int = 8
    learning_rate: float = 2e-3
    loss: str = "weighted_cross_entropy"
    augment: bool = True
    validation_fraction: float = 0.2
    patience: int = 10
    seed: int = 42
    init_model: str | None = None
    device: str = "auto"
    steps_per_epoch: int = 0
    output_report: str | None = None
    tensorboard_dir: str | None = None
    workers: int = 2
    final_fit: bool = True
    teacher: bool = True
    time_limit: float = 10.0


@dataclass
class TrainingResult:
    """What a run produced."""

    model_path: str
    csv_path: str
    report_path: str | None
    best_val_miou: float
    val_miou: float
    """The validation estimate: the mean mIoU of the chosen epoch and its neighbours."""
    best_epoch: int
    epochs_run: int
    cancelled: bool
    stopped_early: bool
    history: list[dict]
    metadata: ModelMetadata
    messages: list[str] = field(default_factory=list)


@dataclass
class Inputs:
    """The checked inputs."""

    images: list[str]
    masks: list[str]
    bands: list[int]
    band_count: int
    input_dtype: str
    class_map: ClassMap
    lookup: np.ndarray
    pixel_size: list[float]
    crs_wkt: str
    band_names: list[str]


def csv_path_for(model_path: str) -> str:
    """The CSV epoch log beside a model: ``<model stem>_epochs.csv``."""
    stem = model_path[:-len(".keras")] if model_path.lower().endswith(".keras") else model_path
    return stem + "_epochs.csv"


# ----- checking the inputs -------------------------------------------------------------------
def check_inputs(config: TrainingConfig) -> Inputs:
    """Checks images, masks, bands and class maps; raises UserError with what to do."""
    from osgeo import gdal, gdal_array

    if not config.images:
        raise UserError("Choose a training image.")
    if len(config.images) != len(config.masks):
        raise UserError(f"{len(config.images)} images but {len(config.masks)} masks were given; "
                        "give one mask per image, in the same order.")
    if not config.output_model.lower().endswith(".keras"):
        raise UserError(f"The model file must end in .keras: {config.output_model}")
    first = open_raster(config.images[0])
    band_count = first.RasterCount
    maps: list[ClassMap] = []
    for image_path, mask_path in zip(config.images, config.masks):
        image, mask = open_raster(image_path), open_raster(mask_path)
        if image.RasterCount != band_count:
            raise UserError(f"'{image_path}' has {image.RasterCount} bands but "
                            f"'{config.images[0]}' has {band_count}; all training images need "
                            "the same bands in the same order.")
        _check_grid(image, mask, image_path, mask_path)
        class_map = ClassMap.read_from_dataset(mask)
        if class_map is None:
            raise UserError(f"The mask '{mask_path}' carries no class map. Make masks with "
                            "'Build training masks' (landcoverunet:buildmasks).")
        maps.append(class_map)
    bands = list(config.bands) if config.bands else list(range(1, band_count + 1))
    wrong = [b for b in bands if not 1 <= int(b) <= band_count]
    if wrong:
        raise UserError(f"Band number(s) {', '.join(map(str, wrong))} are out of range: the "
                        f"image has bands 1 to {band_count}.")
    if len(set(bands)) != len(bands):
        raise UserError(f"A band is chosen twice: {bands}.")
    class_map = merge_class_maps(maps, config.masks)
    if len(class_map) < 2:
        raise UserError("The mask has a single class; a classifier needs at least two. "
                        "Digitise examples of the other land covers too.")
    lookup = np.zeros(256, dtype=np.uint8)
    for index, info in enumerate(class_map.classes):
        lookup[info.id] = index + 1
    types = [gdal_array.GDALTypeCodeToNumericTypeCode(first.GetRasterBand(b).DataType)
             for b in bands]
    transform = first.GetGeoTransform()
    # The colour interpretation when it names a colour, else the band's description
    # (e.g. "ETM+ red"): the report uses them to pick a true-colour composite.
    names = [gdal.GetColorInterpretationName(first.GetRasterBand(b).GetColorInterpretation())
             for b in bands]
    names = [name if name.lower() in ("red", "green", "blue") else
             first.GetRasterBand(b).GetDescription() or name for name, b in zip(names, bands)]
    return Inputs(list(config.images), list(config.masks), [int(b) for b in bands], band_count,
                  np.dtype(np.result_type(*types)).name, class_map, lookup,
                  [abs(transform[1]), abs(transform[5])], first.GetProjection(), names)


def _check_grid(image: Any, mask: Any, image_path: str, mask_path: str) -> None:
    from osgeo import osr

    hint = (f"The mask '{mask_path}' is not on the pixel grid of '{image_path}' ({{}}). Build "
            "it for this image with 'Build training masks' (landcoverunet:buildmasks).")
    if (image.RasterXSize, image.RasterYSize) != (mask.RasterXSize, mask.RasterYSize):
        raise UserError(hint.format(f"{mask.RasterXSize} x {mask.RasterYSize} pixels, image "
                                    f"{image.RasterXSize} x {image.RasterYSize}"))
    a, b = np.array(image.GetGeoTransform()), np.array(mask.GetGeoTransform())
    pixel = max(abs(a[1]), abs(a[5]), 1e-12)
    if not np.allclose(a, b, rtol=0, atol=1e-3 * pixel):
        raise UserError(hint.format("a different origin or pixel size"))
    image_srs, mask_srs = image.GetProjection(), mask.GetProjection()
    if image_srs and mask_srs:
        first, second = osr.SpatialReference(image_srs), osr.SpatialReference(mask_srs)
        if not first.IsSame(second) and not first.IsSame(
                second, ["IGNORE_DATA_AXIS_TO_SRS_AXIS_MAPPING=YES", "CRITERION=EQUIVALENT"]):
            raise UserError(hint.format("another CRS"))


def merge_class_maps(maps: list[ClassMap], paths: list[str]) -> ClassMap:
    """One class map for several masks: allowed when ids and names agree where they meet.

    A mask may lack classes the others have (they are added); the same id with another name, or
    the same name with another id, is an error because the network would mix two classes.
    """
    merged = {c.id: c for c in maps[0].classes}
    for class_map, path in zip(maps[1:], paths[1:]):
        for info in class_map.classes:
            known = merged.get(info.id)
            if known is not None and known.name.strip().lower() != info.name.strip().lower():
                raise UserError(
                    f"The masks disagree: class id {info.id} is '{known.name}' in "
                    f"'{paths[0]}' but '{info.name}' in '{path}'. Build the masks with the same "
                    "class map (the CLASS_MAP parameter of 'Build training masks').")
            same_name = [c for c in merged.values()
                         if c.name.strip().lower() == info.name.strip().lower()]
            if same_name and same_name[0].id != info.id:
                raise UserError(
                    f"The masks disagree: class '{info.name}' has id {same_name[0].id} in one "
                    f"mask and {info.id} in '{path}'. Build the masks with the same class map.")
            merged.setdefault(info.id, info)
    return ClassMap(tuple(sorted(merged.values(), key=lambda c: c.id)))


def check_init_model(path: str, inputs: Inputs, bands_given: bool) -> ModelMetadata:
    """Reads the starting model's metadata and checks it fits these bands and classes."""
    metadata = read_metadata(path)
    if not bands_given and len(metadata.bands) <= inputs.band_count and all(
            1 <= b <= inputs.band_count for b in metadata.bands):
        inputs.bands = list(metadata.bands)
    if list(metadata.bands) != inputs.bands or metadata.band_count != inputs.band_count:
        raise UserError(
            f"The starting model '{path}' was trained on bands {metadata.bands} of a "
            f"{metadata.band_count}-band image; this run uses bands {inputs.bands} of a "
            f"{inputs.band_count}-band image. Use the same bands, or train without INIT_MODEL.")
    old = metadata.classes
    if old.ids != inputs.class_map.ids or [n.strip().lower() for n in old.names] != [
            n.strip().lower() for n in inputs.class_map.names]:
        raise UserError(
            f"The starting model '{path}' predicts classes {old.ids} "
            f"({', '.join(old.names)}); these masks have {inputs.class_map.ids} "
            f"({', '.join(inputs.class_map.names)}). Build the masks with the model's class map "
            "or train without INIT_MODEL.")
    return metadata


# ----- training ----------------------------------------------------------------------------------
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
    from .deps import require_keras

    keras = require_keras()
    from ..models.losses import LOSSES
    from ..models.unet import PRESETS

    if config.loss not in LOSSES:
        raise UserError(f"Unknown loss '{config.loss}'; use one of {', '.join(LOSSES)}.")
    if config.model_size not in PRESETS:
        raise UserError(f"Unknown model size '{config.model_size}'; use one of "
                        f"{', '.join(PRESETS)}.")
    classes = len(inputs.class_map)

    # labels, the split by whole features, windows
    from .feature_ids import feature_id_reader

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
    multiple = 2 ** int(architecture["depth"])
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
    from .device import choose_device, precision_scope

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
            from .training_data import TrainingBatches, open_scenes

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
                final = _Loop(keras, final_model, config, steps, all_data, None, inputs,
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
        metrics=_metrics(loop, best_scores, inputs, device, config, heldout_count,
                         len(features), unvalidated, train_totals, val_totals,
                         time.time() - started) | {"final_fit": final_fit,
                                                   "cross_validation_folds": folds})
    from .model_file import save_model

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
        _write_report(report, loop, inputs, best_scores, config, device, architecture, tile,
                      folds, [validated] + warnings + ([note] if note else []))
    progress.set_fraction(1.0)
    return TrainingResult(config.output_model, loop.csv_path, report, float(best["val_miou"]),
                          estimate, int(best["epoch"]), len(loop.history), loop.cancelled,
                          loop.stopped_early, loop.history, metadata)


@dataclass
class _Validated:
    """One validated run (one fold): its loop, model and label counts."""

    split: FeatureSplit
    loop: "_Loop"
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
    from .training_data import TrainingBatches, open_scenes, read_validation

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
        loop = _Loop(keras, model, config, steps, data, val_set, inputs,
                     class_weights(train_totals), bar, progress, fixed_epochs=fixed_epochs,
                     deadline_share=deadline_share, name=fold)
        loop.run()
    return _Validated(split, loop, model, train_totals, val_totals)


def _teach(readers: list, classes: int, seed: int, progress: Progress) -> None:
    """Gives the in-memory scenes the pseudo-labels of a forest fitted on their training labels."""
    from .deps import require_sklearn
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


def class_weights(pixels: np.ndarray, power: float = 0.5, limit: float = 20.0) -> list[float]:
    """Per-class loss weights ~ (1 / frequency) ** power, averaging 1 over the labelled pixels.

    The square root (rather than plain inverse frequency) balances rare classes without letting
    a class of a few dozen pixels dominate; windows are already drawn more often around rare
    classes.
    """
    pixels = np.asarray(pixels, dtype=np.float64)
    frequency = pixels / max(pixels.sum(), 1.0)
    with np.errstate(divide="ignore"):
        raw = np.where(frequency > 0, frequency ** -power, 0.0)
    raw = raw / max(float((raw * frequency).sum()), 1e-12)
    return [float(w) for w in np.clip(raw, 0.0, limit)]


def ema_momentum(steps: int) -> float:
    """The weight-average momentum for an average over about :data:`EMA_EPOCHS` epochs."""
    horizon = max(10.0, EMA_EPOCHS * steps)
    return float(min(0.999, 1.0 - 1.0 / horizon))


def config_default(name: str) -> Any:
    """The default of a :class:`TrainingConfig` setting (the algorithm shows the same)."""
    return TrainingConfig.__dataclass_fields__[name].default


def _make_model(keras, config: TrainingConfig, inputs: Inputs, init_metadata, architecture,
                device, precision_scope):
    from ..models.unet import UNetConfig, build_unet
    from .model_file import load_model

    with precision_scope(device):
        if init_metadata is not None:
            model, _ = load_model(config.init_model)
        else:
            model = build_unet(len(inputs.bands), len(inputs.class_map),
                               UNetConfig(architecture["depth"], architecture["filters"],
                                          architecture["dropout"],
                                          architecture.get("spectral", 0)))
    return model


class _Loop:
    """The epoch loop: train steps, validation, logging, best weights, early stop, cancel."""

    def __init__(self, keras, model, config: TrainingConfig, steps: int, data, val_set,
                 inputs: Inputs, weights: list[float], bar: Progress, log: Progress,
                 fit_epochs: int = 0, fixed_epochs: int = 0,
                 deadline_share: float = VALIDATED_SHARE, name: str = "") -> None:
        """With ``fit_epochs``, there is no validation: the loop trains that many epochs of the
        same schedule and keeps the final (averaged) weights. With ``fixed_epochs`` it validates
        every epoch but runs exactly that many (no early stop, no deadline). Without either it
        stops early, or once it has used ``deadline_share`` of the time limit. ``name``
        prefixes its log lines (a fold)."""
        from ..models.losses import make_loss
        from ..models.metrics import MaskedMeanIoU

        self.keras, self.model, self.config, self.steps = keras, model, config, steps
        self.data, self.val_set, self.inputs, self.bar, self.log = data, val_set, inputs, bar, log
        self.classes = len(inputs.class_map)
        self.loss = make_loss(config.loss, weights, LABEL_SMOOTHING)
        if data is not None and any(r.soft is not None for r in data.readers):
            from ..models.losses import PseudoLabelLoss
            from .teacher import PSEUDO_WEIGHT

            self.loss = PseudoLabelLoss(self.loss, PSEUDO_WEIGHT)
        total = steps * config.epochs
        warmup = min(steps, max(total // 10, 1))
        self.schedule = keras.optimizers.schedules.CosineDecay(
            config.learning_rate / 10, decay_steps=max(total - warmup, 1), alpha=0.05,
            warmup_target=config.learning_rate, warmup_steps=warmup)
        model.compile(optimizer=keras.optimizers.AdamW(
            learning_rate=self.schedule, weight_decay=WEIGHT_DECAY, use_ema=EMA_EPOCHS > 0,
            ema_momentum=ema_momentum(steps)),
            loss=self.loss, metrics=[MaskedMeanIoU(self.classes)])
        self.csv_path = csv_path_for(config.output_model)
        self.history: list[dict] = []
        self.best_record: dict = {}
        self.best_weights: list | None = None
        self.best_confusion = np.zeros((self.classes, self.classes), np.int64)
        self.best_predictions: np.ndarray | None = None
        self.confusions: list[np.ndarray] = []
        """Per epoch, the confusion matrix of the held-out labels (cross-validation pools them)."""
        self.cancelled = self.stopped_early = self.out_of_time = False
        self.fit_epochs, self.fixed_epochs, self.name = fit_epochs, fixed_epochs, name
        # the validated run may use this share of the time limit; the final fit repeats at
        # most its epochs, so the whole training stays within the limit
        self.deadline = (time.time() + deadline_share * 60 * config.time_limit
                         if config.time_limit > 0 and not (fit_epochs or fixed_epochs) else 0.0)
        self.samples = pick_samples(val_set.labels, REPORT_SAMPLES) if val_set else []
        self.board = None
        if config.tensorboard_dir and not (fit_epochs or fixed_epochs):
            if keras.backend.backend() == "tensorflow":
                from .training_report import TensorBoardLog

                self.board = TensorBoardLog(config.tensorboard_dir)
            else:
                log.warn("TensorBoard logging needs the TensorFlow backend; skipped.")

    def run(self) -> None:
        from .training_data import prefetch

        config, wait = self.config, 0
        last = self.fit_epochs or self.fixed_epochs or config.epochs
        for epoch in range(1, last + 1):
            started = time.time()
            self.model.reset_metrics()
            logs: dict = {}
            done = 0
            batches = prefetch(lambda step, e=epoch: self.data.batch(e, step), range(self.steps),
                               workers=config.workers, depth=max(2, 2 * config.workers))
            try:
                for x, y in batches:
                    logs = self.model.train_on_batch(x, y, return_dict=True)
                    done += 1
                    self.bar.set_fraction(((epoch - 1) * self.steps + done)
                                          / (last * self.steps))
                    if self.bar.cancelled():
                        self.cancelled = True
                        break
            finally:
                batches.close()
            if done == 0:
                break
            loss = float(logs.get("loss", math.nan))
            if not math.isfinite(loss):
                self.log.warn(f"Epoch {epoch}: the loss is not a number; training stops. Try "
                              "a lower learning rate.")
                break
            if self.fit_epochs:
                self.history.append({"epoch": epoch, "loss": loss})
                self.log.info(f"Final fit, epoch {epoch}/{last}: loss {loss:.4f}, "
                              f"{time.time() - started:.1f} s")
                if self.cancelled:
                    break
                continue
            record = self._validate(epoch, loss, float(logs.get("miou", math.nan)), done,
                                    time.time() - started)
            # only a better mIoU resets the patience: a tie kept for its lower loss is a stall
            wait = 0 if record["improved"] else wait + 1
            self.history.append(record)
            self._log_epoch(record)
            if self.cancelled:
                break
            if wait >= config.patience and not self.fixed_epochs:
                self.stopped_early = True
                break
            if self.deadline and time.time() > self.deadline:
                self.out_of_time = True
                break
        if self.board is not None:
            self.board.close()
        if self.fit_epochs and not self.cancelled and len(self.history) == last:
            optimizer = self.model.optimizer
            if optimizer.use_ema:
                optimizer.finalize_variable_values(self.model.trainable_variables)
            self.best_weights = self.model.get_weights()

    def _validate(self, epoch: int, loss: float, miou: float, steps_done: int,
                  seconds: float) -> dict:
        """Scores (and possibly keeps) the averaged weights; training goes on from the raw ones."""
        optimizer = self.model.optimizer
        raw = self.model.get_weights() if optimizer.use_ema else None
        if raw is not None:
            optimizer.finalize_variable_values(self.model.trainable_variables)
        try:
            return self._score(epoch, loss, miou, steps_done, seconds)
        finally:
            if raw is not None:
                self.model.set_weights(raw)

    def _score(self, epoch: int, loss: float, miou: float, steps_done: int,
               seconds: float) -> dict:
        val = self.val_set
        matrix = np.zeros((self.classes, self.classes), np.int64)
        predictions = np.zeros(val.labels.shape, np.uint8)
        loss_sum = weight = 0.0
        batch = max(1, self.config.batch_size)
        for i in range(0, len(val.labels), batch):
            probabilities = np.asarray(self.model.predict_on_batch(val.pixels[i:i + batch]),
                                       dtype=np.float32)
            labels = val.labels[i:i + batch]
            predicted = probabilities.argmax(axis=-1).astype(np.uint8)
            predictions[i:i + batch] = predicted
            matrix += confusion_matrix(labels, predicted, self.classes)
            labelled = float((labels > 0).sum())
            if labelled:
                loss_sum += float(self.keras.ops.convert_to_numpy(
                    self.loss(labels, probabilities))) * labelled
                weight += labelled
        result = scores(matrix)
        record = {"epoch": epoch, "loss": loss, "miou": miou,
                  "val_loss": loss_sum / weight if weight else math.nan,
                  "val_miou": result.miou, "val_accuracy": result.accuracy,
                  "learning_rate": float(self.keras.ops.convert_to_numpy(
                      self.schedule(self.model.optimizer.iterations))),
                  "seconds": seconds + 0.0, "steps": steps_done,
                  "partial": steps_done < self.steps, "best": False, "improved": False,
                  "iou": [float(v) for v in result.iou], "val_weight": weight}
        record["improved"] = result.miou > self.best_record.get("val_miou", -1.0) + 1e-4
        self.confusions.append(matrix)
        if is_better(record, self.best_record):
            record["best"] = True
            self.best_record = record
            self.best_weights = self.model.get_weights()
            self.best_confusion = matrix
            self.best_predictions = predictions[self.samples].copy()
        self.write_csv(record)
        if self.board is not None:
            self._tensorboard(record, matrix, predictions)
        return record

    def _log_epoch(self, record: dict) -> None:
        names = self.inputs.class_map.names
        per_class = ", ".join(f"{n} {v:.2f}" for n, v in zip(names, record["iou"])
                              if not math.isnan(v))
        partial = " (cancelled mid-epoch)" if record["partial"] else ""
        best = "  * best" if record["best"] else ""
        self.log.info(f"{self.name}{'e' if self.name else 'E'}poch {record['epoch']}/"
                      f"{self.fixed_epochs or self.config.epochs}{partial}: loss "
                      f"{record['loss']:.4f}, val loss {record['val_loss']:.4f}, val mIoU "
                      f"{record['val_miou']:.3f} [{per_class}], {record['seconds']:.1f} s{best}")

    def write_csv(self, record: dict | None = None) -> None:
        """Writes the epoch log: the history so far, and ``record`` when given."""
        rows = self.history + ([record] if record else [])
        names = self.inputs.class_map.names
        with atomic_output(self.csv_path) as temporary:
            with open(temporary, "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["epoch", "loss", "miou", "val_loss", "val_miou",
                                 "val_accuracy"] + [f"val_iou_{n}" for n in names]
                                + ["learning_rate", "seconds", "steps", "partial"])
                for r in rows:
                    writer.writerow([r["epoch"], _fmt(r["loss"]), _fmt(r["miou"]),
                                     _fmt(r["val_loss"]), _fmt(r["val_miou"]),
                                     _fmt(r["val_accuracy"])] + [_fmt(v) for v in r["iou"]]
                                    + [f"{r['learning_rate']:.6g}", f"{r['seconds']:.2f}",
                                       r["steps"], int(r["partial"])])

    def _tensorboard(self, record: dict, matrix: np.ndarray, predictions: np.ndarray) -> None:
        from .training_report import (Sample, confusion_png, palette_array, png_to_array,
                                      rgb_channels_for, sample_strip)

        names = self.inputs.class_map.names
        values = {"loss/train": record["loss"], "loss/validation": record["val_loss"],
                  "miou/train": record["miou"], "miou/validation": record["val_miou"],
                  "learning_rate": record["learning_rate"]}
        values.update({f"iou/{n}": v for n, v in zip(names, record["iou"])})
        self.board.scalars(record["epoch"], values)
        colours = [c.color for c in self.inputs.class_map.classes]
        channels, _ = rgb_channels_for(self.inputs.band_names)
        strips = [sample_strip(Sample(self.val_set.pixels[i], self.val_set.valid[i],
                                      self.val_set.labels[i], predictions[i]),
                               palette_array(colours), channels) for i in self.samples]
        self.board.images(record["epoch"], "validation tiles (image | label | prediction)",
                          strips)
        self.board.images(record["epoch"], "confusion matrix",
                          [png_to_array(confusion_png(matrix, names))])


def _fmt(value: float) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else \
        f"{value:.6g}"


def smoothed_val_miou(history: list[dict], epoch: int) -> float:
    """The mean validation mIoU of ``epoch`` and the epochs either side of it.

    The best epoch is picked as the maximum of a noisy curve (a few held-out polygons), so its
    own figure is biased upwards; its neighbours' share that model's quality, not its luck.
    """
    values = [h["val_miou"] for h in history if abs(h["epoch"] - epoch) <= 1
              and not math.isnan(h["val_miou"])]
    return float(np.mean(values)) if values else math.nan


def pick_samples(labels: np.ndarray, count: int) -> list[int]:
    """Validation tiles for pictures: the most labelled ones, preferring classes not yet shown."""
    if len(labels) == 0:
        return []
    present = [set(np.unique(l[l > 0]).tolist()) for l in labels]
    amount = [(l > 0).sum() for l in labels]
    chosen: list[int] = []
    shown: set = set()
    while len(chosen) < min(count, len(labels)):
        best = max((i for i in range(len(labels)) if i not in chosen),
                   key=lambda i: (len(present[i] - shown), amount[i]))
        chosen.append(best)
        shown |= present[best]
    return chosen


def _metrics(loop: _Loop, best_scores: Scores, inputs: Inputs, device, config: TrainingConfig,
             heldout_features: int, features: int, unvalidated: list[int],
             train_totals: np.ndarray,
             val_totals: np.ndarray, seconds: float) -> dict:
    best = loop.best_record

    def clean(value: float) -> float | None:
        return None if math.isnan(value) else round(float(value), 5)

    return {
        "best_val_miou": round(float(best["val_miou"]), 5),
        "val_miou": round(smoothed_val_miou(loop.history, int(best["epoch"])), 5),
        "best_epoch": int(best["epoch"]),
        "epochs_run": len(loop.history),
        "val_accuracy": round(best_scores.accuracy, 5),
        "per_class": {info.name: {"iou": clean(best_scores.iou[i]),
                                  "precision": clean(best_scores.precision[i]),
                                  "recall": clean(best_scores.recall[i]),
                                  "training_pixels": int(train_totals[i]),
                                  "validation_pixels": int(val_totals[i])}
                      for i, info in enumerate(inputs.class_map.classes)},
        "cancelled": loop.cancelled,
        "stopped_early": loop.stopped_early,
        "loss": config.loss,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "steps_per_epoch": loop.steps,
        "augment": config.augment,
        "seed": config.seed,
        "validation_features": heldout_features,
        "features": features,
        "not_validated": [inputs.class_map.names[c] for c in unvalidated],
        "device": device.kind,
        "precision": device.precision,
        "init_model": os.path.basename(config.init_model) if config.init_model else None,
        "training_images": [os.path.basename(p) for p in inputs.images],
        "seconds": round(seconds, 1),
    }


def _write_report(path: str, loop: _Loop, inputs: Inputs, best_scores: Scores,
                  config: TrainingConfig, device, architecture: dict, tile: tuple[int, int],
                  folds: int, notes: list[str]) -> None:
    from .training_report import ReportData, Sample, rgb_channels_for, write_report

    channels, rgb_label = rgb_channels_for(inputs.band_names)
    samples = []
    if loop.best_predictions is not None:
        for k, i in enumerate(loop.samples):
            samples.append(Sample(loop.val_set.pixels[i], loop.val_set.valid[i],
                                  loop.val_set.labels[i],
                                  loop.best_predictions[k]))
    settings = {
        "images": ", ".join(inputs.images), "masks": ", ".join(inputs.masks),
        "bands": inputs.bands, "model file": config.output_model,
        "model size": f"{architecture['model_size']} (depth {architecture['depth']}, "
                      f"{architecture['filters']} filters, dropout {architecture['dropout']})",
        "training windows": f"{tile[0]} x {tile[1]} px, {loop.steps} x {config.batch_size} per "
                            "epoch",
        "loss": config.loss, "learning rate": config.learning_rate,
        "augmentation": config.augment,
        "validation": (f"{folds}-fold cross-validation by whole features" if folds > 1 else
                       f"{config.validation_fraction:g} of each class's features held out"),
        "patience": config.patience, "seed": config.seed,
        "starting model": config.init_model or "none", "device": device.description,
        "epoch log (CSV)": loop.csv_path}
    data = ReportData(
        title=f"Training report: {os.path.basename(config.output_model)}",
        class_names=inputs.class_map.names,
        class_colours=[c.color for c in inputs.class_map.classes],
        history=loop.history, best_epoch=int(loop.best_record["epoch"]),
        confusion=loop.best_confusion, scores=best_scores, samples=samples,
        rgb_channels=channels, rgb_label=rgb_label, settings=settings,
        notes=notes)
    write_report(path, data)
