"""Points at pixel centres, written as one GeoPackage layer: the accuracy sample and the places
to label next are both pixels an analyst looks at and labels."""
from __future__ import annotations

from typing import Any, Iterable

from .errors import UserError
from .grid import Grid

KINDS = ("integer", "real", "string")
"""The field kinds a point layer may have."""


def write_pixel_points(path: str, grid: Grid, layer_name: str, fields: list[tuple[str, str]],
                       points: Iterable[tuple[int, int, dict[str, Any]]],
                       metadata: dict[str, str] | None = None) -> None:
    """Writes a GeoPackage with one point layer in the grid's CRS.

    Args:
        path: the GeoPackage to create.
        grid: where the pixels lie.
        layer_name: the layer's name.
        fields: (name, kind) of each field, kind one of :data:`KINDS`.
        points: (row, column, values) per point, in the order the layer keeps; a value left
            out or None stays empty (NULL).
        metadata: layer metadata items (name -> text).
    """
    from osgeo import ogr, osr

    types = dict(zip(KINDS, (ogr.OFTInteger, ogr.OFTReal, ogr.OFTString)))
    srs = osr.SpatialReference()
    srs.ImportFromWkt(grid.crs_wkt)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    source = ogr.GetDriverByName("GPKG").CreateDataSource(path)
    if source is None:
        raise UserError(f"Cannot create the GeoPackage '{path}'.")
    layer = source.CreateLayer(layer_name, srs, ogr.wkbPoint)
    for name, kind in fields:
        layer.CreateField(ogr.FieldDefn(name, types[kind]))
    g0, g1, g2, g3, g4, g5 = grid.geotransform
    source.StartTransaction()
    for row, column, values in points:
        feature = ogr.Feature(layer.GetLayerDefn())
        for name, value in values.items():
            if value is not None:
                feature.SetField(name, value)
        point = ogr.Geometry(ogr.wkbPoint)
        point.AddPoint_2D(g0 + (column + 0.5) * g1 + (row + 0.5) * g2,
                          g3 + (column + 0.5) * g4 + (row + 0.5) * g5)
        feature.SetGeometry(point)
        layer.CreateFeature(feature)
    source.CommitTransaction()
    for key, value in (metadata or {}).items():
        layer.SetMetadataItem(key, value)
    source = None
