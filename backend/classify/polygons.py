"""The class raster as polygons: a GeoPackage with each patch's class and area.

GDAL's Polygonize traces the patches (4-connected, like the minimum mapping unit's sieve, so a
patch is one polygon whatever its shape; nodata makes none) and writes the pixel value into
``class_id``; the class name and the area in hectares are added after, in one transaction.
Polygons follow pixel edges exactly, so their areas add up to the raster's class areas. In a
geographic CRS the areas are measured on an equal-area projection of the globe.
"""
from __future__ import annotations

from typing import Any

from ..core.class_map import ClassMap
from ..core.errors import Cancelled, UserError
from ..core.progress import Progress
from ..core.raster_io import open_raster

LAYER_NAME = "classes"
"""The GeoPackage layer the polygons go into."""
EQUAL_AREA_EPSG = 6933
"""WGS 84 / NSIDC EASE-Grid 2.0 Global: where areas of polygons in degrees are measured."""
FIELDS = ("class_id", "class_name", "area_ha")


def write_polygons(class_path: str, vector_path: str, class_map: ClassMap,
                   progress: Progress) -> int:
    """Polygonises a class raster into a new GeoPackage; returns the number of polygons.

    Args:
        class_path: a finished class raster (uint8, nodata 0).
        vector_path: the GeoPackage to create (a temporary name: see ``atomic_output``).
        class_map: the classes, for the names.
        progress: the first 90 % go to tracing, the rest to names and areas; cancel stops it.
    """
    from osgeo import gdal, ogr, osr

    dataset = open_raster(class_path)
    band = dataset.GetRasterBand(1)
    srs = osr.SpatialReference(dataset.GetProjection()) if dataset.GetProjection() else None
    if srs is not None:
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    driver = ogr.GetDriverByName("GPKG")
    vector = driver.CreateDataSource(vector_path)
    if vector is None:
        raise UserError(f"Cannot create the GeoPackage '{vector_path}': is the folder writable?")
    try:
        layer = vector.CreateLayer(LAYER_NAME, srs, ogr.wkbPolygon)
        layer.CreateField(ogr.FieldDefn(FIELDS[0], ogr.OFTInteger))
        name_field = ogr.FieldDefn(FIELDS[1], ogr.OFTString)
        layer.CreateField(name_field)
        area_field = ogr.FieldDefn(FIELDS[2], ogr.OFTReal)
        layer.CreateField(area_field)

        def callback(fraction: float, _message: Any, _data: Any) -> int:
            progress.set_fraction(0.9 * fraction)
            return 0 if progress.cancelled() else 1

        vector.StartTransaction()
        result = gdal.Polygonize(band, band.GetMaskBand(), layer, 0, [], callback=callback)
        vector.CommitTransaction()
        if progress.cancelled():
            raise Cancelled()
        if result != gdal.CE_None:
            raise UserError(f"Turning the classes into polygons failed: {gdal.GetLastErrorMsg()}")
        count = _fill_names_and_areas(vector, layer, class_map, srs)
    finally:
        layer = None
        vector = None
        dataset = None
    progress.set_fraction(1.0)
    return count


def _fill_names_and_areas(vector: Any, layer: Any, class_map: ClassMap, srs: Any) -> int:
    """Sets each polygon's class name and area (ha) in one transaction."""
    from osgeo import osr

    names = {c.id: c.name for c in class_map.classes}
    factor, transform = 1.0 / 10_000.0, None
    if srs is not None and srs.IsGeographic():
        target = osr.SpatialReference()
        target.ImportFromEPSG(EQUAL_AREA_EPSG)
        target.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        transform = osr.CoordinateTransformation(srs, target)
    elif srs is not None:
        factor = srs.GetLinearUnits() ** 2 / 10_000.0
    vector.StartTransaction()
    count = 0
    for feature in layer:
        geometry = feature.GetGeometryRef()
        if transform is not None:
            geometry = geometry.Clone()
            geometry.Transform(transform)
        feature.SetField(FIELDS[1], names.get(feature.GetField(FIELDS[0]), ""))
        feature.SetField(FIELDS[2], geometry.GetArea() * factor)
        layer.SetFeature(feature)
        count += 1
    vector.CommitTransaction()
    return count
