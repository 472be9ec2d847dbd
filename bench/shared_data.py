"""Where the benches find ../shared/data, and the NC scene they train on."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("LANDCOVERUNET_SHARED_DATA", ROOT.parent / "shared" / "data"))
NC = DATA / "nc_landsat7_landcover"
SOLARIS = DATA / "solaris_buildings"


def nc_stack_and_mask(folder: Path) -> tuple[str, str]:
    """Stacks the six NC Landsat bands (a VRT) and burns the 34 polygons onto its grid."""
    from osgeo import gdal

    from landcoverunet.backend.masks.burn import build_mask
    from landcoverunet.backend.masks.features import VectorInput

    stack = str(folder / "nc_stack.vrt")
    gdal.BuildVRT(stack, [str(NC / f"lsat7_2000_{b}.tif") for b in (10, 20, 30, 40, 50, 70)],
                  separate=True).FlushCache()
    mask = str(folder / "nc_mask.tif")
    build_mask(stack, [VectorInput(str(NC / "landsat96_polygons.shp"))], mask,
               class_field="id", class_name_field="label", all_touched=True)
    return stack, mask
