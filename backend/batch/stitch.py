"""A large image's parts put back together into one class GeoTIFF, then the map products.

The parts (see ``classify/parts.py``) tile the image exactly; a VRT lays them side by side and
GDAL copies it into one tiled GeoTIFF with the class map, colours and names. The minimum mapping
unit and the polygons run on that whole raster, so a patch that crosses a part's edge is
counted whole, as in a one-process run.
"""
from __future__ import annotations

import os
import shutil

from ..classify.outputs import CLASS_ZLEVEL, overview_levels
from ..classify.polygons import write_polygons
from ..classify.sieve import apply_minimum_mapping_unit
from ..core.class_map import NO_LABEL, ClassMap
from ..core.errors import UserError
from ..core.grid import Grid
from ..core.progress import Progress, SubProgress
from ..core.raster_io import GTIFF_OPTIONS, atomic_output


def stitch_parts(part_paths: list[str], output_path: str, class_map: ClassMap,
                 min_mapping_unit: float, vector_path: str | None,
                 progress: Progress, tags: dict[str, str] | None = None) -> None:
    """Writes the parts as one class GeoTIFF (with overviews), sieved and polygonised if asked.

    Args:
        part_paths: the parts' class GeoTIFFs, together covering the image once.
        output_path: the class GeoTIFF to write (atomically).
        class_map: the model's classes.
        min_mapping_unit: hectares (0: off), see ``classify/sieve.py``.
        vector_path: optional GeoPackage of polygons.
        progress: where the steps report.
        tags: metadata items written into the class GeoTIFF (the batch's run key).
    """
    from osgeo import gdal

    folder = os.path.dirname(part_paths[0])
    gdal.ErrorReset()
    mosaic = gdal.BuildVRT(os.path.join(folder, "parts.vrt"), part_paths)
    if mosaic is None:
        raise UserError(f"Cannot lay the parts of '{output_path}' side by side: "
                        f"{gdal.GetLastErrorMsg()}")
    # BuildVRT skips a part it cannot open with a mere warning: the map would have a hole
    laid = {os.path.abspath(path) for path in mosaic.GetFileList() or []}
    missing = [os.path.basename(p) for p in part_paths if os.path.abspath(p) not in laid]
    if missing:
        raise UserError(f"Parts of '{output_path}' cannot be read ({', '.join(missing)}); run "
                        "the batch again to classify them.")
    with atomic_output(output_path) as temporary:
        options = GTIFF_OPTIONS + ["INTERLEAVE=BAND", f"ZLEVEL={CLASS_ZLEVEL}"]
        dataset = gdal.Translate(temporary, mosaic, creationOptions=options)
        mosaic = None
        if dataset is None or gdal.GetLastErrorType() >= gdal.CE_Failure:
            # a part unreadable while copied would leave a hole of no-data: never a silent map
            raise UserError(f"Writing '{output_path}' failed: {gdal.GetLastErrorMsg()}")
        dataset.GetRasterBand(1).SetNoDataValue(NO_LABEL)
        class_map.write_to_band(dataset)
        for name, value in (tags or {}).items():
            dataset.SetMetadataItem(name, value)
        grid = Grid(dataset.RasterXSize, dataset.RasterYSize, dataset.GetGeoTransform(),
                    dataset.GetProjection())
        apply_minimum_mapping_unit(dataset, grid, min_mapping_unit,
                                   SubProgress(progress, 0.0, 0.5))
        dataset.BuildOverviews("NEAREST", overview_levels(grid.width, grid.height))
        dataset = None
        if vector_path:
            with atomic_output(vector_path) as vector_temporary:
                write_polygons(temporary, vector_temporary, class_map,
                               SubProgress(progress, 0.5, 1.0))
    shutil.rmtree(folder, ignore_errors=True)
