"""How far can the confidence be calibrated? Held-out ECE of the models a held-out bench kept.

Usage (from the repository root; after ``bench_heldout.py --compare-members --folder F``):
    source scripts/env.sh && .venv/bin/python bench/bench_calibration.py F [F ...] \
        [--out /tmp/calibration]

For every model ``<dataset>_<seed>.keras`` in the folders (and its members ``_member1`` (the
U-Net) and ``_member2`` (the forest network) where ``--compare-members`` kept them), the image
is classified with probabilities, the file's calibration undone (its temperature, then its label
smoothing done again: the network's own probabilities), and the expected calibration error (``core/calibration.py``) on the held-out
pixels (``<dataset>_heldout.tif``) printed for:

- ``none``: the network's probabilities as they are;
- ``file``: with the calibration the model file holds (what classification writes);
- ``unsmooth``: label smoothing undone (the U-Net trains on targets ``(1 - e) y + e / K``,
  so its best output for a sure pixel is ``1 - e + e / K``; ``(p - e / K) / (1 - e)``);
- ``unet``, ``fn``: each member alone, as the network gives it;
- ``oracle``: the temperature fitted on the held-out pixels themselves (the best any single
  temperature can do for the likelihood; no rule can know it);
- ``members oracle``: where the members were kept, each member's label smoothing undone and its
  own oracle temperature applied before the two are averaged (the best a temperature per
  member could do: whether calibrating each member before averaging is worth a rule);
- ``ece oracle``: the single temperature, among 0.25 to 5, with the lowest calibration error
  on the held-out pixels (the floor of any one temperature for the error itself).

Nothing here trains; the folders' models are only read. Issue 23, docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import sys
from pathlib import Path

import numpy as np

from bench_heldout import DATASETS

MODEL = re.compile(r"(?P<dataset>.+)_(?P<seed>\d+)(?P<member>_member\d)?$")


def held_out(folder: str, names: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, columns, channel) of the held-out pixels whose class the model has."""
    from osgeo import gdal

    from landcoverunet.backend.core.class_map import ClassMap

    path = glob.glob(f"{folder}/*_heldout.tif")[0]
    labels = gdal.Open(path).ReadAsArray()
    lookup = {c.id: c.name for c in ClassMap.read_from_raster(path).classes}
    rows, columns = np.nonzero(labels > 0)
    truth = np.array([lookup.get(int(v), "") for v in labels[rows, columns]])
    known = np.isin(truth, names)
    return rows[known], columns[known], np.array([names.index(t) for t in truth[known]])


def probabilities(image: str, model: str, out: Path) -> str:
    """The model's probability raster of the image (made once, kept in ``out``)."""
    from landcoverunet.backend.classify.classify_raster import classify_raster

    target = out / f"{Path(model).parent.name}__{Path(model).stem}_probabilities.tif"
    if not target.exists():
        classify_raster(image, model, str(target).replace("_probabilities", "_classes"),
                        probabilities_path=str(target))
    return str(target)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--out", default="/tmp/bench-calibration")
    args = parser.parse_args()
    from osgeo import gdal

    from landcoverunet.backend.core.calibration import (apply_temperature,
                                                        calibrate_probabilities,
                                                        fit_temperature, reliability,
                                                        smooth_labels, undo_label_smoothing)
    from landcoverunet.backend.core.class_map import ClassMap
    from landcoverunet.backend.model.opened import open_model
    from landcoverunet.backend.training.config import LABEL_SMOOTHING

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    images: dict[str, str] = {}
    for folder in args.folders:
        for model in sorted(glob.glob(f"{folder}/*.keras")):
            found = MODEL.match(Path(model).stem)
            if not found or found["member"]:
                continue
            name = found["dataset"]
            if name not in images:
                (out / name).mkdir(exist_ok=True)
                images[name] = DATASETS[name](out / name).image
            metadata = open_model(model).metadata
            temperature, smoothing = metadata.temperature or 1.0, metadata.label_smoothing
            main_path = probabilities(images[name], model, out)
            names = [c.name for c in ClassMap.read_from_raster(
                main_path.replace("_probabilities", "_classes")).classes]
            rows, columns, truth = held_out(folder, names)

            def read(path: str) -> np.ndarray:
                values = gdal.Open(path).ReadAsArray()[:, rows, columns]
                found = apply_temperature(np.moveaxis(values, 0, -1).astype(np.float32),
                                          1 / temperature)
                return smooth_labels(found, smoothing)

            def ece(p: np.ndarray) -> float:
                return reliability(p, truth).ece

            network = read(main_path)
            oracle = fit_temperature(network, truth)
            figures = {"none": ece(network),
                       "file": ece(calibrate_probabilities(network, smoothing, temperature)),
                       "unsmooth": ece(undo_label_smoothing(network, LABEL_SMOOTHING))}
            members = [model.replace(".keras", f"_member{i}.keras") for i in (1, 2)]
            if all(os.path.exists(m) for m in members):
                unet, forest = (read(probabilities(images[name], m, out)) for m in members)
                figures |= {"unet": ece(unet), "fn": ece(forest)}
                tuned = [apply_temperature(p, fit_temperature(p, truth)) for p in
                         (undo_label_smoothing(m, LABEL_SMOOTHING) for m in (unet, forest))]
                figures["members oracle"] = ece((tuned[0] + tuned[1]) / 2)
            figures["oracle"] = ece(apply_temperature(network, oracle))
            figures["ece oracle"] = min(ece(apply_temperature(network, t))
                                        for t in np.geomspace(0.25, 5.0, 61))
            print(f"{Path(folder).name:>24} {Path(model).stem:<20} pixels {len(truth):6d}  "
                  f"accuracy {(network.argmax(-1) == truth).mean():.3f}  confidence "
                  f"{network.max(-1).mean():.3f}  T file {temperature:.2f} oracle {oracle:.2f}  "
                  + "  ".join(f"{k} {v:.3f}" for k, v in figures.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
