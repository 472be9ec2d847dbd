"""Times "Build training masks" against the gdal_rasterize command on the same polygons and grid.

A large grid (default 10,000 x 10,000 pixels) and many polygons (default 20,000, of mixed sizes,
some overlapping) are made in a scratch folder; the backend's ``build_mask`` and
``gdal_rasterize`` (same grid, same attribute, same tiled DEFLATE output) each run a few times and
the best times are compared. Target: at most 1.2 times gdal_rasterize.

    source scripts/env.sh && .venv/bin/python bench/bench_masks.py [--size 10000] [--polygons 20000]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time

import numpy as np
from osgeo import gdal, ogr, osr

from landcoverunet.backend.masks.burn import build_mask
from landcoverunet.backend.masks.features import VectorInput

EPSG = 32617
PIXEL = 10.0


def make_image(path: str, size: int, nodata: bool = True) -> None:
    """A uint16 image (with a nodata value unless told not), written quickly (constant blocks
    compress to nothing)."""
    dataset = gdal.GetDriverByName("GTiff").Create(
        path, size, size, 1, gdal.GDT_UInt16, ["TILED=YES", "COMPRESS=DEFLATE", "SPARSE_OK=TRUE"])
    dataset.SetGeoTransform((500000.0, PIXEL, 0, 4000000.0, 0, -PIXEL))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(EPSG)
    dataset.SetProjection(srs.ExportToWkt())
    band = dataset.GetRasterBand(1)
    if nodata:
        band.SetNoDataValue(0)
    band.Fill(1000)
    dataset = None


def make_polygons(path: str, size: int, count: int, seed: int = 0) -> None:
    """Random irregular polygons (8-40 vertices, 2-200 pixels across) with classes 1..7."""
    rng = np.random.default_rng(seed)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(EPSG)
    source = ogr.GetDriverByName("GPKG").CreateDataSource(path)
    layer = source.CreateLayer("polygons", srs, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("cls", ogr.OFTInteger))
    layer.StartTransaction()
    extent = size * PIXEL
    for _ in range(count):
        cx = 500000.0 + rng.uniform(0, extent)
        cy = 4000000.0 - rng.uniform(0, extent)
        radius = PIXEL * rng.uniform(1, 100)
        n = int(rng.integers(8, 40))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radii = radius * rng.uniform(0.6, 1.0, n)
        ring = ogr.Geometry(ogr.wkbLinearRing)
        for a, r in zip(angles, radii):
            ring.AddPoint_2D(cx + r * np.cos(a), cy + r * np.sin(a))
        ring.CloseRings()
        polygon = ogr.Geometry(ogr.wkbPolygon)
        polygon.AddGeometry(ring)
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField("cls", int(rng.integers(1, 8)))
        feature.SetGeometry(polygon)
        layer.CreateFeature(feature)
    layer.CommitTransaction()
    source = None


def best_of(runs: int, work) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10000, help="grid width and height (pixels)")
    parser.add_argument("--polygons", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-image-nodata", action="store_true",
                        help="give the image no nodata value: build_mask then skips its check of "
                             "image nodata, which gdal_rasterize never does")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-masks-") as folder:
        image = os.path.join(folder, "image.tif")
        polygons = os.path.join(folder, "polygons.gpkg")
        make_image(image, args.size, nodata=not args.no_image_nodata)
        make_polygons(polygons, args.size, args.polygons)
        extent = [500000, 4000000 - args.size * PIXEL, 500000 + args.size * PIXEL, 4000000]

        def ours() -> None:
            build_mask(image, [VectorInput(polygons)], os.path.join(folder, "ours.tif"),
                       class_field="cls")

        def gdal_command() -> None:
            subprocess.run(["gdal_rasterize", "-q", "-a", "cls", "-ot", "Byte", "-a_nodata", "0",
                            "-init", "0", "-te", *map(str, extent),
                            "-ts", str(args.size), str(args.size),
                            "-co", "TILED=YES", "-co", "COMPRESS=DEFLATE",
                            polygons, os.path.join(folder, "gdal.tif")], check=True)
            os.remove(os.path.join(folder, "gdal.tif"))

        reference = best_of(args.runs, gdal_command)
        backend = best_of(args.runs, ours)
        mine = gdal.Open(os.path.join(folder, "ours.tif")).ReadAsArray()
        labelled = int((mine > 0).sum())
    print(f"grid {args.size} x {args.size}, {args.polygons} polygons, {labelled} labelled pixels, "
          f"image {'without' if args.no_image_nodata else 'with'} nodata")
    print(f"gdal_rasterize: {reference:.2f} s   build_mask: {backend:.2f} s   "
          f"ratio: {backend / reference:.2f} (target <= 1.2)")


if __name__ == "__main__":
    main()
