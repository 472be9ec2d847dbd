"""Does 'Where to digitise next' pay? Labelling rounds simulated on scenes with a dense reference.

Usage (from the repository root; nothing else running, an hour or more per dataset):
    source scripts/env.sh && .venv/bin/python bench/bench_suggest.py \
        [--datasets nc,slovenia,buildings] [--seeds 1,2,3] [--rounds 3] [--per-round 30] \
        [--strategies suggest,stratified,random] [--minutes 10] [--json curves.json] \
        [--plot curves.png] [--resume]
    .venv/bin/python bench/bench_suggest.py --from-json a.json,b.json --plot curves.png

Issue 23's protocol. Each scene starts from the training features of
``../shared/design/heldout-protocol.md`` (every other feature of each class). A model is trained
with the plugin's defaults (``--minutes``: the time limit, 10 as the dialog), then, per strategy,
``--rounds`` rounds each add ``--per-round`` labelled pixels, as points on a label layer beside
the polygons (the loop the README describes: Build training masks with both layers, the first
mask's class map, train again):

- ``suggest``: the places 'Where to digitise next' names (the labels so far skipped);
- ``stratified``: a random sample stratified by mapped class, equal numbers per class (what a
  careful analyst does today);
- ``random``: simple random pixels.

Every point takes the class of the dense reference at its pixel (a pixel without one gives no
label, as a point the analyst cannot tell is left empty). After each round the map is scored by
mIoU on the dense reference outside every labelled pixel (classes present there). Dense
references: nc ``strata.tif``, slovenia ``LULC.npy``, buildings the solaris footprint mask
(building / background). Goal: after the last round the suggestions beat ``stratified`` by at
least 0.03 mIoU on average on every scene, or reach its final mIoU with two thirds of its labels.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from bench_heldout import DATASETS, Dataset, Protocol, score
from shared_data import require


@dataclass
class Scene:
    """A dataset of the held-out bench and its dense reference: class names per pixel ("" where
    none), as the label layer's class field spells them."""

    dataset: Dataset
    reference: np.ndarray


def nc_reference() -> np.ndarray:
    from osgeo import gdal

    names = np.array(["", "developed", "agriculture", "herbaceous", "shrubland", "forest",
                      "water", "sediment"])
    codes = gdal.Open(str(require("nc_landsat7_landcover") / "strata.tif")).ReadAsArray()
    codes = np.where((codes >= 1) & (codes <= 7), codes, 0).astype(int)
    return names[codes]


def slovenia_reference() -> np.ndarray:
    names = {1: "cultivated land", 2: "forest", 3: "grassland", 4: "schrubland",
             8: "artificial surface"}   # LULC_ID -> LULC_NAME, as LULC.gpkg pairs them
    ids = np.load(require("slovenia_s2_lulc") / "LULC.npy")[..., 0]
    return np.vectorize(lambda v: names.get(int(v), ""))(ids)


def buildings_reference() -> np.ndarray:
    from osgeo import gdal

    mask = gdal.Open(str(require("solaris_buildings") / "sample_fp_mask_from_geojson.tif"))
    return np.where(mask.ReadAsArray() > 0, "building", "background")


REFERENCES: dict[str, Callable[[], np.ndarray]] = {
    "nc": nc_reference, "slovenia": slovenia_reference, "buildings": buildings_reference}


class Rounds:
    """One scene, seed and strategy: the label points so far, the mask, the model, the score."""

    def __init__(self, scene: Scene, protocol: Protocol, folder: Path, seed: int,
                 minutes: float, resume: bool = False) -> None:
        self.scene, self.protocol, self.folder = scene, protocol, folder
        self.seed, self.minutes, self.resume = seed, minutes, resume
        self.points: list[tuple[int, int, str]] = []
        self.spent = 0

    def train_and_score(self, tag: str) -> tuple[float, str, np.ndarray]:
        """(mIoU outside the labels, model path, the map) after training on the labels so far."""
        from osgeo import gdal

        from landcoverunet.backend.classify.classify_raster import classify_raster
        from landcoverunet.backend.masks.burn import build_mask
        from landcoverunet.backend.masks.features import VectorInput
        from landcoverunet.backend.training.train_unet import TrainingConfig, train_unet

        dataset = self.scene.dataset
        layers = [VectorInput(str(self.folder / f"{dataset.name}_train.gpkg"))]
        if self.points:
            layers.append(VectorInput(self.write_points(tag)))
        mask = str(self.folder / f"{tag}_mask.tif")
        model = str(self.folder / f"{tag}.keras")
        classes = str(self.folder / f"{tag}_classes.tif")
        if not (self.resume and Path(classes).exists() and Path(model).exists()):
            build_mask(dataset.image, layers, mask, class_field=dataset.field,
                       class_map=self.protocol.class_map, advise_few_pixels=False)
            train_unet(TrainingConfig(images=[dataset.image], masks=[mask], output_model=model,
                                      seed=self.seed, time_limit=self.minutes))
            classify_raster(dataset.image, model, classes)
        mapped = gdal.Open(classes).ReadAsArray()
        labelled = gdal.Open(mask).ReadAsArray() > 0
        lookup = {0: ""} | {c.id: c.name for c in self.protocol.class_map.classes}
        predicted = np.vectorize(lambda v: lookup.get(int(v), ""))(mapped)
        scored = (self.scene.reference != "") & ~labelled
        truth = self.scene.reference[scored]
        found = score(truth, predicted[scored], sorted(set(truth.tolist())))
        self.labelled = labelled
        return found.miou, model, mapped

    def write_points(self, tag: str) -> str:
        """The labelled points so far as a GeoPackage beside the polygons (same class field)."""
        from osgeo import gdal, ogr, osr

        image = gdal.Open(self.scene.dataset.image)
        g0, g1, _, g3, _, g5 = image.GetGeoTransform()
        srs = osr.SpatialReference(image.GetProjection())
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        path = str(self.folder / f"{tag}_points.gpkg")
        source = ogr.GetDriverByName("GPKG").CreateDataSource(path)
        layer = source.CreateLayer("points", srs, ogr.wkbPoint)
        layer.CreateField(ogr.FieldDefn(self.scene.dataset.field, ogr.OFTString))
        for row, column, name in self.points:
            feature = ogr.Feature(layer.GetLayerDefn())
            feature.SetField(self.scene.dataset.field, name)
            point = ogr.Geometry(ogr.wkbPoint)
            point.AddPoint_2D(g0 + (column + 0.5) * g1, g3 + (row + 0.5) * g5)
            feature.SetGeometry(point)
            layer.CreateFeature(feature)
        source = None
        return path

    def label(self, pixels: list[tuple[int, int]]) -> None:
        """The analyst labels each pixel from the reference (none where it has no class)."""
        self.spent += len(pixels)
        self.points += [(r, c, str(self.scene.reference[r, c])) for r, c in pixels
                        if self.scene.reference[r, c] != ""]


def suggested(rounds: Rounds, model: str, count: int, tag: str) -> list[tuple[int, int]]:
    from osgeo import gdal, ogr

    from landcoverunet.backend.suggest.suggest_labels import suggest_labels

    image = rounds.scene.dataset.image
    mask = str(rounds.folder / f"{tag}_mask.tif")
    result = suggest_labels(image, model, str(rounds.folder / f"{tag}_suggested.gpkg"),
                            count=count, label_masks=[mask])
    g0, g1, _, g3, _, g5 = gdal.Open(image).GetGeoTransform()
    source = ogr.Open(result.path)
    return [(int((f.GetGeometryRef().GetY() - g3) / g5), int((f.GetGeometryRef().GetX() - g0)
                                                                / g1))
            for f in source.GetLayer(0)]


def stratified(rounds: Rounds, mapped: np.ndarray, count: int,
               rng: np.random.Generator) -> list[tuple[int, int]]:
    """Equal numbers per mapped class among unlabelled mapped pixels (the rest at random)."""
    free = (mapped > 0) & ~rounds.labelled
    classes = [c for c in np.unique(mapped[free]) if c > 0]
    share = np.full(len(classes), count // len(classes))
    share[rng.choice(len(classes), count % len(classes), replace=False)] += 1
    picked = []
    for c, n in zip(classes, share):
        where = np.flatnonzero((mapped == c).ravel() & free.ravel())
        picked += rng.choice(where, min(n, len(where)), replace=False).tolist()
    return [divmod(int(p), mapped.shape[1]) for p in picked]


def simple_random(rounds: Rounds, mapped: np.ndarray, count: int,
                  rng: np.random.Generator) -> list[tuple[int, int]]:
    where = np.flatnonzero(((mapped > 0) & ~rounds.labelled).ravel())
    return [divmod(int(p), mapped.shape[1]) for p in rng.choice(where, count, replace=False)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="nc,slovenia,buildings")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-round", type=int, default=30)
    parser.add_argument("--strategies", default="suggest,stratified,random")
    parser.add_argument("--minutes", type=float, default=10.0, help="training time limit")
    parser.add_argument("--folder", default=None)
    parser.add_argument("--resume", action="store_true",
                        help="a round whose model and map --folder already holds (an earlier "
                             "run's, same seed and settings) is scored, not trained again: "
                             "another strategy can start from the same round 0")
    parser.add_argument("--json", default=None)
    parser.add_argument("--plot", default=None,
                        help="write the curves as a PNG")
    parser.add_argument("--from-json", default=None,
                        help="the curves of earlier runs (their --json, comma-separated; "
                             "strategies of one dataset are merged), to summarise and plot them")
    args = parser.parse_args()
    if args.from_json:
        merged: dict = {}
        for path in args.from_json.split(","):
            for name, found in json.loads(Path(path).read_text()).items():
                merged.setdefault(name, {}).update(found)
        summarise(merged, args.per_round)
        if args.plot:
            plot_curves(merged, args.plot, args.per_round)
        return 0
    folder = Path(args.folder or tempfile.mkdtemp(prefix="bench-suggest-"))
    folder.mkdir(parents=True, exist_ok=True)
    strategies = args.strategies.split(",")
    curves: dict = {}
    print(f"rounds {args.rounds} x {args.per_round} labels, time limit {args.minutes} min, "
          f"work folder {folder}")
    for name in args.datasets.split(","):
        scene = Scene(DATASETS[name](folder), REFERENCES[name]())
        protocol = Protocol(scene.dataset, folder)
        curves[name] = {s: [] for s in strategies}
        for seed in [int(s) for s in args.seeds.split(",")]:
            start = Rounds(scene, protocol, folder, seed, args.minutes, args.resume)
            first, model, mapped = start.train_and_score(f"{name}_{seed}_r0")
            print(f"{name} seed {seed}: round 0 mIoU {first:.3f}", flush=True)
            for strategy in strategies:
                rounds = Rounds(scene, protocol, folder, seed, args.minutes, args.resume)
                rounds.labelled = start.labelled
                rng = np.random.default_rng([seed, 23])
                curve, now_model, now_map, tag = [first], model, mapped, f"{name}_{seed}_r0"
                for r in range(1, args.rounds + 1):
                    if strategy == "suggest":
                        pixels = suggested(rounds, now_model, args.per_round, tag)
                    elif strategy == "stratified":
                        pixels = stratified(rounds, now_map, args.per_round, rng)
                    else:
                        pixels = simple_random(rounds, now_map, args.per_round, rng)
                    rounds.label(pixels)
                    tag = f"{name}_{seed}_{strategy}_r{r}"
                    miou, now_model, now_map = rounds.train_and_score(tag)
                    curve.append(miou)
                    print(f"  {strategy} round {r}: {len(rounds.points)} labelled of "
                          f"{rounds.spent} asked, mIoU {miou:.3f}", flush=True)
                curves[name][strategy].append(curve)
            if args.json:
                Path(args.json).write_text(json.dumps(curves, indent=1))
    summarise(curves, args.per_round)
    if args.plot:
        plot_curves(curves, args.plot, args.per_round)
    return 0


def summarise(curves: dict, per_round: int) -> None:
    """The curves as a Markdown table, with the issue's goal per scene."""
    print("\n| dataset | strategy | mIoU after each round (mean of seeds) | final, per seed |")
    print("|---|---|---|---|")
    for name, found in curves.items():
        for strategy, runs in found.items():
            mean = np.mean(runs, axis=0)
            print(f"| {name} | {strategy} | {' / '.join(f'{v:.3f}' for v in mean)} | "
                  f"{', '.join(f'{r[-1]:.3f}' for r in runs)} |")
        if {"suggest", "stratified"} <= set(found):
            gain = np.mean([r[-1] for r in found["suggest"]]) - \
                np.mean([r[-1] for r in found["stratified"]])
            asked = reached(np.mean(found["suggest"], axis=0),
                            np.mean([r[-1] for r in found["stratified"]]), per_round)
            total = (len(next(iter(found.values()))[0]) - 1) * per_round
            print(f"| {name} | goal | suggest - stratified after the last round {gain:+.3f} "
                  f"(goal +0.03); stratified's final mIoU reached after "
                  + (f"{asked:.0f} of its {total} pixels asked ({asked / total:.0%}; goal at "
                     "most two thirds)" if asked is not None else "more pixels than it asked")
                  + " | |")


def reached(curve: np.ndarray, target: float, per_round: int) -> float | None:
    """How many pixels asked the mean ``curve`` (one value per round, round 0 first) needs to
    reach ``target``, interpolated linearly between rounds; None if it never does."""
    if curve[0] >= target:
        return 0.0
    for r in range(1, len(curve)):
        if curve[r] >= target:
            step = (target - curve[r - 1]) / (curve[r] - curve[r - 1])
            return per_round * (r - 1 + max(step, 0.0))
    return None


def plot_curves(curves: dict, path: str, per_round: int) -> None:
    """mIoU against labels asked, per strategy: each seed thin, their mean thick."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(curves), figsize=(4.8 * len(curves), 3.6), squeeze=False)
    for axis, (name, found) in zip(axes[0], curves.items()):
        for (strategy, runs), colour in zip(found.items(), ("#d7301f", "#2b8cbe", "#777777")):
            labels = np.arange(len(runs[0])) * per_round
            for run in runs:
                axis.plot(labels, run, color=colour, alpha=0.3, linewidth=1)
            axis.plot(labels, np.mean(runs, axis=0), "o-", color=colour, linewidth=2.2,
                      label={"suggest": "Where to digitise next",
                             "stratified": "stratified by mapped class",
                             "random": "simple random"}.get(strategy, strategy))
        axis.set_title(f"{name}: {len(next(iter(found.values())))} seeds")
        axis.set_xlabel(f"pixels asked to label ({per_round} per round)")
        axis.set_ylabel("mIoU outside the labels")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


if __name__ == "__main__":
    sys.exit(main())
