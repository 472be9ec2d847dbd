"""Makes the README's area-adjusted picture (docs/images/area_adjusted.png) with the plugin's own
report code, from a map made by *another* tool, as issue 11's analyst would:

1. a per-pixel random forest (scikit-learn) trained on the bundled sample's training polygons
   classifies the bundled scene; the map is a plain GeoTIFF with GDAL category names and a colour
   table, no class map of this plugin;
2. Accuracy sample draws a stratified random sample of it (seed 1) and fills the 'reference'
   field from the dense 7-class land-cover raster of the test data (``strata.tif``, same
   grid; a 1996 classification standing in for an analyst's interpretation);
3. Assess accuracy estimates the areas; the report's bar chart is saved as the picture and the
   area table is printed as Markdown for the README.

    source scripts/env.sh && .venv/bin/python scripts/make_area_picture.py
"""
from __future__ import annotations

import csv
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NC = os.path.join(ROOT, "test", "data", "nc_landsat7_landcover")
TARGET = os.path.join(ROOT, "docs", "images", "area_adjusted.png")


def random_forest_map(folder: str) -> str:
    """The bundled scene classified by a random forest, written as another tool would."""
    import numpy as np
    from osgeo import gdal
    from sklearn.ensemble import RandomForestClassifier

    from landcoverunet.backend.masks.burn import build_mask
    from landcoverunet.backend.masks.features import VectorInput

    sample = os.path.join(ROOT, "resources", "sample")
    image_path = os.path.join(sample, "nc_landsat7_2000.tif")
    mask = build_mask(image_path, [VectorInput(os.path.join(sample, "training_polygons.gpkg"))],
                      os.path.join(folder, "mask.tif"), class_field="id",
                      class_name_field="label", advise_few_pixels=False)
    image = gdal.Open(image_path).ReadAsArray().astype(np.float32)
    labels = gdal.Open(mask.path).ReadAsArray()
    pixels = image.reshape(image.shape[0], -1).T
    forest = RandomForestClassifier(n_estimators=50, random_state=1, n_jobs=1)
    forest.fit(pixels[labels.ravel() > 0], labels.ravel()[labels.ravel() > 0])
    valid = (image > 0).all(axis=0).ravel()
    classes = np.zeros(pixels.shape[0], dtype=np.uint8)
    classes[valid] = forest.predict(pixels[valid])
    path = os.path.join(folder, "random_forest.tif")
    dataset = gdal.GetDriverByName("GTiff").CreateCopy(path, gdal.Open(mask.path))
    dataset.SetMetadata({})                                   # no class map of this plugin
    band = dataset.GetRasterBand(1)
    band.WriteArray(classes.reshape(labels.shape))
    top = max(mask.class_map.ids)
    band.SetCategoryNames([mask.class_map.by_id(i).name if i in mask.class_map.ids else ""
                           for i in range(top + 1)])
    dataset = None
    return path


def main() -> int:
    from landcoverunet.backend.assess.accuracy import assess_accuracy
    from landcoverunet.backend.assess.report import write_report
    from landcoverunet.backend.assess.sample_points import draw_sample
    from landcoverunet.backend.core.progress import ConsoleProgress
    from landcoverunet.backend.masks.features import VectorInput

    folder = tempfile.mkdtemp(prefix="landcoverunet-area-picture-")
    progress = ConsoleProgress()
    map_path = random_forest_map(folder)
    sample = draw_sample(map_path, os.path.join(folder, "sample.gpkg"), seed=1,
                         reference_raster=os.path.join(NC, "strata.tif"), progress=progress)
    result = assess_accuracy(map_path, reference_vector=VectorInput(sample.path),
                             class_field="reference", progress=progress)
    table = os.path.join(folder, "areas.csv")
    write_report(result, os.path.join(folder, "report.html"), area_table_path=table,
                 area_chart_path=TARGET)
    with open(table, encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    print("| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]))
    for row in rows[1:]:
        print("| " + " | ".join([row[0], *[_short(v) for v in row[1:]]]) + " |")
    print(f"wrote {TARGET} (work files in {folder})")
    return 0


def _short(value: str) -> str:
    if not value:
        return ""
    number = float(value)
    return f"{number:,.0f}" if abs(number) >= 10 or number == 0 else f"{number:.3f}"


if __name__ == "__main__":
    sys.exit(main())
