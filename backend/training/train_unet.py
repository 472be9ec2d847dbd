"""Training a U-Net from images and their masks, as a short sequence of named steps.

:func:`train_unet` checks the inputs (grids, bands, class maps) before anything heavy; makes the
plan (``plan.py``: which digitised feature each labelled pixel came from, validation by whole
features, one held-out share or cross-validation folds when features are few, the window, the
normalisation and the device); runs the validated run(s) (``validation.py``, ``loop.py``: keeps
the epoch with the best validation mIoU, stops early when it stalls); chooses which network the
file holds (``choice.py``) and checks its calibration (``calibration.py``); trains again on every
feature for the chosen number of epochs (``final_fit.py``); and writes the model with its
metadata, a CSV of epochs, the HTML report and optionally a TensorBoard log (``outputs.py``).
Each step takes what the steps before it made and returns what it makes.

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

import time

from ..core.progress import ConsoleProgress, Progress
from ..core.staging import OutputSet
from .checkpoint import Checkpoint, checkpoint_key
from .choice import choose, written_candidate
from .config import TrainingConfig, TrainingResult, csv_path_for
from .final_fit import final_fit, network_to_write
from .outputs import Outcome, write_outputs
from .plan import check, make_plan
from .calibration import calibrate, label_smoothing_of
from .validation import validate

__all__ = ["TrainingConfig", "TrainingResult", "train_unet"]


def train_unet(config: TrainingConfig, progress: Progress | None = None) -> TrainingResult:
    """Trains (or fine-tunes) a U-Net and writes the model, its CSV log and the report.

    Raises:
        UserError: for inputs that cannot train (explained), with no model file written.
        Cancelled: when cancelled before the first training step.
    """
    progress = progress or ConsoleProgress(quiet=True)
    started = time.time()
    checked = check(config)
    outputs = OutputSet()
    try:
        for final in [config.output_model, csv_path_for(config.output_model)] + (
                [config.output_report] if config.output_report else []):
            outputs.temporary(final)  # also removes what a killed run on these outputs left
        csv_path = outputs.temporary(csv_path_for(config.output_model))
        checkpoint = open_checkpoint(config, progress)
        plan = make_plan(checked, progress)
        validation = validate(plan, checkpoint, csv_path, progress)
        choice = None if validation.curves.cancelled else choose(
            validation.runs, validation.epoch, config.seed,
            networks_only=plan.init_metadata is not None)
        if choice is not None:
            progress.info(choice.summary(choice.miou))
        written = written_candidate(choice)
        calibration = None if validation.curves.cancelled else calibrate(
            validation.runs, validation.epoch, written, label_smoothing_of(written))
        if calibration is not None:
            progress.info(calibration.summary())
        final = final_fit(plan, validation, written, checkpoint, csv_path, progress)
        model, architecture = network_to_write(plan, validation, final, written, progress)
        result = write_outputs(Outcome(plan, validation, choice, calibration, final, model,
                                       architecture, started),
                               list(plan.warnings), outputs, progress)
        if not result.cancelled and not final.cancelled:
            checkpoint.remove()  # a cancelled run keeps it, to be resumed
        return result
    finally:
        outputs.discard()  # after a commit there is nothing left to discard


def open_checkpoint(config: TrainingConfig, progress: Progress) -> Checkpoint:
    """With ``config.resume``, the checkpoint a killed or cancelled run on the same model left;
    without, an empty one (a stale checkpoint is removed)."""
    checkpoint = Checkpoint(config.output_model, checkpoint_key(config), progress)
    if not config.resume:
        checkpoint.remove()
        return checkpoint
    found = checkpoint.load()
    if found != "resumed":
        progress.warn(found or "RESUME: there is no checkpoint of an earlier run on this "
                      "model (with these inputs and settings); training starts afresh.")
        checkpoint.remove()
        return checkpoint
    done = ", ".join(checkpoint.finished) or "none"
    going = [f"{name} after epoch {stage.fields['epoch']}"
             for name, stage in checkpoint.stages.items() if name not in checkpoint.finished]
    progress.info(f"Resuming the earlier run from its checkpoint: stages finished: {done}"
                  + (f"; going on with {going[0]}." if going else "."))
    return checkpoint
