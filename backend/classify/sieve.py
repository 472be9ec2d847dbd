"""The minimum mapping unit: patches smaller than an area merged into their largest neighbour.

Maps made for reporting must not hold patches smaller than the unit the analyst maps at (a
single misclassified pixel in a field). GDAL's sieve filter does this: it labels the patches
(pixels of one class joined by an edge: 4-connectedness, the same rule the vector output's
polygons follow) over the whole raster, whatever its blocks, and gives every patch below the
threshold the class of its largest neighbouring patch; passes repeat until one changes nothing
(:data:`MAX_PASSES`). It runs on the whole finished class
raster, so a patch crossing a block or window edge is counted once, whole. Nodata (0) is
masked: it never grows into classes nor takes a patch in, so a small patch surrounded by nodata
only stays as it is.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..core.errors import Cancelled, UserError
from ..core.grid import Grid
from ..core.progress import Progress

CONNECTEDNESS = 4
"""Pixels belong to one patch when they share an edge (not just a corner)."""
SQUARE_METRES_PER_HECTARE = 10_000.0
MAX_PASSES = 8
"""GDAL's sieve merges a small patch into its largest neighbour as that neighbour was before the
pass; when that neighbour is small too and merges elsewhere, the patch can stay below the unit.
Further passes (each one a whole-raster sieve) catch those, until a pass changes nothing."""


def pixel_area_m2(grid: Grid) -> float:
    """The area of one pixel in square metres; a UserError for grids in degrees or unknown CRS."""
    from osgeo import osr

    if not grid.crs_wkt:
        raise UserError("The image has no coordinate reference system, so areas in hectares "
                        "cannot be measured: set its CRS first.")
    srs = osr.SpatialReference(grid.crs_wkt)
    if srs.IsGeographic():
        raise UserError("The image is in degrees (a geographic CRS), where a pixel's area "
                        "changes with latitude: reproject it to a projected CRS (metres) to use a "
                        "minimum mapping unit.")
    x0, dx, rx, y0, ry, dy = grid.geotransform
    return abs(dx * dy - rx * ry) * srs.GetLinearUnits() ** 2


def threshold_pixels(hectares: float, pixel_area: float) -> int:
    """The smallest pixel count a patch may keep: patches of fewer pixels cover less than the unit.

    A patch of n pixels covers n * pixel_area; it is removed when that is below the unit, i.e.
    when n < ceil(unit / pixel_area) (a tolerance keeps round figures round).
    """
    if hectares < 0:
        raise UserError("The minimum mapping unit cannot be negative.")
    ratio = hectares * SQUARE_METRES_PER_HECTARE / pixel_area
    return max(0, math.ceil(ratio - 1e-9 * max(1.0, ratio)))


def sieve_band(band: Any, pixels: int, progress: Progress) -> np.ndarray | None:
    """Merges patches of fewer than ``pixels`` pixels into their largest neighbour, in place;
    returns the band's pixels per value 0..255 after it (None when nothing was to be done).

    Args:
        band: band 1 of an open, writable class raster (nodata 0).
        pixels: the threshold from :func:`threshold_pixels` (<= 1 changes nothing).
        progress: receives GDAL's progress; its cancel stops the filter.
    """
    from osgeo import gdal

    if pixels <= 1:
        return None

    span = [0.0, 0.5]  # the fraction done before this pass, and this pass's part of the bar

    def callback(fraction: float, _message: Any, _data: Any) -> int:
        progress.set_fraction(span[0] + fraction * span[1])
        return 0 if progress.cancelled() else 1

    before = after = None
    for number in range(MAX_PASSES):  # each pass takes half of what is left of the bar
        span[:] = [1.0 - 0.5 ** number, 0.5 ** (number + 1)]
        band.FlushCache()
        result = gdal.SieveFilter(band, band.GetMaskBand(), band, int(pixels), CONNECTEDNESS,
                                  callback=callback)
        if progress.cancelled():
            raise Cancelled()
        if result != gdal.CE_None:
            raise UserError(f"The minimum mapping unit filter failed: {gdal.GetLastErrorMsg()}")
        band.FlushCache()
        after = count_values(band)
        if before is not None and np.array_equal(before, after):
            break
        before = after
    return after


def count_values(band: Any) -> np.ndarray:
    """Pixels of each value 0..255 of a uint8 band, read block row by block row (flat memory)."""
    counts = np.zeros(256, dtype=np.int64)
    _, block_rows = band.GetBlockSize()
    step = max(int(block_rows), 256)
    for row in range(0, band.YSize, step):
        values = band.ReadAsArray(0, row, band.XSize, min(step, band.YSize - row))
        counts += np.bincount(values.ravel(), minlength=256)[:256]
    return counts


def apply_minimum_mapping_unit(dataset: Any, grid: Grid, hectares: float,
                               progress: Progress) -> np.ndarray | None:
    """Sieves a class raster to a minimum mapping unit in hectares; returns the new counts.

    Returns None (and changes nothing) when the unit is 0 or below one pixel.
    """
    if not hectares:
        return None
    pixels = threshold_pixels(hectares, pixel_area_m2(grid))
    if pixels <= 1:
        progress.info(f"Minimum mapping unit {hectares:g} ha is at most one pixel: no patch "
                      "removed.")
        return None
    progress.info(f"Minimum mapping unit {hectares:g} ha: merging patches of fewer than "
                  f"{pixels} pixels ({CONNECTEDNESS}-connected) into their largest neighbour ...")
    band = dataset.GetRasterBand(1)
    return sieve_band(band, pixels, progress)
