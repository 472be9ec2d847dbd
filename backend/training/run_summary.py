"""What a finished run reports: the metrics stored in the model file and the HTML report's data."""
from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

import numpy as np

from .config import TrainingConfig
from .inputs import Inputs
from .validation_scores import Scores

if TYPE_CHECKING:
    from .validation import Curves


def model_metrics(loop: "Curves", best_scores: Scores, inputs: Inputs, device,
                  config: TrainingConfig, heldout_features: int, features: int,
                  unvalidated: list[int], train_totals: np.ndarray, val_totals: np.ndarray,
                  seconds: float, estimate: float) -> dict:
    """The run's figures stored in the model file's metadata (``metrics``); ``estimate`` is
    the validation estimate (``cross_validation.validation_estimate``)."""
    best = loop.best_record

    def clean(value: float) -> float | None:
        return None if math.isnan(value) else round(float(value), 5)

    return {
        "best_val_miou": round(float(best["val_miou"]), 5),
        "val_miou": round(estimate, 5),
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
        "devices": device.replicas,
        "init_model": os.path.basename(config.init_model) if config.init_model else None,
        "training_images": [os.path.basename(p) for p in inputs.images],
        "seconds": round(seconds, 1),
    }


def write_training_report(path: str, loop: "Curves", inputs: Inputs, best_scores: Scores,
                          config: TrainingConfig, device, architecture: dict,
                          tile: tuple[int, int], folds: int, notes: list[str],
                          calibration=None) -> None:
    """Writes the HTML report: curves, per-class scores, confusion matrix, validation tiles."""
    from .report_html import ReportData, Sample, rgb_channels_for, write_report

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
        "training windows": f"{tile[0]} x {tile[1]} px, {loop.steps} x "
                            f"{config.batch_size * device.replicas} per epoch",
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
        notes=notes, calibration=calibration)
    write_report(path, data)
