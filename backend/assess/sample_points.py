"""Drawing a stratified random sample by map class and writing it as a GeoPackage of points.

The analyst labels each point (the ``reference`` field) from better data than the map; the
sample, read back by assessaccuracy, gives area-adjusted accuracy and areas. Pixels are drawn
without replacement inside each class, each pixel of a class equally likely, with a seeded
generator: the same map, sizes and seed give the same points. Memory stays flat: one pass counts
the pixels of each class, a second finds the drawn pixels by their rank within their class, both
over blocks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.class_map import ClassMap
from ..core.errors import Cancelled, UserError
from ..core.grid import Grid
from ..core.points import write_pixel_points
from ..core.progress import ConsoleProgress, Progress, SubProgress
from ..core.raster_io import atomic_output, open_raster, windows
from .design import (DESIGN_KEY, EXPECTED_UA_COMMON, EXPECTED_UA_RARE, MINIMUM_PER_CLASS,
                     RARE_SHARE, TARGET_SE, DesignClass, SamplingDesign, allocate,
                     total_sample_size)
from .raster_classes import BLOCK, RasterClasses, read_raster_classes

LAYER_NAME = "accuracy_sample"
FIELD_CODE = "map_code"
FIELD_CLASS = "map_class"
FIELD_REFERENCE = "reference"


@dataclass
class SampleResult:
    """What was drawn: the file, its design, how many points got a reference, and the map's
    classes (names and colours: the points are styled, and labelled, with them)."""

    path: str
    layer_name: str
    design: SamplingDesign
    filled: int
    classes: ClassMap

    @property
    def size(self) -> int:
        return sum(c.sample for c in self.design.classes)


def draw_sample(map_path: str, output_path: str, *, total: int | None = None,
                target_se: float = TARGET_SE, rare: float = EXPECTED_UA_RARE,
                common: float = EXPECTED_UA_COMMON, minimum: int = MINIMUM_PER_CLASS,
                seed: int | None = None, reference_raster: str | None = None,
                progress: Progress | None = None) -> SampleResult:
    """Draws the sample and writes it (points at pixel centres, the design as layer metadata).

    Args:
        map_path: any class raster (classes found as assessaccuracy finds them).
        output_path: the GeoPackage to write.
        total: the total sample size; None: from ``target_se`` by Olofsson et al. (2014) eq. 13,
            with ``rare``/``common`` as the expected user's accuracies.
        minimum: the fewest points per class (fewer only where a class has fewer pixels).
        seed: the random seed; None: a fresh one (recorded in the design and the log).
        reference_raster: optionally, a reference class raster whose class at each point fills
            the ``reference`` field.
        progress: where progress, messages and cancel come from.
    """
    progress = progress or ConsoleProgress(quiet=True)
    computed = total is None
    if not output_path.lower().endswith(".gpkg"):
        raise UserError(f"The sample must be written as a GeoPackage (.gpkg), which can carry "
                        f"its sampling design; got '{output_path}'.")
    dataset = open_raster(map_path)
    classes = read_raster_classes(map_path, dataset, progress)
    grid = Grid.from_dataset(dataset, map_path)
    pixels = _count_pixels(dataset, classes, SubProgress(progress, 0.0, 0.4))
    if not pixels.sum():
        raise UserError(f"The map '{map_path}' has no classified pixel to sample.")
    if total is None:
        total = total_sample_size(pixels, target_se, rare, common)
        progress.info(f"sample size for a standard error of overall accuracy of {target_se} "
                      f"(Olofsson et al. 2014, eq. 13; expected user's accuracy {rare} for "
                      f"classes under {RARE_SHARE:.0%} of the map, {common} for the others): "
                      f"{total}")
    elif total < 1:
        raise UserError("The sample size must be at least 1.")
    sizes = allocate(total, pixels, minimum)
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2 ** 31))
    progress.info(f"seed {seed}; points per class: " + ", ".join(
        f"{c.name} {n} of {p:,} pixels" for c, n, p in zip(classes.classes.classes, sizes,
                                                           pixels)))
    rng = np.random.default_rng(seed)
    ranks = [np.sort(rng.choice(int(p), int(n), replace=False)) if n else np.empty(0, np.int64)
             for p, n in zip(pixels, sizes)]
    rows, columns, which = _locate(dataset, classes, ranks, SubProgress(progress, 0.4, 0.8))
    reference = _reference_names(reference_raster, grid, rows, columns, progress) \
        if reference_raster else [None] * len(rows)
    design = SamplingDesign(
        map_path, tuple(DesignClass(float(v), c.name, int(p), int(n)) for c, v, p, n in zip(
            classes.classes.classes, classes.values, pixels, sizes)), seed,
        target_se if computed else None)
    with atomic_output(output_path) as temporary:
        _write(temporary, grid, classes, rows, columns, which, reference, design)
    progress.set_fraction(1.0)
    filled = sum(r is not None for r in reference)
    return SampleResult(output_path, LAYER_NAME, design, filled, classes.classes)


def _count_pixels(dataset: Any, classes: RasterClasses, progress: Progress) -> np.ndarray:
    band = dataset.GetRasterBand(1)
    counts = np.zeros(len(classes.classes), dtype=np.int64)
    blocks = list(windows(dataset.RasterXSize, dataset.RasterYSize, BLOCK))
    for number, (x, y, w, h) in enumerate(blocks):
        if progress.cancelled():
            raise Cancelled()
        index = classes.index_of(band.ReadAsArray(x, y, w, h))
        counts += np.bincount(index[index >= 0], minlength=len(counts))
        progress.set_fraction((number + 1) / len(blocks))
    return counts


def _locate(dataset: Any, classes: RasterClasses, ranks: list[np.ndarray],
            progress: Progress) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (row, column, class index) of the pixels whose rank within their class was drawn;
    ranks count the class's pixels in block order, row by row inside each block."""
    band = dataset.GetRasterBand(1)
    seen = np.zeros(len(ranks), dtype=np.int64)
    rows, columns, which = [], [], []
    blocks = list(windows(dataset.RasterXSize, dataset.RasterYSize, BLOCK))
    for number, (x, y, w, h) in enumerate(blocks):
        if progress.cancelled():
            raise Cancelled()
        index = classes.index_of(band.ReadAsArray(x, y, w, h)).ravel()
        for c, drawn in enumerate(ranks):
            flat = np.flatnonzero(index == c)
            wanted = drawn[(drawn >= seen[c]) & (drawn < seen[c] + flat.size)] - seen[c]
            seen[c] += flat.size
            rows.append(y + flat[wanted] // w)
            columns.append(x + flat[wanted] % w)
            which.append(np.full(wanted.size, c, dtype=np.int64))
        progress.set_fraction((number + 1) / len(blocks))
    rows_all, columns_all, which_all = (np.concatenate(rows), np.concatenate(columns),
                                        np.concatenate(which))
    order = np.lexsort((columns_all, rows_all, which_all))
    return rows_all[order], columns_all[order], which_all[order]


def _reference_names(path: str, grid: Grid, rows: np.ndarray, columns: np.ndarray,
                     progress: Progress) -> list[str | None]:
    """The reference raster's class name at each point (None where it has none)."""
    import shutil
    import tempfile

    from .reference import resample_reference

    scratch = tempfile.mkdtemp(prefix="landcoverunet-sample-")
    try:
        dataset, found = resample_reference(path, grid, scratch, progress)
        band = dataset.GetRasterBand(1)
        names: list[str | None] = []
        for row, column in zip(rows.tolist(), columns.tolist()):
            index = int(found.index_of(band.ReadAsArray(column, row, 1, 1))[0, 0])
            names.append(found.classes.classes[index].name if index >= 0 else None)
        dataset = band = None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    progress.info(f"reference filled from '{path}' ({found.source}) at "
                  f"{sum(n is not None for n in names)} of {len(names)} points")
    return names


def _write(path: str, grid: Grid, classes: RasterClasses, rows: np.ndarray, columns: np.ndarray,
           which: np.ndarray, reference: list[str | None], design: SamplingDesign) -> None:
    """The points at pixel centres, with the design as the layer's metadata."""
    write_pixel_points(
        path, grid, LAYER_NAME,
        [(FIELD_CODE, "integer"), (FIELD_CLASS, "string"), (FIELD_REFERENCE, "string")],
        ((row, column, {FIELD_CODE: int(classes.values[c]),
                        FIELD_CLASS: classes.classes.classes[c].name, FIELD_REFERENCE: label})
         for row, column, c, label in zip(rows.tolist(), columns.tolist(), which.tolist(),
                                          reference)),
        {DESIGN_KEY: design.to_json()})
