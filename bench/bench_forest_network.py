"""The teacher forest and the forest network distilled from it, alone, on polygons never seen.

Usage (from the repository root):
    source scripts/env.sh && .venv/bin/python bench/bench_forest_network.py \
        [--datasets ogt_landsat7,ogt_s2_wetlands,slovenia] [--seeds 1,2,3] \
        [--variants "base;STEPS=4500,PASSES=24;LABEL_SHARE=2"]

Training's per-pixel member (``backend/training/forest_student.py``) takes seconds, the U-Net
minutes, so distillation settings can be compared over many seeds before any U-Net is trained.
The teacher is fitted (``teacher.teach``) on the training features of
``../shared/design/heldout-protocol.md`` of the whole scene, the forest network distilled from
it (``forest_student.distil_forest``), and both are scored on the held-out features, beside
the protocol's anchor. A variant sets constants of ``forest_student`` (or of ``teacher`` with
a ``teacher.`` prefix) for its runs: ``STEPS=4500,PASSES=24``.
"""
from __future__ import annotations

import argparse
import ast
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_heldout import DATASETS, Protocol, read_image, score


class _Scene:
    """What distillation reads of a training scene (``data.SceneReader``'s in-memory part)."""

    in_memory = True

    def __init__(self, pixels: np.ndarray, labels: np.ndarray, valid: np.ndarray) -> None:
        self.whole = (pixels, labels, valid, np.zeros_like(labels))
        self.bands = list(range(pixels.shape[-1]))
        self.soft = None


def predict(network, pixels: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The network's class (0-based) at the given pixels, predicted strip by strip."""
    from landcoverunet.models.forest_network import field_radius

    margin, strip = field_radius(), 256
    out = np.zeros(len(rows), np.int64)
    for top in range(0, pixels.shape[0], strip):
        mine = np.flatnonzero((rows >= top) & (rows < top + strip))
        if not len(mine):
            continue
        lo, hi = max(0, top - margin), min(pixels.shape[0], top + strip + margin)
        probs = np.asarray(network.predict_on_batch(pixels[None, lo:hi]))[0]
        out[mine] = probs[rows[mine] - lo, cols[mine]].argmax(-1)
    return out


def apply(variant: str) -> dict:
    """Sets a variant's constants; returns the old values to restore."""
    from landcoverunet.backend.training import forest_student, teacher

    old = {}
    if variant == "base":
        return old
    for item in variant.split(","):
        key, value = item.split("=")
        module = teacher if key.startswith("teacher.") else forest_student
        name = key.split(".")[-1]
        old[(module, name)] = getattr(module, name)
        setattr(module, name, ast.literal_eval(value))
    return old


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ogt_landsat7,ogt_s2_wetlands,slovenia")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--variants", default="base")
    parser.add_argument("--folder", default=None)
    args = parser.parse_args()
    from osgeo import gdal

    from landcoverunet.backend.core.progress import ConsoleProgress
    from landcoverunet.backend.training import forest_student, teacher

    folder = Path(args.folder or tempfile.mkdtemp(prefix="bench-fn-"))
    folder.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    print("| dataset | anchor | variant | teacher mIoU (mean, min-max) | forest network mIoU "
          "(mean, min-max) | distil s |")
    print("|---|---|---|---|---|---|")
    for name in [n.strip() for n in args.datasets.split(",") if n.strip()]:
        protocol = Protocol(DATASETS[name](folder), folder)
        anchor, _ = protocol.forest()
        raw, valid = read_image(protocol.dataset.image)
        pixels = (raw - raw[valid].mean(0)) / np.maximum(raw[valid].std(0), 1e-6)
        pixels[~valid] = 0.0
        pixels = pixels.astype(np.float32)
        mask = gdal.Open(protocol.mask).ReadAsArray()
        labels = np.zeros(mask.shape, np.uint8)
        ids = [c.id for c in protocol.class_map.classes]
        for i, c in enumerate(ids, start=1):
            labels[mask == c] = i
        labels[~valid] = 0
        rows, cols = protocol.where
        for variant in [v.strip() for v in args.variants.split(";") if v.strip()]:
            old = apply(variant)
            teachers, students, seconds = [], [], []
            for seed in seeds:
                scene = _Scene(pixels, labels, valid)
                progress = ConsoleProgress(quiet=True)
                forest = teacher.teach([scene], len(ids), seed, progress)
                probs = teacher.forest_probabilities(forest, pixels, valid,
                                                     rows * labels.shape[1] + cols, len(ids))
                predicted = np.zeros(mask.shape, np.uint16)
                predicted[rows, cols] = np.array(ids)[probs.argmax(-1)]
                teachers.append(score(protocol.truth, protocol.names_of(predicted, protocol.class_map),
                                      protocol.names).miou)
                started = time.perf_counter()
                network = forest_student.distil_forest([scene], len(ids), seed, progress)
                seconds.append(time.perf_counter() - started)
                predicted[rows, cols] = np.array(ids)[predict(network, pixels, rows, cols)]
                students.append(score(protocol.truth, protocol.names_of(predicted, protocol.class_map),
                                      protocol.names).miou)
            for (module, key), value in old.items():
                setattr(module, key, value)
            t, s = np.array(teachers), np.array(students)
            print(f"| {name} | {anchor.miou:.3f} | {variant} | {t.mean():.3f} ({t.min():.3f}-"
                  f"{t.max():.3f}) | {s.mean():.3f} ({s.min():.3f}-{s.max():.3f}) | "
                  f"{np.mean(seconds):.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
