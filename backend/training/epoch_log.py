"""The epoch log: one CSV row per epoch (losses, validation mIoU and accuracy, per-class IoU,
learning rate, seconds), written beside the model while training and replaced atomically, so
it can be watched from a spreadsheet while the run goes on."""
from __future__ import annotations

import math

from ..core.csv_cells import csv_writer
from ..core.raster_io import atomic_output


def write_epoch_csv(path: str, rows: list[dict], names: list[str]) -> None:
    """The epoch log: one row per epoch record (validated, or pooled over folds)."""
    with atomic_output(path) as temporary:
        with open(temporary, "w", newline="", encoding="utf-8") as handle:
            writer = csv_writer(handle)
            writer.writerow(["epoch", "loss", "miou", "val_loss", "val_miou", "val_accuracy"]
                            + [f"val_iou_{n}" for n in names]
                            + ["learning_rate", "seconds", "steps", "partial"])
            for r in rows:
                writer.writerow([r["epoch"], _fmt(r["loss"]), _fmt(r["miou"]),
                                 _fmt(r["val_loss"]), _fmt(r["val_miou"]),
                                 _fmt(r["val_accuracy"])] + [_fmt(v) for v in r["iou"]]
                                + [f"{r['learning_rate']:.6g}", f"{r['seconds']:.2f}",
                                   r["steps"], int(r["partial"])])


def _fmt(value: float) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else \
        f"{value:.6g}"
