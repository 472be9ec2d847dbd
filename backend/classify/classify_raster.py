"""Classifying an image of any size with a trained model, window by window.

The image is covered by a grid of overlapping inference windows (see :mod:`.tiling`), processed
in horizontal strips. Each window's class probabilities are weighted by a smooth window and
summed into an accumulator that holds only the rows the current strip touches; rows no later
window reaches are normalised and written out (see :mod:`.outputs`) and dropped. Memory is
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
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.choices import TTA_MODES, TTA_NONE
from ..core.class_map import NO_LABEL, ClassMap
from ..core.errors import UserError
from ..core.grid import Grid, round_up, same_crs
from ..core.device import inference_precision
from ...models.precision import FLOAT32
from ..core.input_warnings import fill_warning
from ..core.normalization import inverse_std
from ..core.progress import ConsoleProgress, Progress, SubProgress
from ..core.raster_io import atomic_output, open_raster
from ..model.metadata import ModelMetadata
from ..model.opened import OpenedModel, open_model
from .blending import run_windows
from .network import make_predictor, transform_count
from .outputs import ClassOutputs
from .parts import Part, PartOutputs
from .polygons import write_polygons
from .sieve import apply_minimum_mapping_unit, pixel_area_m2
from .reading import WindowReader
from .tiling import AxisPlan, plan_axis

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
    vector_path: str | None
    class_map: ClassMap
    pixels_per_class: dict[int, int]
    nodata_pixels: int
    window: tuple[int, int]
    overlap: int
    windows: int
    seconds: float


def load_for_classification(model: OpenedModel, progress: Progress | None = None) -> Any:
    """The network of a model file, in the precision of the machine that classifies: mixed on
    a GPU (float16 arithmetic, float32 class probabilities), float32 on the CPU; an ``.onnx``
    file through ONNX Runtime as it was exported. Loaded once: the opened model keeps it."""
    precision = FLOAT32 if model.is_onnx else inference_precision()
    if progress is not None and not model.loaded(precision):
        progress.info(f"Loading the model {model.name} ...")
    if precision != FLOAT32 and progress is not None:
        progress.info("A GPU classifies: the network runs in mixed precision (float16 "
                      "arithmetic, float32 class probabilities).")
    return model.network(precision)


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
    fill = fill_warning(dataset.GetDescription(), metadata.bands, name)
    if fill:
        progress.warn(fill)


def _numpy_dtype(gdal_name: str) -> str:
    from osgeo import gdal, gdal_array

    code = gdal.GetDataTypeByName(gdal_name)
    return np.dtype(gdal_array.GDALTypeCodeToNumericTypeCode(code)).name


def _check_georeference(dataset: Any, metadata: ModelMetadata, name: str,
                        progress: Progress) -> None:
    from osgeo import osr

    wkt = dataset.GetProjection()
    image_srs = osr.SpatialReference(wkt) if wkt else None
    train_srs = osr.SpatialReference(metadata.crs_wkt) if metadata.crs_wkt else None
    if image_srs is not None and train_srs is not None and not same_crs(image_srs, train_srs):
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


def classify_raster(image_path: str, model: str | OpenedModel, output_path: str, *,
                    overlap: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                    tta: str = TTA_NONE, extent: tuple[float, float, float, float] | None = None,
                    confidence_path: str | None = None, probabilities_path: str | None = None,
                    window_size: int | None = None,
                    min_mapping_unit: float = 0.0, vector_path: str | None = None,
                    part: Part | None = None, overviews: bool = True,
                    tags: dict[str, str] | None = None,
                    progress: Progress | None = None) -> ClassifyResult:
    """Classifies an image with a model file and writes the class raster (and optional extras).

    Args:
        image_path: the image (any size; same bands as the training image).
        model: a ``.keras`` file written by training, or an ``.onnx`` file exported from one,
            or such a file already opened (``model/opened.py``; its network is loaded once and
            kept); bands, normalisation, tile size and classes come from its metadata.
        output_path: the class GeoTIFF (uint8, nodata 0, colour table and class map).
        overlap: pixels shared by neighbouring windows (default: the tile size / 8).
        batch_size: windows per forward pass.
        tta: "none", "flips" or "dihedral": average the probabilities over flips/rotations.
        extent: (xmin, ymin, xmax, ymax) in the image's CRS: classify only that part.
        confidence_path: optional float32 raster of the chosen class's probability.
        probabilities_path: optional float32 raster with one band per class.
        window_size: inference window side (default: 3 training tiles, at most 1024).
        min_mapping_unit: hectares; smaller patches take their largest neighbour's class (see
            :mod:`.sieve`; 0: off). Runs on the whole finished raster.
        vector_path: optional GeoPackage of the classes as polygons (see :mod:`.polygons`).
        part: classify only this rectangle of the classified area (the image or ``extent``),
            exactly as the whole run would (see :mod:`.parts`); the outputs cover the part.
        overviews: build overviews (parts that are stitched later need none).
        tags: metadata items written into the class raster before it is moved into place
            (the batch's run key, ``batch/resume.py``).
        progress: where progress, messages and cancel come from.
    """
    started = time.perf_counter()
    progress = progress or ConsoleProgress(quiet=True)
    if tta not in TTA_MODES:
        raise UserError(f"Unknown TTA mode '{tta}'; use one of {', '.join(TTA_MODES)}.")
    if batch_size < 1:
        raise UserError("The batch size must be at least 1.")
    paths = [os.path.abspath(p) for p in (output_path, confidence_path, probabilities_path,
                                          vector_path) if p]
    if os.path.abspath(image_path) in paths or len(set(paths)) < len(paths):
        raise UserError("Each output needs its own file, other than the image.")
    # opening checks the file: a refused one costs nothing
    model = model if isinstance(model, OpenedModel) else open_model(model)
    metadata = model.metadata
    name = os.path.basename(image_path)
    dataset = open_raster(image_path)
    check_image(dataset, metadata, name, progress)

    full_width, full_height = dataset.RasterXSize, dataset.RasterYSize
    gt = dataset.GetGeoTransform()
    x_off, y_off, width, height = (pixel_window(gt, full_width, full_height, extent)
                                   if extent is not None else (0, 0, full_width, full_height))
    grid = Grid(full_width, full_height, tuple(gt), dataset.GetProjection()).window(
        x_off, y_off, width, height)
    if min_mapping_unit:
        pixel_area_m2(grid)  # a grid in degrees is an error now, not after classifying

    multiple, tile = metadata.multiple, int(metadata.tile_size)
    window = round_up(int(window_size), multiple) if window_size else model.default_window
    if model.is_onnx:  # its graph takes windows of one size (Deepness reads it there)
        if window_size and window != model.default_window:
            progress.info(f"This ONNX model classifies in windows of {model.default_window} px, "
                          f"the size it was exported for; the window size {window_size} is not "
                          "used.")
        window = model.default_window
    overlap = model.default_overlap if overlap is None else int(overlap)
    if overlap < 0:
        raise UserError("The overlap cannot be negative.")
    if overlap >= window // 2:
        raise UserError(f"The overlap ({overlap} px) must be less than half the inference "
                        f"window ({window} px).")
    rows = plan_axis(height, window, overlap, multiple, minimum=tile)
    cols = plan_axis(width, window, overlap, multiple, minimum=tile)
    row_plan, col_plan = AxisPlan.whole(rows, height), AxisPlan.whole(cols, width)
    if part is not None:
        if part.x < 0 or part.y < 0 or part.x + part.width > width or \
                part.y + part.height > height or min(part.width, part.height) < 1:
            raise UserError(f"The part {part} lies outside the {width} x {height} px classified.")
        row_plan = row_plan.covering(part.y, part.y + part.height)
        col_plan = col_plan.covering(part.x, part.x + part.width)
        grid = grid.window(part.x, part.y, part.width, part.height)
        rows, cols = list(row_plan.windows), list(col_plan.windows)

    network = load_for_classification(model, progress)
    ids = channel_class_ids(metadata)
    class_map = metadata.classes
    classes_only = not confidence_path and not probabilities_path
    predictor = make_predictor(network, tta, mean=metadata.mean, scale=inverse_std(metadata.std),
                               lookup=np.asarray(ids, np.uint8) if classes_only else None)

    total = len(rows) * len(cols)
    progress.info(
        f"Classifying {grid.width} x {grid.height} pixels of '{name}' into {len(ids)} classes: "
        f"{total} windows of {cols[0].size} x {rows[0].size} px in {len(rows)} strips, overlap "
        f">= {overlap} px, batches of {batch_size}, TTA {tta} "
        f"({transform_count(tta)} pass{'es' if transform_count(tta) > 1 else ''} per window).")

    with contextlib.ExitStack() as files:
        # a part may be written by two attempts at once (its first worker died): see atomic_output
        class_tmp = files.enter_context(atomic_output(output_path, clear_stale=part is None))
        confidence_tmp = (files.enter_context(atomic_output(confidence_path))
                          if confidence_path else None)
        probabilities_tmp = (files.enter_context(atomic_output(probabilities_path))
                             if probabilities_path else None)
        outputs = ClassOutputs(grid, class_map, ids, class_tmp, confidence_tmp,
                               probabilities_tmp, metadata.label_smoothing,
                               metadata.temperature)
        for tag, value in (tags or {}).items():
            outputs.classes.SetMetadataItem(tag, value)
        files.callback(outputs.close)  # runs first: files closed before they are moved/removed
        source = WindowReader(dataset, metadata, x_off + col_plan.offset,
                              y_off + row_plan.offset, col_plan.length, rows)
        sink = outputs if part is None else PartOutputs(
            outputs, col_plan.length, part.x - col_plan.offset, part.y - row_plan.offset)
        end = 0.85 if vector_path else 0.9
        run_windows(source, predictor, sink, row_plan, col_plan, batch_size, classes_only,
                    SubProgress(progress, 0.0, end))
        sieved = apply_minimum_mapping_unit(outputs.classes, grid, min_mapping_unit,
                                            SubProgress(progress, end, end + 0.05))
        counts = outputs.counts if sieved is None else sieved
        if overviews:
            progress.info("Building overviews ...")
        outputs.finish(SubProgress(progress, end + 0.05, end + 0.1), overviews)
        if vector_path:
            progress.info("Turning the classes into polygons ...")
            polygons = write_polygons(class_tmp, files.enter_context(atomic_output(vector_path)),
                                      class_map, SubProgress(progress, 0.95, 1.0))
            progress.info(f"{polygons} polygons written.")
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
    pixels = grid.width * grid.height
    progress.info(f"Done in {seconds:.1f} s ({pixels / max(seconds, 1e-9) / 1e6:.2f} "
                  "million pixels per second).")
    return ClassifyResult(output_path, confidence_path, probabilities_path, vector_path,
                          class_map, per_class,
                          nodata, (cols[0].size, rows[0].size), overlap, total, seconds)

