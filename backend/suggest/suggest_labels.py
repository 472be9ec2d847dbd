"""Where to digitise next: classify the image, rank places by how much a label there would
help (:mod:`.ranking`), write them as points to label.

The points go into a GeoPackage with the two classes the model hesitates between and an empty
class field; once filled in, the layer is one more label layer for 'Build training masks' (a
point labels the pixel it falls in).
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import dataclass

import numpy as np

from ..classify.outputs import FLOAT_NODATA
from ..classify.classify_raster import classify_raster
from ..core.class_map import ClassMap
from ..core.errors import Cancelled, UserError
from ..core.grid import Grid, check_mask_grid
from ..core.points import write_pixel_points
from ..core.progress import ConsoleProgress, Progress, SubProgress
from ..core.raster_io import atomic_output, open_raster
from ..masks.features import VectorInput
from ..model.opened import open_model
from .ranking import Candidates, best_per_cell, choose_sites

DEFAULT_COUNT = 30
"""Sites suggested unless told otherwise: an hour or so of careful digitising."""
SPACING_TILES = 2
"""The default spacing between sites is at most this many training tiles."""
AREA_PER_SITE = 4
"""The default spacing leaves each site at least this many times the square of the spacing of
the scene, so the sites can spread over all of it (small scenes get a smaller spacing)."""
MAX_CELLS = 1_000_000
"""The most cells a scene is cut into: on a large scene with a small spacing the cells grow
(each keeps one candidate), so memory stays a few tens of MB."""
STRIP_ROWS = 128
"""Rows of probabilities read at a time (rounded up to whole cells)."""
LAYER_NAME = "suggestions"
FIELD_RANK = "rank"
FIELD_SCORE = "score"
FIELD_PREDICTED = "predicted"
FIELD_SECOND = "second"
DEFAULT_CLASS_FIELD = "class"


@dataclass
class SuggestResult:
    """What was written: the file and layer, how many sites, the spacing used (pixels), and the
    model's classes with the code each stores in the class field (the drop-down's values)."""

    path: str
    layer_name: str
    sites: int
    spacing: float
    class_map: ClassMap
    class_field: str

    @property
    def codes(self) -> dict[str, str]:
        """Class name -> the value the class field stores for it (:func:`class_codes`)."""
        return class_codes(self.class_map)


def default_spacing(width: int, height: int, count: int, tile: int) -> float:
    """The distance kept between sites (pixels): at most :data:`SPACING_TILES` training tiles,
    less where the scene is too small to hold ``count`` sites that far apart."""
    return float(max(1.0, min(SPACING_TILES * tile,
                              math.sqrt(width * height / (AREA_PER_SITE * max(count, 1))))))


def class_codes(class_map: ClassMap) -> dict[str, str]:
    """Class name -> the value the class field stores for it: the code the class came from in
    the training labels (so the filled points read as the polygons did), else its name."""
    return {c.name: str(c.code if c.code not in (None, "") else c.name)
            for c in class_map.classes}


def suggest_labels(image_path: str, model_path: str, output_path: str, *,
                   count: int = DEFAULT_COUNT, spacing: float | None = None,
                   label_masks: list[str] | None = None,
                   label_vectors: list[VectorInput] | None = None,
                   class_field: str = DEFAULT_CLASS_FIELD,
                   progress: Progress | None = None) -> SuggestResult:
    """Writes up to ``count`` places to label next, best first, as a GeoPackage of points.

    Args:
        image_path: the image the model classifies (the one to digitise on).
        model_path: a model from 'Train U-Net' (``.keras``) or exported from it (``.onnx``).
        output_path: the GeoPackage to write.
        count: how many sites.
        spacing: the least distance between two sites, in pixels; None: :func:`default_spacing`.
        label_masks: training masks on the image's grid: their labelled places are skipped.
        label_vectors: label layers (any geometry): the places they cover are skipped.
        class_field: the name of the empty field to fill with each site's class: the class
            field of the training labels, so both layers go into one mask.
        progress: where progress, messages and cancel come from.
    """
    progress = progress or ConsoleProgress(quiet=True)
    if count < 1:
        raise UserError("Ask for at least one site.")
    if spacing is not None and spacing < 0:
        raise UserError("The spacing between sites cannot be negative.")
    if not output_path.lower().endswith(".gpkg"):
        raise UserError(f"The suggestions are written as a GeoPackage (.gpkg); got "
                        f"'{output_path}'.")
    class_field = class_field.strip()
    if not class_field or class_field.lower() in (FIELD_RANK, FIELD_SCORE, FIELD_PREDICTED,
                                                  FIELD_SECOND, "fid"):
        raise UserError(f"Name the class field other than '{class_field}': the suggestions "
                        "already have rank, score, predicted and second.")
    model = open_model(model_path)
    metadata = model.metadata
    image = open_raster(image_path)
    grid = Grid.from_dataset(image, image_path)
    if spacing is None:
        spacing = default_spacing(grid.width, grid.height, count, int(metadata.tile_size))
    cell = max(1, int(spacing) // 2, math.ceil(math.sqrt(grid.width * grid.height / MAX_CELLS)))
    scratch = tempfile.mkdtemp(prefix="landcoverunet-suggest-")
    try:
        probabilities = os.path.join(scratch, "probabilities.tif")
        progress.info("Classifying the image to see where the model hesitates ...")
        classify_raster(image_path, model, os.path.join(scratch, "classes.tif"),
                        probabilities_path=probabilities, overviews=False,
                        progress=SubProgress(progress, 0.0, 0.8))
        known = _labelled(image, image_path, label_masks or [], label_vectors or [], scratch,
                          SubProgress(progress, 0.8, 0.85))
        candidates = _candidates(probabilities, known, cell, SubProgress(progress, 0.85, 0.95))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    order = choose_sites(candidates, count, spacing)
    if not len(order):
        raise UserError("Every part of the image is labelled already or has no data: there is "
                        "no place left to suggest.")
    sites = candidates.take(order)
    class_map = metadata.classes
    with atomic_output(output_path) as temporary:
        _write(temporary, grid, sites, class_map, class_field)
    names = class_map.names
    progress.info(f"{len(sites)} sites, at least {spacing:.0f} px apart (uncertainty 1 - margin "
                  f"of the two likeliest classes: {sites.score.max():.2f} to "
                  f"{sites.score.min():.2f}). Most hesitant: " + "; ".join(
                      f"{names[a]} or {names[b]}" for a, b in
                      list(zip(sites.first.tolist(), sites.second.tolist()))[:3]) + ".")
    if len(sites) < count:
        progress.warn(f"Only {len(sites)} of {count} sites fit {spacing:.0f} px apart outside "
                      "the labelled places; lower the spacing for more.")
    progress.set_fraction(1.0)
    return SuggestResult(output_path, LAYER_NAME, len(sites), spacing, class_map, class_field)


def _labelled(image, image_path: str, masks: list[str], vectors: list[VectorInput],
              scratch: str, progress: Progress) -> list[str]:
    """Masks on the image's grid whose non-zero pixels are labelled: the given ones (checked)
    and the label layers burnt onto the grid (every pixel a feature touches)."""
    found = []
    for path in masks:
        check_mask_grid(image, open_raster(path), image_path, path)
        found.append(path)
    if vectors:
        from ..masks.burn import build_mask

        burnt = os.path.join(scratch, "labels.tif")
        build_mask(image_path, vectors, burnt, all_touched=True, advise_few_pixels=False,
                   progress=progress)
        found.append(burnt)
    return found


def _candidates(probabilities_path: str, masks: list[str], cell: int,
                progress: Progress) -> Candidates:
    """The most uncertain unlabelled pixel of every cell, strip by strip."""
    dataset = open_raster(probabilities_path)
    masks_open = [open_raster(path) for path in masks]
    width, height = dataset.RasterXSize, dataset.RasterYSize
    step = cell * max(1, -(-STRIP_ROWS // cell))
    parts = []
    for y in range(0, height, step):
        if progress.cancelled():
            raise Cancelled()
        rows = min(step, height - y)
        block = dataset.ReadAsArray(0, y, width, rows).astype(np.float32)
        block = block if block.ndim == 3 else block[None]
        usable = (block != FLOAT_NODATA).all(0) & np.isfinite(block).all(0)
        labelled = np.zeros((rows, width), bool)
        for mask in masks_open:
            labelled |= mask.GetRasterBand(1).ReadAsArray(0, y, width, rows) > 0
        parts.append(best_per_cell(block, usable, labelled, cell, y))
        progress.set_fraction(min(1.0, (y + rows) / height))
    return Candidates.join(parts)


def _write(path: str, grid: Grid, sites: Candidates, class_map: ClassMap,
           class_field: str) -> None:
    """The sites as points at pixel centres, in rank order, with an empty class field."""
    names = class_map.names
    write_pixel_points(
        path, grid, LAYER_NAME,
        [(FIELD_RANK, "integer"), (FIELD_SCORE, "real"), (FIELD_PREDICTED, "string"),
         (FIELD_SECOND, "string"), (class_field, "string")],
        ((row, column, {FIELD_RANK: rank, FIELD_SCORE: round(float(score), 4),
                        FIELD_PREDICTED: names[first], FIELD_SECOND: names[second]})
         for rank, (row, column, score, first, second) in enumerate(zip(
             sites.rows.tolist(), sites.columns.tolist(), sites.score.tolist(),
             sites.first.tolist(), sites.second.tolist()), start=1)))
