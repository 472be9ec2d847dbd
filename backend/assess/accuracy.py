"""Accuracy of a classified raster against reference labels: confusion matrix and figures.

The classified raster may come from any tool: its classes are found by ``raster_classes.py``
(class map, category names, attribute table, .qml, plain codes). The reference (polygons, points,
or a class raster such as a mask from buildmasks) is brought onto the classified raster's own
pixel grid; its classes are matched to the map's by ``matching.py`` (by name, or by code), every
match is logged, and reference classes the map does not know are kept as classes the map never
predicts. When the reference is a stratified random sample by map class, ``adjusted.py`` adds the
area-adjusted figures of Olofsson et al. (2014).

Counting is windowed (``bincount`` of ``reference * K + prediction`` per block), so memory stays
flat however large the raster. The figures are plain numpy:

- confusion matrix: rows = reference, columns = prediction (pixel counts, or point counts);
- overall accuracy = trace / total; Cohen's kappa = (po - pe) / (1 - pe);
- per class: producer's accuracy (recall) = diagonal / row total, user's accuracy (precision) =
  diagonal / column total, F1 = 2 * diagonal / (row + column total), IoU = diagonal /
  (row + column total - diagonal);
- mIoU and mean F1 are averaged over the classes present in the reference (row total > 0); a
  class present in the reference but never predicted counts with 0. Undefined figures are NaN.
"""
from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.class_map import NO_LABEL
from ..core.errors import Cancelled, UserError
from ..core.grid import Grid
from ..core.metrics import Metrics, compute_metrics, confusion_counts
from ..core.progress import ConsoleProgress, Progress, SubProgress
from ..core.raster_io import open_raster, windows
from ..masks.features import VectorInput
from .adjusted import DESIGN_AUTO, AreaAdjusted, area_adjusted
from .design import read_design
from .matching import MATCH_AUTO, AccuracyClass, match_classes
from .raster_classes import RasterClasses, lookup, read_raster_classes
from .reference import (BLOCK, is_point_layer, rasterise_reference, read_points,
                        resample_reference)

EARTH_RADIUS_M = 6371008.8
"""Mean Earth radius, for pixel areas on a geographic grid (a spherical approximation)."""

@dataclass
class AccuracyResult:
    """What an assessment found; ``accuracy_report`` turns it into HTML and CSV."""

    classes: list[AccuracyClass]
    matrix: np.ndarray
    metrics: Metrics
    mapped_pixels: np.ndarray
    mapped_area_ha: np.ndarray
    area_note: str
    classified_path: str
    reference_description: str
    unit: str
    """'pixels' or 'points': what the matrix counts."""
    reference_labelled: int
    """Reference pixels (or points) on the map's grid, whatever the map says there."""
    reference_on_map_nodata: int
    """Of those, how many fell where the map has no data (not counted)."""
    unknown_map_pixels: int
    """Map pixels whose value is not in the map's class map (ignored)."""
    messages: list[str] = field(default_factory=list)
    adjusted: AreaAdjusted | None = None
    """Area-adjusted figures, when the reference is a stratified random sample by map class."""
    adjusted_note: str = ""
    """Why there are no area-adjusted figures (when there are none)."""

    @property
    def counted(self) -> int:
        return int(self.matrix.sum())


# ----- assessment -----------------------------------------------------------------------------
def assess_accuracy(classified_path: str, *, reference_vector: VectorInput | None = None,
                    reference_raster: str | None = None, class_field: str | None = None,
                    class_name_field: str | None = None, all_touched: bool = False,
                    match: str = MATCH_AUTO, sample_design: str = DESIGN_AUTO,
                    progress: Progress | None = None) -> AccuracyResult:
    """Compares a classified raster with reference labels on the raster's own grid.

    Args:
        classified_path: any class raster: one from classifyraster (its class map), or one from
            another tool (category names, attribute table, a .qml beside it, or plain codes).
        reference_vector: reference polygons (burnt with buildmasks' rules) or points (each
            counts the pixel it falls in); reprojected when their CRS differs.
        reference_raster: or a reference class raster (its classes found as the map's).
            Resampled (nearest) onto the map's grid when the grids differ.
        class_field: the vector field with the reference classes; None: the layer is one class
            named after it (as in buildmasks).
        class_name_field: optional vector field with a name per class code.
        all_touched: burn every pixel a polygon touches, not only those whose centre it covers.
        match: how classes are matched (``matching.MATCH_MODES``).
        sample_design: whether reference points are a stratified random sample by map class
            (``adjusted.DESIGN_MODES``), for the area-adjusted figures.
        progress: where progress, messages and cancel come from.
    """
    progress = progress or ConsoleProgress(quiet=True)
    if (reference_vector is None) == (reference_raster is None):
        raise UserError("Give one reference: a vector layer of labels or a class raster.")
    classified = open_raster(classified_path)
    map_classes = read_raster_classes(classified_path, classified, progress)
    grid = Grid.from_dataset(classified, classified_path)
    scratch = tempfile.mkdtemp(prefix="landcoverunet-accuracy-")
    design = None
    try:
        points = None
        if reference_vector is not None:
            description = f"vector layer '{reference_vector.name or reference_vector.path}'" + (
                f", class field '{class_field}'" if class_field else " (one class)")
            if is_point_layer(reference_vector):
                points, reference_classes = read_points(
                    reference_vector, grid, class_field, class_name_field, progress)
                design = read_design(reference_vector)
                reference = None
            else:
                reference, reference_classes = rasterise_reference(
                    classified_path, classified, reference_vector, class_field,
                    class_name_field, all_touched, scratch, SubProgress(progress, 0.0, 0.4))
            values = np.array(reference_classes.ids, dtype=np.float64)
            codes = [c.code for c in reference_classes.classes]
        else:
            description = f"class raster '{reference_raster}'"
            reference, found = resample_reference(reference_raster, grid, scratch,
                                                  SubProgress(progress, 0.0, 0.2))
            reference_classes, values = found.classes, found.values
            codes = list(values)
        progress.set_fraction(0.4)
        classes, reference_index, messages = match_classes(map_classes, reference_classes,
                                                           codes, match)
        for line in messages:
            progress.info(line)
        result = _count(classified, grid, map_classes, classes, reference, values,
                        reference_index, points, SubProgress(progress, 0.4, 1.0))
    finally:
        reference = None
        shutil.rmtree(scratch, ignore_errors=True)
    result.classified_path = classified_path
    result.reference_description = description
    result.messages = messages + result.messages
    if result.reference_labelled == 0:
        raise UserError("The reference does not overlap the classified raster: no reference "
                        f"{result.unit[:-1]} lies on its grid. Check that both cover the same "
                        "place and that each layer's CRS is right.")
    if result.counted == 0:
        raise UserError(f"All {result.reference_labelled} reference {result.unit} fall where the "
                        "classified raster has no data: there is nothing to compare.")
    value_of = dict(zip(map_classes.classes.ids, map_classes.values.tolist()))
    result.adjusted, result.adjusted_note = area_adjusted(
        result.matrix, result.mapped_pixels, result.mapped_area_ha,
        [c.name for c in classes], [value_of.get(c.map_id) for c in classes],
        points is not None, sample_design, design)
    for line in _summary(result):
        progress.info(line)
    return result


def _summary(result: AccuracyResult) -> list[str]:
    m = result.metrics
    lines = [f"{result.counted} reference {result.unit} compared "
             f"({result.reference_on_map_nodata} more fell on map nodata and were not counted)",
             f"overall accuracy {_pct(m.overall_accuracy)}, kappa {m.kappa:.4f}, "
             f"mIoU {m.miou:.4f}, mean F1 {m.mean_f1:.4f}"]
    if result.adjusted is not None:
        e = result.adjusted.estimates
        lines.append(f"area-adjusted overall accuracy {_pct(e.overall_accuracy)} "
                     f"± {_pct(e.overall_accuracy_ci95)} (95 % CI)")
    else:
        lines.append(result.adjusted_note)
    return lines


def _pct(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.2f} %"


# ----- counting ------------------------------------------------------------------------------
def _count(classified: Any, grid: Grid, map_classes: RasterClasses,
           classes: list[AccuracyClass],
           reference: Any, reference_values: np.ndarray, reference_index: np.ndarray,
           points: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
           progress: Progress) -> AccuracyResult:
    k = len(classes)
    band = classified.GetRasterBand(1)
    nodata = band.GetNoDataValue()
    order = np.argsort(reference_values)
    ref_values, ref_index = reference_values[order].astype(np.float64), reference_index[order]
    ref_band = reference.GetRasterBand(1) if reference is not None else None
    row_area_m2, area_note = _row_areas(grid)

    matrix = np.zeros((k, k), dtype=np.int64)
    mapped = np.zeros(k, dtype=np.int64)
    area = np.zeros(k, dtype=np.float64)
    labelled = on_nodata = unknown = 0
    blocks = list(windows(grid.width, grid.height, BLOCK))
    for number, (x, y, w, h) in enumerate(blocks):
        if progress.cancelled():
            raise Cancelled()
        values = band.ReadAsArray(x, y, w, h)
        prediction = map_classes.index_of(values)
        missing = prediction < 0
        is_nodata = values == NO_LABEL
        if nodata is not None and not math.isnan(nodata):
            is_nodata |= values == nodata
        if np.issubdtype(values.dtype, np.floating):
            is_nodata |= np.isnan(values)
        unknown += int((missing & ~is_nodata).sum())
        valid = prediction[~missing]
        mapped += np.bincount(valid, minlength=k)
        weights = np.broadcast_to(row_area_m2[y:y + h, None], (h, w))[~missing]
        area += np.bincount(valid, weights=weights, minlength=k)
        if points is not None:
            rows, columns, ids = points
            here = (rows >= y) & (rows < y + h) & (columns >= x) & (columns < x + w)
            truth = lookup(ids[here], ref_values, ref_index)
            guess = prediction[rows[here] - y, columns[here] - x]
        else:
            truth = lookup(ref_band.ReadAsArray(x, y, w, h), ref_values, ref_index)
            guess = prediction
        labelled += int((truth >= 0).sum())
        on_nodata += int(((truth >= 0) & (guess < 0)).sum())
        matrix += confusion_counts(truth, guess, k)
        progress.set_fraction((number + 1) / len(blocks))
    messages = []
    if unknown:
        messages.append(f"{unknown} map pixels hold values that are not in its class map; they "
                        "were ignored")
    return AccuracyResult(classes, matrix, compute_metrics(matrix), mapped, area / 10_000.0,
                          area_note, "", "", "points" if points is not None else "pixels",
                          labelled, on_nodata, unknown, messages)


def _row_areas(grid: Grid) -> tuple[np.ndarray, str]:
    """The ground area of one pixel in each row (m²), and how it was found."""
    from osgeo import osr

    x0, dx, _, y0, _, dy = grid.geotransform
    srs = osr.SpatialReference()
    srs.ImportFromWkt(grid.crs_wkt)
    if srs.IsGeographic():
        edges = np.radians(y0 + dy * np.arange(grid.height + 1, dtype=np.float64))
        band = np.abs(np.sin(edges[:-1]) - np.sin(edges[1:]))
        areas = EARTH_RADIUS_M ** 2 * math.radians(abs(dx)) * band
        return areas, ("The map's CRS is geographic (degrees): pixel areas are approximated "
                       "on a sphere, row by row (latitude).")
    unit = srs.GetLinearUnits() or 1.0
    area = abs(dx * dy) * unit * unit
    return np.full(grid.height, area), (f"Pixel area {area:.2f} m² from the geotransform "
                                         f"({srs.GetName() or 'projected CRS'}); map-projection "
                                         "scale distortion is not corrected.")
