"""A raster's pixel grid, and when two coordinate reference systems are the same.

Masks are burnt on an image's grid, classifications are written on it and accuracy is counted
on it: one type says where pixels lie, and one rule says when two CRSs agree.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import UserError


@dataclass
class Grid:
    """A north-up pixel grid: size, GDAL geotransform and CRS (WKT; empty when unknown)."""

    width: int
    height: int
    geotransform: tuple[float, ...]
    crs_wkt: str

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) in the grid's CRS."""
        x0, dx, _, y0, _, dy = self.geotransform
        xs = (x0, x0 + dx * self.width)
        ys = (y0, y0 + dy * self.height)
        return min(xs), min(ys), max(xs), max(ys)

    def window(self, x_off: int, y_off: int, width: int, height: int) -> "Grid":
        """The grid of a pixel window of this one."""
        x0, dx, rx, y0, ry, dy = self.geotransform
        return Grid(width, height, (x0 + x_off * dx + y_off * rx, dx, rx,
                                    y0 + x_off * ry + y_off * dy, ry, dy), self.crs_wkt)

    @classmethod
    def from_dataset(cls, dataset: Any, path: str = "") -> "Grid":
        """The grid of a georeferenced, north-up GDAL dataset (else a UserError)."""
        wkt = dataset.GetProjection()
        transform = dataset.GetGeoTransform(can_return_null=True)
        if not wkt or transform is None:
            raise UserError(f"The image {path} has no coordinate reference system or "
                            "georeferencing; labels cannot be placed on it.")
        if transform[2] != 0 or transform[4] != 0:
            raise UserError(f"The image {path} is rotated; warp it to a north-up grid first.")
        return cls(dataset.RasterXSize, dataset.RasterYSize, tuple(transform), wkt)


def same_crs(first: Any, second: Any) -> bool:
    """Whether two CRSs (WKT or ``osr.SpatialReference``) are the same for rasters: identical,
    or equivalent once the axis order of the data is set aside (GDAL grids are always
    x-then-y). Vector coordinates keep their axis order, so their transforms test ``IsSame``."""
    from osgeo import osr

    a = first if isinstance(first, osr.SpatialReference) else osr.SpatialReference(first)
    b = second if isinstance(second, osr.SpatialReference) else osr.SpatialReference(second)
    return bool(a.IsSame(b) or a.IsSame(
        b, ["IGNORE_DATA_AXIS_TO_SRS_AXIS_MAPPING=YES", "CRITERION=EQUIVALENT"]))


def check_mask_grid(image: Any, mask: Any, image_path: str, mask_path: str) -> None:
    """Errors unless a mask (GDAL dataset) lies on the pixel grid of an image: the same size,
    origin and pixel size (to a thousandth of a pixel) and CRS, so its pixels label the image's."""
    hint = (f"The mask '{mask_path}' is not on the pixel grid of '{image_path}' ({{}}). Build "
            "it for this image with 'Build training masks' (landcoverunet:buildmasks).")
    if (image.RasterXSize, image.RasterYSize) != (mask.RasterXSize, mask.RasterYSize):
        raise UserError(hint.format(f"{mask.RasterXSize} x {mask.RasterYSize} pixels, image "
                                    f"{image.RasterXSize} x {image.RasterYSize}"))
    a, b = np.array(image.GetGeoTransform()), np.array(mask.GetGeoTransform())
    pixel = max(abs(a[1]), abs(a[5]), 1e-12)
    if not np.allclose(a, b, rtol=0, atol=1e-3 * pixel):
        raise UserError(hint.format("a different origin or pixel size"))
    image_srs, mask_srs = image.GetProjection(), mask.GetProjection()
    if image_srs and mask_srs and not same_crs(image_srs, mask_srs):
        raise UserError(hint.format("another CRS"))


def round_up(value: int, multiple: int) -> int:
    """The smallest multiple of ``multiple`` that is >= value (and >= multiple): a window side
    a network of that size multiple takes."""
    return max(multiple, int(math.ceil(value / multiple)) * multiple)
