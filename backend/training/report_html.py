"""The training report (one self-contained HTML file) and the optional TensorBoard log.

The report answers what people look at in TensorBoard today: did the curves converge, which
classes are confused, and do the predictions look right on validation tiles. Pictures are drawn
with matplotlib (Agg, no display needed) and embedded as PNG data, so the report is one file
that can be moved or mailed. The same images and scalars can also go to TensorBoard.
"""
from __future__ import annotations

import base64
import html
import io
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.keras_backend import installed
from ..core.palette import hex_to_rgb
from ..core.raster_io import atomic_output
from .validation_scores import Scores

NO_LABEL_RGB = (40, 40, 40)


@dataclass
class Sample:
    """A validation tile: normalised pixels, valid mask, label indices and predicted indices."""

    pixels: np.ndarray
    valid: np.ndarray
    labels: np.ndarray
    predicted: np.ndarray


@dataclass
class ReportData:
    """What the report shows."""

    title: str
    class_names: list[str]
    class_colours: list[str]
    history: list[dict]
    best_epoch: int
    confusion: np.ndarray
    scores: Scores
    samples: list[Sample] = field(default_factory=list)
    rgb_channels: tuple[int, int, int] = (0, 1, 2)
    rgb_label: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    calibration: Any = None
    """``calibration.Calibration`` of the written model, when there were enough pixels."""


# ----- pictures ---------------------------------------------------------------------------------
def palette_array(colours: list[str]) -> np.ndarray:
    """(C + 1, 3) uint8: index 0 (no label) dark grey, index c + 1 the colour of channel c."""
    return np.array([NO_LABEL_RGB] + [hex_to_rgb(c) for c in colours], dtype=np.uint8)


def colourise(indices: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Label indices (0 = none, c + 1 = channel c) as an RGB picture."""
    return palette[np.clip(indices, 0, len(palette) - 1)]


def composite(pixels: np.ndarray, valid: np.ndarray, channels: tuple[int, int, int]) -> np.ndarray:
    """An RGB uint8 picture of three channels, each stretched between its 2nd and 98th centile."""
    rgb = np.zeros(pixels.shape[:2] + (3,), dtype=np.uint8)
    for i, channel in enumerate(channels):
        values = pixels[..., min(channel, pixels.shape[-1] - 1)]
        inside = values[valid] if valid.any() else values.ravel()
        low, high = (np.percentile(inside, (2, 98)) if inside.size else (0.0, 1.0))
        scaled = (values - low) / max(high - low, 1e-6)
        rgb[..., i] = (np.clip(scaled, 0, 1) * 255).astype(np.uint8)
    rgb[~valid] = 0
    return rgb


def rgb_channels_for(band_names: list[str]) -> tuple[tuple[int, int, int], str]:
    """Which channels to show as red, green, blue, and how to call the picture.

    Uses the bands whose colour interpretation or description names red, green and blue as a
    word ("Red", "ETM+ red"; not "near infrared") for true colour; otherwise the first three
    channels as a false-colour composite.
    """
    found = []
    for colour in ("red", "green", "blue"):
        pattern = re.compile(rf"\b{colour}\b", re.IGNORECASE)
        found.append(next((i for i, name in enumerate(band_names) if pattern.search(name)), None))
    if None not in found and len(set(found)) == 3:
        return tuple(found), "true colour"
    n = len(band_names)
    channels = (0, min(1, n - 1), min(2, n - 1))
    return channels, "false colour (channels " + ", ".join(str(c + 1) for c in channels) + ")"


def sample_strip(sample: Sample, palette: np.ndarray,
                 channels: tuple[int, int, int]) -> np.ndarray:
    """Image, label and prediction side by side as one RGB array (for TensorBoard)."""
    gap = np.full((sample.labels.shape[0], 4, 3), 255, np.uint8)
    predicted = colourise(np.where(sample.valid, sample.predicted + 1, 0), palette)
    return np.concatenate([composite(sample.pixels, sample.valid, channels), gap,
                           colourise(sample.labels, palette), gap, predicted], axis=1)


def _figure_png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(figure)
    return buffer.getvalue()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def curves_png(history: list[dict], best_epoch: int) -> bytes:
    """Loss and mIoU per epoch, training and validation, with the best epoch marked."""
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    epochs = [h["epoch"] for h in history]
    left.plot(epochs, [h["loss"] for h in history], "o-", label="training")
    left.plot(epochs, [h["val_loss"] for h in history], "o-", label="validation")
    left.set_title("Loss")
    right.plot(epochs, [h["miou"] for h in history], "o-", label="training")
    right.plot(epochs, [h["val_miou"] for h in history], "o-", label="validation")
    right.set_title("Mean IoU")
    right.set_ylim(0, 1)
    for axis in (left, right):
        axis.axvline(best_epoch, color="grey", linestyle=":", label="best epoch")
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend()
    return _figure_png(figure)


def reliability_png(calibration) -> bytes:
    """The reliability diagram: accuracy against confidence per bin, as the network gives its
    probabilities and as classification writes them, with the diagonal a calibrated model
    follows."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(4.6, 4.2))
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":", label="calibrated")
    for table, label in ((calibration.before, f"as trained (ECE {calibration.before.ece:.3f})"),
                         (calibration.after, f"label smoothing {calibration.smoothing:g} undone "
                                             f"(ECE {calibration.after.ece:.3f})")):
        used = table.counts > 0
        axis.plot(table.confidence[used], table.accuracy[used], "o-", label=label)
    axis.set_xlabel("confidence (probability of the chosen class)")
    axis.set_ylabel("share right")
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1)
    axis.grid(alpha=0.3)
    axis.legend(loc="upper left", fontsize=8)
    return _figure_png(figure)


def confusion_png(matrix: np.ndarray, names: list[str]) -> bytes:
    """The confusion matrix, normalised per true class, with pixel counts in the cells."""
    plt = _pyplot()
    n = len(names)
    size = max(4.0, 0.6 * n + 2)
    figure, axis = plt.subplots(figsize=(size + 1, size))
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape, float), where=rows > 0)
    image = axis.imshow(share, cmap="Blues", vmin=0, vmax=1)
    axis.set_xticks(range(n), names, rotation=45, ha="right")
    axis.set_yticks(range(n), names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true (validation labels)")
    for i in range(n):
        for j in range(n):
            if matrix[i, j]:
                axis.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=8,
                          color="white" if share[i, j] > 0.5 else "black")
    figure.colorbar(image, ax=axis, fraction=0.046, label="share of the true class")
    axis.set_title("Validation confusion matrix (best epoch)")
    return _figure_png(figure)


def samples_png(samples: list[Sample], palette: np.ndarray, channels: tuple[int, int, int],
                rgb_label: str, names: list[str], colours: list[str]) -> bytes:
    """Rows of validation tiles: image composite, label, prediction, with a class legend."""
    plt = _pyplot()
    from matplotlib.patches import Patch

    figure, axes = plt.subplots(len(samples), 3, figsize=(9, 3 * len(samples)), squeeze=False)
    for row, sample in zip(axes, samples):
        predicted = np.where(sample.valid, sample.predicted + 1, 0)
        for axis, picture, title in zip(
                row, (composite(sample.pixels, sample.valid, channels),
                      colourise(sample.labels, palette), colourise(predicted, palette)),
                (f"image ({rgb_label})", "label (grey: none)", "prediction")):
            axis.imshow(picture, interpolation="nearest")
            axis.set_title(title, fontsize=9)
            axis.axis("off")
    figure.legend(handles=[Patch(color=c, label=n) for n, c in zip(names, colours)],
                  loc="lower center", ncol=min(len(names), 6), frameon=False)
    figure.tight_layout(rect=(0, 0.05, 1, 1))
    return _figure_png(figure)


def png_to_array(png: bytes) -> np.ndarray:
    """Decodes a PNG into an (h, w, 4) uint8 array (for TensorBoard)."""
    import matplotlib.image

    picture = matplotlib.image.imread(io.BytesIO(png), format="png")
    if picture.dtype != np.uint8:
        picture = (picture * 255).astype(np.uint8)
    return picture


# ----- HTML -------------------------------------------------------------------------------------
def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _number(value: float, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else \
        f"{value:.{digits}f}"


def _class_table(data: ReportData) -> list[str]:
    """The per-class scores of the best epoch, one row per class, and their mean."""
    rows = ["<h2>Per-class scores (validation, best epoch)</h2><table><tr>"
            "<th class='l'>class</th><th>IoU</th><th>precision</th><th>recall</th>"
            "<th>validation pixels</th></tr>"]
    truth = data.confusion.sum(axis=1)
    for i, (name, colour) in enumerate(zip(data.class_names, data.class_colours)):
        rows.append(
            f"<tr><td class='l'><span class='swatch' style='background:{colour}'></span>"
            f"{html.escape(name)}</td><td>{_number(data.scores.iou[i])}</td>"
            f"<td>{_number(data.scores.precision[i])}</td>"
            f"<td>{_number(data.scores.recall[i])}</td><td>{int(truth[i])}</td></tr>")
    rows.append(f"<tr><th class='l'>mean</th><th>{_number(data.scores.miou)}</th><th></th>"
                "<th></th><th></th></tr></table>")
    return rows


def report_html(data: ReportData) -> str:
    """The report as one HTML page with its pictures embedded."""
    palette = palette_array(data.class_colours)
    best = next((h for h in data.history if h["epoch"] == data.best_epoch), None)
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(data.title)}</title><style>"
        "body{font-family:sans-serif;margin:1.5em;max-width:1100px}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
        "padding:3px 8px;text-align:right}th{background:#f0f0f0}td.l,th.l{text-align:left}"
        "img{max-width:100%}.swatch{display:inline-block;width:1em;height:1em;"
        "vertical-align:middle;margin-right:4px;border:1px solid #555}</style></head><body>",
        f"<h1>{html.escape(data.title)}</h1>"]
    for note in data.notes:
        parts.append(f"<p><b>{html.escape(note)}</b></p>")
    if best is not None:
        parts.append(f"<p>Best epoch: <b>{data.best_epoch}</b> of {len(data.history)}, "
                     f"validation mean IoU <b>{_number(best['val_miou'])}</b>, pixel accuracy "
                     f"{_number(data.scores.accuracy)} on {data.scores.pixels} validation "
                     "pixels.</p>")
    parts.append("<h2>Training and validation curves</h2>")
    if data.history:
        parts.append(_img(curves_png(data.history, data.best_epoch), "curves"))
    parts += _class_table(data)
    if data.calibration is not None:
        parts.append("<h2>Calibration (held-out features)</h2><p>Of the held-out pixels given "
                     "a confidence, the share the model got right, as the network gives its "
                     "probabilities and as the confidence raster gives them; a calibrated "
                     "model follows the diagonal.</p>")
        parts.append(_img(reliability_png(data.calibration), "reliability diagram"))
    parts.append("<h2>Validation confusion matrix</h2>")
    parts.append(_img(confusion_png(data.confusion, data.class_names), "confusion matrix"))
    if data.samples:
        parts.append("<h2>Validation tiles</h2><p>Image, digitised label and prediction of the "
                     "best model; the tiles are validation blocks the network never trained "
                     "on.</p>")
        parts.append(_img(samples_png(data.samples, palette, data.rgb_channels, data.rgb_label,
                                      data.class_names, data.class_colours),
                          "validation tiles"))
    parts.append("<h2>Epochs</h2><table><tr><th>epoch</th><th>loss</th><th>val loss</th>"
                 "<th>mIoU</th><th>val mIoU</th><th>learning rate</th><th>seconds</th></tr>")
    for h in data.history:
        parts.append(f"<tr><td>{h['epoch']}</td><td>{_number(h['loss'], 4)}</td>"
                     f"<td>{_number(h['val_loss'], 4)}</td><td>{_number(h['miou'])}</td>"
                     f"<td>{_number(h['val_miou'])}</td><td>{h['learning_rate']:.2e}</td>"
                     f"<td>{h['seconds']:.1f}</td></tr>")
    parts.append("</table><h2>Settings</h2><table>")
    for key, value in data.settings.items():
        parts.append(f"<tr><td class='l'>{html.escape(str(key))}</td>"
                     f"<td class='l'>{html.escape(str(value))}</td></tr>")
    parts.append("</table></body></html>")
    return "\n".join(parts)


def write_report(path: str, data: ReportData) -> None:
    """Writes the HTML report atomically."""
    text = report_html(data)
    with atomic_output(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)


# ----- TensorBoard ------------------------------------------------------------------------------
TENSORBOARD_NEEDS_TENSORFLOW = ("TensorBoard logging needs TensorFlow installed (it writes the "
                                "log with tf.summary, under any Keras backend); skipped.")


def tensorboard_usable() -> bool:
    """Whether TensorFlow can be imported to write the log, whatever backend trains."""
    return installed("tensorflow")


class TensorBoardLog:
    """Scalars and images per epoch for TensorBoard, written with ``tf.summary``.

    The values are plain numbers and NumPy pictures, so TensorFlow writes them under any Keras
    backend (JAX, PyTorch) when it is installed.

    Args:
        folder: the log folder (TensorBoard's ``--logdir``).
        backend: the Keras backend that trains; under another than TensorFlow, TensorFlow is kept
            off the GPUs, which belong to the backend that trains.
    """

    def __init__(self, folder: str, backend: str = "tensorflow") -> None:
        import tensorflow as tf

        if backend != "tensorflow":
            try:
                tf.config.set_visible_devices([], "GPU")
            except (RuntimeError, ValueError):  # TensorFlow already started in this process
                pass
        self._tf = tf
        self._writer = tf.summary.create_file_writer(folder)

    def scalars(self, epoch: int, values: dict[str, float]) -> None:
        with self._writer.as_default(step=epoch):
            for name, value in values.items():
                if value is not None and not (isinstance(value, float) and math.isnan(value)):
                    self._tf.summary.scalar(name, float(value))
        self._writer.flush()

    def images(self, epoch: int, name: str, pictures: list[np.ndarray]) -> None:
        """Logs RGB(A) uint8 pictures of the same shape under one name."""
        if not pictures:
            return
        with self._writer.as_default(step=epoch):
            self._tf.summary.image(name, np.stack(pictures), max_outputs=len(pictures))
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


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
