"""Classifying an image of any size with a trained model, window by window.

The image is covered by a grid of overlapping inference windows (see :mod:`.tiling`), processed
in horizontal strips. Each window's class probabilities are weighted by a smooth window and
summed into an accumulator that holds only the rows the current strip touches; rows no later
window reaches are normalised and written out (see :mod:`.class_outputs`) and dropped. Memory is
therefore O(width x window height x classes), never O(raster). Reading the next batch, predicting
the current one and blending/writing finished rows run at the same time (one thread each for
reading and for blending and writing; TensorFlow uses its own threads).

Only pixels that more than one window covers need blending. The network call itself normalises
the raw pixels and, when only the class raster is wanted (the default), picks each pixel's
class; window interiors are then copied as they are. With a small network, the work around it
(reading, blending, writing) would otherwise cost half as much as the network itself.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .class_map import NO_LABEL, ClassMap
from .class_outputs import ClassOutputs, Grid
from .errors import Cancelled, UserError
from .model_file import ModelMetadata, load_model, read_metadata
from .predictor import TTA_MODES, TTA_NONE, Prediction, make_predictor, transform_count
from .progress import ConsoleProgress, Progress, SubProgress
from .raster_io import atomic_output, band_nodata, invalid_pixels, open_raster
from .tiling import (AxisWindow, axis_weights, interiors, overlap_zones, plan_axis,
                     round_up, weight_sum)

WINDOW_FACTOR = 3
"""Default inference window: this many training tiles on a side (fewer overlaps to pay for)."""
MIN_WINDOW = 512
"""Smallest default inference window side: small tiles would pay a network call per few pixels."""
MAX_WINDOW = 1024
"""Largest default inference window side (bounds memory for big tiles)."""
OVERLAP_FRACTION = 8
"""Default overlap: the training tile size divided by this."""
DEFAULT_BATCH_SIZE = 1
"""Windows per forward pass: one default window is already 3 x 3 training tiles."""
PIXEL_SIZE_TOLERANCE = 1.5
"""A pixel size more than this factor away from the training data's gets a warning."""


@dataclass
class ClassifyResult:
    """What a classification produced."""

    path: str
    confidence_path: str | None
    probabilities_path: str | None
    class_map: ClassMap
    pixels_per_class: dict[int, int]
    nodata_pixels: int
    window: tuple[int, int]
    overlap: int
    windows: int
    seconds: float


def default_overlap(tile_size: int) -> int:
    """The default overlap between inference windows: a fraction of the training tile."""
    return max(4, int(tile_size) // OVERLAP_FRACTION)


def default_window(tile_size: int, multiple: int) -> int:
    """The default inference window side: a few training tiles, a multiple of ``multiple``."""
    size = max(int(tile_size), min(max(WINDOW_FACTOR * int(tile_size), MIN_WINDOW), MAX_WINDOW))
    return round_up(size, multiple)


def size_multiple(metadata: ModelMetadata) -> int:
    """Window sides must be multiples of 2 ** depth of the U-Net."""
    return 2 ** int(metadata.architecture.get("depth", 4))


def channel_class_ids(metadata: ModelMetadata) -> list[int]:
    """Class id of each output channel of the network, in channel order."""
    return [int(entry["id"]) for entry in metadata.class_map["classes"]]


def pixel_window(geotransform: tuple, width: int, height: int,
                 extent: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    """The (column, row, width, height) of the image pixels an extent touches, clipped.

    Args:
        geotransform: the image's GDAL geotransform (north up).
        width, height: the image size.
        extent: (xmin, ymin, xmax, ymax) in the image's CRS.
    """
    ox, px, rx, oy, ry, py = geotransform
    if rx or ry:
        raise UserError("The image's grid is rotated; classify it whole (leave EXTENT empty).")
    x_min, y_min, x_max, y_max = extent
    cols = sorted(((x_min - ox) / px, (x_max - ox) / px))
    rows = sorted(((y_max - oy) / py, (y_min - oy) / py))
    c0, c1 = max(0, math.floor(cols[0] + 1e-6)), min(width, math.ceil(cols[1] - 1e-6))
    r0, r1 = max(0, math.floor(rows[0] + 1e-6)), min(height, math.ceil(rows[1] - 1e-6))
    if c1 <= c0 or r1 <= r0:
        raise UserError("The extent does not overlap the image: nothing to classify.")
    return c0, r0, c1 - c0, r1 - r0


def check_image(dataset: Any, metadata: ModelMetadata, name: str, progress: Progress) -> None:
    """Errors when the image cannot feed the model; warnings when it differs from training data."""
    count = dataset.RasterCount
    if count != metadata.band_count:
        raise UserError(
            f"The model was trained on an image with {metadata.band_count} bands, but '{name}' "
            f"has {count}. Classify an image with the same bands, in the same order, as the "
            "training image.")
    outside = [b for b in metadata.bands if not 1 <= b <= count]
    if outside:
        raise UserError(f"The model reads bands {metadata.bands}, but '{name}' has only {count} "
                        f"bands (band {outside[0]} is missing).")
    from osgeo import gdal

    dtype = gdal.GetDataTypeName(dataset.GetRasterBand(metadata.bands[0]).DataType)
    trained = metadata.input_dtype
    if trained and np.dtype(_numpy_dtype(dtype)) != np.dtype(trained):
        progress.warn(f"'{name}' holds {dtype} pixels but the model was trained on {trained} "
                      "pixels: check that both have the same scaling (e.g. reflectance vs DN).")
    _check_georeference(dataset, metadata, name, progress)


def _numpy_dtype(gdal_name: str) -> str:
    from osgeo import gdal_array, gdal

    code = gdal.GetDataTypeByName(gdal_name)
    return np.dtype(gdal_array.GDALTypeCodeToNumericTypeCode(code)).name


def _check_georeference(dataset: Any, metadata: ModelMetadata, name: str,
                        progress: Progress) -> None:
    from osgeo import osr

    wkt = dataset.GetProjection()
    image_srs = osr.SpatialReference(wkt) if wkt else None
    train_srs = osr.SpatialReference(metadata.crs_wkt) if metadata.crs_wkt else None
    if image_srs is not None and train_srs is not None and not image_srs.IsSame(train_srs):
        progress.warn(f"'{name}' is in {image_srs.GetName()} but the model was trained on "
                      f"{train_srs.GetName()} data; a model classifies best data like its "
                      "training data.")
    if not metadata.pixel_size or image_srs is None or train_srs is None:
        return
    if bool(image_srs.IsGeographic()) != bool(train_srs.IsGeographic()):
        progress.warn(f"'{name}' and the training data use different kinds of CRS (degrees vs "
                      "metres): check that the pixel sizes match.")
        return
    gt = dataset.GetGeoTransform()
    here = math.hypot(gt[1], gt[2]) * (1.0 if image_srs.IsGeographic()
                                       else image_srs.GetLinearUnits())
    there = abs(float(metadata.pixel_size[0])) * (1.0 if train_srs.IsGeographic()
                                                  else train_srs.GetLinearUnits())
    unit = " degree" if image_srs.IsGeographic() else " m"
    if here > 0 and there > 0 and max(here / there, there / here) > PIXEL_SIZE_TOLERANCE:
        progress.warn(f"'{name}' has pixels of {here:g}{unit} but the model was trained on "
                      f"{there:g}{unit} pixels: objects look a different size to it; resample "
                      "the image to the training pixel size for reliable results.")


def classify_raster(image_path: str, model_path: str, output_path: str, *,
                    overlap: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                    tta: str = TTA_NONE, extent: tuple[float, float, float, float] | None = None,
                    confidence_path: str | None = None, probabilities_path: str | None = None,
                    window_size: int | None = None, model: Any = None,
                    progress: Progress | None = None) -> ClassifyResult:
    """Classifies an image with a model file and writes the class raster (and optional extras).

    Args:
        image_path: the image (any size; same bands as the training image).
        model_path: a ``.keras`` file written by training; bands, normalisation, tile size and
            classes come from its metadata.
        output_path: the class GeoTIFF (uint8, nodata 0, colour table and class map).
        overlap: pixels shared by neighbouring windows (default: the tile size / 8).
        batch_size: windows per forward pass.
        tta: "none", "flips" or "dihedral": average the probabilities over flips/rotations.
        extent: (xmin, ymin, xmax, ymax) in the image's CRS: classify only that part.
        confidence_path: optional float32 raster of the chosen class's probability.
        probabilities_path: optional float32 raster with one band per class.
        window_size: inference window side (default: 3 training tiles, at most 1024).
        model: an already loaded Keras model for ``model_path`` (skips loading it again).
        progress: where progress, messages and cancel come from.
    """
    started = time.perf_counter()
    progress = progress or ConsoleProgress(quiet=True)
    if tta not in TTA_MODES:
        raise UserError(f"Unknown TTA mode '{tta}'; use one of {', '.join(TTA_MODES)}.")
    if batch_size < 1:
        raise UserError("The batch size must be at least 1.")
    paths = [os.path.abspath(p) for p in (output_path, confidence_path, probabilities_path) if p]
    if os.path.abspath(image_path) in paths or len(set(paths)) < len(paths):
        raise UserError("Each output needs its own file, other than the image.")
    metadata = read_metadata(model_path)
    name = os.path.basename(image_path)
    dataset = open_raster(image_path)
    check_image(dataset, metadata, name, progress)

    full_width, full_height = dataset.RasterXSize, dataset.RasterYSize
    gt = dataset.GetGeoTransform()
    x_off, y_off, width, height = (pixel_window(gt, full_width, full_height, extent)
                                   if extent is not None else (0, 0, full_width, full_height))
    grid = Grid(width, height, (gt[0] + x_off * gt[1] + y_off * gt[2], gt[1], gt[2],
                                gt[3] + x_off * gt[4] + y_off * gt[5], gt[4], gt[5]),
                dataset.GetProjection())

    multiple = size_multiple(metadata)
    tile = int(metadata.tile_size)
    window = round_up(int(window_size), multiple) if window_size else default_window(tile,
                                                                                      multiple)
    overlap = default_overlap(tile) if overlap is None else int(overlap)
    if overlap < 0:
        raise UserError("The overlap cannot be negative.")
    if overlap >= window // 2:
        raise UserError(f"The overlap ({overlap} px) must be less than half the inference "
                        f"window ({window} px).")
    rows = plan_axis(height, window, overlap, multiple, minimum=tile)
    cols = plan_axis(width, window, overlap, multiple, minimum=tile)

    if model is None:
        progress.info(f"Loading the model {os.path.basename(model_path)} ...")
        model, _ = load_model(model_path)
    ids = channel_class_ids(metadata)
    _check_model(model, metadata, ids)
    class_map = metadata.classes
    classes_only = not confidence_path and not probabilities_path
    predictor = make_predictor(model, tta, mean=metadata.mean, scale=_scale(metadata.std),
                               lookup=np.asarray(ids, np.uint8) if classes_only else None)

    total = len(rows) * len(cols)
    progress.info(
        f"Classifying {width} x {height} pixels of '{name}' into {len(ids)} classes: "
        f"{total} windows of {cols[0].size} x {rows[0].size} px in {len(rows)} strips, overlap "
        f">= {overlap} px, batches of {batch_size}, TTA {tta} "
        f"({transform_count(tta)} pass{'es' if transform_count(tta) > 1 else ''} per window).")

    with contextlib.ExitStack() as files:
        class_tmp = files.enter_context(atomic_output(output_path))
        confidence_tmp = (files.enter_context(atomic_output(confidence_path))
                          if confidence_path else None)
        probabilities_tmp = (files.enter_context(atomic_output(probabilities_path))
                             if probabilities_path else None)
        outputs = ClassOutputs(grid, class_map, ids, class_tmp, confidence_tmp,
                               probabilities_tmp)
        files.callback(outputs.close)  # runs first: files closed before they are moved/removed
        source = _Source(dataset, metadata, x_off, y_off, width, rows)
        _run_windows(source, predictor, outputs, rows, cols, batch_size, classes_only,
                     SubProgress(progress, 0.0, 0.95))
        progress.info("Building overviews ...")
        outputs.finish(SubProgress(progress, 0.95, 1.0))
        counts = outputs.counts
    progress.set_fraction(1.0)

    per_class = {class_id: int(counts[class_id]) for class_id in ids}
    classified = sum(per_class.values())
    for class_id in ids:
        share = 100.0 * per_class[class_id] / classified if classified else 0.0
        progress.info(f"class {class_id} '{class_map.by_id(class_id).name}': "
                      f"{per_class[class_id]} pixels ({share:.1f} %)")
    nodata = int(counts[NO_LABEL])
    if nodata:
        progress.info(f"nodata (image nodata or NaN): {nodata} pixels")
    seconds = time.perf_counter() - started
    progress.info(f"Done in {seconds:.1f} s ({width * height / max(seconds, 1e-9) / 1e6:.2f} "
                  "million pixels per second).")
    return ClassifyResult(output_path, confidence_path, probabilities_path, class_map, per_class,
                          nodata, (cols[0].size, rows[0].size), overlap, total, seconds)


def _check_model(model: Any, metadata: ModelMetadata, ids: list[int]) -> None:
    inputs, outputs = model.input_shape[-1], model.output_shape[-1]
    if inputs != len(metadata.bands) or outputs != len(ids):
        raise UserError(f"The model file is inconsistent: the network takes {inputs} bands and "
                        f"gives {outputs} classes, its metadata says {len(metadata.bands)} bands "
                        f"and {len(ids)} classes. Train it again.")


def _scale(std: list[float]) -> np.ndarray:
    """1 / std per band (1 where a band is constant)."""
    std = np.asarray(std, dtype=np.float32)
    return (1.0 / np.where(std > 0, std, 1.0)).astype(np.float32)


class _Source:
    """Reads windows of the image as raw pixels; the network normalises them (see predictor)."""

    def __init__(self, dataset: Any, metadata: ModelMetadata, x_off: int, y_off: int,
                 width: int, rows: list[AxisWindow]) -> None:
        self.dataset = dataset
        self.bands = [int(b) for b in metadata.bands]
        nodata = band_nodata(dataset)
        self.nodata = [nodata[b - 1] for b in self.bands]
        self.mean = np.asarray(metadata.mean, dtype=np.float32)
        self.x_off, self.y_off, self.width = x_off, y_off, width
        types = {dataset.GetRasterBand(b).DataType for b in self.bands}
        # bands of different types are read as one type that holds them all
        self.buf_type = None if len(types) == 1 else _common_type(types)
        self.block = [int(n) for n in dataset.GetRasterBand(self.bands[0]).GetBlockSize()]
        self.following = {row.start: after for row, after in zip(rows, rows[1:])}
        self.kept: np.ndarray | None = None  # columns [kept_x0, ...) of the strip kept_row
        self.kept_row = self.kept_x0 = -1
        self.carry: np.ndarray | None = None  # the first rows of strip kept_row, all columns
        self.carrying: list[np.ndarray] | None = []  # the same for the next strip, by columns

    def read(self, row: AxisWindow, cols: list[AxisWindow]) -> tuple[np.ndarray, np.ndarray]:
        """Returns (batch (n, h, w, bands) of pixels, valid (rows, columns) of the covered span).

        Pixels keep the image's type, so nothing here passes over them but the copy into the
        batch. Only where the image has no data do they become float32: there they are set to
        the band means, which the network's normalisation turns into 0.
        """
        x0, x1 = cols[0].start, cols[-1].stop
        raw = self._columns(row, x0, x1)
        invalid = invalid_pixels(raw.transpose(2, 0, 1), self.nodata)
        if invalid.any():
            raw = raw.astype(np.float32)
            raw[invalid] = self.mean
        padded = row.size > row.valid or cols[-1].size > cols[-1].valid
        if len(cols) == 1 and not padded:
            return raw[None], ~invalid
        batch = np.empty((len(cols), row.size, cols[0].size, len(self.bands)), dtype=raw.dtype)
        for k, col in enumerate(cols):
            piece = raw[:, col.start - x0:col.stop - x0]
            if row.size > row.valid or col.size > col.valid:
                piece = np.pad(piece, ((0, row.size - row.valid), (0, col.size - col.valid),
                                       (0, 0)),
                               mode="reflect" if min(piece.shape[:2]) > 1 else "edge")
            batch[k] = piece
        return batch, ~invalid

    def _columns(self, row: AxisWindow, x0: int, x1: int) -> np.ndarray:
        """Pixels (rows, columns, bands) of columns [x0, x1) of a strip, read left to right.

        Reading a window decodes every image block it touches, and the next window touches
        the same blocks again. So each read goes on to the end of its block column (at most one
        more window's width, for images stored in full-width strips) and the columns beyond x1
        are kept for the next window: each block is decoded once per strip.
        """
        if row.start != self.kept_row:
            self._next_strip(row)
        elif self.kept is None or not self.kept_x0 <= x0 <= self.kept_x0 + self.kept.shape[1]:
            self.kept, self.kept_x0, self.carrying = None, x0, None  # out of order: no carry
        have = self.kept_x0 + (0 if self.kept is None else self.kept.shape[1])
        if x1 > have:
            block_end = _block_end(self.x_off, x1, self.block[0])
            stop = min(max(x1, min(block_end, 2 * x1 - x0)), self.width)
            fresh = self._chunk(row, have, stop)
            self.kept = fresh if self.kept is None else np.concatenate(
                [self.kept[:, x0 - self.kept_x0:], fresh], axis=1)
            self.kept_x0 = x0
        return self.kept[:, x0 - self.kept_x0:x1 - self.kept_x0]

    def _next_strip(self, row: AxisWindow) -> None:
        """Starts reading strip ``row`` with the rows the previous strip read for it, if any."""
        carried = np.concatenate(self.carrying, axis=1) if self.carrying else None
        usable = (carried is not None and carried.shape[1] == self.width
                  and self.kept_row in self.following
                  and self.following[self.kept_row].start == row.start)
        self.carry = carried if usable else None
        self.kept, self.kept_row, self.kept_x0, self.carrying = None, row.start, 0, []

    def _chunk(self, row: AxisWindow, start: int, stop: int) -> np.ndarray:
        """Rows of a strip, columns [start, stop): rows the previous strip read, then fresh ones.

        Strips overlap and rarely end on a block row, so a strip's last block row would be
        decoded again by the next strip. A read therefore goes on to the end of its block row
        (when that is at most MAX_CARRY_ROWS more) and the rows the next strip needs are kept
        for it (a few rows over the whole width).
        """
        parts = [] if self.carry is None else [self.carry[:, start:stop]]
        top = row.start + (0 if self.carry is None else len(self.carry))
        end = row.start + row.valid
        after = self.following.get(row.start)
        if after is not None and _block_end(self.y_off, end, self.block[1]) - end <= MAX_CARRY_ROWS:
            end = min(_block_end(self.y_off, end, self.block[1]), after.stop)
        if end > top:
            fresh = self.dataset.ReadAsArray(
                self.x_off + start, self.y_off + top, stop - start, end - top,
                band_list=self.bands, buf_type=self.buf_type, interleave="pixel")
            self.dataset.FlushCache()  # GDAL's block cache would otherwise keep the whole image
            if fresh is None:
                raise UserError("Reading the image failed: " + _gdal_error())
            parts.append(fresh.reshape(end - top, stop - start, len(self.bands)))
        chunk = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
        if after is not None and self.carrying is not None:
            self.carrying.append(chunk[after.start - row.start:].copy())  # not the chunk
        return chunk[:row.valid]


def _block_end(offset: int, position: int, block: int) -> int:
    """The end of the image block (of ``block`` pixels from ``offset``) holding ``position - 1``."""
    return -(-(offset + position) // block) * block - offset


MAX_CARRY_ROWS = 64
"""At most this many rows are read beyond a strip to finish its last block row for the next."""


def _common_type(types: set[int]) -> int:
    from osgeo import gdal

    wide = {gdal.GDT_Float64, gdal.GDT_Int32, gdal.GDT_UInt32,
            getattr(gdal, "GDT_Int64", -1), getattr(gdal, "GDT_UInt64", -1)}
    return gdal.GDT_Float64 if types & wide else gdal.GDT_Float32


def _gdal_error() -> str:
    from osgeo import gdal

    return gdal.GetLastErrorMsg() or "unknown GDAL error"


class _Blender:
    """Sums weighted window probabilities for one strip of rows and passes finished rows on.

    The accumulator holds one strip (the window height) over the full width. When a strip is
    done, the rows above the next strip's first row are final: they are turned into outputs and
    written, while the strip's overlap rows move to the top for the next strip.

    A window's interior (see :func:`.tiling.interiors`) is final as the network gives it; only
    the overlap bands need weighted sums. With ``classes_only`` (no confidence or probabilities
    wanted, the default) the interior's class ids, which the network picked, go straight into
    the class rows, and scores are summed, compared and cleared only in the overlap bands: a
    few percent of the pixels. All its methods run, in order, in one worker thread.
    """

    def __init__(self, outputs: ClassOutputs, rows: list[AxisWindow], cols: list[AxisWindow],
                 classes_only: bool) -> None:
        width, height = outputs.grid.width, outputs.grid.height
        self.outputs, self.rows, self.cols, self.height = outputs, rows, cols, height
        self.row_weights, self.col_weights = axis_weights(rows), axis_weights(cols)
        self.row_inner, self.col_inner = interiors(rows), interiors(cols)
        self.row_zones, self.col_zones = overlap_zones(rows), overlap_zones(cols)
        self.row_sums = weight_sum(height, rows, self.row_weights)
        self.col_sums = weight_sum(width, cols, self.col_weights)
        strip = max(row.valid for row in rows)
        # np.zeros: pages the overlap bands never touch are never allocated
        self.scores = np.zeros((strip, width, len(outputs.lookup)), dtype=np.float32)
        self.valid = np.zeros((strip, width), dtype=bool)
        self.classes = np.zeros((strip, width), dtype=np.uint8) if classes_only else None
        self.top = 0  # output row of scores[0]

    def add(self, i: int, js: list[int], probabilities: np.ndarray, classes: np.ndarray | None,
            valid_span: np.ndarray) -> None:
        """Adds windows (row i, columns js): their probabilities and, if classes_only, classes."""
        row, inner_rows = self.rows[i], slice(*self.row_inner[i])
        r0 = row.start - self.top
        for k, j in enumerate(js):
            col, inner_cols = self.cols[j], slice(*self.col_inner[j])
            part = probabilities[k, :row.valid, :col.valid]
            inner = (slice(r0 + inner_rows.start, r0 + inner_rows.stop),
                     slice(col.start + inner_cols.start, col.start + inner_cols.stop))
            if self.classes is not None:
                self.classes[inner] = classes[k, inner_rows, inner_cols]
            else:  # only this window covers its interior: its sum is its probability
                self.scores[inner] = part[inner_rows, inner_cols]
            for rs, cs in _frame(row.valid, col.valid, inner_rows, inner_cols):
                weights = self.row_weights[i][rs, None, None] * self.col_weights[j][None, cs, None]
                self.scores[r0 + rs.start:r0 + rs.stop,
                            col.start + cs.start:col.start + cs.stop] += part[rs, cs] * weights
        self.valid[r0:r0 + row.valid, self.cols[js[0]].start:self.cols[js[-1]].stop] = valid_span

    def finish_strip(self, i: int) -> None:
        """Writes the rows no later window touches and keeps the overlap for strip i + 1."""
        final = self.rows[i + 1].start if i + 1 < len(self.rows) else self.height
        top = self.top
        count = final - top
        if self.classes is not None:
            self._finish_classes(count)
        else:
            for start in range(0, count, DERIVE_ROWS):  # in slices: small temporaries
                stop = min(count, start + DERIVE_ROWS)
                finished = self.outputs.derive(self.scores[start:stop], self.valid[start:stop],
                                               self.row_sums[top + start:top + stop],
                                               self.col_sums)
                self.outputs.write_rows(top + start, *finished)
        kept = self.rows[i].stop - final  # this strip's rows the next strip overlaps
        if kept > 0:
            carried = self.scores[count:count + kept].copy()
            if self.classes is not None:
                self.scores[count:count + kept] = 0.0
            self.scores[:kept] = carried
            self.valid[:kept] = self.valid[count:count + kept].copy()
        if self.classes is None:
            self.scores[max(kept, 0):] = 0.0
        self.valid[max(kept, 0):] = False
        self.top = final

    def _finish_classes(self, count: int) -> None:
        """Classes of the finished rows: in the overlap bands from the sums, which are cleared.

        Everywhere else the scores were never touched, so after this only the rows carried to
        the next strip hold sums.
        """
        classes, valid, top = self.classes[:count], self.valid[:count], self.top
        bands = [(slice(max(a, top) - top, min(b, top + count) - top), slice(None))
                 for a, b in self.row_zones if a < top + count and b > top]
        bands += [(slice(0, count), slice(a, b)) for a, b in self.col_zones]
        for band in bands:  # row and column bands cross: clear only once all are read
            classes[band] = self.outputs.class_ids(self.scores[band])
        for band in bands:
            self.scores[band] = 0.0
        if not valid.all():
            classes[~valid] = NO_LABEL
        self.outputs.write_rows(top, classes.copy())


def _frame(rows: int, cols: int, inner_rows: slice,
           inner_cols: slice) -> list[tuple[slice, slice]]:
    """The parts of a rows x cols window around its interior: disjoint, each pixel added once."""
    parts = [(slice(0, inner_rows.start), slice(0, cols)),
             (slice(inner_rows.stop, rows), slice(0, cols)),
             (inner_rows, slice(0, inner_cols.start)), (inner_rows, slice(inner_cols.stop, cols))]
    return [(r, c) for r, c in parts if r.stop > r.start and c.stop > c.start]


DERIVE_ROWS = 64
"""Finished rows are turned into outputs this many at a time."""
IN_FLIGHT = 2
"""Batches of probabilities waiting to be blended, at most (bounds memory)."""


def _run_windows(source: _Source, predictor: Callable[[np.ndarray], Prediction],
                 outputs: ClassOutputs, rows: list[AxisWindow], cols: list[AxisWindow],
                 batch_size: int, classes_only: bool, progress: Progress) -> None:
    """Reads, predicts, blends and writes every window, the three stages at the same time.

    A reader thread prepares the next batch while the network predicts the current one; a
    blender thread accumulates the predictions and writes finished rows. The main thread only
    predicts, checks for cancel and reports progress.
    """
    batches = []
    for i in range(len(rows)):
        group: list[int] = []
        for j in range(len(cols)):  # a batch holds windows of one shape (the last column's differs)
            if group and (len(group) == batch_size or cols[j].size != cols[group[0]].size):
                batches.append((i, group))
                group = []
            group.append(j)
        batches.append((i, group))
    blender = _Blender(outputs, rows, cols, classes_only)
    blending: deque = deque()
    done = 0
    with ThreadPoolExecutor(1, thread_name_prefix="classify-read") as reader, \
            ThreadPoolExecutor(1, thread_name_prefix="classify-blend") as worker:
        reading = reader.submit(source.read, rows[batches[0][0]], [cols[j] for j in batches[0][1]])
        for number, (i, js) in enumerate(batches):
            if progress.cancelled():
                raise Cancelled()
            batch, valid_span = reading.result()
            if number + 1 < len(batches):
                following = batches[number + 1]
                reading = reader.submit(source.read, rows[following[0]],
                                        [cols[j] for j in following[1]])
            probabilities, classes = predictor(batch)
            del batch
            while len(blending) >= IN_FLIGHT:
                blending.popleft().result()
            blending.append(worker.submit(blender.add, i, js, probabilities, classes,
                                          valid_span))
            if js[-1] == len(cols) - 1:
                blending.append(worker.submit(blender.finish_strip, i))
            done += len(js)
            progress.set_fraction(done / (len(rows) * len(cols)))
        while blending:
            blending.popleft().result()
