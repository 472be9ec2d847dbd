"""Training a U-Net from images and their masks, as a short sequence of named steps.

:func:`train_unet` checks the inputs (grids, bands, class maps) before anything heavy; reads
which digitised feature each labelled pixel came from; plans validation by whole features (one
held-out share, or cross-validation folds when features are few); prepares the window, the
normalisation and the device; runs the validated run(s) (``loop.py``: keeps the epoch with the
best validation mIoU, stops early when it stalls); trains again on every feature for the chosen
number of epochs (the final fit); and writes the model with its metadata, a CSV of epochs, the
HTML report and optionally a TensorBoard log.

The model, the epoch log and the report are one unit (``core/staging.OutputSet``): written
under hidden names and moved into place together only when all exist, so a run that fails, is
killed or cannot write its report leaves the earlier files as they were. A cancelled run writes
its files beside them instead (``model.cancelled.keras``, see ``config.cancelled_name``).

An epoch is a fixed number of sampled pixels (not a pass over the scene), so the time an epoch
takes does not grow with the scene, and early stopping bounds the whole run.
Cancelling stops after the current batch; the best weights so far are still written, under the
cancelled names.
"""
from __future__ import annotations

import os
import time
from functools import partial
from typing import Any

import numpy as np

from ...models.presets import LOSSES, PRESETS, size_multiple
from ..core.errors import Cancelled, UserError
from ..core.model_file import ModelMetadata
from ..core.normalization import BandStats, compute_band_stats
from ..core.progress import ConsoleProgress, Progress, SubProgress
from ..core.staging import OutputSet
from .checkpoint import Checkpoint, checkpoint_key
from .choice import FOREST
from .config import (CROSS_VALIDATION_BELOW, FEW_PIXELS, FOLDS, MIN_STEPS, PIXELS_PER_EPOCH,
                     VALIDATED_SHARE, TrainingConfig, TrainingResult, cancelled_name,
                     csv_path_for)
from .cross_validation import pool_folds
from .distribute import device_scope
from .inputs import check_init_model, check_inputs, input_warnings
from .loop import EpochLoop, class_weights, validation_estimate
from .sampling import SplitLabels, WindowSampler, fold_features, split_features
from .scores import scores
from .summary import model_metrics, write_training_report
from .teacher import teach
from .validated import Validated, validated_run


def train_unet(config: TrainingConfig, progress: Progress | None = None) -> TrainingResult:
    """Trains (or fine-tunes) a U-Net and writes the model, its CSV log and the report.

    Raises:
        UserError: for inputs that cannot train (explained), with no model file written.
        Cancelled: when cancelled before the first training step.
    """
    run = _Run(config, progress or ConsoleProgress(quiet=True))
    run.check_inputs()
    try:
        for final in run.finals:  # also removes what a killed run on these outputs left
            run.outputs.temporary(final)
        run.open_checkpoint()
        run.read_labels()
        run.plan_validation()
        run.prepare()
        run.validate()
        run.choose()
        run.calibrate()
        model, final_fit = run.final_fit()
        result = run.write_outputs(run.ensemble(model, final_fit), final_fit)
        if not result.cancelled and not run.final_cancelled:
            run.checkpoint.remove()  # a cancelled run keeps it, to be resumed
        return result
    finally:
        run.outputs.discard()  # after a commit there is nothing left to discard


class _Run:
    """One training run, step by step; each step names what it adds to the run's state."""

    def __init__(self, config: TrainingConfig, progress: Progress) -> None:
        self.config, self.progress = config, progress
        self.started = time.time()
        self.warnings: list[str] = []
        self.outputs = OutputSet()
        self.finals = [config.output_model, csv_path_for(config.output_model)] + (
            [config.output_report] if config.output_report else [])
        """The files of the run, moved into place together at the end."""
        self.final_cancelled = False
        self.missing: list[int] = []
        """Classes the written model predicts on none of their checked training pixels."""

    def check_inputs(self) -> None:
        """Images, masks, bands, class maps, a starting model, the loss and the model size."""
        config = self.config
        self.inputs = check_inputs(config)
        self.init_metadata = (check_init_model(config.init_model, self.inputs,
                                               bool(config.bands))
                              if config.init_model else None)
        from ..core.deps import require_keras

        self.keras = require_keras()
        if config.loss not in LOSSES:
            raise UserError(f"Unknown loss '{config.loss}'; use one of {', '.join(LOSSES)}.")
        if config.model_size not in PRESETS:
            raise UserError(f"Unknown model size '{config.model_size}'; use one of "
                            f"{', '.join(PRESETS)}.")
        self.classes = len(self.inputs.class_map)
        self.warnings += input_warnings(self.inputs)

    @property
    def csv_temporary(self) -> str:
        """Where the epoch log is written while training (moved into place at the end)."""
        return self.outputs.temporary(csv_path_for(self.config.output_model))

    def open_checkpoint(self) -> None:
        """With ``config.resume``, reads the checkpoint a killed or cancelled run on the same
        model left; without, removes it (it is stale)."""
        config, progress = self.config, self.progress
        self.checkpoint = Checkpoint(config.output_model, checkpoint_key(config), progress)
        if not config.resume:
            self.checkpoint.remove()
            return
        found = self.checkpoint.load()
        if found != "resumed":
            progress.warn(found or "RESUME: there is no checkpoint of an earlier run on this "
                          "model (with these inputs and settings); training starts afresh.")
            self.checkpoint.remove()
            return
        done = ", ".join(self.checkpoint.finished) or "none"
        going = [f"{name} after epoch {stage.fields['epoch']}"
                 for name, stage in self.checkpoint.stages.items()
                 if name not in self.checkpoint.finished]
        progress.info(f"Resuming the earlier run from its checkpoint: stages finished: {done}"
                      + (f"; going on with {going[0]}." if going else "."))

    def read_labels(self) -> None:
        """Which feature each labelled pixel came from, the features, and pixels per class."""
        from ..core.feature_ids import feature_id_reader

        inputs, progress, classes = self.inputs, self.progress, self.classes
        self.id_readers = []
        for mask in inputs.masks:
            reader, source = feature_id_reader(mask)
            self.id_readers.append(reader)
            (progress.info if source.startswith("features from") else progress.warn)(
                f"Validation groups of {os.path.basename(mask)}: {source}.")
        self.full = [SplitLabels(m, inputs.lookup, r)
                     for m, r in zip(inputs.masks, self.id_readers)]
        self.features = [f for i, labels in enumerate(self.full) for f in labels.features(i)]
        totals = self.totals = np.zeros(classes, np.int64)
        for f in self.features:
            totals[f.label - 1] += f.pixels
        if totals.sum() == 0:
            raise UserError("The mask holds no labelled pixel (all 0): digitise some polygons "
                            "and build the mask again, and check that they cover image pixels "
                            "with data.")
        present = [c for c in range(classes) if totals[c] > 0]
        if len(present) < 2:
            raise UserError(f"Only one class ('{inputs.class_map.names[present[0]]}') has "
                            "labelled pixels; a classifier needs at least two. Digitise other "
                            "classes too.")
        for c in range(classes):
            if totals[c] == 0:  # logged with the other warnings, and in the report
                self.warnings.append(
                    f"CLASS '{inputs.class_map.names[c].upper()}' IS NOT TRAINED: none of its "
                    "features has a labelled pixel on image data (they lie on nodata, in any "
                    "band, or outside the image). The network keeps an output for it but never "
                    "learns it, so the map will not show it. Digitise it where the image has "
                    "data in every band.")

    def plan_validation(self) -> None:
        """One split by whole features, or cross-validation folds when features are few."""
        config, features = self.config, self.features
        self.splits = (
            fold_features(features, len(self.full), self.classes, FOLDS, config.seed)
            if 0 < len(features) < CROSS_VALIDATION_BELOW else
            [split_features(features, len(self.full), self.classes,
                            config.validation_fraction, config.seed)])
        self.folds = len(self.splits)
        if not any(len(h) for s in self.splits for h in s.heldout):
            raise UserError("No class has two or more digitised features, so none can be held "
                            "out to validate the network honestly. Digitise at least two "
                            "separate polygons of each class.")
        self.unvalidated = self.splits[0].unvalidated
        for c, info in enumerate(self.inputs.class_map.classes):
            if c in self.unvalidated:
                self.warnings.append(f"Class '{info.name}' has a single digitised feature: it "
                                     "trains but is not validated. Digitise a second, separate "
                                     "polygon of it.")
            if 0 < self.totals[c] < FEW_PIXELS:
                self.warnings.append(f"Class '{info.name}' has only {int(self.totals[c])} "
                                     f"labelled pixels (under {FEW_PIXELS}): a network may "
                                     "barely learn it and its scores are unreliable. Digitise "
                                     "more of it.")

    def prepare(self) -> None:
        """The architecture, the window, the normalisation, the steps and the device."""
        config, progress = self.config, self.progress
        self.architecture = dict(self.init_metadata.architecture) if self.init_metadata else {
            "model_size": config.model_size, **_preset_dict(PRESETS[config.model_size])}
        self.multiple = size_multiple(self.architecture["depth"])
        self.tile = _fit_tile(config.tile_size, [(l.width, l.height) for l in self.full],
                              self.multiple, progress)
        if self.init_metadata is not None:
            self.stats = BandStats(list(self.init_metadata.mean), list(self.init_metadata.std),
                                   0)
            progress.info("Normalisation statistics are the starting model's.")
        else:
            self.stats = compute_band_stats(self.inputs.images, self.inputs.bands,
                                            SubProgress(progress, 0.02, 0.05))
        for warning in self.warnings:
            progress.warn(warning)
        if self.folds > 1:
            progress.info(f"Validation: {len(self.features)} digitised features are few, so "
                          f"validation is {self.folds}-fold cross-validation by whole "
                          f"features: each feature is held out in one of {self.folds} runs, "
                          "whose labels of it never reach the loss, and the figures pool what "
                          "each run predicted for the features it never saw.")
        tile = self.tile
        self.steps = config.steps_per_epoch or max(
            MIN_STEPS, round(PIXELS_PER_EPOCH / (config.batch_size * tile[0] * tile[1])))
        from ..core.device import choose_device

        self.device = choose_device(config.device)
        progress.info(f"Device: {self.device.description}.")
        self.batch_size = config.batch_size * self.device.replicas
        """Windows per step: the configured batch on each device that trains."""

    def make_model(self):
        """A new network (or the starting model) in the device's precision."""
        from ...models.unet import UNetConfig, build_unet
        from ..core.device import precision_scope
        from ..core.model_file import load_model

        with precision_scope(self.device):
            if self.init_metadata is not None:
                model, _ = load_model(self.config.init_model)
            else:
                a = self.architecture
                model = build_unet(len(self.inputs.bands), self.classes,
                                   UNetConfig(a["depth"], a["filters"], a["dropout"],
                                              a.get("spectral", 0)))
        return model

    def validate(self) -> None:
        """The validated run(s); with folds, their curves pooled into the first one's loop."""
        config, folds, architecture = self.config, self.folds, self.architecture
        share = SubProgress(self.progress, 0.08, 0.55 if config.final_fit else 0.95)
        runs: list[Validated] = []
        for k, split in enumerate(self.splits):
            stage = f"fold{k + 1}"
            runs.append(validated_run(
                self, split, SubProgress(share, k / folds, (k + 1) / folds),
                fold=f"Fold {k + 1}/{folds}, " if folds > 1 else "",
                fixed_epochs=len(runs[0].loop.history) if runs else 0,
                plan=runs[0].loop.plan.planned if runs else None,
                restore=self.checkpoint.stage(stage),
                # a bound method of the checkpoint, not a closure over this run: that cycle
                # kept the run (its networks, its open rasters) alive until the interpreter's
                # last garbage collection, which then crashed the process at exit under QGIS
                checkpoint=partial(self.checkpoint.save_loop, stage),
                # the final fit repeats at most one fold's epochs: K folds and it fit in the
                # (K + 1) / 2 validated runs' worth of time that one split would have had
                deadline_share=VALIDATED_SHARE * 2 / (folds + 1),
                intro=(f"U-Net '{architecture['model_size']}': depth {architecture['depth']}, "
                       f"{architecture['filters']} filters, {{weights:,}} weights; "
                       f"{self.steps} steps of {self.batch_size} windows per epoch, up to "
                       f"{config.epochs} epochs (early stop after {config.patience} without "
                       f"improvement), loss {config.loss}." if k == 0 else "")))
            if runs[-1].loop.cancelled or not runs[-1].loop.history:
                break
            runs[-1].loop.data = None  # the fold's scenes are not needed any more
            runs[-1].loop.companion = None
            if k:  # the report shows the first fold's tiles; later folds leave only curves
                runs[-1].loop.val_set = runs[-1].loop.model = runs[-1].loop.best_weights = None
                runs[-1].model = runs[-1].forest_network = None
        self.runs = runs
        loop = self.loop = runs[0].loop
        if folds > 1:  # the first fold's loop carries the pooled curves from here on
            loop.history, loop.best_record, loop.best_confusion = pool_folds(
                [r.loop.history for r in runs], [r.loop.confusions for r in runs],
                [r.loop.feature_matrices for r in runs])
            loop.cancelled = any(r.loop.cancelled for r in runs)
            loop.write_csv()
        if not loop.history:
            raise Cancelled()
        self.validated_model = runs[0].model
        self.validated_model.set_weights(runs[0].loop.best_weights)
        self.heldout_count = sum(len(h) for r in runs for h in r.split.heldout)
        self.val_totals = sum(r.val_totals for r in runs)
        self.train_totals = runs[0].train_totals if folds == 1 else self.totals

    def choose(self) -> None:
        """Which network the file will hold: the average of the U-Net and the forest network
        unless one alone validates better with confidence (``choice.py``); logs the forest,
        the U-Net and both side by side."""
        from .choice import choose

        self.choice = None if self.loop.cancelled else choose(
            self.runs, int(self.loop.best_record["epoch"]), self.config.seed,
            networks_only=self.init_metadata is not None)
        self.final_readers: list = []
        """The scenes of the final fit, with the final teacher's pseudo-labels."""
        self.final_scenes: tuple[list, list] | None = None
        """The final fit's readers and label summaries, which the coverage check reuses."""
        if self.choice is not None:
            self.progress.info(self.choice.summary(self.choice.miou))

    def calibrate(self) -> None:
        """The temperature of the written candidate, fitted on the held-out features at the
        chosen epoch (``temperature.py``), unless validation is rough; None when there are
        too few held-out pixels."""
        from .temperature import calibrate

        self.calibration = None if self.loop.cancelled else calibrate(
            self.runs, int(self.loop.best_record["epoch"]), self.written,
            rough=self.choice is None or bool(self.choice.few))
        if self.calibration is not None:
            self.progress.info(self.calibration.summary())

    @property
    def written(self) -> str:
        """What the model file holds (``choice.CANDIDATES``)."""
        from .choice import NETWORK

        return self.choice.written if self.choice is not None else NETWORK

    def final_fit(self) -> tuple[Any, bool]:
        """The model to write: trained again on every feature for the chosen number of epochs
        (when asked and not cancelled), else the validated one; and whether it is the former.
        When the forest network alone validated best, only it is fitted again."""
        from .choice import FOREST_NETWORK

        config, progress, keras, loop = self.config, self.progress, self.keras, self.loop
        if not config.final_fit or loop.cancelled:
            if self.written == FOREST_NETWORK and self.runs[0].forest_network is not None:
                return self.runs[0].forest_network, False
            return self.validated_model, False
        if self.written == FOREST_NETWORK:
            return self.final_forest_network(), True
        epochs = int(loop.best_record["epoch"])
        progress.info(f"Final fit: training again on all {len(self.features)} features, "
                      f"held-out ones included, for the {epochs} epochs validation chose. The "
                      "validation figures are those of the run without the held-out features.")
        final = None
        try:  # a cancel during the final fit keeps the validated model
            from .data import TrainingBatches, open_scenes

            inputs = self.inputs
            # the scenes are read again, with every label
            everything, all_scenes = open_scenes(inputs.images, inputs.masks, inputs.lookup,
                                                 self.id_readers, None, inputs.bands,
                                                 self.stats, self.classes,
                                                 SubProgress(progress, 0.55, 0.56))
            self.final_scenes = (everything, all_scenes)
            saved = self.checkpoint.stage("final")
            if saved is not None:
                progress.info(f"Final fit: resuming after epoch {saved.fields['epoch']}.")
            if config.teacher and (saved is None or saved.fields["epoch"] < epochs):
                teach(everything, self.classes, config.seed, progress)
                self.final_readers = everything
            all_data = TrainingBatches(everything, WindowSampler(all_scenes, self.tile),
                                       self.batch_size, config.augment, config.seed)
            keras.utils.set_random_seed(config.seed)
            with device_scope(keras, self.device):
                final_model = self.make_model()
                final = EpochLoop(keras, final_model, config, self.steps, all_data, None,
                                  inputs, class_weights(sum(s.totals for s in all_scenes)),
                                  SubProgress(progress, 0.56, 0.95), progress,
                                  fit_epochs=epochs, plan=loop.plan.planned,
                                  csv_path=self.csv_temporary,
                                  checkpoint=partial(self.checkpoint.save_loop, "final"))
                if saved is not None:
                    final.restore(saved)
                final.run()
        except Cancelled:
            pass
        if final is not None and final.best_weights is not None:
            final_model.set_weights(final.best_weights)
            return final_model, True
        self.final_cancelled = progress.cancelled()
        progress.warn("The final fit was cancelled: the model written is the validated one, "
                      "trained without the held-out features"
                      + (" of the first fold." if self.folds > 1 else "."))
        return self.validated_model, False

    def final_forest_network(self):
        """The forest network fitted again from a teacher on every feature (the final fit of
        a run whose model file holds the forest network alone)."""
        from .data import open_scenes
        from .forest_student import distil_forest

        inputs, progress = self.inputs, self.progress
        progress.info(f"Final fit: the forest network validated best, so only it is fitted "
                      f"again, from a teacher on all {len(self.features)} features; no U-Net "
                      "is trained again.")
        everything, scenes = open_scenes(inputs.images, inputs.masks, inputs.lookup,
                                         self.id_readers, None, inputs.bands, self.stats,
                                         self.classes, SubProgress(progress, 0.55, 0.6))
        self.final_scenes = (everything, scenes)
        teach(everything, self.classes, self.config.seed, progress)
        network = distil_forest(everything, self.classes, self.config.seed, progress)
        self.architecture = self.architecture | {"depth": 0, "written": self.written}
        return network if network is not None else self.runs[0].forest_network

    def ensemble(self, model, final_fit: bool):
        """The model file's network: with the average chosen (``choice.py``), the final U-Net
        and the forest network distilled from the final teacher, averaged. With
        ``config.ensemble`` and a final fit, the model written averages the final network and
        the validated one (trained without the held-out features, from another start): two
        networks' mean probabilities are steadier on polygons neither saw."""
        from ...models.ensemble import average_models
        from .choice import AVERAGE

        if self.written == AVERAGE:
            from .forest_student import distil_forest

            forest_network = (distil_forest(self.final_readers, self.classes, self.config.seed,
                                            self.progress)
                              if final_fit and self.final_readers else
                              self.runs[0].forest_network)
            if forest_network is not None:
                self.architecture = self.architecture | {"members": 2, "written": AVERAGE}
                self.progress.info("The model file averages the U-Net and the forest network "
                                   "(neither alone validated better with confidence).")
                return average_models([model, forest_network])
        if not (self.config.ensemble and final_fit and self.init_metadata is None):
            return model

        self.architecture = self.architecture | {"members": 2}
        self.progress.info("The model file averages two networks: the final fit and the "
                           "validated run's best epoch (an ensemble; classifying takes twice "
                           "as long).")
        return average_models([model, self.validated_model])

    def write_outputs(self, model, final_fit: bool) -> TrainingResult:
        """The model file with its metadata, the log's last lines and the HTML report."""
        config, progress, loop, folds = self.config, self.progress, self.loop, self.folds
        inputs = self.inputs
        best = loop.best_record
        self.check_coverage(model)
        choice = self.choice
        best_scores = scores(loop.best_confusion if choice is None else choice.matrices.sum(0))
        estimate = self.estimate()
        metadata = ModelMetadata(
            bands=inputs.bands, band_count=inputs.band_count, input_dtype=inputs.input_dtype,
            mean=self.stats.mean, std=self.stats.std, class_map=inputs.class_map.to_dict(),
            tile_size=int(max(self.tile)), architecture=self.architecture,
            pixel_size=inputs.pixel_size, crs_wkt=inputs.crs_wkt,
            temperature=self.calibration.temperature if self.calibration else 1.0,
            metrics=model_metrics(loop, best_scores, inputs, self.device, config,
                                  self.heldout_count, len(self.features), self.unvalidated,
                                  self.train_totals, self.val_totals,
                                  time.time() - self.started, estimate)
            | {"final_fit": final_fit, "cross_validation_folds": folds}
            | (self.choice.metrics(inputs.class_map.names) if self.choice else
               {"written": self.written})
            | {"classes_missing": [inputs.class_map.names[c] for c in self.missing]}
            | (self.calibration.metrics() if self.calibration else {}))
        from ..core.model_file import save_model

        # An uncompiled copy: the file then holds no optimizer state nor custom loss, and plain
        # keras.saving.load_model(path, safe_mode=True) opens it without this plugin. Rebuilt
        # from the architecture alone (clone_model copies the compile settings since Keras 3.9),
        # in float32: mixed precision is for the GPU that trained, not for whoever classifies.
        from ...models.precision import float32_copy

        export = float32_copy(model)
        save_model(export, self.outputs.temporary(config.output_model), metadata)
        cancelled = loop.cancelled or self.final_cancelled
        model_path = cancelled_name(config.output_model) if cancelled else config.output_model
        note = (f"Cancelled after epoch {loop.history[-1]['epoch']}: the model written is the "
                f"best so far (epoch {best['epoch']}, validation mIoU {best['val_miou']:.3f})."
                if loop.cancelled else
                f"Early stop: no better validation mIoU for {config.patience} epochs."
                if loop.stopped_early else
                f"Stopped after epoch {loop.history[-1]['epoch']}: the time limit "
                f"({config.time_limit:g} minutes) leaves the rest for the final fit."
                if loop.out_of_time else "")
        if cancelled:
            kept = (f"; the existing '{config.output_model}' was left as it was"
                    if os.path.exists(config.output_model) else "")
            note = (note + " " if note else "") + (
                f"A cancelled run never replaces a finished one: the model, its epoch log and "
                f"report are written as '{os.path.basename(model_path)}' and beside it{kept}.")
        if note:
            (progress.warn if cancelled else progress.info)(note)
        if config.output_report:
            validated = ((f"Validation: {folds}-fold cross-validation by whole features. Each "
                          f"of the {self.heldout_count} validated digitised features was held "
                          f"out whole from one of {folds} runs; the curves and scores pool "
                          "what each run predicted for the features it never saw."
                          if folds > 1 else
                          f"Validation: {self.heldout_count} of {len(self.features)} digitised "
                          "features were held out whole; the curves and scores are theirs, "
                          "from the run that never saw their labels.")
                         + f" Estimated mIoU on polygons training never saw: {estimate:.3f} "
                         + (f"(90 % interval {choice.low:.3f} to {choice.high:.3f}) "
                            if choice is not None and not np.isnan(choice.low) else "")
                         + (f"(epoch {best['epoch']}; each run trained on {folds - 1} of "
                            f"{folds} shares of the features, so this is on the low side)."
                            if folds > 1 else
                            f"(best epoch {best['epoch']} and the epochs either side; that "
                            f"epoch alone: {best['val_miou']:.3f})."))
            if final_fit:
                validated += (f" The model file was then trained again on all features for "
                              f"the {best['epoch']} epochs chosen (final fit); expect it to do "
                              "a little better than these figures.")
            write_training_report(self.outputs.temporary(config.output_report), loop, inputs,
                                  best_scores, config, self.device, self.architecture,
                                  self.tile, folds,
                                  [validated] + self.choice_notes(estimate)
                                  + ([self.calibration.summary()] if self.calibration else [])
                                  + self.warnings
                                  + ([note] if note else []), self.calibration)
        written = self.outputs.commit({
            os.path.abspath(config.output_model): model_path,
            os.path.abspath(csv_path_for(config.output_model)): csv_path_for(model_path),
            **({os.path.abspath(config.output_report): cancelled_name(config.output_report)}
               if config.output_report else {})} if cancelled else None)
        report = written.get(os.path.abspath(config.output_report or ""))
        for line in self.choice_notes(estimate)[1:]:
            progress.warn(line)
        progress.info(f"Best epoch {best['epoch']}: validation mIoU {best['val_miou']:.3f} "
                      + (". " if folds > 1 else f"({estimate:.3f} with its neighbouring epochs). ")
                      + (self.choice_notes(estimate)[0] + " " if choice is not None else "")
                      + "Model written to "
                      f"{model_path} ({time.time() - self.started:.0f} s).")
        progress.set_fraction(1.0)
        return TrainingResult(model_path, csv_path_for(model_path), report,
                              float(best["val_miou"]), estimate, int(best["epoch"]),
                              len(loop.history), loop.cancelled, loop.stopped_early,
                              loop.history, metadata,
                              interval=(choice.low, choice.high) if choice else None,
                              forest_val_miou=choice.figures.get(FOREST) if choice else None,
                              written=self.written)

    def check_coverage(self, model) -> None:
        """Warns, by name, about every class the written model predicts on none of its own
        training pixels (``coverage.py``): a digitised class must not vanish silently. Its
        mIoU there bounds the interval from above where validation is rough
        (``choice.Choice.widen``)."""
        from .coverage import check_training_pixels
        from .data import open_scenes

        if self.progress.cancelled():
            return
        inputs = self.inputs
        readers, scenes = self.final_scenes or open_scenes(
            inputs.images, inputs.masks, inputs.lookup, self.id_readers, None, inputs.bands,
            self.stats, self.classes)  # the final fit's scenes when it ran: read once
        checked = check_training_pixels(model, readers, scenes, self.tile, self.classes)
        self.missing = checked.missing
        if self.choice is not None:
            self.choice.widen(checked.miou)
        for c in self.missing:
            warning = (f"CLASS '{inputs.class_map.names[c].upper()}' IS MISSING FROM THE MAP: "
                       f"the model predicts it on none of its own training pixels that were "
                       "checked. Digitise more of it (more and larger polygons), or train "
                       "again with another seed.")
            self.warnings.append(warning)
            self.progress.warn(warning)

    def estimate(self) -> float:
        """The validation estimate of what the file holds: the U-Net's as before
        (``loop.validation_estimate``), the average's over the same epochs, the forest
        network's own figure."""
        from .choice import AVERAGE, NETWORK, curve_estimate

        loop, choice = self.loop, self.choice
        if choice is None or choice.written == NETWORK:
            return validation_estimate(loop.history, loop.best_record, self.folds)
        if choice.written == AVERAGE and self.folds == 1:
            return curve_estimate(self.runs, int(loop.best_record["epoch"]))
        return choice.miou

    def choice_notes(self, estimate: float) -> list[str]:
        """The side-by-side line, then what the interval rests on (for the log and report)."""
        if self.choice is None:
            return []
        return self.choice.notes(self.inputs.class_map.names, self.totals, estimate)


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
