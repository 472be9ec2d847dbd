"""The teacher forest and the forest network distilled from it, alone, on polygons never seen.

Usage (from the repository root):
    source scripts/env.sh && .venv/bin/python bench/bench_forest_network.py \
        [--datasets ogt_landsat7,ogt_s2_wetlands,slovenia] [--seeds 1,2,3] \
        [--variants "base;STEPS=4500,PASSES=24;LABEL_SHARE=2"]

Training's per-pixel member (``backend/training/forest_student.py``) takes seconds, the U-Net
minutes, so distillation settings can be compared over many seeds before any U-Net is trained.
The teacher is fitted (``teaching.teach``) on the training features of
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

from bench_heldout import DATASETS, Protocol, normalised_image, score

REACH = 64
"""The training windows' edge the teacher is told (scenes here are in memory: it reads nothing)."""


class _Scene:
    """What distillation reads of a training scene (``data.SceneReader``'s in-memory part)."""

    in_memory = True

    def __init__(self, pixels: np.ndarray, labels: np.ndarray, valid: np.ndarray) -> None:
        self.whole = (pixels, labels, valid, np.zeros_like(labels))
        self.bands = list(range(pixels.shape[-1]))
        self.soft = None


def probabilities(network, pixels: np.ndarray, rows: np.ndarray, cols: np.ndarray
                  ) -> np.ndarray:
    """The network's class probabilities at the given pixels, predicted strip by strip."""
    from landcoverunet.models.forest_network import field_radius

    margin, strip = field_radius(), 256
    out = None
    for top in range(0, pixels.shape[0], strip):
        mine = np.flatnonzero((rows >= top) & (rows < top + strip))
        if not len(mine):
            continue
        lo, hi = max(0, top - margin), min(pixels.shape[0], top + strip + margin)
        probs = np.asarray(network.predict_on_batch(pixels[None, lo:hi]))[0]
        if out is None:
            out = np.zeros((len(rows), probs.shape[-1]), np.float32)
        out[mine] = probs[rows[mine] - lo, cols[mine]]
    return out


def distil_probabilities(pixels: np.ndarray, labels: np.ndarray, valid: np.ndarray,
                         classes: int, seed: int, rows: np.ndarray, cols: np.ndarray
                         ) -> np.ndarray:
    """The teacher fitted on ``labels``, the forest network distilled from it, and the
    network's (len(rows), classes) probabilities at the given pixels."""
    from landcoverunet.backend.core.progress import ConsoleProgress
    from landcoverunet.backend.training import forest_student, teaching

    scene = _Scene(pixels, labels, valid)
    progress = ConsoleProgress(quiet=True)
    teaching.teach([scene], classes, seed, progress, REACH)
    network = forest_student.distil_forest([scene], classes, seed, progress)
    return probabilities(network, pixels, rows, cols)


def fold_labels(labels: np.ndarray, ids: np.ndarray, folds: int) -> list[np.ndarray]:
    """Per fold, the labels without one share of each class's features (as training's
    cross-validation holds whole features out)."""
    out = [labels.copy() for _ in range(folds)]
    for c in np.unique(labels[labels > 0]):
        features = np.unique(ids[labels == c])
        for i, feature in enumerate(features):
            out[i % folds][(ids == feature) & (labels == c)] = 0
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
    parser.add_argument("--folds", type=int, default=0,
                        help="also score the mean of the network on every feature and those "
                             "of this many folds, each without a share of the features (what "
                             "a model file of a cross-validated run holds)")
    parser.add_argument("--folder", default=None)
    args = parser.parse_args()

    from landcoverunet.backend.core.feature_ids import feature_id_reader
    from landcoverunet.backend.core.progress import ConsoleProgress
    from landcoverunet.backend.training import teacher, teaching

    folder = Path(args.folder or tempfile.mkdtemp(prefix="bench-fn-"))
    folder.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    print("| dataset | anchor | variant | teacher mIoU (mean, min-max) | forest network mIoU "
          "(mean, min-max) | mean of it and the folds' (mean, min-max) | distil s |")
    print("|---|---|---|---|---|---|---|")
    for name in [n.strip() for n in args.datasets.split(",") if n.strip()]:
        protocol = Protocol(DATASETS[name](folder), folder)
        anchor, _ = protocol.forest()
        pixels, valid = normalised_image(protocol.dataset.image)
        mask, labels, ids = protocol.training_labels(valid)
        read_ids = feature_id_reader(protocol.mask, mask)[0]
        folds = fold_labels(labels, read_ids(0, 0, *labels.shape[::-1]), args.folds) \
            if args.folds else []
        rows, cols = protocol.where

        def miou(probs: np.ndarray) -> float:
            predicted = np.zeros(mask.shape, np.uint16)
            predicted[rows, cols] = np.array(ids)[probs.argmax(-1)]
            return score(protocol.truth, protocol.names_of(predicted, protocol.class_map),
                         protocol.names).miou

        for variant in [v.strip() for v in args.variants.split(";") if v.strip()]:
            old = apply(variant)
            teachers, students, means, seconds = [], [], [], []
            for seed in seeds:
                scene = _Scene(pixels, labels, valid)
                forest = teaching.teach([scene], len(ids), seed, ConsoleProgress(quiet=True),
                                        REACH)
                teachers.append(miou(teacher.forest_probabilities(
                    forest, pixels, valid, rows * labels.shape[1] + cols, len(ids))))
                started = time.perf_counter()
                single = distil_probabilities(pixels, labels, valid, len(ids), seed, rows, cols)
                seconds.append(time.perf_counter() - started)
                students.append(miou(single))
                if folds:
                    mean = single + sum(distil_probabilities(pixels, fold, valid, len(ids), seed,
                                                             rows, cols) for fold in folds)
                    means.append(miou(mean))
            for (module, key), value in old.items():
                setattr(module, key, value)
            figures = [f"{a.mean():.3f} ({a.min():.3f}-{a.max():.3f})" if len(a) else "-"
                       for a in map(np.array, (teachers, students, means))]
            print(f"| {name} | {anchor.miou:.3f} | {variant} | {' | '.join(figures)} | "
                  f"{np.mean(seconds):.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
