"""Makes the bundled sample in resources/sample/ from test/data/nc_landsat7_landcover.

Run once by a developer (the result is committed); kept so the sample can be rebuilt and checked:
    source scripts/env.sh && .venv/bin/python scripts/make_sample.py
"""
from __future__ import annotations

import os
import sys

import numpy as np
from osgeo import gdal, ogr, osr

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(ROOT, "test", "data", "nc_landsat7_landcover")
TARGET = os.path.join(ROOT, "resources", "sample")
BANDS = (10, 20, 30, 40, 50)
BAND_NAMES = ("blue", "green", "red", "nir", "swir1")
"""ETM+ band 7 (SWIR-2, ``lsat7_2000_70.tif``) is left out: it has no data over a further 22 %
of the scene, under the only agriculture polygon, so with it that class never trained."""


SAMPLE_CRS = osr.SpatialReference()
SAMPLE_CRS.ImportFromEPSG(32119)   # NAD83 / North Carolina, as the README says


def make_image() -> gdal.Dataset:
    """Stacks the five bands into one uint8 GeoTIFF; 0 (unused by the 1..255 DNs) is nodata."""
    first = gdal.Open(os.path.join(SOURCE, "lsat7_2000_10.tif"))
    path = os.path.join(TARGET, "nc_landsat7_2000.tif")
    out = gdal.GetDriverByName("GTiff").Create(
        path, first.RasterXSize, first.RasterYSize, len(BANDS), gdal.GDT_Byte,
        ["TILED=YES", "COMPRESS=DEFLATE", "PREDICTOR=2", "INTERLEAVE=PIXEL"])
    out.SetGeoTransform(first.GetGeoTransform())
    # The source's WKT is an unnamed copy of EPSG:32119, which QGIS shows as "Unknown CRS" and
    # for which it asks for a datum transformation: write the EPSG definition it is.
    out.SetProjection(SAMPLE_CRS.ExportToWkt())
    for index, (band, name) in enumerate(zip(BANDS, BAND_NAMES), start=1):
        source = gdal.Open(os.path.join(SOURCE, f"lsat7_2000_{band}.tif"))
        values = source.ReadAsArray()
        nodata = source.GetRasterBand(1).GetNoDataValue()
        values = np.where(values == nodata, 0, values).astype(np.uint8)
        target = out.GetRasterBand(index)
        target.WriteArray(values)
        target.SetNoDataValue(0)
        target.SetDescription(f"ETM+ {name}")
    return out


def copy_polygons(image: gdal.Dataset) -> ogr.Geometry:
    """Copies the training polygons that lie on the image; returns their union."""
    source = ogr.Open(os.path.join(SOURCE, "landsat96_polygons.shp"))
    layer = source.GetLayer()
    x0, dx, _, y0, _, dy = image.GetGeoTransform()
    frame = ogr.CreateGeometryFromWkt(
        f"POLYGON(({x0} {y0},{x0 + dx * image.RasterXSize} {y0},"
        f"{x0 + dx * image.RasterXSize} {y0 + dy * image.RasterYSize},"
        f"{x0} {y0 + dy * image.RasterYSize},{x0} {y0}))")
    path = os.path.join(TARGET, "training_polygons.gpkg")
    driver = ogr.GetDriverByName("GPKG")
    if os.path.exists(path):
        driver.DeleteDataSource(path)
    out = driver.CreateDataSource(path)
    target = out.CreateLayer("training_polygons", layer.GetSpatialRef(), ogr.wkbMultiPolygon)
    target.CreateField(ogr.FieldDefn("id", ogr.OFTInteger))
    target.CreateField(ogr.FieldDefn("label", ogr.OFTString))
    union = ogr.Geometry(ogr.wkbMultiPolygon)
    for feature in layer:
        geometry = feature.GetGeometryRef()
        if not geometry.Intersects(frame):
            continue
        copy = ogr.Feature(target.GetLayerDefn())
        copy.SetField("id", feature.GetField("id"))
        copy.SetField("label", feature.GetField("label"))
        copy.SetGeometry(ogr.ForceToMultiPolygon(geometry.Clone()))
        target.CreateFeature(copy)
        union = union.Union(geometry)
    return union


def make_reference(image: gdal.Dataset, training: ogr.Geometry) -> int:
    """Held-out reference polygons: each labelled point as its one-pixel square.

    Points within 100 m of a training polygon are dropped, so the reference is independent of
    what the network was trained on.
    """
    source = ogr.Open(os.path.join(SOURCE, "landsat96_points.shp"))
    layer = source.GetLayer()
    x0, dx, _, y0, _, dy = image.GetGeoTransform()
    near = training.Buffer(100)
    path = os.path.join(TARGET, "reference_polygons.gpkg")
    driver = ogr.GetDriverByName("GPKG")
    if os.path.exists(path):
        driver.DeleteDataSource(path)
    out = driver.CreateDataSource(path)
    srs = osr.SpatialReference()
    srs.ImportFromWkt(layer.GetSpatialRef().ExportToWkt())
    target = out.CreateLayer("reference_polygons", srs, ogr.wkbPolygon)
    target.CreateField(ogr.FieldDefn("id", ogr.OFTInteger))
    target.CreateField(ogr.FieldDefn("label", ogr.OFTString))
    kept = 0
    for feature in layer:
        point = feature.GetGeometryRef()
        if point.Intersects(near):
            continue
        column = int((point.GetX() - x0) // dx)
        row = int((point.GetY() - y0) // dy)
        if not (0 <= column < image.RasterXSize and 0 <= row < image.RasterYSize):
            continue
        left, top = x0 + column * dx, y0 + row * dy
        right, bottom = left + dx, top + dy
        square = ogr.CreateGeometryFromWkt(
            f"POLYGON(({left} {top},{right} {top},{right} {bottom},{left} {bottom},{left} {top}))")
        copy = ogr.Feature(target.GetLayerDefn())
        copy.SetField("id", feature.GetField("id"))
        copy.SetField("label", feature.GetField("label"))
        copy.SetGeometry(square)
        target.CreateFeature(copy)
        kept += 1
    return kept


def main() -> int:
    os.makedirs(TARGET, exist_ok=True)
    image = make_image()
    training = copy_polygons(image)
    kept = make_reference(image, training)
    image.FlushCache()
    print(f"sample written to {TARGET}; {kept} reference squares")
    return 0


if __name__ == "__main__":
    sys.exit(main())
