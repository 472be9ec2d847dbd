"""Accuracy of a classified raster against reference labels: confusion matrix and figures.

The reference (polygons, points, or a class raster such as a mask from buildmasks) is brought onto
the classified raster's own pixel grid; its classes are matched to the map's classes by *name*
through the class maps, never by guessing codes. Integer codes that carry no name fall back to the
map's original class code (then its id), and the log says so. Reference classes the map does not
know are kept as classes the map never predicts.

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

from ..core.class_map import NO_LABEL, ClassInfo, ClassMap
from ..core.errors import Cancelled, UserError
from ..core.grid import Grid
from ..core.metrics import Metrics, compute_metrics, confusion_counts
from ..core.progress import ConsoleProgress, Progress, SubProgress
from ..core.raster_io import open_raster, windows
from ..masks.features import VectorInput
from .reference import (BLOCK, is_point_layer, rasterise_reference, read_points,
                        resample_reference)

EARTH_RADIUS_M = 6371008.8
"""Mean Earth radius, for pixel areas on a geographic grid (a spherical approximation)."""

MATCH_NAME = "name"
MATCH_CODE = "code"
MATCH_ID = "id"
MATCH_NONE = "not in the map"


@dataclass(frozen=True)
class AccuracyClass:
    """One row and column of the confusion matrix.

    Attributes:
        name: the class name shown (the map's name; the reference's for classes the map lacks).
        color: '#rrggbb'.
        map_id: the class id in the classified raster; None when the map never predicts it.
        reference_names: the reference class names matched to it ('' where none).
        match: how the reference matched it: 'name', 'code', 'id', 'not in the map', or ''.
    """

    name: str
    color: str
    map_id: int | None
    reference_names: tuple[str, ...] = ()
    match: str = ""


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

    @property
    def counted(self) -> int:
        return int(self.matrix.sum())


# ----- assessment -----------------------------------------------------------------------------
def assess_accuracy(classified_path: str, *, reference_vector: VectorInput | None = None,
                    reference_raster: str | None = None, class_field: str | None = None,
                    class_name_field: str | None = None, all_touched: bool = False,
                    progress: Progress | None = None) -> AccuracyResult:
    """Compares a classified raster with reference labels on the raster's own grid.

    Args:
        classified_path: a class raster carrying its class map (from classifyraster).
        reference_vector: reference polygons (burnt with buildmasks' rules) or points (each
            counts the pixel it falls in); reprojected when their CRS differs.
        reference_raster: or a reference class raster: a mask from buildmasks (its class map is
            matched by name), or any integer class raster (its values are matched as codes).
            Resampled (nearest) onto the map's grid when the grids differ.
        class_field: the vector field with the reference classes; None: the layer is one class
            named after it (as in buildmasks).
        class_name_field: optional vector field with a name per class code.
        all_touched: burn every pixel a polygon touches, not only those whose centre it covers.
        progress: where progress, messages and cancel come from.
    """
    progress = progress or ConsoleProgress(quiet=True)
    if (reference_vector is None) == (reference_raster is None):
        raise UserError("Give one reference: a vector layer of labels or a class raster.")
    classified = open_raster(classified_path)
    map_classes = ClassMap.read_from_dataset(classified)
    if map_classes is None or not len(map_classes):
        raise UserError(
            f"The classified raster '{classified_path}' carries no class map, so its classes "
            "cannot be matched to the reference by name. Use a raster made by 'Classify raster' "
            "(landcoverunet:classifyraster).")
    grid = Grid.from_dataset(classified, classified_path)
    scratch = tempfile.mkdtemp(prefix="landcoverunet-accuracy-")
    try:
        points = None
        if reference_vector is not None:
            description = f"vector layer '{reference_vector.name or reference_vector.path}'" + (
                f", class field '{class_field}'" if class_field else " (one class)")
            if is_point_layer(reference_vector):
                points, reference_classes = read_points(
                    reference_vector, grid, class_field, class_name_field, progress)
                values = np.array(reference_classes.ids, dtype=np.int64)
                reference = None
            else:
                reference, reference_classes = rasterise_reference(
                    classified_path, classified, reference_vector, class_field,
                    class_name_field, all_touched, scratch, SubProgress(progress, 0.0, 0.4))
                values = np.array(reference_classes.ids, dtype=np.int64)
        else:
            description = f"class raster '{reference_raster}'"
            reference, reference_classes, values = resample_reference(
                reference_raster, grid, scratch, SubProgress(progress, 0.0, 0.2))
        progress.set_fraction(0.4)
        classes, reference_index, messages = _match(map_classes, reference_classes)
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
    for line in _summary(result):
        progress.info(line)
    return result


def _summary(result: AccuracyResult) -> list[str]:
    m = result.metrics
    lines = [f"{result.counted} reference {result.unit} compared "
             f"({result.reference_on_map_nodata} more fell on map nodata and were not counted)",
             f"overall accuracy {_pct(m.overall_accuracy)}, kappa {m.kappa:.4f}, "
             f"mIoU {m.miou:.4f}, mean F1 {m.mean_f1:.4f}"]
    return lines


def _pct(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.2f} %"


# ----- reference on the map's grid ---------------------------------------------------------
def _unnamed_code(info: ClassInfo) -> bool:
    """Whether a reference class is an integer code with no name of its own ('5' for code 5)."""
    try:
        return str(int(str(info.code).strip())) == info.name.strip()
    except (TypeError, ValueError):
        return False


def _match(map_classes: ClassMap,
           reference: ClassMap) -> tuple[list[AccuracyClass], np.ndarray, list[str]]:
    """Matches reference classes to the map's by name (codes only for unnamed integer codes).

    Returns:
        The matrix classes (the map's, in id order, then reference classes the map lacks), the
        matrix index of each reference class (in ``reference.classes`` order), and log lines.
    """
    index = {c.id: number for number, c in enumerate(map_classes.classes)}
    matched: dict[int, list[tuple[str, str]]] = {c.id: [] for c in map_classes.classes}
    extra: list[ClassInfo] = []
    reference_index = np.zeros(len(reference), dtype=np.int64)
    messages: list[str] = []
    for number, ref in enumerate(reference.classes):
        target = map_classes.by_name(ref.name)
        how = MATCH_NAME
        if target is None and _unnamed_code(ref):
            code_id = map_classes.id_for_code(ref.code)
            if code_id is not None:
                target, how = map_classes.by_id(code_id), MATCH_CODE
            elif int(str(ref.code).strip()) in index:
                target, how = map_classes.by_id(int(str(ref.code).strip())), MATCH_ID
        if target is None:
            reference_index[number] = len(map_classes) + len(extra)
            extra.append(ref)
            messages.append(f"reference class '{ref.name}' is not among the map's classes: "
                            "shown as a class the map never predicts")
            continue
        reference_index[number] = index[target.id]
        matched[target.id].append((ref.name, how))
        if how == MATCH_NAME:
            messages.append(f"reference class '{ref.name}' matched the map's '{target.name}' "
                            "by name")
        else:
            by = f"original code ({target.code})" if how == MATCH_CODE else f"id ({target.id})"
            messages.append(f"reference code {ref.code} has no name: matched the map's class "
                            f"'{target.name}' by its {by}. Give a class name field to match by "
                            "name")
    for class_id, refs in matched.items():
        if len(refs) > 1:
            messages.append(f"reference classes {', '.join(repr(r) for r, _ in refs)} all "
                            f"matched the map's '{map_classes.by_id(class_id).name}' and are "
                            "counted together")
    unmatched = [c.name for c in map_classes.classes if not matched[c.id]]
    if unmatched:
        messages.append("map classes without a reference class: " + ", ".join(
            f"'{n}'" for n in unmatched))
    classes = [AccuracyClass(c.name, c.color, c.id, tuple(r for r, _ in matched[c.id]),
                             "/".join(sorted({h for _, h in matched[c.id]})))
               for c in map_classes.classes]
    classes += [AccuracyClass(c.name, c.color, None, (c.name,), MATCH_NONE) for c in extra]
    return classes, reference_index, messages


# ----- counting ------------------------------------------------------------------------------
def _count(classified: Any, grid: Grid, map_classes: ClassMap, classes: list[AccuracyClass],
           reference: Any, reference_values: np.ndarray, reference_index: np.ndarray,
           points: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
           progress: Progress) -> AccuracyResult:
    k = len(classes)
    band = classified.GetRasterBand(1)
    nodata = band.GetNoDataValue()
    map_values = np.array(map_classes.ids, dtype=np.float64)
    map_index = np.arange(len(map_classes), dtype=np.int64)
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
        prediction = _lookup(values, map_values, map_index)
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
            truth = _lookup(ids[here], ref_values, ref_index)
            guess = prediction[rows[here] - y, columns[here] - x]
        else:
            truth = _lookup(ref_band.ReadAsArray(x, y, w, h), ref_values, ref_index)
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


def _lookup(values: np.ndarray, keys: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Maps pixel values through sorted ``keys`` to ``index``; -1 where a value is not a key."""
    values = np.asarray(values)
    if keys.size == 0:
        return np.full(values.shape, -1, dtype=np.int64)
    position = np.clip(np.searchsorted(keys, values), 0, keys.size - 1)
    found = keys[position] == values
    return np.where(found, index[position], -1)


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
