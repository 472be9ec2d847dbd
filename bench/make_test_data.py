"""Makes the suite's data in test/data/ from ../shared/data: whole small scenes recompressed
losslessly, crops of the larger ones, label layers clipped to the crop.

Run once by a developer (the result is committed, so the tests need no ../shared); kept so the
data can be rebuilt and checked against its source:
    source scripts/env.sh && .venv/bin/python bench/make_test_data.py
Every crop window and command is listed in test/data/README.md.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from shared_data import ROOT, require

TARGET = ROOT / "test" / "data"
LOSSLESS = ["COMPRESS=DEFLATE", "ZLEVEL=9"]
SHAPEFILE = (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qpj")

CROPS = {  # file: (column, row, width, height), as gdal_translate -srcwin takes it
    "sample_geotiff.tif": (0, 0, 450, 450),
    "sample_fp_mask_from_geojson.tif": (0, 0, 450, 450),
    "sample_geotiff_custom_proj.tif": (352, 0, 160, 128),
    "road_mask_input.tif": (0, 0, 650, 650),
    "sample_road_raster_mask.tif": (0, 0, 650, 650),
}
"""Solaris's three pairs, each image cropped with its reference mask to the same window."""


def translate(source: Path, target: Path, window: tuple[int, int, int, int] | None = None):
    """gdal_translate [-srcwin] -co COMPRESS=DEFLATE -co PREDICTOR=2|3: the same values."""
    from osgeo import gdal

    dataset = gdal.Open(str(source))
    floating = dataset.GetRasterBand(1).DataType in (gdal.GDT_Float32, gdal.GDT_Float64)
    options = LOSSLESS + [f"PREDICTOR={3 if floating else 2}"]
    gdal.Translate(str(target), dataset, srcWin=list(window) if window else None,
                   creationOptions=options).FlushCache()


def bounds(path: Path) -> tuple[float, float, float, float]:
    """A raster's extent as (xmin, ymin, xmax, ymax)."""
    from osgeo import gdal

    dataset = gdal.Open(str(path))
    x0, dx, _, y0, _, dy = dataset.GetGeoTransform()
    x1, y1 = x0 + dx * dataset.RasterXSize, y0 + dy * dataset.RasterYSize
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


def keep_features_on(source: Path, target: Path, box: tuple[float, float, float, float]):
    """The GeoJSON's features whose bounding box meets ``box``, uncut, and nothing else changed:
    ogr2ogr would write the ``crs`` member that this file is kept without."""
    collection = json.loads(source.read_text())

    def meets(feature: dict) -> bool:
        xs, ys = zip(*(point for ring in feature["geometry"]["coordinates"] for point in ring))
        return min(xs) < box[2] and max(xs) > box[0] and min(ys) < box[3] and max(ys) > box[1]

    collection["features"] = [f for f in collection["features"] if meets(f)]
    target.write_text(json.dumps(collection))


def copy_shapefile(source: Path, folder: Path) -> None:
    """A shapefile's parts, byte for byte."""
    for part in sorted(source.parent.glob(source.stem + ".*")):
        if part.suffix in SHAPEFILE:
            shutil.copyfile(part, folder / part.name)


def nc(folder: Path) -> None:
    """The whole NC scene (489 x 443 px): its figures (34 polygons, 2,872 labelled pixels, the
    class counts of strata.tif) are what the suite checks."""
    source = require("nc_landsat7_landcover")
    for path in sorted(source.glob("*.tif")):
        translate(path, folder / path.name)
    for name in ("landsat96_polygons.shp", "landsat96_points.shp"):
        copy_shapefile(source / name, folder)


def naip(folder: Path) -> None:
    """The whole NAIP subset (467 x 272 px) and its 60 points."""
    source = require("naip_river_points")
    translate(source / "river_subset.tif", folder / "river_subset.tif")
    copy_shapefile(source / "training_data.shp", folder)


def solaris(folder: Path) -> None:
    """Crops of the three pairs; the building and field labels cut to their crop."""
    from osgeo import gdal

    source = require("solaris_buildings")
    for name, window in CROPS.items():
        translate(source / name, folder / name, window)
    gdal.VectorTranslate(str(folder / "geotiff_labels.gpkg"),
                         str(source / "geotiff_labels.geojson"), format="GPKG",
                         layerName="geotiff_labels",
                         options=["-clipsrc", *map(str, bounds(folder / "sample_geotiff.tif"))])
    keep_features_on(source / "geotiff_custom_proj_labels.geojson",
                     folder / "geotiff_custom_proj_labels.geojson",
                     bounds(folder / "sample_geotiff_custom_proj.tif"))
    shutil.copyfile(source / "sample_roads_for_masking.geojson",
                    folder / "sample_roads_for_masking.geojson")


def main() -> None:
    for name, make in (("nc_landsat7_landcover", nc), ("naip_river_points", naip),
                       ("solaris_buildings", solaris)):
        folder = TARGET / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        make(folder)
        print(f"{folder}: {sum(p.stat().st_size for p in folder.iterdir()):,} bytes")


if __name__ == "__main__":
    main()
