"""The U-Net with the plugin's default settings against a per-pixel random forest.

Usage (from the repository root; scikit-learn is for this bench only):
    .venv/bin/pip install -r requirements-bench.txt -c constraints.txt "numpy==1.24.2"
    source scripts/env.sh && .venv/bin/python bench/bench_vs_random_forest.py \
        [--scenes nc,buildings] [--trees 300] [--seed 42] [--set key=value ...]

Both models learn from the same mask (the same labelled pixels), built by the plugin's own
``build_mask`` from digitised polygons, and both are scored on a dense reference that covers
the whole scene, far beyond the polygons:

- ``nc``: the NC Landsat 7 scene (6 bands, 489 x 443 px, 28.5 m) and its 34 polygons (7 classes),
  scored on ``strata.tif`` over every pixel where the image has data in all bands.
- ``buildings``: the solaris 0.5 m Atlanta scene (1 band, 900 x 900 px). Half of its 43 building
  polygons (chosen by the seed) are the "building" labels; "background" is digitised as squares
  made here at random places that touch no building. Scored on the reference footprint mask over
  the whole image (classes building / background), held-out buildings included.

The U-Net is trained by ``backend.training.train_unet`` (the function the Processing algorithm
calls) with ``TrainingConfig``'s defaults, which are the algorithm's defaults. ``--set`` overrides
a setting to try a candidate; the printout then says the run is not the defaults. The trained
model classifies the scene with ``backend.prediction.classify_raster`` (what "Classify raster"
runs: windows, blending, everything read from the model file).

The random forest (scikit-learn, per pixel, raw band values as features) is trained on exactly
the labelled pixels of the same mask, with balanced class weights, on all cores.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from shared_data import NC, SOLARIS, nc_stack_and_mask


# ----- scenes ----------------------------------------------------------------------------------
@dataclasses.dataclass
class Scene:
    """An image, its training mask, and a dense reference of class ids (0 = not scored)."""

    name: str
    image: str
    mask: str
    reference: np.ndarray
    class_ids: list[int]
    class_names: list[str]


def nc_scene(folder: Path) -> Scene:
    from osgeo import gdal

    stack, mask = nc_stack_and_mask(folder)
    strata = gdal.Open(str(NC / "strata.tif"))
    values = strata.GetRasterBand(1).ReadAsArray()
    nodata = strata.GetRasterBand(1).GetNoDataValue()
    reference = np.where((values == nodata) | ~np.isfinite(values), 0, values).astype(np.uint8)
    names = ["developed", "agriculture", "herbaceous", "shrubland", "forest", "water",
             "sediment"]
    return Scene("NC Landsat 7 (strata.tif)", stack, mask, reference, list(range(1, 8)), names)


def buildings_scene(folder: Path, seed: int, squares: int = 60, edge: float = 10.0) -> Scene:
    """Half the buildings as labels, plus background squares that touch no building."""
    from osgeo import gdal, ogr, osr

    from landcoverunet.backend.masks import build_mask
    from landcoverunet.backend.vector_features import VectorInput

    image = str(SOLARIS / "sample_geotiff.tif")
    dataset = gdal.Open(image)
    x0, px, _, y0, _, py = dataset.GetGeoTransform()
    width, height = dataset.RasterXSize, dataset.RasterYSize
    source = ogr.Open(str(SOLARIS / "geotiff_labels.geojson"))
    layer = source.GetLayer(0)
    buildings = [f.GetGeometryRef().Clone() for f in layer]
    everything = ogr.Geometry(ogr.wkbMultiPolygon)
    for g in buildings:
        everything = everything.Union(g)
    keep_out = everything.Buffer(2.0)  # a digitiser leaves a little room around roofs
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(buildings), len(buildings) // 2, replace=False).tolist())
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32616)
    path = str(folder / "buildings_labels.gpkg")
    out = ogr.GetDriverByName("GPKG").CreateDataSource(path)
    labels = out.CreateLayer("labels", srs, ogr.wkbPolygon)
    labels.CreateField(ogr.FieldDefn("id", ogr.OFTInteger))
    labels.CreateField(ogr.FieldDefn("label", ogr.OFTString))

    def add(geometry, code: int, name: str) -> None:
        feature = ogr.Feature(labels.GetLayerDefn())
        feature.SetField("id", code)
        feature.SetField("label", name)
        feature.SetGeometry(geometry)
        labels.CreateFeature(feature)

    for i in chosen:
        add(buildings[i], 1, "building")
    made = tries = 0
    right, bottom = x0 + width * px, y0 + height * py
    while made < squares and tries < 100 * squares:
        tries += 1
        x = rng.uniform(x0, right - edge)
        y = rng.uniform(bottom, y0 - edge)
        ring = ogr.Geometry(ogr.wkbLinearRing)
        for cx, cy in ((x, y), (x + edge, y), (x + edge, y + edge), (x, y + edge), (x, y)):
            ring.AddPoint_2D(cx, cy)
        square = ogr.Geometry(ogr.wkbPolygon)
        square.AddGeometry(ring)
        if square.Intersects(keep_out):
            continue
        add(square, 2, "background")
        made += 1
    out = None
    mask = str(folder / "buildings_mask.tif")
    build_mask(image, [VectorInput(path)], mask, class_field="id", class_name_field="label")
    footprint = gdal.Open(str(SOLARIS / "sample_fp_mask_from_geojson.tif")).ReadAsArray()
    reference = np.where(footprint > 0, 1, 2).astype(np.uint8)
    return Scene(f"solaris buildings ({len(chosen)} of {len(buildings)} buildings labelled, "
                 f"{made} background squares)", image, mask, reference, [1, 2],
                 ["building", "background"])


# ----- models ----------------------------------------------------------------------------------
def read_image(path: str):
    """(rows, cols, bands) float32 raw values and where every band has data."""
    from osgeo import gdal

    from landcoverunet.backend.raster_io import band_nodata, invalid_pixels

    dataset = gdal.Open(path)
    raw = dataset.ReadAsArray().astype(np.float32)
    raw = raw if raw.ndim == 3 else raw[None]
    invalid = invalid_pixels(raw, band_nodata(dataset))
    return np.moveaxis(raw, 0, -1), ~invalid


def read_mask(path: str) -> np.ndarray:
    from osgeo import gdal

    return gdal.Open(path).ReadAsArray()


def train_unet_defaults(scene: Scene, folder: Path, overrides: dict):
    """Trains with the algorithm's defaults (plus any overrides); returns map, seconds, result."""
    from landcoverunet.backend.progress import ConsoleProgress
    from landcoverunet.backend.training import TrainingConfig, train_unet

    output = str(folder / f"unet_{abs(hash(scene.name)) % 10 ** 6}.keras")
    config = TrainingConfig(images=[scene.image], masks=[scene.mask], output_model=output,
                            **overrides)
    progress = ConsoleProgress(quiet=True)
    started = time.perf_counter()
    result = train_unet(config, progress)
    seconds = time.perf_counter() - started
    for line in progress.messages:
        if line.startswith(("Epoch", "Best", "Early", "U-Net", "Training windows",
                            "Validation")):
            print("   ", line)
    return predict_unet(output, scene, folder), seconds, result


def predict_unet(model_path: str, scene: Scene, folder: Path) -> np.ndarray:
    """Class ids of the whole scene, classified by the plugin's own backend (0 = no data)."""
    from osgeo import gdal

    from landcoverunet.backend.prediction import classify_raster

    output = str(folder / f"{Path(model_path).stem}_classes.tif")
    classify_raster(scene.image, model_path, output)
    return gdal.Open(output).ReadAsArray()


def train_forest(scene: Scene, trees: int, seed: int):
    """A per-pixel random forest on the mask's labelled pixels; returns map and seconds."""
    from sklearn.ensemble import RandomForestClassifier

    raw, valid = read_image(scene.image)
    labels = read_mask(scene.mask)
    train = (labels > 0) & valid
    started = time.perf_counter()
    forest = RandomForestClassifier(n_estimators=trees, class_weight="balanced", n_jobs=-1,
                                    random_state=seed)
    forest.fit(raw[train], labels[train])
    seconds = time.perf_counter() - started
    predicted = np.zeros(valid.shape, np.uint8)
    predicted[valid] = forest.predict(raw[valid])
    return predicted, seconds, int(train.sum())


# ----- scoring ---------------------------------------------------------------------------------
def score(scene: Scene, predicted: np.ndarray):
    """Per-class IoU and mIoU against the dense reference, where both have a class."""
    from landcoverunet.backend.training_scores import confusion_matrix, scores

    lookup = np.zeros(256, np.uint8)
    for index, code in enumerate(scene.class_ids):
        lookup[code] = index + 1
    truth = lookup[scene.reference]
    guess = lookup[predicted]
    keep = (truth > 0) & (guess > 0)
    matrix = confusion_matrix(truth[keep], guess[keep] - 1, len(scene.class_ids))
    return scores(matrix)


def show(label: str, result, names: list[str]) -> None:
    per_class = "  ".join(f"{n} {v:.3f}" for n, v in zip(names, result.iou))
    print(f"  {label:<14} mIoU {result.miou:.3f}  accuracy {result.accuracy:.3f}  "
          f"({result.pixels} px)\n  {'':<14} {per_class}")


def patch(item: str) -> None:
    """Sets a constant for an experiment: ``training.NAME=1`` or ``unet.PRESETS.small=[d,f,p]``."""
    import importlib

    target, value = item.split("=", 1)
    parsed = json.loads(value)
    module_name, *path = target.split(".")
    package = "models" if module_name in ("unet", "losses", "metrics") else "backend"
    module = importlib.import_module(f"landcoverunet.{package}.{module_name}")
    if path[0] == "PRESETS":
        module.PRESETS[path[1]] = module.UNetConfig(*parsed)
    else:
        setattr(module, path[0], parsed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", default="nc,buildings",
                        help="comma-separated: nc, buildings")
    parser.add_argument("--trees", type=int, default=300)
    parser.add_argument("--seed", type=int, default=42, help="labels chosen, forest seed")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override a TrainingConfig default (JSON value), to try candidates")
    parser.add_argument("--patch", nargs="*", default=[], metavar="MODULE.NAME=VALUE",
                        help="set a backend or models constant (JSON value), e.g. "
                             "training.LABEL_SMOOTHING=0 or unet.PRESETS.small=[3,16,0.3]")
    parser.add_argument("--no-forest", action="store_true")
    args = parser.parse_args()
    for item in args.patch:
        patch(item)

    overrides = {}
    for item in args.set:
        key, value = item.split("=", 1)
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    from landcoverunet.backend.training import TrainingConfig

    defaults = {f.name: f.default for f in dataclasses.fields(TrainingConfig)
                if f.default is not dataclasses.MISSING and f.name not in (
                    "output_report", "tensorboard_dir", "init_model", "bands")}
    print(f"U-Net settings: {'DEFAULTS' if not (overrides or args.patch) else 'NOT the defaults'}"
          f"{' (patched: ' + ', '.join(args.patch) + ')' if args.patch else ''}: "
          + ", ".join(f"{k}={overrides.get(k, v)}" for k, v in defaults.items()))
    print(f"{os.cpu_count()} CPUs")
    folder = Path(tempfile.mkdtemp(prefix="bench-vs-rf-"))
    for name in [s.strip() for s in args.scenes.split(",") if s.strip()]:
        scene = nc_scene(folder) if name == "nc" else buildings_scene(folder, args.seed)
        labelled = int((read_mask(scene.mask) > 0).sum())
        print(f"\n== {scene.name}: {labelled} labelled pixels; dense reference "
              f"{int((scene.reference > 0).sum())} px")
        unet_map, unet_seconds, result = train_unet_defaults(scene, folder, overrides)
        unet = score(scene, unet_map)
        print(f"  U-Net: {unet_seconds:.0f} s training ({result.epochs_run} epochs, best "
              f"epoch {result.best_epoch}, best val mIoU {result.best_val_miou:.3f})")
        show("U-Net", unet, scene.class_names)
        if args.no_forest:
            continue
        forest_map, forest_seconds, pixels = train_forest(scene, args.trees, args.seed)
        forest = score(scene, forest_map)
        print(f"  random forest: {args.trees} trees on {pixels} pixels, {forest_seconds:.1f} s")
        show("random forest", forest, scene.class_names)
        print(f"  => U-Net - forest mIoU: {unet.miou - forest.miou:+.3f} (ratio "
              f"{unet.miou / max(forest.miou, 1e-9):.2f}); "
              f"{'U-Net better' if unet.miou > forest.miou else 'forest better'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
