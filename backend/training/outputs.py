"""What a finished run writes: the model file with its metadata, the epoch log, the report.

Before writing, the network is checked on its own training pixels (``coverage.py``): a class it
predicts nowhere there is named in the log and the report. The model, the epoch log and the
report are one unit (``core/staging.OutputSet``): moved into place together, or, for a
cancelled run, beside the earlier files under the cancelled names.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..model.metadata import ModelMetadata
from ..core.progress import Progress
from ..core.staging import OutputSet
from .calibration import Calibration, label_smoothing_of
from .choice import AVERAGE, FOREST, NETWORK, Choice, curve_estimate, written_candidate
from .config import TrainingResult, cancelled_name, csv_path_for
from .coverage import TrainingPixels, check_training_pixels
from .final_fit import FinalFit
from .cross_validation import validation_estimate
from .plan import TrainingPlan
from .validation_scores import Scores, scores
from .run_summary import model_metrics, write_training_report
from .validation import Validation


@dataclass
class Outcome:
    """Everything the run made, as the files describe it."""

    plan: TrainingPlan
    validation: Validation
    choice: Choice | None
    """Which network validation chose (None when cancelled before choosing)."""
    calibration: Calibration | None
    final: FinalFit
    model: Any
    """The network written."""
    architecture: dict
    started: float
    """``time.time()`` when the run started."""

    @property
    def written(self) -> str:
        """What the model file holds (``choice.CANDIDATES``)."""
        return written_candidate(self.choice)

    @property
    def label_smoothing(self) -> float:
        """The label smoothing of the written network's training, which classification
        undoes."""
        return label_smoothing_of(self.written)


def check_coverage(outcome: Outcome, progress: Progress) -> TrainingPixels | None:
    """The written model on its own training pixels (None when cancelled): the classes it
    predicts on none of them, and its mIoU there, which bounds the interval from above and
    raises the estimate (``choice.Choice.allow_for_training``)."""
    if progress.cancelled():
        return None
    plan = outcome.plan
    # the final fit's scenes when it ran: read once
    readers, scenes = outcome.final.scenes or plan.open_scenes()
    return check_training_pixels(outcome.model, readers, scenes, plan.tile, plan.classes)


def training_share(outcome: Outcome) -> float | None:
    """The share of the features each validated run trained on, when the model file was
    trained again on all of them (final fit); None when the file holds a validated network."""
    if not outcome.final.fitted:
        return None
    folds, features = outcome.plan.folds, len(outcome.plan.features)
    if folds > 1:
        return (folds - 1) / folds
    return 1.0 - outcome.validation.heldout_count / max(features, 1)


def missing_warning(name: str) -> str:
    return (f"CLASS '{name.upper()}' IS MISSING FROM THE MAP: the model predicts it on none of "
            "its own training pixels that were checked. Digitise more of it (more and larger "
            "polygons), or train again with another seed.")


def estimate(outcome: Outcome) -> float:
    """The validation estimate of what the file holds: the U-Net's as before
    (``cross_validation.validation_estimate``), the average's over the same epochs, the forest
    network's own figure."""
    curves, choice = outcome.validation.curves, outcome.choice
    if choice is None or choice.written == NETWORK:
        return validation_estimate(curves.history, curves.best_record, outcome.plan.folds)
    if choice.written == AVERAGE and outcome.plan.folds == 1:
        return curve_estimate(outcome.validation.runs, outcome.validation.epoch)
    return choice.miou


def choice_notes(outcome: Outcome, estimate_: float) -> list[str]:
    """The side-by-side line, then what the interval rests on (for the log and report)."""
    if outcome.choice is None:
        return []
    return outcome.choice.notes(outcome.plan.inputs.class_map.names, outcome.plan.totals,
                                estimate_)


def best_scores(outcome: Outcome) -> Scores:
    """Per-class scores of what the file holds at the chosen epoch, on the held-out features
    (the chosen candidate's matrices, or the U-Net's curve when nothing was chosen)."""
    curves, choice = outcome.validation.curves, outcome.choice
    return scores(curves.best_confusion if choice is None else choice.matrices.sum(0))


def model_metadata(outcome: Outcome, estimate_: float, missing: list[str]) -> ModelMetadata:
    """The model file's metadata: the inputs, the network, its calibration and its figures."""
    plan, validation, choice = outcome.plan, outcome.validation, outcome.choice
    inputs, curves = plan.inputs, validation.curves
    return ModelMetadata(
        bands=inputs.bands, band_count=inputs.band_count, input_dtype=inputs.input_dtype,
        mean=plan.stats.mean, std=plan.stats.std, class_map=inputs.class_map.to_dict(),
        tile_size=int(max(plan.tile)), architecture=outcome.architecture,
        pixel_size=inputs.pixel_size, crs_wkt=inputs.crs_wkt,
        label_smoothing=outcome.label_smoothing,
        metrics=model_metrics(curves, best_scores(outcome), inputs, plan.device, plan.config,
                              validation.heldout_count, len(plan.features), plan.unvalidated,
                              validation.train_totals, validation.val_totals,
                              time.time() - outcome.started, estimate_)
        | {"final_fit": outcome.final.fitted, "cross_validation_folds": plan.folds}
        | (choice.metrics(inputs.class_map.names) if choice else {"written": outcome.written})
        | {"classes_missing": missing}
        | (outcome.calibration.metrics() if outcome.calibration else {}))


def stop_note(outcome: Outcome, cancelled: bool, model_path: str) -> str:
    """Why the validated run stopped, and where a cancelled run's files went."""
    config, curves = outcome.plan.config, outcome.validation.curves
    best = curves.best_record
    note = (f"Cancelled after epoch {curves.history[-1]['epoch']}: the model written is the "
            f"best so far (epoch {best['epoch']}, validation mIoU {best['val_miou']:.3f})."
            if curves.cancelled else
            f"Early stop: no better validation mIoU for {config.patience} epochs."
            if curves.stopped_early else
            f"Stopped after epoch {curves.history[-1]['epoch']}: the time limit "
            f"({config.time_limit:g} minutes) leaves the rest for the final fit."
            if curves.out_of_time else "")
    if cancelled:
        kept = (f"; the existing '{config.output_model}' was left as it was"
                if os.path.exists(config.output_model) else "")
        note = (note + " " if note else "") + (
            f"A cancelled run never replaces a finished one: the model, its epoch log and "
            f"report are written as '{os.path.basename(model_path)}' and beside it{kept}.")
    return note


def validation_paragraph(outcome: Outcome, estimate_: float) -> str:
    """The report's paragraph on how the figures were validated, with the estimate."""
    plan, validation, choice = outcome.plan, outcome.validation, outcome.choice
    folds, best = plan.folds, validation.curves.best_record
    text = ((f"Validation: {folds}-fold cross-validation by whole features. Each of the "
             f"{validation.heldout_count} validated digitised features was held out whole "
             f"from one of {folds} runs; the curves and scores pool what each run predicted "
             "for the features it never saw."
             if folds > 1 else
             f"Validation: {validation.heldout_count} of {len(plan.features)} digitised "
             "features were held out whole; the curves and scores are theirs, from the run "
             "that never saw their labels.")
            + f" Estimated mIoU on polygons training never saw: {estimate_:.3f} "
            + (f"(90 % interval {choice.low:.3f} to {choice.high:.3f}) "
               if choice is not None and not np.isnan(choice.low) else "")
            + (f"(epoch {best['epoch']}; each run trained on {folds - 1} of {folds} shares "
               "of the features)."
               if folds > 1 else
               f"(best epoch {best['epoch']} and the epochs either side; that epoch alone: "
               f"{best['val_miou']:.3f})."))
    if outcome.final.fitted:
        corrected = choice is not None and choice.validated is not None
        text += (f" The model file was then trained again on all features for the "
                 f"{best['epoch']} epochs chosen (final fit); "
                 + (f"the estimate allows for that (validation alone: {choice.validated:.3f})."
                    if corrected else
                    "expect it to do a little better than the figures validation gives."))
    return text


def write_outputs(outcome: Outcome, warnings: list[str], outputs: OutputSet,
                  progress: Progress) -> TrainingResult:
    """The model file with its metadata, the log's last lines and the HTML report."""
    from ...models.precision import float32_copy
    from ..model.keras_file import save_model

    plan, curves, choice = outcome.plan, outcome.validation.curves, outcome.choice
    config = plan.config
    checked = check_coverage(outcome, progress)
    missing = [plan.inputs.class_map.names[c] for c in checked.missing] if checked else []
    for name in missing:
        warnings.append(missing_warning(name))
        progress.warn(missing_warning(name))
    estimate_ = estimate(outcome)
    if checked is not None and choice is not None:
        estimate_ = choice.allow_for_training(estimate_, checked.miou, training_share(outcome))
    metadata = model_metadata(outcome, estimate_, missing)
    # An uncompiled copy: the file then holds no optimizer state nor custom loss, and plain
    # keras.saving.load_model(path, safe_mode=True) opens it without this plugin. Rebuilt
    # from the architecture alone (clone_model copies the compile settings since Keras 3.9),
    # in float32: mixed precision is for the GPU that trained, not for whoever classifies.
    save_model(float32_copy(outcome.model), outputs.temporary(config.output_model), metadata)
    cancelled = curves.cancelled or outcome.final.cancelled
    model_path = cancelled_name(config.output_model) if cancelled else config.output_model
    note = stop_note(outcome, cancelled, model_path)
    if note:
        (progress.warn if cancelled else progress.info)(note)
    notes = choice_notes(outcome, estimate_)
    if config.output_report:
        write_training_report(
            outputs.temporary(config.output_report), curves, plan.inputs,
            best_scores(outcome), config, plan.device, outcome.architecture, plan.tile, plan.folds,
            [validation_paragraph(outcome, estimate_)] + notes
            + ([outcome.calibration.summary()] if outcome.calibration else [])
            + warnings + ([note] if note else []), outcome.calibration)
    written = outputs.commit(_cancelled_names(config, model_path) if cancelled else None)
    for line in notes[1:]:
        progress.warn(line)
    best = curves.best_record
    # the validation figure before any allowance for the final fit's larger training set
    validated = choice.validated if choice is not None and choice.validated is not None \
        else estimate_
    progress.info(f"Best epoch {best['epoch']}: validation mIoU {best['val_miou']:.3f} "
                  + (". " if plan.folds > 1 else f"({validated:.3f} with its neighbouring "
                                                  "epochs). ")
                  + (notes[0] + " " if choice is not None else "")
                  + f"Model written to {model_path} ({time.time() - outcome.started:.0f} s).")
    progress.set_fraction(1.0)
    return TrainingResult(model_path, csv_path_for(model_path),
                          written.get(os.path.abspath(config.output_report or "")),
                          float(best["val_miou"]), estimate_, int(best["epoch"]),
                          len(curves.history), curves.cancelled, curves.stopped_early,
                          curves.history, metadata,
                          interval=(choice.low, choice.high) if choice else None,
                          forest_val_miou=choice.figures.get(FOREST) if choice else None,
                          written=outcome.written)


def _cancelled_names(config, model_path: str) -> dict[str, str]:
    """Where a cancelled run's files go: beside the finished ones, never over them."""
    return {os.path.abspath(config.output_model): model_path,
            os.path.abspath(csv_path_for(config.output_model)): csv_path_for(model_path),
            **({os.path.abspath(config.output_report): cancelled_name(config.output_report)}
               if config.output_report else {})}
