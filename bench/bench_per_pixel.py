"""Per-pixel classifiers on the teacher's features, scored on polygons training never saw.

Usage (from the repository root):
    source scripts/env.sh && .venv/bin/python bench/bench_per_pixel.py \
        [--datasets ogt_landsat7,ogt_s2_wetlands,slovenia] [--seeds 1,2,3] [--models rf,lr]

Seconds per dataset: which per-pixel model, fitted on the training features of
``../shared/design/heldout-protocol.md`` exactly as the teacher is (at most
``teacher.PIXELS_PER_CLASS`` pixels per class, the teacher's window features), maps held-out
polygons best, before any of it is built into training.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench_heldout import DATASETS, Protocol, normalised_image, score


def models(seed: int) -> dict:
    from sklearn.discriminant_analysis import (LinearDiscriminantAnalysis,
                                               QuadraticDiscriminantAnalysis)
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    return {
        "rf": RandomForestClassifier(100, class_weight="balanced_subsample", min_samples_leaf=2,
                                     n_jobs=-1, random_state=seed),
        "et": ExtraTreesClassifier(100, class_weight="balanced_subsample", min_samples_leaf=2,
                                   n_jobs=-1, random_state=seed),
        "lr": make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000,
                                                                 class_weight="balanced")),
        "lr01": make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000,
                                                                   class_weight="balanced")),
        "lr10": make_pipeline(StandardScaler(), LogisticRegression(C=10.0, max_iter=4000,
                                                                   class_weight="balanced")),
        "lrnb": make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)),
        "lda": LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"),
        "qda": QuadraticDiscriminantAnalysis(reg_param=0.1),
        "svm": make_pipeline(StandardScaler(), SVC(C=1.0, probability=True,
                                                   class_weight="balanced", random_state=seed)),
        "knn": make_pipeline(StandardScaler(), KNeighborsClassifier(15, weights="distance")),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ogt_landsat7,ogt_s2_wetlands,slovenia")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--models", default="rf,lr,lda")
    parser.add_argument("--mixes", default="", help="e.g. rf+lr;rf+lda: mean probabilities")
    parser.add_argument("--folder", default=None)
    parser.add_argument("--per-class", action="store_true", help="print each IoU (last seed)")
    args = parser.parse_args()

    from landcoverunet.backend.training import teacher

    folder = Path(args.folder or tempfile.mkdtemp(prefix="bench-pp-"))
    folder.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    names = args.models.split(",")
    mixes = [m.split("+") for m in args.mixes.split(";") if m]
    print("| dataset | anchor | " + " | ".join(names + ["+".join(m) for m in mixes]) + " |")
    for name in [n.strip() for n in args.datasets.split(",") if n.strip()]:
        protocol = Protocol(DATASETS[name](folder), folder)
        anchor, _ = protocol.forest()
        pixels, valid = normalised_image(protocol.dataset.image)
        mask, labels, ids = protocol.training_labels(valid)
        rows, cols = protocol.where
        test = rows * labels.shape[1] + cols
        featurisers = {"t": teacher.pixel_features,
                       "r": lambda p, v, w: p.reshape(-1, p.shape[-1])[w]}
        x_tests = {k: f(pixels, valid, test) for k, f in featurisers.items()}
        results = {n: [] for n in names + ["+".join(m) for m in mixes]}
        for seed in seeds:
            rng = np.random.default_rng([seed, 13])
            chosen, targets = [], []
            for c in range(1, len(ids) + 1):
                where = np.flatnonzero((labels == c).ravel() & valid.ravel())
                if len(where) > teacher.PIXELS_PER_CLASS:
                    where = rng.choice(where, teacher.PIXELS_PER_CLASS, replace=False)
                chosen.append(where)
                targets.append(np.full(len(where), c - 1))
            y = np.concatenate(targets)
            xs = {k: f(pixels, valid, np.concatenate(chosen)) for k, f in featurisers.items()}
            probs = {}
            for key in names:
                kind, _, feat = key.partition("@")
                x, x_test = xs[feat or "t"], x_tests[feat or "t"]
                model = models(seed)[kind]
                if kind in ("svm", "knn") and len(x) > 20000:
                    pick = rng.choice(len(x), 20000, replace=False)
                    model.fit(x[pick], y[pick])
                else:
                    model.fit(x, y)
                p = np.zeros((len(test), len(ids)), np.float32)
                p[:, model.classes_] = model.predict_proba(x_test)
                probs[key] = p
            for mix in mixes:
                probs["+".join(mix)] = sum(probs[k] for k in mix)

            for key, p in probs.items():
                predicted = np.zeros(mask.shape, np.uint16)
                predicted[rows, cols] = np.array(ids)[p.argmax(-1)]
                scored = score(protocol.truth, protocol.names_of(predicted, protocol.class_map),
                               protocol.names)
                results[key].append(scored.miou)
                if args.per_class and seed == seeds[-1]:
                    print(f"  {name} {key}: " + "  ".join(f"{k} {v:.2f}"
                                                          for k, v in scored.iou.items()))
        cells = [f"{np.mean(v):.3f} ({min(v):.3f}-{max(v):.3f})" for v in results.values()]
        print(f"| {name} | {anchor.miou:.3f} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
