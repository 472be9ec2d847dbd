"""A raster's pixel grid, and when two coordinate reference systems are the same.

Masks are burnt on an image's grid, classifications are written on it and accuracy is counted
on it: one type says where pixels lie, and one rule says when two CRSs agree.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
