"""The plan of a training run, made once before anything trains: what every later step reads.

:func:`check` reads and checks the inputs (grids, bands, class maps, a starting model, the
loss, the model size) before any file is touched. :func:`make_plan` then reads which digitised
feature each labelled pixel came from, splits the features for validation (one held-out share,
or cross-validation folds when they are few), and fixes the network, the window, the
normalisation, the steps per epoch and the device. The result, a :class:`TrainingPlan`, is
frozen: the steps after it (``validation.py``, ``final_fit.py``, ``outputs.py``) take it as
an argument and return what they made, so no step edits another's state.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...models.presets import LOSSES, PRESETS, size_multiple
from ..core.errors import UserError
from ..model.metadata import ModelMetadata
from ..core.normalization import BandStats, compute_band_stats
from ..core.progress import Progress, SubProgress
from .config import (CROSS_VALIDATION_BELOW, FEW_PIXELS, FOLDS, MIN_STEPS, PIXELS_PER_EPOCH,
                     TrainingConfig, check_config)
from .inputs import Inputs, check_init_model, check_inputs, input_warnings
from .sampling import FeatureSplit, SplitLabels, fold_features, split_features


@dataclass(frozen=True)
class Checked:
    """The inputs as checked (:func:`check`), before any file is touched."""

    config: TrainingConfig
    inputs: Inputs
    init_metadata: ModelMetadata | None
    keras: Any
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class TrainingPlan:
    """Everything a run decides before it trains (:func:`make_plan`)."""

    config: TrainingConfig
    inputs: Inputs
    init_metadata: ModelMetadata | None
    """The starting model's metadata when fine-tuning, else None."""
    keras: Any
    id_readers: list
    """Per mask, which digitised feature each labelled pixel came from."""
    features: list
    """Every digitised feature (``sampling.Feature``), over all masks."""
    totals: np.ndarray
    """Labelled pixels per class."""
    splits: list[FeatureSplit]
    """One split by whole features, or one per cross-validation fold."""
    architecture: dict
    tile: tuple[int, int]
    """The training window (height, width)."""
    stats: BandStats
    steps: int
    """Steps per epoch."""
    device: Any
    warnings: tuple[str, ...]
    """Warnings about the inputs and the labels, for the log and the report."""

    @property
    def classes(self) -> int:
        return len(self.inputs.class_map)

    @property
    def multiple(self) -> int:
        """Window sizes are multiples of this (2 to the power of the network's depth)."""
        return size_multiple(self.architecture["depth"])

    @property
    def batch_size(self) -> int:
        """Windows per step: the configured batch on each device that trains."""
        return self.config.batch_size * self.device.replicas

    @property
    def folds(self) -> int:
        return len(self.splits)

    def open_scenes(self, heldout: list | None = None, bar: Progress | None = None
                    ) -> tuple[list, list]:
        """(readers, label summaries) of every image and mask, normalised by the plan's
        statistics; the features ``heldout`` names (per mask) are read as held out, none
        when None (the final fit, the coverage check)."""
        from .data import open_scenes

        inputs = self.inputs
        return open_scenes(inputs.images, inputs.masks, inputs.lookup, self.id_readers,
                           heldout, inputs.bands, self.stats, self.classes, bar)

    @property
    def unvalidated(self) -> list[int]:
        """Classes with a single digitised feature: they train but are not validated."""
        return self.splits[0].unvalidated


def check(config: TrainingConfig) -> Checked:
    """The settings' ranges, then images, masks, bands, class maps, a starting model, the
    loss and the model size."""
    check_config(config)
    inputs = check_inputs(config)
    init_metadata = (check_init_model(config.init_model, inputs, bool(config.bands))
                     if config.init_model else None)
    from ..core.deps import require_keras

    keras = require_keras()
    if config.loss not in LOSSES:
        raise UserError(f"Unknown loss '{config.loss}'; use one of {', '.join(LOSSES)}.")
    if config.model_size not in PRESETS:
        raise UserError(f"Unknown model size '{config.model_size}'; use one of "
                        f"{', '.join(PRESETS)}.")
    return Checked(config, inputs, init_metadata, keras, tuple(input_warnings(inputs)))


def make_plan(checked: Checked, progress: Progress) -> TrainingPlan:
    """The labels, the validation splits, the network, the window, the statistics, the steps
    and the device; logs the warnings about the inputs."""
    config, inputs = checked.config, checked.inputs
    classes = len(inputs.class_map)
    id_readers, full = read_feature_ids(inputs, progress)
    features = [f for i, labels in enumerate(full) for f in labels.features(i)]
    totals = class_totals(features, classes, inputs.class_map.names)
    splits = validation_splits(config, features, len(full), classes)
    warnings = list(checked.warnings) + label_warnings(inputs, totals, splits[0].unvalidated)
    architecture = dict(checked.init_metadata.architecture) if checked.init_metadata else {
        "model_size": config.model_size, **_preset_dict(PRESETS[config.model_size])}
    multiple = size_multiple(architecture["depth"])
    tile = _fit_tile(config.tile_size, [(l.width, l.height) for l in full], multiple, progress)
    if checked.init_metadata is not None:
        stats = BandStats(list(checked.init_metadata.mean), list(checked.init_metadata.std), 0)
        progress.info("Normalisation statistics are the starting model's.")
    else:
        stats = compute_band_stats(inputs.images, inputs.bands, SubProgress(progress, 0.02, 0.05))
    for warning in warnings:
        progress.warn(warning)
    if len(splits) > 1:
        progress.info(f"Validation: {len(features)} digitised features are few, so validation "
                      f"is {len(splits)}-fold cross-validation by whole features: each feature "
                      f"is held out in one of {len(splits)} runs, whose labels of it never "
                      "reach the loss, and the figures pool what each run predicted for the "
                      "features it never saw.")
    steps = config.steps_per_epoch or max(
        MIN_STEPS, round(PIXELS_PER_EPOCH / (config.batch_size * tile[0] * tile[1])))
    from ..core.device import choose_device

    device = choose_device(config.device)
    progress.info(f"Device: {device.description}.")
    return TrainingPlan(config, inputs, checked.init_metadata, checked.keras, id_readers,
                        features, totals, splits, architecture, tile, stats, steps, device,
                        tuple(warnings))


def read_feature_ids(inputs: Inputs, progress: Progress) -> tuple[list, list[SplitLabels]]:
    """Per mask, the reader of which feature each labelled pixel came from, and its labels."""
    from ..core.feature_ids import feature_id_reader

    readers = []
    for mask in inputs.masks:
        reader, source = feature_id_reader(mask)
        readers.append(reader)
        (progress.info if source.startswith("features from") else progress.warn)(
            f"Validation groups of {os.path.basename(mask)}: {source}.")
    return readers, [SplitLabels(m, inputs.lookup, r) for m, r in zip(inputs.masks, readers)]


def class_totals(features: list, classes: int, names: list[str]) -> np.ndarray:
    """Labelled pixels per class; refuses masks that cannot train a classifier."""
    totals = np.zeros(classes, np.int64)
    for f in features:
        totals[f.label - 1] += f.pixels
    if totals.sum() == 0:
        raise UserError("The mask holds no labelled pixel (all 0): digitise some polygons "
                        "and build the mask again, and check that they cover image pixels "
                        "with data.")
    present = [c for c in range(classes) if totals[c] > 0]
    if len(present) < 2:
        raise UserError(f"Only one class ('{names[present[0]]}') has labelled pixels; a "
                        "classifier needs at least two. Digitise other classes too.")
    return totals


def validation_splits(config: TrainingConfig, features: list, masks: int,
                      classes: int) -> list[FeatureSplit]:
    """One split by whole features, or cross-validation folds when features are few."""
    splits = (fold_features(features, masks, classes, FOLDS, config.seed)
              if 0 < len(features) < CROSS_VALIDATION_BELOW else
              [split_features(features, masks, classes, config.validation_fraction,
                              config.seed)])
    if not any(len(h) for s in splits for h in s.heldout):
        raise UserError("No class has two or more digitised features, so none can be held "
                        "out to validate the network honestly. Digitise at least two "
                        "separate polygons of each class.")
    return splits


def label_warnings(inputs: Inputs, totals: np.ndarray, unvalidated: list[int]) -> list[str]:
    """Classes that are not trained, not validated, or have few labelled pixels."""
    warnings = []
    for c, info in enumerate(inputs.class_map.classes):
        if totals[c] == 0:
            warnings.append(
                f"CLASS '{info.name.upper()}' IS NOT TRAINED: none of its features has a "
                "labelled pixel on image data (they lie on nodata, in any band, or outside "
                "the image). The network keeps an output for it but never learns it, so the "
                "map will not show it. Digitise it where the image has data in every band.")
    for c, info in enumerate(inputs.class_map.classes):
        if c in unvalidated:
            warnings.append(f"Class '{info.name}' has a single digitised feature: it trains "
                            "but is not validated. Digitise a second, separate polygon of it.")
        if 0 < totals[c] < FEW_PIXELS:
            warnings.append(f"Class '{info.name}' has only {int(totals[c])} labelled pixels "
                            f"(under {FEW_PIXELS}): a network may barely learn it and its "
                            "scores are unreliable. Digitise more of it.")
    return warnings


def make_model(plan: TrainingPlan):
    """A new network (or the starting model) in the device's precision."""
    from ...models.unet import UNetConfig, build_unet
    from ..core.device import precision_scope
    from ..model.opened import load_model

    with precision_scope(plan.device):
        if plan.init_metadata is not None:
            model, _ = load_model(plan.config.init_model)
        else:
            a = plan.architecture
            model = build_unet(len(plan.inputs.bands), plan.classes,
                               UNetConfig(a["depth"], a["filters"], a["dropout"],
                                          a.get("spectral", 0)))
    return model


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
