"""Bringing the reference onto the classified raster's grid: polygons burnt, points read at
their pixels, or a class raster resampled (nearest) when its grid differs."""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..core.class_map import NO_LABEL, ClassMap
from ..core.errors import UserError
from ..core.grid import Grid, same_crs
from ..core.progress import Progress
from ..core.raster_io import open_raster
from ..masks.features import VectorInput, open_layer, transform_to_grid
from .raster_classes import RasterClasses, read_raster_classes

BLOCK = 1024
"""Side of the square blocks the rasters are read in."""


def rasterise_reference(classified_path: str, classified: Any, vector: VectorInput,
                        class_field: str | None, class_name_field: str | None,
                        all_touched: bool, scratch: str,
                        progress: Progress) -> tuple[Any, ClassMap]:
    """Burns the reference on the map's grid with buildmasks' rules; returns (dataset, classes).

    The grid is given as a VRT of the map without its nodata, so that reference pixels where the
    map has no data are burnt too and can be reported.
    """
    from osgeo import gdal

    from ..masks.burn import build_mask

    grid_path = os.path.join(scratch, "grid.vrt")
    gdal.Translate(grid_path, classified, format="VRT", noData="none", bandList=[1])
    mask_path = os.path.join(scratch, "reference.tif")
    result = build_mask(grid_path, [vector], mask_path, class_field=class_field,
                        class_name_field=class_name_field, all_touched=all_touched,
                        advise_few_pixels=False, progress=progress)
    return gdal.Open(mask_path), result.class_map


def resample_reference(path: str, grid: Grid, scratch: str,
                       progress: Progress) -> tuple[Any, RasterClasses]:
    """Opens (or resamples onto the grid) a reference class raster.

    Returns:
        The dataset on the grid, and its classes with the pixel value of each (found as for the
        map: class map, category names, attribute table, .qml, else plain codes).
    """
    from osgeo import gdal

    source = open_raster(path)
    classes = read_raster_classes(path, source, progress)
    nodata = source.GetRasterBand(1).GetNoDataValue()
    source_grid = Grid.from_dataset(source, path)
    same = same_crs(source_grid.crs_wkt, grid.crs_wkt) \
        and (source_grid.width, source_grid.height) == (grid.width, grid.height) \
        and np.allclose(source_grid.geotransform, grid.geotransform,
                        atol=1e-6 * abs(grid.geotransform[1]))
    if same:
        return source, classes
    minx, miny, maxx, maxy = grid.bounds
    dataset = gdal.Warp(os.path.join(scratch, "reference.vrt"), source, format="VRT",
                        outputBounds=(minx, miny, maxx, maxy), width=grid.width,
                        height=grid.height, dstSRS=grid.crs_wkt, resampleAlg="near",
                        dstNodata=nodata if nodata is not None else NO_LABEL)
    if dataset is None:
        raise UserError(f"GDAL could not resample the reference raster '{path}' onto the "
                        f"classified raster's grid: {gdal.GetLastErrorMsg()}")
    return dataset, classes


def is_point_layer(vector: VectorInput) -> bool:
    from osgeo import ogr

    _source, layer = open_layer(vector)
    return ogr.GT_Flatten(layer.GetGeomType()) in (ogr.wkbPoint, ogr.wkbMultiPoint)


def read_points(vector: VectorInput, grid: Grid, class_field: str | None,
                class_name_field: str | None,
                progress: Progress) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ClassMap]:
    """Reference points: the pixel (row, column) each falls in, and its class id."""
    source, layer = open_layer(vector)  # noqa: F841 (the source keeps the layer alive)
    label = vector.name or layer.GetName()
    fields = [d.GetName() for d in layer.schema]
    for wanted in (class_field, class_name_field):
        if wanted and wanted not in fields:
            raise UserError(f"The layer '{label}' has no field '{wanted}'. Its fields are: "
                            f"{', '.join(fields) or '(none)'}.")
    _, _, transform = transform_to_grid(vector, layer, label, grid)
    x0, dx, _, y0, _, dy = grid.geotransform
    xs: list[float] = []
    ys: list[float] = []
    codes: list[Any] = []
    names: dict[Any, str] = {}
    skipped = 0
    for feature in layer:
        code = feature.GetField(class_field) if class_field else label
        geometry = feature.GetGeometryRef()
        if code is None or (isinstance(code, str) and not code.strip()) or geometry is None \
                or geometry.IsEmpty():
            skipped += 1
            continue
        geometry = geometry.Clone()
        if transform is not None and geometry.Transform(transform) != 0:
            skipped += 1
            continue
        parts = [geometry.GetGeometryRef(i) for i in range(geometry.GetGeometryCount())] \
            if geometry.GetGeometryCount() else [geometry]
        for part in parts:
            xs.append(part.GetX())
            ys.append(part.GetY())
            codes.append(code)
        if class_name_field:
            name = feature.GetField(class_name_field)
            if name is not None and str(name).strip():
                names.setdefault(code, str(name).strip())
        elif not class_field:
            names[code] = label
    if skipped:
        progress.info(f"{skipped} reference points skipped: no class value, no geometry, or "
                      "not transformable to the map's CRS")
    if not codes:
        raise UserError(f"The layer '{label}' has no usable point: each needs a geometry and a "
                        f"class value{f' in its field {class_field!r}' if class_field else ''}. "
                        "For an accuracy sample, fill that field for the points first.")
    classes = ClassMap.from_codes(codes, names)
    ids = np.array([classes.id_for_code(code) for code in codes], dtype=np.int64)
    columns = np.floor((np.array(xs) - x0) / dx).astype(np.int64)
    rows = np.floor((np.array(ys) - y0) / dy).astype(np.int64)
    inside = (columns >= 0) & (columns < grid.width) & (rows >= 0) & (rows < grid.height)
    progress.info(f"{int(inside.sum())} reference points on the map's grid, "
                  f"{int((~inside).sum())} outside it")
    return (rows[inside], columns[inside], ids[inside]), classes

